// polder-node assembled: built from a validated NodeConfig, one builder per subsystem (trust,
// schemas, ingest, federation provider, subscriptions, ops); the ops listener's readiness
// registry gets the checks kafka, certificate, ingest and schemas. The binary's main only parses
// flags, loads the config, starts a NodeServer and waits for a termination signal.
//
//   kafka::RdKafkaClientFactory kafka;
//   ASSIGN_OR_RETURN(auto node, NodeServer::Start(std::move(config), kafka));
//   ... node->ports() ...
//   node->Drain();
//
// Ready means this process can give correct answers: its Kafka, its producer, its schemas and
// its certificate. A peer's or a subscription's state never makes it unready (an unready pod
// leaves every Service: one peer's gap would take the city's ingest offline); those are on
// /statusz and in the metrics.
#ifndef POLDER_SERVICES_NODE_SERVER_NODE_SERVER_H_
#define POLDER_SERVICES_NODE_SERVER_NODE_SERVER_H_

#include <atomic>
#include <memory>

#include "absl/status/statusor.h"
#include "common/kafka/admin.h"
#include "common/kafka/client_factory.h"
#include "common/replica/role_group.h"
#include "common/server/certificate_expiry.h"
#include "common/server/ops_server.h"
#include "common/server/periodic.h"
#include "nlohmann/json.hpp"
#include "services/node/feed_quality.h"
#include "services/node/node_config.h"
#include "services/node/node_metrics.h"
#include "services/node/replica/peer_limits.h"
#include "services/node/server/federation_subsystem.h"
#include "services/node/server/ingest_subsystem.h"
#include "services/node/server/node_trust.h"
#include "services/node/server/schema_subsystem.h"
#include "services/node/server/views_subsystem.h"

namespace polder {
namespace node {

class NodeServer {
 public:
  struct Hooks {
    // See SubscriptionsSubsystem::BeforeCommit; unset in polder-node.
    SubscriptionsSubsystem::BeforeCommit before_mirror_commit;
    // See ViewsSubsystem::BeforeCommit; unset in polder-node.
    ViewsSubsystem::BeforeCommit before_view_commit;
  };
  struct Ports {
    int grpc = 0, http = 0, schema = 0, ops = 0;
    int federation = 0;  // 0 without sharing
    int internal = 0;    // replica-to-replica calls (ADR 0021 §5)
    // The ready file's content.
    nlohmann::json ToJson() const;
  };

  // Builds and starts every subsystem; `kafka` must outlive the server. Kafka that is not up
  // yet is waited for (up to two minutes per step); any other failure is returned with the
  // subsystem that failed.
  static absl::StatusOr<std::unique_ptr<NodeServer>> Start(NodeConfig config,
                                                           kafka::ClientFactory& kafka,
                                                           Hooks hooks = {});
  ~NodeServer();

  Ports ports() const;
  // SIGTERM's sequence: health NOT_SERVING; subscriptions commit and stop; federation streams
  // end; ingest stops taking calls and finishes those in flight (up to drain_timeout); what is
  // queued is committed; the ops listener stops last. Idempotent.
  void Drain();

 private:
  explicit NodeServer(NodeConfig config) : config_(std::move(config)) {}
  absl::Status Build(kafka::ClientFactory& kafka, Hooks hooks);
  // Writes this node's feed quality per dataset and what its providers reported (ADR 0018 §6).
  void PublishFeedQuality();
  nlohmann::json FeedQualityStatus() const;
  absl::Status StartOps();
  void ProbeKafka();
  nlohmann::json StatusPage() const;
  nlohmann::json ReplicaStatus() const;
  std::string MetricsText();

  NodeConfig config_;
  NodeTrust trust_;
  server::Readiness readiness_;
  NodeMetrics metrics_;
  std::unique_ptr<server::CertificateExpiry> certificate_;  // outside the development mode
  std::unique_ptr<kafka::Admin> admin_;
  std::atomic<bool> kafka_reachable_{true};
  std::unique_ptr<SchemaSubsystem> schemas_;
  std::unique_ptr<ContractBook> contracts_;
  // Before the subsystems that use it (ingest, provider streams), so it is destroyed after them.
  std::unique_ptr<FeedQualityTracker> feed_quality_;
  std::unique_ptr<kafka::Producer> feed_quality_producer_;  // to config_.feed_quality_topic
  std::unique_ptr<IngestSubsystem> ingest_;
  // Per-peer limits across replicas (ADR 0021 §3): used by the provider, routed through ingest's
  // key partitions; destroyed between the two.
  std::unique_ptr<ReplicaAdmission> admission_;
  std::unique_ptr<ProviderSubsystem> provider_;
  std::unique_ptr<SubscriptionsSubsystem> subscriptions_;
  std::unique_ptr<ViewsSubsystem> views_;
  // Subscriptions, view sets and the audit index as roles of this city's replicas (ADR 0021 §3);
  // after the subsystems whose roles it starts and stops, so it is destroyed (leaves) first.
  std::unique_ptr<replica::Role> audit_index_role_;
  std::unique_ptr<replica::RoleGroup> roles_;
  std::unique_ptr<server::OpsServer> ops_;
  server::Periodic upkeep_;
  bool drained_ = false;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_SERVER_NODE_SERVER_H_
