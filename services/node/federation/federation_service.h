// polder.federation.v1.FederationService on the provider's node (ARCHITECTURE §8): the gRPC
// adapter of the federation's provider side. Every call's peer comes from the mutual-TLS identity
// checked against the directory (tls::CallPeer); the work returns absl::Status, turned into the
// call's gRPC status once (common/status/grpc_status.h).
//
// Subscribe: checks the protocol version, the dataset, the contract (ContractBook) and the peer's
// stream limit, then runs the stream as a ProviderStream (provider_stream.h: the start, batches
// recorded in the audit log before they are sent, flow control, re-checks, heartbeats) over the
// call's writer and context. A subscriber that stops reading costs the provider at most about
// one window, one batch and the source consumer's queue per stream.
//
// ExchangeReceipts: the subscriber hands over its signed chain head and its committed cursor;
// the provider checks the signature against the directory, keeps the receipt in its audit log,
// acknowledges the cursor to the stream (which reopens its window at once) and answers with its
// own signed head — from the stream in memory, from the audit index for a stream that ended
// (also before a restart), or countersigning a subscriber's gap entry it reported.
// GetAuditEntries: the provider's entries of a stream whose destination is the caller, read
// through the audit index, at most max_audit_reads_per_peer reads per peer at once.
#ifndef POLDER_SERVICES_NODE_FEDERATION_FEDERATION_SERVICE_H_
#define POLDER_SERVICES_NODE_FEDERATION_FEDERATION_SERVICE_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/consumer.h"
#include "common/tls/identity.h"
#include "proto/polder/federation/v1/federation.grpc.pb.h"
#include "services/node/federation/audit_log.h"
#include "services/node/federation/contracts.h"
#include "services/node/federation/fan_out.h"
#include "services/node/federation/peer_admission.h"
#include "services/node/federation/provider_stream.h"
#include "services/node/federation/receipts.h"

namespace polder {
namespace node {

class FederationService final : public federation::v1::FederationService::Service {
 public:
  struct Options {
    // What every stream runs with: this node's peer id (`stream.self`), the source consumer,
    // batch limits, the window, heartbeat and re-check intervals, the Kafka timeout, the
    // schema-version lookup and the clock.
    ProviderStream::Options stream;
    // How the streams read their sources: one shared tail per source topic, a bounded pool of
    // catch-up readers (ADR 0020 §4).
    FanOut::Options fan_out;
    std::map<std::string, SharedDataset> datasets;  // by id
    // Aggregate views of those datasets (ADR 0016), by (dataset id, view id).
    std::map<std::pair<std::string, std::string>, SharedDataset> views;
    int max_streams_per_peer = 8;
    // GetAuditEntries calls one peer may have in progress at once.
    int max_audit_reads_per_peer = 2;
    // The largest GetAuditEntries answer, in bytes of entries (within the listener's largest
    // message); a longer stream is answered in pages.
    int64_t max_response_bytes = 4 << 20;
    // Where those limits are counted (across the node's replicas); null: in this process.
    PeerAdmission* admission = nullptr;
    // How long an ended stream's chain head is kept for a last ExchangeReceipts.
    absl::Duration keep_ended_streams = absl::Hours(1);
    std::shared_ptr<const tls::IdentityChecker> checker;  // re-checks peers during streams
    // Replicas (ADR 0021 §4): this replica's id, named in every stream id it makes
    // ("stream-<replica>-<hex>"; "" for "stream-<hex>"), and how to hand a receipt for a stream
    // another replica serves to that replica (unset: answered from the audit index). The
    // forwarder answers NOT_FOUND when the replica has no live copy of the stream.
    std::string replica;
    std::function<absl::StatusOr<federation::v1::ExchangeReceiptsResponse>(
        const std::string& replica, const std::string& peer,
        const federation::v1::ExchangeReceiptsRequest& request)>
        forward_receipt;
  };

  // Per peer and dataset, since start.
  struct PeerStats {
    int64_t records = 0, bytes = 0, batches = 0;
    int64_t streams_open = 0;
    int64_t unacknowledged_bytes = 0;  // now, over the peer's open streams of the dataset
  };
  struct Stats {
    std::map<std::pair<std::string, std::string>, PeerStats> peers;  // (peer, dataset)
    // Streams and calls that ended with an error, by (peer, gRPC code name): refusals, ended
    // streams (PERMISSION_DENIED after a re-check), subscribers that went away (CANCELLED).
    std::map<std::pair<std::string, std::string>, int64_t> ended;
    int64_t receipts = 0;
  };

