// The subscriber side of a subscription: connects to the provider's FederationService over
// mutual TLS, subscribes from the mirror's committed cursor, writes every batch through the
// MirrorWriter (records + cursor + audit entry in one transaction), and on a broken stream
// reconnects with exponential backoff, resuming from what was committed. Refusals that retrying
// will not cure (no valid contract, a gap, a partition mismatch) are reported in state() and
// retried slowly; a fenced writer ends the subscription. A gap (OUT_OF_RANGE / DATA_LOSS: the
// provider no longer has what the cursor points at) is recorded once in the audit log and the
// metrics, and the subscription stays refused until an operator resolves it — never skipped.
//
// Receipts and flow control: after every quarter window of bytes committed (and at least every
// `receipt_interval` while batches arrive, and on heartbeats while anything is unacknowledged)
// the subscriber hands the provider its signed chain head and committed cursor
// (ExchangeReceipts), and keeps the provider's signed head, checked against the directory, in
// its own audit log. Exchanges run on their own thread, off the write path: the writer posts
// each committed cursor and goes on committing; the newest posted cursor is exchanged next.
// Group commit: everything queued while a transaction commits goes into the next one, up to 64
// batches or a quarter of the window, so acknowledgements flow while the next one commits.
#ifndef POLDER_SERVICES_NODE_FEDERATION_SUBSCRIBER_H_
#define POLDER_SERVICES_NODE_FEDERATION_SUBSCRIBER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/client_factory.h"
#include "common/trust/contract.h"
#include "grpcpp/grpcpp.h"
#include "proto/polder/federation/v1/federation.grpc.pb.h"
#include "services/node/federation/audit_log.h"
#include "services/node/federation/mirror_writer.h"
#include "services/node/federation/receipts.h"

namespace polder {
namespace node {

class Subscriber {
 public:
  struct Options {
    std::string self;      // this (consuming) peer
    std::string provider;  // the providing peer
    std::string dataset;
    std::string contract_id;
    // The contract's hash and purpose for audit entries; if `contract` is set, they are looked up
    // again at every stream start (the contract file may arrive or change after start-up).
    std::string contract_hash;
    std::string purpose;
    std::function<std::optional<trust::Contract>()> contract;
    int32_t mirror_partitions = 0;  // the mirror topic's partition count (must equal the source's)
    // A channel to the provider over mutual TLS, made afresh for every stream. An error (the
    // certificate, key or bundle cannot be read) leaves the subscription undialled in state
    // "no-credentials" with the reason, retried with backoff, so repaired files are picked up.
    // Never a plaintext channel: there is no fallback.
    std::function<absl::StatusOr<std::shared_ptr<grpc::Channel>>()> channel;
    MirrorWriter::Options writer;
    // Called once per schema id seen in mirrored records (the node caches the schema, so its
    // schema endpoint decodes mirrors too).
    std::function<void(int32_t schema_id)> on_schema;
    absl::Duration min_backoff = absl::Milliseconds(500);
    absl::Duration max_backoff = absl::Seconds(30);
    // Receipts: this node's signer and audit log (both required for receipts and gap entries).
    const ReceiptSigner* signer = nullptr;
    AuditLog* audit = nullptr;
    absl::Duration receipt_interval = absl::Seconds(10);
    // Revocation: when the provider ends the stream with PERMISSION_DENIED and `revoked()` says
    // the contract was revoked, `purge()` (if set: the subscription's purge_on_revocation)
    // deletes the mirror's records, once.
    std::function<bool()> revoked;
    std::function<absl::Status()> purge;
    // Where to start without a committed cursor (earliest, latest, RFC 3339; empty: the
    // contract's start position).
    std::string start_position;
    // Asked of the provider (which caps it).
    int64_t max_unacknowledged_bytes = 8 << 20;
  };

  struct State {
    std::string status =
        "starting";  // streaming, reconnecting, refused, no-credentials, fenced, stopped
    std::string last_error;
    int64_t records = 0;  // mirrored by this process
    int64_t bytes = 0;    // their keys, values and headers
    int64_t batches = 0;
    int64_t reconnects = 0;
    std::map<int32_t, int64_t> lag;  // provider high watermark − cursor, per partition
    double lag_seconds = 0;          // age of the newest mirrored record while lag > 0
    int64_t gaps = 0;                // gaps reported by the provider (recorded in audit)
    int64_t receipts = 0;            // provider receipts received, checked and kept
    int64_t receipt_failures = 0;
    bool purged = false;  // the mirror was purged after a revocation
  };

  // The mirror writer's clients come from `kafka`, which must outlive the subscriber.
  Subscriber(Options options, kafka::ClientFactory& kafka)
      : options_(std::move(options)), kafka_(kafka) {}
  ~Subscriber() { Stop(); }

  void Start();
  void Stop();
  State state() const;

 private:
  void Run();
  // One stream: returns why it ended.
  grpc::Status StreamOnce(MirrorWriter& writer);
  void Set(const std::string& status, const std::string& error = "");
  // One ExchangeReceipts for the committed `cursor`, on `ctx`; false (logged) if it failed.
  bool Exchange(federation::v1::FederationService::Stub& stub, const MirrorCursor& cursor,
                grpc::ClientContext& ctx);
  void RecordGap(const grpc::Status& s);
  // Before a new stream: receipts for what earlier ones left unreceipted — the committed head
  // of the last stream (its tail after the last exchange: the stream broke, or this node
  // restarted) and a gap entry not yet notarised by the provider. Best effort (logged).
  void CatchUpReceipts(federation::v1::FederationService::Stub& stub,
                       const MirrorCursor& committed);

  const Options options_;
  kafka::ClientFactory& kafka_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::set<int32_t> schemas_seen_;               // stream thread only
  std::string last_gap_;                         // stream thread only
  std::optional<MirrorCursor> unreceipted_gap_;  // stream thread only: a gap chain's head
  // The last (stream, sequence) the provider receipted.
  std::pair<std::string, uint64_t> receipted_ ABSL_GUARDED_BY(mu_);
  std::string contract_hash_, purpose_;  // stream thread only: for audit entries
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_SUBSCRIBER_H_
