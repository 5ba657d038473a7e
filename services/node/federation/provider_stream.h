// One Subscribe stream on the provider, independent of gRPC: from the validated request to the
// end of the stream. Open() resolves where the stream starts (inside the source reader, with the
// consumer that then reads); Run() sends the opening message, then batches cut from the source
// topic, each recorded in the audit log before it is sent (the batches ready at once — one per
// partition, typically — recorded together with one wait), and a heartbeat (the source's high
// watermarks) every `heartbeat_interval`, also while batches flow: the subscriber commits and
// acknowledges on each, which keeps a long catch-up's window moving.
//
// Flow control: at most the window of unacknowledged bytes is in flight (one batch always fits);
// while it is full the stream reads nothing more from the source and waits on a condition that
// an acknowledgement (Acknowledge(), from ExchangeReceipts) satisfies at once — heartbeats and
// re-checks go on while it waits. Every `recheck_interval` the contract and the peer's
// certificate are checked again (the contract folders as scanned within the last second, one
// scan shared by every stream); a failure ends the stream with PERMISSION_DENIED. A record that
// is not a Polder record ends it with DATA_LOSS; one whose schema version the contract does not
// allow with FAILED_PRECONDITION. The subscriber going away is CANCELLED.
//
// Thread-safe: Run() on the stream's thread; the accessors and Acknowledge() from any thread.
#ifndef POLDER_SERVICES_NODE_FEDERATION_PROVIDER_STREAM_H_
#define POLDER_SERVICES_NODE_FEDERATION_PROVIDER_STREAM_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/consumer.h"
#include "common/trust/contract.h"
#include "proto/polder/federation/v1/federation.pb.h"
#include "services/node/federation/audit_log.h"
#include "services/node/federation/contracts.h"
#include "services/node/federation/fan_out.h"
#include "services/node/federation/source_reader.h"

namespace polder {
namespace node {

struct SharedDataset {
  std::string id;
  std::string topic;
  int32_t partitions = 0;
  std::string epoch;
  std::string description, licence, owner_contact;
  // Set for an aggregate view of dataset `id` (ADR 0016): `topic` is the view's topic, and
  // streams need an aggregate-only contract naming the view and one of its definition hashes.
  std::string view;
  std::string definition_hash;
  std::string definition_json;
};

class ProviderStream {
 public:
  struct Options {
    std::string self;
    // The provider's limits; a request may ask for less, never more.
    int32_t max_batch_records = 1000;
    int64_t max_batch_bytes = 1 << 20;
    int64_t max_unacknowledged_bytes = 8 << 20;
    absl::Duration heartbeat_interval = absl::Seconds(5);
    absl::Duration recheck_interval = absl::Seconds(10);
    absl::Duration kafka_timeout = absl::Seconds(10);
    // How long one wait for source records or acknowledgements lasts: also how late a
    // cancelled stream is noticed.
    absl::Duration poll_wait = absl::Milliseconds(200);
    // The version of a schema id under the dataset's own subject (NOT_FOUND if the id is no
    // version of that subject: such records are not served); for view streams asked with
    // views::kAggregateCellSubject instead of the dataset id. Unset: not checked.
    std::function<absl::StatusOr<int64_t>(const std::string& dataset_id, int32_t schema_id)>
        schema_version;
    // The dataset's feed quality (ADR 0018 §6), sent in every heartbeat. Unset: none sent.
    std::function<std::optional<federation::v1::FeedQuality>(const std::string& dataset_id)>
        feed_quality;
    std::function<absl::Time()> clock;
  };

  // The stream's side of the transport (gRPC's writer and call context in FederationService).
  class Transport {
   public:
    virtual ~Transport() = default;
    // False: the subscriber went away.
    virtual bool Send(const federation::v1::SubscribeResponse& message) = 0;
    virtual bool Cancelled() = 0;
    // The peer's credentials, checked again now (expiry, revocation, directory).
    virtual absl::Status RecheckPeer() = 0;
  };

  struct Head {
    uint64_t sequence = 0;  // batches offered
    std::string hash;       // the chain's head hash
  };