  // Source consumers come from `kafka`, which must outlive the service.
  FederationService(Options options, kafka::ClientFactory& kafka, ContractBook* contracts,
                    AuditLog* audit, const ReceiptSigner* signer)
      : options_(std::move(options)),
        fan_out_(options_.fan_out, kafka),
        contracts_(contracts),
        audit_(audit),
        signer_(signer) {}

  Stats stats() const;
  FanOut::Stats fan_out_stats() const { return fan_out_.stats(); }

  grpc::Status ListDatasets(grpc::ServerContext* context,
                            const federation::v1::ListDatasetsRequest* request,
                            federation::v1::ListDatasetsResponse* response) override;
  grpc::Status Subscribe(grpc::ServerContext* context,
                         const federation::v1::SubscribeRequest* request,
                         grpc::ServerWriter<federation::v1::SubscribeResponse>* writer) override;
  grpc::Status ExchangeReceipts(grpc::ServerContext* context,
                                const federation::v1::ExchangeReceiptsRequest* request,
                                federation::v1::ExchangeReceiptsResponse* response) override;
  grpc::Status GetAuditEntries(grpc::ServerContext* context,
                               const federation::v1::GetAuditEntriesRequest* request,
                               federation::v1::GetAuditEntriesResponse* response) override;

  // A receipt another replica received for a stream this replica serves live: answered as
  // ExchangeReceipts would (the stream's window is released). NOT_FOUND when the stream is not
  // live here.
  absl::StatusOr<federation::v1::ExchangeReceiptsResponse> ExchangeForwarded(
      const std::string& peer, const federation::v1::ExchangeReceiptsRequest& request);
  // The replica named in a stream id ("" for a stream id without one).
  static std::string ReplicaOfStream(const std::string& stream_id);
  // Receipts answered for other replicas' streams by forwarding, since start.
  int64_t receipts_forwarded() const;

 private:
  // Counts an ended call by code, and remembers a gap reported to the peer (OUT_OF_RANGE or
  // DATA_LOSS) for NotariseGap. Returns `status`.
  absl::Status Refuse(const std::string& peer, const std::string& dataset, absl::Status status);
  // ExchangeReceipts for a stream no longer held in memory (ended long ago, or before a
  // restart): answered from the audit index. And for a subscriber's gap entry: notarised.
  absl::StatusOr<audit::Receipt> ExchangeLive(
      const std::string& peer, ProviderStream& stream, const audit::Receipt& theirs,
      const federation::v1::ExchangeReceiptsRequest& request);
  absl::StatusOr<audit::Receipt> ExchangeEnded(const std::string& peer,
                                               const audit::Receipt& theirs);
  absl::StatusOr<audit::Receipt> NotariseGap(const std::string& peer, const audit::Receipt& theirs);
  absl::Status SubscribeAs(grpc::ServerContext* context, const std::string& peer,
                           const federation::v1::SubscribeRequest& request,
                           grpc::ServerWriter<federation::v1::SubscribeResponse>* writer);
  absl::StatusOr<std::vector<audit::AuditLink>> ReadAudit(
      const std::string& peer, const federation::v1::GetAuditEntriesRequest& request);
  // A slot of `kind` for `peer` (options_.admission, or this process's count).
  absl::StatusOr<std::unique_ptr<PeerSlot>> Admit(const std::string& peer, const std::string& kind,
                                                  int limit);
  absl::Time Now() const { return options_.stream.clock ? options_.stream.clock() : absl::Now(); }

  const Options options_;
  // Declared before the streams: they read through it.
  FanOut fan_out_;
  ContractBook* contracts_;
  AuditLog* audit_;
  const ReceiptSigner* signer_;
  mutable absl::Mutex mu_;
  LocalAdmission local_admission_;  // when options_.admission is null
  // Open streams, and ended ones for keep_ended_streams (their heads answer late receipts).
  std::map<std::string, std::shared_ptr<ProviderStream>> streams_ ABSL_GUARDED_BY(mu_);
  // Gaps this node reported (Subscribe refused with OUT_OF_RANGE or DATA_LOSS) per (peer,
  // dataset), not yet notarised: a subscriber's gap entry is countersigned only after one, at
  // most one per report, so a peer cannot grow the audit topic with receipts of its own making.
  std::map<std::pair<std::string, std::string>, absl::Time> gaps_reported_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  int64_t receipts_forwarded_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_FEDERATION_SERVICE_H_
