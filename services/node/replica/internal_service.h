// The node's internal port (ADR 0021 §5): the replicas of one city call each other here —
// ForwardPublish carries a validated ingest batch to the holder of its key partition. Mutual TLS
// with the node's federation identity; the auth filter admits only callers whose certificate
// names this node's own peer id (its replicas), before a request is parsed
// (tls::MakeServerCredentials' required_peer_id). GrpcReplicaForwarder is the calling side.
#ifndef POLDER_SERVICES_NODE_REPLICA_INTERNAL_SERVICE_H_
#define POLDER_SERVICES_NODE_REPLICA_INTERNAL_SERVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/tls/grpc_tls.h"
#include "grpcpp/channel.h"
#include "proto/polder/node/v1/replica.grpc.pb.h"
#include "services/node/ingest/keyed_publisher.h"
#include "services/node/replica/peer_limits.h"

namespace polder {
namespace node {

class ReplicaService final : public v1::Replica::Service {
 public:
  // `self_peer_id`: the node's peer id; "" in the development mode (plaintext, loopback).
  explicit ReplicaService(std::string self_peer_id) : self_(std::move(self_peer_id)) {}
  // Where forwarded batches go; until set, calls are UNAVAILABLE.
  void set_keyed(KeyedPublisher* keyed) { keyed_.store(keyed); }
  // Answers a forwarded receipt for a stream this replica serves (the provider side); unset
  // (no sharing, or not built yet): NOT_FOUND. Set once, before the federation listener starts.
  using ReceiptHandler = std::function<absl::StatusOr<federation::v1::ExchangeReceiptsResponse>(
      const std::string& peer, const federation::v1::ExchangeReceiptsRequest& request)>;
  void set_receipts(ReceiptHandler handler) {
    absl::MutexLock lock(&mu_);
    receipts_ = std::move(handler);
  }
  // Where per-peer slots are counted; until set, slot calls are UNAVAILABLE.
  void set_slots(ReplicaAdmission* slots) { slots_.store(slots); }

  grpc::Status ForwardPublish(grpc::ServerContext* context,
                              const v1::ForwardPublishRequest* request,
                              v1::ForwardPublishResponse* response) override;
  grpc::Status ForwardReceipt(grpc::ServerContext* context,
                              const v1::ForwardReceiptRequest* request,
                              federation::v1::ExchangeReceiptsResponse* response) override;
  grpc::Status AdmitSlot(grpc::ServerContext* context, const v1::AdmitSlotRequest* request,
                         v1::SlotResponse* response) override;
  grpc::Status RenewSlots(grpc::ServerContext* context, const v1::RenewSlotsRequest* request,
                          v1::SlotResponse* response) override;
  grpc::Status ReleaseSlot(grpc::ServerContext* context, const v1::ReleaseSlotRequest* request,
                           v1::SlotResponse* response) override;

 private:
  // PERMISSION_DENIED unless the caller is a replica of this node (the auth filter checked it
  // already; checked again so a listener built without it cannot take calls from others).
  grpc::Status CheckCaller(grpc::ServerContext* context, const char* what) const;

  const std::string self_;
  std::atomic<KeyedPublisher*> keyed_{nullptr};
  std::atomic<ReplicaAdmission*> slots_{nullptr};
  absl::Mutex mu_;
  ReceiptHandler receipts_ ABSL_GUARDED_BY(mu_);
};

// The batch as the request carries it, and back.
v1::ForwardPublishRequest ToForwardRequest(int32_t partition, const PublishBatch& batch);
PublishBatch FromForwardRequest(const v1::ForwardPublishRequest& request);

class GrpcReplicaForwarder : public ReplicaForwarder, public SlotRemote {
 public:
  struct Options {
    bool development_mode = false;  // plaintext (loopback only)
    tls::TlsFiles files;            // the node's federation identity
    std::shared_ptr<const tls::IdentityChecker> checker;
    std::string self_peer_id;  // the addressee must be this peer (another replica)
    std::string self_replica;  // for the addressee's logs
    int max_message_bytes = 8 << 20;
  };
  explicit GrpcReplicaForwarder(Options options) : options_(std::move(options)) {}

  absl::StatusOr<PublishOutcome> ForwardPublish(const std::string& endpoint, int32_t partition,
                                                const PublishBatch& batch,
                                                absl::Duration timeout) override;
  // SlotRemote: per-peer slots at the holder of the peer's key partition.
  absl::Status Admit(const std::string& endpoint, int32_t partition, const std::string& replica,
                     const SlotRecord& slot, int limit, absl::Duration timeout) override;
  absl::Status Renew(const std::string& endpoint, int32_t partition, const std::string& replica,
                     const std::vector<SlotRecord>& slots, absl::Duration timeout) override;
  absl::Status Release(const std::string& endpoint, int32_t partition, const SlotRecord& slot,
                       absl::Duration timeout) override;

  // Asks the replica at `endpoint` to answer `peer`'s receipt for a stream it serves.
  absl::StatusOr<federation::v1::ExchangeReceiptsResponse> ForwardReceipt(
      const std::string& endpoint, const std::string& peer,
      const federation::v1::ExchangeReceiptsRequest& request, absl::Duration timeout);

 private:
  absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelTo(const std::string& endpoint);

  const Options options_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mu_);
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_REPLICA_INTERNAL_SERVICE_H_