  // Resolves the start (StreamStart from the request's cursor or start position and the
  // contract) and opens the stream's source there (live on the dataset's shared tail or
  // catching up, fan_out.h). `sources`, `contracts` and `audit` must outlive the stream.
  static absl::StatusOr<std::shared_ptr<ProviderStream>> Open(
      const Options& options, FanOut& sources, ContractBook* contracts, AuditLog* audit,
      std::string stream_id, std::string peer, const SharedDataset& dataset,
      trust::Contract contract, const federation::v1::SubscribeRequest& request);

  // Streams until the subscriber goes away or the stream must end; returns why.
  absl::Status Run(Transport& transport);

  const std::string& id() const { return stream_id_; }
  const std::string& peer() const { return peer_; }
  const std::string& dataset() const { return dataset_.id; }
  int64_t window() const { return window_; }

  // The subscriber's committed cursor (from its receipt): batches at or below it no longer
  // count against the window.
  void Acknowledge(const std::map<int32_t, int64_t>& committed);
  Head head() const;
  bool open() const;
  absl::Time ended_at() const;
  int64_t unacknowledged_bytes() const;
  // Whether a receipt of `sequence` advances the last one kept (a receipt that does not is
  // answered but not stored again, so a peer cannot grow the audit topic by repeating
  // exchanges), and recording that it was kept.
  bool ReceiptAdvances(uint64_t sequence) const;
  void ReceiptKept(uint64_t sequence);

  // Called (on the stream's thread) after each batch was recorded and before it is sent.
  void set_on_batch(std::function<void(int64_t records, int64_t bytes)> on_batch) {
    on_batch_ = std::move(on_batch);
  }

 private:
  ProviderStream(const Options& options, ContractBook* contracts, AuditLog* audit,
                 std::string stream_id, std::string peer, const SharedDataset& dataset,
                 trust::Contract contract, std::string contract_hash, std::string traceparent,
                 std::unique_ptr<StreamSource> source, std::map<int32_t, int64_t> start,
                 BatchLimits limits, int64_t window);

  absl::Time Now() const { return options_.clock ? options_.clock() : absl::Now(); }
  // Re-checks peer and contract when due; heartbeats when due.
  absl::Status Upkeep(Transport& transport);
  // Waits (up to poll_wait) until `bytes` more fit into the window; true if they do.
  bool WaitForWindow(int64_t bytes);
  // Whether `bytes` more fit into the window now.
  bool FitsWindow(int64_t bytes);
  // Batches ready at once (the tail's partitions) offered together, one audit wait for all:
  // at most this many, and together at most one batch's byte limit.
  static constexpr size_t kMaxBatchesOfferedTogether = 16;
  // The batch message, with the contract's schema-version check of every record.
  absl::StatusOr<federation::v1::SubscribeResponse> Encode(const SourceBatch& batch);
  void End();

  const Options options_;
  ContractBook* const contracts_;
  AuditLog* const audit_;
  const std::string stream_id_;
  const std::string peer_;
  const SharedDataset dataset_;
  const trust::Contract contract_;
  const std::string contract_hash_;
  const std::string traceparent_;
  // The stream it resumes and the cursor asked for (the first entry names them; ADR 0021 §4).
  federation::v1::SubscribeRequest resume_;
  // Run's thread only; released when the stream ends (the ended stream is kept a while for
  // receipts, its source is not).
  std::unique_ptr<StreamSource> source_;
  const BatchLimits limits_;
  const int64_t window_;
  std::function<void(int64_t, int64_t)> on_batch_;
  absl::Time next_check_;      // Run's thread only
  absl::Time next_heartbeat_;  // Run's thread only

  struct Sent {
    int32_t partition;
    int64_t next_offset;
    int64_t bytes;
  };
  mutable absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = true;
  absl::Time ended_at_ ABSL_GUARDED_BY(mu_);
  Head head_ ABSL_GUARDED_BY(mu_);
  std::map<int32_t, int64_t> acknowledged_ ABSL_GUARDED_BY(mu_);
  std::deque<Sent> unacknowledged_ ABSL_GUARDED_BY(mu_);
  int64_t unacknowledged_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t kept_receipt_ ABSL_GUARDED_BY(mu_) = 0;
  bool any_receipt_kept_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_PROVIDER_STREAM_H_
