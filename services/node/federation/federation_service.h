// polder.federation.v1.FederationService on the provider's node (ARCHITECTURE §8), first part:
// ListDatasets and Subscribe. Every call's peer comes from the mutual-TLS identity checked
// against the directory; a Subscribe needs a contract (ContractBook) and streams the dataset's
// source topic from a cursor (SourceReader), recording each batch in the audit log before it is
// sent (AuditLog). During the stream the contract and the peer's certificate are re-checked every
// `recheck_interval`; a failure ends the stream with PERMISSION_DENIED, a record whose schema
// version the contract does not allow with FAILED_PRECONDITION. A subscriber that does not read
// blocks the stream's writes (gRPC flow control), so the provider holds at most one batch per
// stream beyond the transport's window.
//
// ExchangeReceipts and GetAuditEntries are not implemented yet (UNIMPLEMENTED).
#ifndef POLDER_SERVICES_NODE_FEDERATION_FEDERATION_SERVICE_H_
#define POLDER_SERVICES_NODE_FEDERATION_FEDERATION_SERVICE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/kafka/consumer.h"
#include "common/tls/identity.h"
#include "proto/polder/federation/v1/federation.grpc.pb.h"
#include "services/node/federation/audit_log.h"
#include "services/node/federation/contracts.h"

namespace polder {
namespace node {

struct SharedDataset {
  std::string id;
  std::string topic;
  int32_t partitions = 0;
  std::string epoch;
  std::string description, licence, owner_contact;
};

class FederationService final : public federation::v1::FederationService::Service {
 public:
  struct Options {
    std::string self;
    std::map<std::string, SharedDataset> datasets;  // by id
    kafka::ConsumerOptions consumer;
    int32_t max_batch_records = 1000;
    int64_t max_batch_bytes = 1 << 20;
    absl::Duration heartbeat_interval = absl::Seconds(5);
    absl::Duration recheck_interval = absl::Seconds(10);
    absl::Duration kafka_timeout = absl::Seconds(10);
    int max_streams_per_peer = 8;
    // The schema version (of its subject) of a schema id, for the contract's version check.
    std::function<absl::StatusOr<int64_t>(int32_t schema_id)> schema_version;
    std::shared_ptr<const tls::IdentityChecker> checker;  // re-checks peers during streams
    std::function<absl::Time()> clock;
  };

  FederationService(Options options, ContractBook* contracts, AuditLog* audit)
      : options_(std::move(options)), contracts_(contracts), audit_(audit) {}

  grpc::Status ListDatasets(grpc::ServerContext* context, const federation::v1::ListDatasetsRequest* request,
                            federation::v1::ListDatasetsResponse* response) override;
  grpc::Status Subscribe(grpc::ServerContext* context, const federation::v1::SubscribeRequest* request,
                         grpc::ServerWriter<federation::v1::SubscribeResponse>* writer) override;

 private:
  absl::Time Now() const { return options_.clock ? options_.clock() : absl::Now(); }
  absl::Status Stream(grpc::ServerContext* context, const std::string& peer, const SharedDataset& dataset,
                      const trust::Contract& contract, const federation::v1::SubscribeRequest& request,
                      grpc::ServerWriter<federation::v1::SubscribeResponse>* writer);

  const Options options_;
  ContractBook* contracts_;
  AuditLog* audit_;
  absl::Mutex mu_;
  std::map<std::string, int> streams_per_peer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_FEDERATION_SERVICE_H_
