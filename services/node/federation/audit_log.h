// The provider's audit log: every batch offered is recorded in `_polder.audit` (acks=all,
// idempotent) *before* it is sent; a batch whose entry could not be recorded is not sent
// (ARCHITECTURE §8). Entries of a stream can be read back for GetAuditEntries.
//
// Reading back goes through the audit index (ADR 0011): one background reader tails the topic
// (both directions: the subscriber's entries, written in its mirror transactions, and the
// provider's) and keeps, per stream, who its parties are, where its first entry lies and a
// checkpoint every 64 entries. A read checks the stream's parties first, then seeks to the
// checkpoint at or before the asked sequence, through a consumer with a small prefetch. A
// stream the index has not seen yet is looked for once the index has caught up with the topic
// (a lagging index never hides an entry).
#ifndef POLDER_SERVICES_NODE_FEDERATION_AUDIT_LOG_H_
#define POLDER_SERVICES_NODE_FEDERATION_AUDIT_LOG_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/audit/audit_chain.h"
#include "common/kafka/consumer.h"
#include "common/kafka/producer.h"

namespace polder {
namespace node {

class AuditLog {
 public:
  static absl::StatusOr<std::unique_ptr<AuditLog>> Create(kafka::ProducerOptions producer,
                                                          kafka::ConsumerOptions consumer, std::string topic);

  // Appends `entry` to `chain` and writes the link; returns it once the broker acknowledged it.
  // On any error the chain does not advance and the caller must not send the batch.
  absl::StatusOr<audit::AuditLink> Record(audit::AuditChain& chain, const audit::AuditEntry& entry);

  // Keeps a peer's receipt (already verified) beside the chain it vouches for.
  absl::Status StoreReceipt(const audit::Receipt& receipt);

  // The stored links of `stream_id` with sequence ≥ `from`, at most `max`. With `reader` set,
  // PERMISSION_DENIED unless the stream's entries name `reader` as their destination (checked
  // on the index, before anything is read); NOT_FOUND for a stream the topic does not hold.
  absl::StatusOr<std::vector<audit::AuditLink>> Read(const std::string& stream_id, uint64_t from, int max,
                                                     absl::Duration timeout, const std::string& reader = "");

  ~AuditLog();

 private:
  struct StreamIndex {
    std::string source, destination;
    uint64_t last_sequence = 0;
    std::vector<std::pair<uint64_t, int64_t>> checkpoints;  // (sequence, topic offset), ascending
  };
  AuditLog(std::unique_ptr<kafka::IdempotentProducer> producer, kafka::ConsumerOptions consumer, std::string topic);
  void IndexLoop();
  // The offset to read `stream_id` from for sequence `from`; waits (up to `deadline`) for the
  // index to catch up with the topic if the stream is not indexed yet.
  absl::StatusOr<int64_t> Locate(const std::string& stream_id, uint64_t from, const std::string& reader,
                                 absl::Time deadline);

  std::unique_ptr<kafka::IdempotentProducer> producer_;
  const kafka::ConsumerOptions consumer_;
  const std::string topic_;

  mutable absl::Mutex mu_;
  std::map<std::string, StreamIndex> index_ ABSL_GUARDED_BY(mu_);
  int64_t indexed_to_ ABSL_GUARDED_BY(mu_) = 0;  // the next topic offset the index reads
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread indexer_;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_AUDIT_LOG_H_
