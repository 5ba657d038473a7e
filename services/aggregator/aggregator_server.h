// polder-aggregator assembled from a validated AggregatorConfig (ADR 0018): the federation's
// trust (directory and identity checker), the registry client (mutual TLS, for
// polder.national.v1.NationalFigure's schema id, through a persisted schema cache), the national
// topics and changelog (created when missing, checked when present), the job on a supervisor
// thread that recovers it from its changelog after any error (backoff 1 s doubling to 30 s), the
// read API on its own HTTPS listener, and the ops listener with readiness, status and metrics.
//
// Replicas (ADR 0021 §7): the job is a role ("national-job") of the group
// polder-aggregator-<id>-roles, run by one replica at a time under its transactional id; a job
// fenced by another replica stops and waits for the group, never re-initialising over it. Every
// replica serves the API and the live updates: the job's holder from the job, the others from
// the changelog as committed (FiguresFollower).
//
// Ready means this process gives correct answers: it has the committed figures (the job
// recovered them, or the follower read the changelog to its end) and its certificate is valid. A
// job that retries after losing Kafka keeps serving the figures it committed (they do not change
// until it commits again) and says so on /statusz and in the metrics.
#ifndef POLDER_SERVICES_AGGREGATOR_AGGREGATOR_SERVER_H_
#define POLDER_SERVICES_AGGREGATOR_AGGREGATOR_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/http/https_server.h"
#include "common/http/static_files.h"
#include "common/kafka/client_factory.h"
#include "common/replica/role_group.h"
#include "common/server/certificate_expiry.h"
#include "common/server/ops_server.h"
#include "common/server/periodic.h"
#include "common/tls/identity.h"
#include "common/trust/trust_config.h"
#include "nlohmann/json.hpp"
#include "services/aggregator/aggregator_config.h"
#include "services/aggregator/aggregator_job.h"
#include "services/aggregator/aggregator_metrics.h"
#include "services/aggregator/live_feed.h"
#include "services/aggregator/read_api.h"
#include "services/node/schema_cache/schema_cache.h"

namespace polder {
namespace aggregator {

class AggregatorServer {
 public:
  struct Ports {
    int api = 0, ops = 0;
    nlohmann::json ToJson() const;  // the ready file's content
  };
  // AggregatorJob::Options::before_commit: a test seam armed only by the test-hooks build.
  using BeforeCommit = std::function<void(int64_t commit)>;

  // `kafka` must outlive the server.
  static absl::StatusOr<std::unique_ptr<AggregatorServer>> Start(AggregatorConfig config,
                                                                 kafka::ClientFactory& kafka,
                                                                 BeforeCommit before_commit);
  ~AggregatorServer();

  Ports ports() const;
  // The listeners stop, then the job commits what it has pending and ends. Idempotent.
  void Stop();

 private:
  AggregatorServer(AggregatorConfig config, kafka::ClientFactory& kafka, BeforeCommit hook);
  absl::Status Build();
  class JobRole;
  static constexpr char kJobRole[] = "national-job";

  void Supervise();
  // Creates the topics (retrying while Kafka is away), then joins the roles group.
  void JoinWhenTopicsExist();
  void StartJob();
  void StopJob(const std::string& final_state);
  absl::StatusOr<AggregatorJob::Options> JobOptions();
  absl::Status EnsureTopics();
  std::shared_ptr<const AggregatorJob::Figures> Figures() const;
  // Reads the national node's feed-quality topic (its latest value per city and dataset).
  void RefreshFeedQuality();
  nlohmann::json FeedQualityJson() const;
  nlohmann::json StatusPage() const;
  std::string MetricsText();

  AggregatorConfig config_;
  kafka::ClientFactory& kafka_;
  BeforeCommit before_commit_;
  std::unique_ptr<trust::DirectoryStore> directory_;  // null in the development mode
  std::shared_ptr<tls::IdentityChecker> checker_;
  std::unique_ptr<node::SchemaCache> schemas_;
  AggregatorMetrics metrics_;
  server::Readiness readiness_;
  std::unique_ptr<server::CertificateExpiry> certificate_;
  std::unique_ptr<ReadApi> api_handlers_;
  std::unique_ptr<LiveFeed> live_;               // before api_: the listener stops first
  std::unique_ptr<http::StaticSite> dashboard_;  // null with aggregator.dashboard: false
  std::unique_ptr<http::HttpsServer> api_;
  std::unique_ptr<server::OpsServer> ops_;
  server::Periodic upkeep_;
  std::unique_ptr<FiguresFollower> follower_;  // the figures as committed, for non-holders
  std::unique_ptr<JobRole> job_role_;
  std::unique_ptr<replica::RoleGroup> roles_;  // after job_role_: leaves first
  std::string replica_id_;
  std::thread joiner_;
  std::thread supervisor_;              // the job's run while this replica holds it
  std::atomic<bool> stop_{false};       // the server stops
  std::atomic<bool> run_stop_{false};   // the job's run stops (role given up or server stops)
  std::atomic<bool> recovered_{false};  // the job recovered its figures at least once
  bool stopped_ = false;

  mutable absl::Mutex mu_;
  std::shared_ptr<AggregatorJob> job_ ABSL_GUARDED_BY(mu_);  // the running job, if any
  // What readers get while no job runs: the last job's committed figures.
  std::shared_ptr<const AggregatorJob::Figures> last_figures_ ABSL_GUARDED_BY(mu_);
  std::string state_ ABSL_GUARDED_BY(mu_) = "elsewhere";
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  int64_t restarts_ ABSL_GUARDED_BY(mu_) = 0;
  AggregatorJob::Stats ended_ ABSL_GUARDED_BY(mu_);  // summed over jobs that ended
  mutable absl::Mutex feed_quality_mu_;
  std::map<std::string, nlohmann::json> feed_quality_ ABSL_GUARDED_BY(feed_quality_mu_);
  absl::Mutex wake_mu_;
  bool wake_ ABSL_GUARDED_BY(wake_mu_) = false;
};

}  // namespace aggregator
}  // namespace polder

#endif  // POLDER_SERVICES_AGGREGATOR_AGGREGATOR_SERVER_H_
