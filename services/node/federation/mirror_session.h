// The subscriber's mirroring of one subscription, independent of gRPC: each StreamOnce()
// subscribes from the mirror's committed cursor and writes every batch through the MirrorWriter
// (records + cursor + audit entry in one transaction) until the stream ends, and returns why.
//
// Group commit: a reader thread queues the stream's messages while the writer commits, so
// everything that arrived during one transaction goes into the next one, up to 64 batches or a
// quarter of the window — acknowledgements flow while the next one commits. A provider that
// ignores flow control (sends more than about two windows beyond what was acknowledged) ends
// its stream with RESOURCE_EXHAUSTED.
//
// Receipts: after every quarter window of bytes committed (and at least every
// `receipt_interval` while batches arrive, and on heartbeats while anything is unacknowledged)
// the subscriber hands the provider its signed chain head and committed cursor, and keeps the
// provider's signed head, checked against the directory, in its own audit log. Exchanges run on
// their own thread, off the write path; the newest committed cursor is exchanged next. Before a
// stream, what earlier ones left unreceipted (the last stream's tail, a gap entry not yet
// notarised) is exchanged first.
//
// Gaps: the provider no longer has what the cursor points at (OUT_OF_RANGE / DATA_LOSS):
// RecordGap() writes it once to the audit log in a one-entry chain, which the provider
// countersigns before the next stream.
#ifndef POLDER_SERVICES_NODE_FEDERATION_MIRROR_SESSION_H_
#define POLDER_SERVICES_NODE_FEDERATION_MIRROR_SESSION_H_

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/trust/contract.h"
#include "proto/polder/federation/v1/federation.pb.h"
#include "services/node/federation/audit_log.h"
#include "services/node/federation/mirror_writer.h"
#include "services/node/federation/receipts.h"

namespace polder {
namespace node {

enum class SubscriptionStatus {
  kStarting,
  kStreaming,
  kReconnecting,
  kRefused,        // the provider refused (contract, gap, partitions): retried slowly
  kNoCredentials,  // this node's certificate, key or bundle cannot be used: not dialled
  kFenced,         // another replica took this subscription over: stopped until given it again
  kStopped,
  kElsewhere,  // another replica of this node holds the subscription (ADR 0021 §3)
};
// "starting", "streaming", "reconnecting", "refused", "no-credentials", "fenced", "stopped",
// "elsewhere":
// the names /statusz and the metrics show.
absl::string_view SubscriptionStatusName(SubscriptionStatus status);

// A subscription's counters since this process started.
struct SubscriptionCounters {
  SubscriptionStatus status = SubscriptionStatus::kStarting;
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
  // The provider's feed quality of the dataset, from its latest heartbeat (ADR 0018 §6).
  std::optional<federation::v1::FeedQuality> feed_quality;
};

// The subscription's state, shared between its stream thread and readers (metrics, /statusz).
class SubscriptionState {
 public:
  SubscriptionCounters snapshot() const;
  // `error` "" keeps the last error.
  void Set(SubscriptionStatus status, absl::string_view error = "");
  void Reconnecting();  // counts a reconnect
  void Gap();
  void Purged();
  void ReceiptFailed();
  // A receipt of the provider for `stream_id` up to `sequence` was checked and kept.
  void ReceiptKept(const std::string& stream_id, uint64_t sequence);
  // Whether the provider has receipted `stream_id` up to `sequence` already.
  bool Receipted(const std::string& stream_id, uint64_t sequence) const;
  // A group of batches committed (with `bytes` record bytes); `high` are the provider's high
  // watermarks from its heartbeats.
  void Committed(const std::vector<MirrorBatch>& batches, int64_t bytes,
                 const std::map<int32_t, int64_t>& high);
  // A heartbeat: the lag of every partition against the committed cursor.
  void Heartbeat(const std::map<int32_t, int64_t>& high, const MirrorCursor& cursor);
  void FeedQuality(const federation::v1::FeedQuality& quality);

 private:
  mutable absl::Mutex mu_;
  SubscriptionCounters counters_ ABSL_GUARDED_BY(mu_);
  int64_t newest_ms_ ABSL_GUARDED_BY(mu_) = 0;  // the newest mirrored record's timestamp
  // The last (stream, sequence) the provider receipted.
  std::pair<std::string, uint64_t> receipted_ ABSL_GUARDED_BY(mu_);
};

// Lets one thread cancel a call another thread makes: the caller arms it with how to cancel
// its call for the call's duration; Cancel() runs that (or makes the next Arm fail).
class CancelSlot {
 public:
  // False if Cancel() came first: do not make the call.
  bool Arm(std::function<void()> cancel);
  void Disarm();
  void Cancel();

