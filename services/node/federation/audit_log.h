// The node's audit log (ARCHITECTURE §8): every batch offered is recorded in `_polder.audit`
// (acks=all, idempotent) *before* it is sent; a batch whose entry could not be recorded is not
// sent. Entries of a stream are read back for GetAuditEntries, and a stream's head for
// ExchangeReceipts after the stream ended.
//
// Reading back goes through the audit index (ADR 0011 §8, common/audit/audit_index.h). Its
// persisted form is a compacted topic: this log writes a stream's record after its first
// acknowledged entry and a checkpoint every 64 entries, the mirror writer writes the same records
// for received streams in its transactions, and EndStream() records a stream's head when it
// ends. In memory, one background reader loads that topic and then tails the audit topic from
// the last `through` mark, so a restart reads only what was appended since; it writes the
// index records it found and a new mark every few seconds (so a lost index write is repaired).
// A read checks the stream's parties first, then seeks to the checkpoint at or before the asked
// sequence, through a consumer with a small prefetch. A stream the index has not seen yet is
// looked for once the index has caught up with the topic (a lagging index never hides an entry).
#ifndef POLDER_SERVICES_NODE_FEDERATION_AUDIT_LOG_H_
#define POLDER_SERVICES_NODE_FEDERATION_AUDIT_LOG_H_

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/audit/audit_chain.h"
#include "common/audit/audit_index.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/consumer.h"
#include "common/kafka/producer.h"

namespace polder {
namespace node {

class AuditLog {
 public:
  struct Options {
    std::string topic = "_polder.audit";
    // The persisted index; empty: the index lives in memory only and a start reads the audit
    // topic from its beginning.
    std::string index_topic = "_polder.audit-index";
    // How often the index reader writes what it indexed and a new `through` mark.
    absl::Duration mark_interval = absl::Seconds(5);
  };

  // Clients come from `kafka`, which must outlive the log.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Create(kafka::ClientFactory& kafka,
                                                          kafka::ProducerOptions producer,
                                                          kafka::ConsumerOptions consumer,
                                                          Options options);

  // Appends `entry` to `chain` and writes the link; returns it once the broker acknowledged it.
  // On any error the chain does not advance and the caller must not send the batch. The index
  // record the link needs (the stream's first entry, a checkpoint) follows without waiting.
  absl::StatusOr<audit::AuditLink> Record(audit::AuditChain& chain, const audit::AuditEntry& entry);
  // Record for several entries in order, written together with one wait for all their
  // acknowledgements (a stream offering several batches at once). On any error the chain does
  // not advance and none of the batches may be sent.
  absl::StatusOr<std::vector<audit::AuditLink>> RecordAll(
      audit::AuditChain& chain, const std::vector<audit::AuditEntry>& entries);

  // Records that `chain`'s stream ended at its current head (best effort: the index reader
  // finds the head by reading if this record is lost).
  void EndStream(const audit::AuditChain& chain);

  // Keeps a peer's receipt (already verified) beside the chain it vouches for.
  absl::Status StoreReceipt(const audit::Receipt& receipt);

  // The stored links of `stream_id` with sequence ≥ `from`, at most `max`. With `reader` set,
  // PERMISSION_DENIED unless the stream's entries name `reader` as their destination (checked
  // on the index, before anything is read); NOT_FOUND for a stream the topic does not hold.
  absl::StatusOr<std::vector<audit::AuditLink>> Read(const std::string& stream_id, uint64_t from,
                                                     int max, absl::Duration timeout,
                                                     const std::string& reader = "");

  // A stream as the index knows it, with its head as stored (every entry the topic held when
  // asked is counted). PERMISSION_DENIED unless `reader` is its destination (when set);
  // NOT_FOUND for a stream the topic does not hold.
  struct StreamHead {
    std::string source, destination, direction;
    uint64_t sequence = 0;
    std::string hash;
    std::map<std::string, uint64_t> receipted;  // peer → highest sequence of its stored receipts
  };
  absl::StatusOr<StreamHead> Head(const std::string& stream_id, absl::Duration timeout,
                                  const std::string& reader = "");

  // Whether this replica writes the `through` marks (the audit-index role, ADR 0021 §3). Every
  // replica tails the audit topic and writes the index records it found that nobody had
  // written (each is valid on its own; the compacted topic keeps one per key); only the holder
  // of the role writes marks, so readers start from one writer's marks. Default: true.
  void SetMarkWriter(bool writer) { mark_writer_ = writer; }

  // What the index reader has done (for tests and /statusz).
  struct IndexStats {
    bool loaded = false;
    int64_t loaded_from = 0;     // the audit-topic offset tailing started from (the last mark)
    int64_t indexed_to = 0;      // the next audit-topic offset to index
    int64_t records_tailed = 0;  // audit-topic records read by the tailer since start
    int64_t index_records_loaded = 0;
    int64_t index_records_written = 0;
    int64_t marks_written = 0;
    int64_t unreadable = 0;  // index records that did not decode (skipped, counted)
    int64_t streams = 0;
  };
  IndexStats index_stats() const;

  ~AuditLog();

 private:
  struct Checkpoint {
    uint64_t sequence = 0;
    int64_t offset = 0;
    std::string hash;
  };
  struct StreamIndex {
    std::string source, destination, direction;
    int64_t first_offset = -1;  // where its first entry lies (or a lower bound); -1: not known
    uint64_t last_sequence = 0;
    std::string last_hash;
    bool head_exact = false;              // last_* counts every entry below indexed_to_
    std::vector<Checkpoint> checkpoints;  // ascending, every 64th link
    std::map<std::string, uint64_t> receipted;
  };
  AuditLog(kafka::ClientFactory& kafka, std::unique_ptr<kafka::Producer> producer,
           kafka::ConsumerOptions consumer, Options options);
  void IndexLoop();
  absl::Status LoadIndex() ABSL_LOCKS_EXCLUDED(mu_);
  void Apply(const audit::IndexRecord& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Tail(const kafka::ConsumedRecord& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteMark() ABSL_LOCKS_EXCLUDED(mu_);
  void WriteIndex(const audit::IndexRecord& r, bool remember);
  // The index entry of `stream_id` once the index has caught up with the topic if needed;
  // copies what the caller needs under the lock.
  absl::StatusOr<StreamIndex> Find(const std::string& stream_id, const std::string& reader,
                                   absl::Time deadline);

  kafka::ClientFactory& kafka_;
  std::unique_ptr<kafka::Producer> producer_;
  const kafka::ConsumerOptions consumer_;
  const Options options_;

  mutable absl::Mutex mu_;
  std::map<std::string, StreamIndex> index_ ABSL_GUARDED_BY(mu_);
  int64_t indexed_to_ ABSL_GUARDED_BY(mu_) = 0;  // the next topic offset the index reads
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  int64_t last_mark_ ABSL_GUARDED_BY(mu_) = 0;  // the last `through` loaded or written
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  IndexStats stats_ ABSL_GUARDED_BY(mu_);
  // Index records found by tailing since the last mark, to be written with it; keys written
  // (and acknowledged) by Record/EndStream meanwhile are left out.
  std::map<std::string, audit::IndexRecord> unmarked_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> written_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> mark_writer_{true};
  std::thread indexer_;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_AUDIT_LOG_H_
