// The audit index (ADR 0011 §8): a compacted Kafka topic beside `_polder.audit` (by default
// `_polder.audit-index`) that lets every reader of audit entries by stream find them without
// scanning the audit topic — GetAuditEntries and ExchangeReceipts for streams that ended now;
// any node replica and the subscriber's cursor recovery later.
//
// Records (key → JSON value), each key written with one meaning only, so two writers of the same
// key (the entry's writer and the node's index tailer) never contradict each other:
//   stream/<id>            {"source","destination","direction","offset"}
//                          where its first entry lies
//   checkpoint/<id>/<seq>  {"offset","hash"}     where link <seq> (a multiple of 64) lies
//   end/<id>               {"sequence","hash"}   the head of a stream that ended
//   through                {"offset"}            every entry below it is indexed
// Offsets are exact (provider: written after the acknowledged entry) or a lower bound (subscriber:
// written in the mirror transaction, before the entry's offset is known); a reader seeks there
// and reads forward. A reader loads the index, then completes it from `through` — so an index
// write that was lost (a crash between the entry and its index record) never hides an entry.
#ifndef POLDER_COMMON_AUDIT_AUDIT_INDEX_H_
#define POLDER_COMMON_AUDIT_AUDIT_INDEX_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace polder {
namespace audit {

// A checkpoint every this many links (sequence % kIndexCheckpointEvery == 0).
inline constexpr uint64_t kIndexCheckpointEvery = 64;

struct IndexRecord {
  enum class Kind { kStream, kCheckpoint, kEnd, kThrough };
  Kind kind = Kind::kStream;
  std::string stream_id;                       // empty for kThrough
  std::string source, destination, direction;  // kStream
  uint64_t sequence = 0;                       // kCheckpoint, kEnd
  std::string hash;                            // kCheckpoint, kEnd
  int64_t offset = 0;  // kStream, kCheckpoint, kThrough: an audit-topic offset (or a lower bound)

  std::string Key() const;
  std::string Value() const;
};

IndexRecord StreamRecord(const std::string& stream_id, const std::string& source,
                         const std::string& destination, const std::string& direction,
                         int64_t offset);
IndexRecord CheckpointRecord(const std::string& stream_id, uint64_t sequence,
                             const std::string& hash, int64_t offset);
IndexRecord EndRecord(const std::string& stream_id, uint64_t sequence, const std::string& hash);
IndexRecord ThroughRecord(int64_t offset);

// DATA_LOSS naming the key for a record that does not decode (bounded JSON; an unknown key kind
// is an error too, so a newer writer's records are not silently misread).
absl::StatusOr<IndexRecord> DecodeIndexRecord(const std::string& key, const std::string& value);

}  // namespace audit
}  // namespace polder

#endif  // POLDER_COMMON_AUDIT_AUDIT_INDEX_H_
