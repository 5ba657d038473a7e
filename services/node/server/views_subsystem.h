// Aggregate views of the node's own datasets (ADR 0016): one ViewJob per configured view set,
// each on a thread of its own that starts (recovers) the job, runs it, and after an error —
// a failed commit, Kafka unreachable, a schema not yet registered — starts it again with
// backoff (1 s doubling to 30 s). A set that cannot start for a reason that waiting will not
// fix (a changed definition, a different key) keeps retrying too, and says why on /statusz
// and in the metrics, as a stopped subscription does: views never make the node unready.
#ifndef POLDER_SERVICES_NODE_SERVER_VIEWS_SUBSYSTEM_H_
#define POLDER_SERVICES_NODE_SERVER_VIEWS_SUBSYSTEM_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/kafka/client_factory.h"
#include "nlohmann/json.hpp"
#include "services/node/node_config.h"
#include "services/node/node_metrics.h"
#include "services/node/server/schema_subsystem.h"
#include "services/node/views/view_job.h"

namespace polder {
namespace node {

class ViewsSubsystem {
 public:
  // Called before each view commit, with the dataset and the commit's number: a test seam
  // (ViewJob::Options::before_commit), armed only by the test-hooks build.
  using BeforeCommit = std::function<void(const std::string& dataset, int64_t commit)>;

  // `kafka` and `schemas` must outlive the subsystem. Start() starts the jobs.
  ViewsSubsystem(const NodeConfig& config, kafka::ClientFactory& kafka, SchemaSubsystem* schemas,
                 BeforeCommit before_commit);
  ~ViewsSubsystem();

  void Start();
  // Commits what each job has pending and stops it.
  void Stop();

  nlohmann::json Status() const;
  // Records whose window had closed, per dataset, since start (feed quality).
  std::map<std::string, int64_t> LateRecords() const;
  // Per dataset, per feed-quality view: what it published for its newest closed window.
  std::map<std::string, std::map<std::string, views::FeedFigure>> FeedFigures() const;
  void Export(NodeMetrics* metrics) const;

 private:
  struct Set {
    views::ViewSetSpec spec;
    std::thread thread;
    mutable absl::Mutex mu;
    std::string state ABSL_GUARDED_BY(mu) = "starting";
    std::string last_error ABSL_GUARDED_BY(mu);
    ViewJob::Stats ended ABSL_GUARDED_BY(mu);  // summed over jobs that ended
    ViewJob::Stats stats ABSL_GUARDED_BY(mu);  // the running job's
    int64_t restarts ABSL_GUARDED_BY(mu) = 0;
  };

  void Supervise(Set* set);
  absl::StatusOr<ViewJob::Options> OptionsFor(const views::ViewSetSpec& spec);

  const NodeConfig& config_;
  kafka::ClientFactory& kafka_;
  SchemaSubsystem* schemas_;
  BeforeCommit before_commit_;
  std::vector<std::unique_ptr<Set>> sets_;
  std::atomic<bool> stop_{false};
  absl::Mutex wake_mu_;
  bool wake_ ABSL_GUARDED_BY(wake_mu_) = false;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_SERVER_VIEWS_SUBSYSTEM_H_
