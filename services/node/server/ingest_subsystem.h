// Ingest: the transactional publisher into the city's Kafka, the caller authenticator (client
// certificates and bearer tokens), and the two listeners — gRPC (polder.node.v1.IngestService
// with the standard health service and reflection) and HTTPS — both authenticating before they
// parse. Registers the "ingest" readiness check (the producer is up and not fenced).
#ifndef POLDER_SERVICES_NODE_SERVER_INGEST_SUBSYSTEM_H_
#define POLDER_SERVICES_NODE_SERVER_INGEST_SUBSYSTEM_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/http/https_server.h"
#include "common/kafka/client_factory.h"
#include "common/server/ops_server.h"
#include "grpcpp/server.h"
#include "nlohmann/json.hpp"
#include "services/node/ingest/auth.h"
#include "services/node/ingest/ingest.h"
#include "services/node/ingest/keyed_publisher.h"
#include "services/node/ingest/publisher.h"
#include "services/node/ingest/transports.h"
#include "services/node/node_config.h"
#include "services/node/node_metrics.h"
#include "services/node/replica/internal_service.h"
#include "services/node/server/node_trust.h"
#include "services/node/server/schema_subsystem.h"

namespace polder {
namespace node {

class IngestSubsystem {
 public:
  // Starts the publisher (waiting up to two minutes for an unavailable Kafka) and both
  // listeners. `schemas` and `metrics` must outlive the subsystem.
  static absl::StatusOr<std::unique_ptr<IngestSubsystem>> Build(
      const NodeConfig& config, const NodeTrust& trust, kafka::ClientFactory& kafka,
      SchemaSubsystem* schemas, NodeMetrics* metrics, server::Readiness* readiness);
  ~IngestSubsystem();

  // The gRPC health service's answer (SERVING or NOT_SERVING).
  void SetServing(bool serving);
  // Counts accepted and refused batches for feed quality (before the first request).
  void SetFeedQuality(FeedQualityTracker* feed_quality) { ingest_->set_feed_quality(feed_quality); }
  // Re-reads the token files: a deleted or broken file revokes its token now.
  void RefreshTokens() { auth_->Refresh(); }
  // Stops taking calls and lets those in flight finish, up to `drain_timeout`. Idempotent.
  void StopListening(absl::Duration drain_timeout);
  // Then commits what is queued (the publisher stays, answering readiness, until destruction).
  void CommitQueued();

  int grpc_port() const { return grpc_port_; }
  int internal_port() const { return internal_port_; }
  const KeyedPublisher& keyed() const { return *publisher_; }
  // The internal port's service and the calling side, for the provider's forwarded receipts.
  ReplicaService* replica_service() { return replica_service_.get(); }
  GrpcReplicaForwarder* forwarder() { return forwarder_.get(); }
  // Stops the internal port, waiting for calls in flight (before what they call is destroyed).
  void StopInternal();
  int http_port() const { return http_->port(); }
  nlohmann::json TokensStatus() const;
  // This replica (ADR 0021 §6): its id, internal endpoint, the key partitions it holds and the
  // holder of every partition as the replica directory shows it.
  nlohmann::json ReplicaStatus() const;
  void Export(NodeMetrics* metrics) const;

 private:
  IngestSubsystem() = default;

  // The internal port (ADR 0021 §5), then keyed ingest over the key partitions this replica
  // holds; the service is destroyed after the publisher that it calls.
  std::unique_ptr<ReplicaService> replica_service_;
  std::unique_ptr<grpc::Server> internal_;
  int internal_port_ = 0;
  std::unique_ptr<GrpcReplicaForwarder> forwarder_;
  std::unique_ptr<KeyedPublisher> publisher_;
  std::unique_ptr<IngestAuthenticator> auth_;
  std::unique_ptr<Ingest> ingest_;
  std::unique_ptr<IngestGrpcService> grpc_service_;
  std::unique_ptr<grpc::Server> grpc_;
  int grpc_port_ = 0;
  std::unique_ptr<http::HttpsServer> http_;
  bool listening_ = true;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_SERVER_INGEST_SUBSYSTEM_H_
