// The federation, in two roles over the node's contract book:
//  - ProviderSubsystem shares this node's datasets: the receipt signer, the audit log and the
//    FederationService on its own mutual-TLS listener (keepalive and connection-age limits, a
//    thread cap sized for hundreds of subscribers, no reflection).
//  - SubscriptionsSubsystem mirrors peers' datasets: one Subscriber per configured subscription,
//    each dialling its provider over mutual TLS only.
// A peer's or a subscription's state never makes the node unready (one peer's gap must not take
// the city's ingest offline); both report on /statusz and in the metrics instead.
#ifndef POLDER_SERVICES_NODE_SERVER_FEDERATION_SUBSYSTEM_H_
#define POLDER_SERVICES_NODE_SERVER_FEDERATION_SUBSYSTEM_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/kafka/admin.h"
#include "common/kafka/client_factory.h"
#include "common/replica/role_group.h"
#include "grpcpp/server.h"
#include "nlohmann/json.hpp"
#include "services/node/federation/audit_log.h"
#include "services/node/federation/contracts.h"
#include "services/node/federation/federation_service.h"
#include "services/node/federation/receipts.h"
#include "services/node/federation/subscriber.h"
#include "services/node/feed_quality.h"
#include "services/node/node_config.h"
#include "services/node/node_metrics.h"
#include "services/node/server/node_trust.h"
#include "services/node/server/schema_subsystem.h"

namespace polder {
namespace node {

// The contract book (sharing only; nullptr otherwise). Read before the topics are created: each
// subscription's mirror keeps what its contract allows (sets its mirror_retention).
std::unique_ptr<ContractBook> OpenContractBook(NodeConfig* config, const NodeTrust& trust);

class ProviderSubsystem {
 public:
  // `contracts` and `schemas` must outlive the subsystem.
  // `feed_quality` (may be null): what ListDatasets and heartbeats offer contract holders.
  // `replica`: this replica's id (in its stream ids); `forward_receipt`: hands a receipt for a
  // stream another replica serves to that replica (FederationService::Options).
  static absl::StatusOr<std::unique_ptr<ProviderSubsystem>> Build(
      const NodeConfig& config, const NodeTrust& trust, kafka::ClientFactory& kafka,
      ContractBook* contracts, SchemaSubsystem* schemas, const FeedQualityTracker* feed_quality,
      const std::string& replica = "",
      decltype(FederationService::Options::forward_receipt) forward_receipt = nullptr,
      PeerAdmission* admission = nullptr);
  FederationService* service() const { return service_.get(); }
  ~ProviderSubsystem();

  AuditLog* audit() const { return audit_.get(); }
  const ReceiptSigner* signer() const { return signer_.get(); }
  int port() const { return port_; }
  // Ends the streams (their subscribers resume elsewhere or later from their cursors).
  void Stop();
  void Export(NodeMetrics* metrics) const;

 private:
  ProviderSubsystem() = default;

  std::unique_ptr<ReceiptSigner> signer_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<FederationService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool stopped_ = false;
};

class SubscriptionsSubsystem {
 public:
  // Called before each mirror transaction commits, with the subscription ("self/provider/
  // dataset") and the write's number: a test seam (see MirrorWriter::Options::before_commit).
  using BeforeCommit = std::function<void(const std::string& subscription, int64_t write)>;

  // `kafka`, `admin`, `contracts`, `provider`, `schemas` and `roles` must outlive the
  // subsystem. Each subscription is a role of `roles` (RoleName): it is dialled only while this
  // replica holds it (ADR 0021 §3), and a fenced run stops until the group gives it back.
  static std::unique_ptr<SubscriptionsSubsystem> Build(
      const NodeConfig& config, const NodeTrust& trust, kafka::ClientFactory& kafka,
      kafka::Admin* admin, ContractBook* contracts, const ProviderSubsystem* provider,
      SchemaSubsystem* schemas, BeforeCommit before_commit, replica::RoleGroup* roles);
  ~SubscriptionsSubsystem();
  // "sub/<provider>/<dataset>", or "sub/<provider>/<dataset>/<view>" for a view's subscription.
  static std::string RoleName(const SubscriptionConfig& sub);
  // Commits what each subscription has queued and ends its stream (after the roles were left,
  // for anything still running).
  void Stop();

  nlohmann::json Status() const;
  // The feed quality providers reported in their streams' heartbeats: (provider, quality).
  std::vector<std::pair<std::string, federation::v1::FeedQuality>> ReceivedFeedQuality() const;
  void Export(NodeMetrics* metrics) const;

 private:
  SubscriptionsSubsystem() = default;
  class SubscriptionRole;

  std::vector<SubscriptionConfig> configs_;
  std::vector<std::unique_ptr<Subscriber>> subscribers_;
  std::vector<std::unique_ptr<SubscriptionRole>> roles_;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_SERVER_FEDERATION_SUBSYSTEM_H_