 private:
  absl::Mutex mu_;
  std::function<void()> cancel_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// The subscriber's connection to its provider for one stream (gRPC's stub in the Subscriber).
class ProviderConnection {
 public:
  virtual ~ProviderConnection() = default;
  // Starts the Subscribe stream.
  virtual void Subscribe(const federation::v1::SubscribeRequest& request) = 0;
  // The stream's next message; false once it ended (FinishStream() tells why).
  virtual bool Read(federation::v1::SubscribeResponse* message) = 0;
  virtual void CancelStream() = 0;
  virtual absl::Status FinishStream() = 0;
  // One ExchangeReceipts call, thread-safe. With `cancel`, the call arms it for its duration
  // (and is not made, CANCELLED, if it was cancelled already).
  virtual absl::StatusOr<federation::v1::ExchangeReceiptsResponse> ExchangeReceipts(
      const federation::v1::ExchangeReceiptsRequest& request, CancelSlot* cancel = nullptr) = 0;
};

class MirrorSession {
 public:
  struct Options {
    std::string self;      // this (consuming) peer
    std::string provider;  // the providing peer
    std::string dataset;
    std::string view;  // an aggregate view of `dataset` (ADR 0016); empty: the dataset
    std::string contract_id;
    // The contract's hash and purpose for audit entries; if `contract` is set, they are looked
    // up again at every stream start (the contract file may arrive or change after start-up).
    std::string contract_hash;
    std::string purpose;
    std::function<std::optional<trust::Contract>()> contract;
    int32_t mirror_partitions = 0;  // the mirror topic's (must equal the source's)
    // Where to start without a committed cursor (earliest, latest, RFC 3339; empty: the
    // contract's start position).
    std::string start_position;
    int64_t max_unacknowledged_bytes = 8 << 20;  // asked of the provider (which caps it)
    absl::Duration receipt_interval = absl::Seconds(10);
    // This node's signer and audit log (both required for receipts and gap entries).
    const ReceiptSigner* signer = nullptr;
    AuditLog* audit = nullptr;
    // Called once per schema id seen in mirrored records.
    std::function<void(int32_t schema_id)> on_schema;
    std::function<absl::Time()> clock;
  };

  // `state` must outlive the session; `stop` ends a stream early (with CANCELLED).
  MirrorSession(Options options, SubscriptionState* state, const std::atomic<bool>* stop)
      : options_(std::move(options)), state_(state), stop_(stop) {}

  // One stream from the writer's committed cursor, until it ends. UNAVAILABLE when the writer
  // could not commit (the next stream starts from what was committed), FAILED_PRECONDITION when
  // it is fenced or the partition counts differ, INVALID_ARGUMENT or RESOURCE_EXHAUSTED for a
  // provider that breaks the protocol, otherwise how the provider ended the stream.
  absl::Status StreamOnce(MirrorWriter& writer, ProviderConnection& provider);

  // Records a gap the provider reported (once per distinct report) in the audit log.
  void RecordGap(const absl::Status& reported);

  // One receipt exchange for the committed `cursor`: signs this node's head, exchanges it,
  // checks the provider's against the directory and keeps it in the audit log. False (logged
  // and counted) if any step failed.
  bool ExchangeReceipt(ProviderConnection& provider, const MirrorCursor& cursor,
                       CancelSlot* cancel = nullptr);

 private:
  absl::Time Now() const { return options_.clock ? options_.clock() : absl::Now(); }
  void CatchUpReceipts(ProviderConnection& provider, const MirrorCursor& committed);
  // The Subscribe for `cursor`; `previous_stream`: the stream of its last committed batch.
  federation::v1::SubscribeRequest Request(const MirrorCursor& cursor,
                                           const std::string& previous_stream) const;

  const Options options_;
  SubscriptionState* const state_;
  const std::atomic<bool>* const stop_;
  // Stream thread only:
  std::set<int32_t> schemas_seen_;
  std::string last_gap_;
  std::optional<MirrorCursor> unreceipted_gap_;  // a gap chain's head
  std::string contract_hash_, purpose_;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_MIRROR_SESSION_H_
