// The subscriber side of mirroring, exactly once (ARCHITECTURE §8): received batches go to the
// mirror topic (same name, same partition) together with their audit entries (`_polder.audit`)
// and the subscription's new cursor (`_polder.cursors`, compacted, keyed by subscription) in one
// Kafka transaction (WriteAll: a group of batches; Write: one), with the audit index's records
// of the stream (`_polder.audit-index`, compacted). After a crash the writer resumes from the last
// committed cursor and audit chain head, so every source record is in the mirror exactly once.
//
// One transactional id per subscription (polder-mirror-<subscription>): a second instance
// fences the first, which then refuses every write (FAILED_PRECONDITION) instead of
// re-initialising — two instances never take turns.
#ifndef POLDER_SERVICES_NODE_FEDERATION_MIRROR_WRITER_H_
#define POLDER_SERVICES_NODE_FEDERATION_MIRROR_WRITER_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/audit/audit_chain.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/consumer.h"
#include "common/kafka/producer.h"
#include "common/kafka/state_writer.h"
#include "proto/polder/federation/v1/federation.pb.h"

namespace polder {
namespace node {

// Where a subscription stands, as committed with the mirrored records.
struct MirrorCursor {
  std::string epoch;
  std::map<int32_t, int64_t> next_offsets;
  std::string stream_id;  // the audit chain this subscription writes
  uint64_t audit_sequence = 0;
  std::string audit_hash;
};

// One received batch as it arrived (source partition, records in order with their source
// offsets, the partition's next source offset after them) and its audit entry.
struct MirrorBatch {
  federation::v1::RecordBatch batch;
  audit::AuditEntry entry;
};

class MirrorWriter {
 public:
  struct Options {
    kafka::ProducerOptions producer;  // transactional_id: polder-mirror-<subscription>
    kafka::ConsumerOptions consumer;
    std::string subscription;
    std::string mirror_topic;
    std::string cursors_topic = "_polder.cursors";
    std::string audit_topic = "_polder.audit";
    // The audit index (ADR 0011 §8): a received stream's record and checkpoints, and the end of
    // the stream before it, are written in the same transactions as its entries. Empty: none.
    std::string audit_index_topic = "_polder.audit-index";
    absl::Duration timeout = absl::Seconds(30);
    // Called in every write after the transaction's records reached the broker and before it
    // commits, with this writer's count of writes (1, 2, ...): a crash point for tests (the
    // test-hooks build of polder-node kills itself there). Empty in production.
    std::function<void(int64_t write)> before_commit;
  };

  // InitTransactions (fencing an older instance and resolving its open transaction), then the
  // last committed cursor of the subscription.
  // Clients come from `kafka`, which must outlive the writer.
  static absl::StatusOr<std::unique_ptr<MirrorWriter>> Start(Options options,
                                                             kafka::ClientFactory& kafka);

  const MirrorCursor& cursor() const { return cursor_; }
  // The stream of the last committed batch ("" before any): what the next stream resumes (a
  // stream that opened and committed nothing is not one).
  std::string resumable_stream() const {
    return cursor_.audit_sequence > 0 ? cursor_.stream_id : resumable_;
  }

  // After a failed write: resolves the open transaction (InitTransactions) and re-reads the
  // committed cursor. Call before subscribing again, so the next stream starts from what was
  // committed — never from a cursor the failed write may or may not have moved. OK if nothing
  // needs recovering.
  absl::Status EnsureRecovered();

  // Starts (or continues) the audit chain of `stream_id` for the next writes.
  void BeginStream(const std::string& stream_id, const std::string& epoch);

  // Commits `records` (source records of `partition`, in order) to the mirror with the cursor moved
  // to `next_offset` and `entry` appended to the audit chain — all or nothing. UNAVAILABLE when the
  // transaction failed or its outcome is unknown: the stream must end, EnsureRecovered() runs, and
  // a new stream starts from the committed cursor. FAILED_PRECONDITION when fenced. Records below
  // the cursor (already committed) are never written again.
  absl::Status Write(int32_t partition, const std::vector<kafka::ConsumedRecord>& records,
                     int64_t next_offset, audit::AuditEntry entry);
  // Several batches (any partitions, in stream order) in one transaction — group commit: each
  // batch's records and audit entry, and the cursor after the last. All or nothing.
  absl::Status WriteAll(std::vector<MirrorBatch>& batches);

  bool fenced() const { return state_.fenced(); }
  bool needs_recovery() const { return state_.needs_recovery(); }
  // When the next write may start its transaction (WriteAll waits until then).
  absl::Time next_write_at() const { return state_.next_transaction_at(); }

 private:
  MirrorWriter(Options options, kafka::ClientFactory& kafka)
      : options_(std::move(options)), kafka_(kafka), state_(kafka, StateOptions(options_)) {}
  static kafka::StateWriter::Options StateOptions(const Options& options);
  // The producer afresh and the cursor read on from where the last recovery stopped.
  absl::Status Recover();

  const Options options_;
  kafka::ClientFactory& kafka_;
  kafka::StateWriter state_;  // the producer and the cursors topic's read position
  MirrorCursor cursor_;
  // A lower bound of the audit topic's next offset (its end at recovery, then past every entry
  // this writer committed): the offset the index records of a transaction name.
  int64_t audit_low_ = 0;
  // The stream a new stream replaced, whose end is recorded with the next write.
  std::optional<std::pair<std::string, std::pair<uint64_t, std::string>>> ended_;
  std::string resumable_;  // the last stream that committed a batch, once another began
  int64_t writes_ = 0;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_MIRROR_WRITER_H_
