// Aggregate views of the node's own datasets (ADR 0016): one ViewJob per configured view set,
// each a role ("views/<dataset>", ADR 0021 §3) run only by the replica holding it, on a thread
// of its own that starts (recovers) the job, runs it, and after an error —
// a failed commit, Kafka unreachable, a schema not yet registered — starts it again with
// backoff (1 s doubling to 30 s). A set that cannot start for a reason that waiting will not
// fix (a changed definition, a different key) keeps retrying too, and says why on /statusz
// and in the metrics, as a stopped subscription does: views never make the node unready. A job
// whose writer was fenced (another replica holds the set now) is not restarted: the set waits
// for the group to give it back ("fenced", then "elsewhere").
// The view key (<state_dir>/views/<dataset>.key) must be the same on every replica: a replica
// whose key differs from the changelog's refuses to run the set and says so.
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
#include "common/replica/role_group.h"
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

  // `kafka`, `schemas` and `roles` must outlive the subsystem. Each set is added to `roles`
  // and runs while this replica holds it.
  ViewsSubsystem(const NodeConfig& config, kafka::ClientFactory& kafka, SchemaSubsystem* schemas,
                 BeforeCommit before_commit, replica::RoleGroup* roles);
  ~ViewsSubsystem();

  static std::string RoleName(const std::string& dataset) { return "views/" + dataset; }
  // Commits what each running job has pending and stops it.
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
    std::atomic<bool> stop{false};
    mutable absl::Mutex mu;
    bool wake ABSL_GUARDED_BY(mu) = false;  // set with `stop`: ends a backoff wait
    std::string state ABSL_GUARDED_BY(mu) = "elsewhere";
    std::string last_error ABSL_GUARDED_BY(mu);
    ViewJob::Stats ended ABSL_GUARDED_BY(mu);  // summed over jobs that ended
    ViewJob::Stats stats ABSL_GUARDED_BY(mu);  // the running job's
    int64_t restarts ABSL_GUARDED_BY(mu) = 0;
  };

  class SetRole;

  void StartSet(Set* set);
  void StopSet(Set* set, const std::string& final_state);
  void Supervise(Set* set);
  absl::StatusOr<ViewJob::Options> OptionsFor(const views::ViewSetSpec& spec);

  const NodeConfig& config_;
  kafka::ClientFactory& kafka_;
  SchemaSubsystem* schemas_;
  BeforeCommit before_commit_;
  replica::RoleGroup* const roles_;
  std::vector<std::unique_ptr<Set>> sets_;
  std::vector<std::unique_ptr<SetRole>> set_roles_;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_SERVER_VIEWS_SUBSYSTEM_H_
