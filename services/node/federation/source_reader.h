// The provider side of a Subscribe: reads a dataset's source topic from a cursor with
// read_committed (aborted and open transactions are never offered) and cuts it into per-partition
// batches within record and byte limits, each carrying the partition's next source offset —
// which may lie beyond the last record's offset + 1, since transaction markers take offsets.
//
//   ASSIGN_OR_RETURN(auto reader,
//                    SourceReader::Open(kafka, consumer_options, source, start, limits, timeout));
//   ASSIGN_OR_RETURN(std::optional<SourceBatch> batch, reader->Next(absl::Milliseconds(200)));
//
// A cursor offset the source no longer has (below the log start after retention, or above the
// end after the topic was re-created) is OUT_OF_RANGE naming partition and offsets.
#ifndef POLDER_SERVICES_NODE_FEDERATION_SOURCE_READER_H_
#define POLDER_SERVICES_NODE_FEDERATION_SOURCE_READER_H_

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/consumer.h"

namespace polder {
namespace node {

struct SourceBatch {
  int32_t partition = 0;
  std::vector<kafka::ConsumedRecord> records;
  int64_t next_offset = 0;
  int64_t bytes = 0;
};

struct BatchLimits {
  int32_t max_records = 1000;
  int64_t max_bytes = 1 << 20;
};

// The source topic of a shared dataset.
struct SourceTopic {
  std::string topic;
  int32_t partitions = 0;
  std::string epoch;  // changes when the topic is re-created
};

// Where a stream starts: the subscriber's committed cursor, or without one the later of the
// contract's start and the start position the subscriber asked for.
struct StreamStart {
  std::string cursor_epoch;           // the epoch the cursor was committed under ("": unchecked)
  std::map<int32_t, int64_t> cursor;  // partition → next offset; empty: no cursor
  std::string requested_position;     // without a cursor: earliest, latest, RFC 3339 or ""
  std::string contract_id;
  std::string contract_position;  // the contract's start: earliest, latest or RFC 3339
  absl::Time contract_valid_from;
};

// The next offset of each partition `start` names, looked up with `consumer` (watermarks and
// offsets for times of `source.topic`). A cursor of another epoch is OUT_OF_RANGE; a cursor that
// names partitions the topic does not have or has negative offsets is INVALID_ARGUMENT, one that
// misses partitions FAILED_PRECONDITION; a cursor before the contract's start is refused with
// PERMISSION_DENIED, never clamped (a silent skip would be a gap nobody recorded): "earliest"
// bounds nothing (retention decides, and a cursor below it is a gap), "latest" is bounded by the
// contract's valid_from, a time by that time. A start position that is neither earliest, latest
// nor RFC 3339 is INVALID_ARGUMENT.
absl::StatusOr<std::map<int32_t, int64_t>> ResolveStart(kafka::Consumer& consumer,
                                                        const SourceTopic& source,
                                                        const StreamStart& start,
                                                        absl::Duration timeout);

// Where a provider stream's batches come from: its own SourceReader, or the dataset's shared
// tail (fan_out.h). Not thread-safe: the stream's thread calls it.
class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // The next batch, or nullopt if nothing new arrived within `wait`; as SourceReader::Next.
  virtual absl::StatusOr<std::optional<SourceBatch>> Next(absl::Duration wait) = 0;
  // The partitions' high watermarks (last stable offsets), for heartbeats and lag.
  virtual absl::StatusOr<std::map<int32_t, int64_t>> HighWatermarks(absl::Duration timeout) = 0;
  // Where each partition stands: the next offset a batch will start from.
  virtual const std::map<int32_t, int64_t>& positions() const = 0;
};

// A cursor outside what `topic` holds (below its log start, above its end) is a gap, never
// silently skipped: OUT_OF_RANGE naming partition and offsets.
absl::Status CheckWithinSource(kafka::Consumer& consumer, const std::string& topic,
                               const std::map<int32_t, int64_t>& start, absl::Duration timeout);

class SourceReader : public StreamSource {
 public:
  // `start`: partition → next offset to read (every partition of the topic). The consumer comes
  // from `kafka`.
  static absl::StatusOr<std::unique_ptr<SourceReader>> Create(
      kafka::ClientFactory& kafka, kafka::ConsumerOptions options, std::string topic,
      std::map<int32_t, int64_t> start, BatchLimits limits, absl::Duration timeout);
  // Resolves `start` (ResolveStart) with the consumer that then reads from there.
  static absl::StatusOr<std::unique_ptr<SourceReader>> Open(
      kafka::ClientFactory& kafka, kafka::ConsumerOptions options, const SourceTopic& source,
      const StreamStart& start, BatchLimits limits, absl::Duration timeout);

  // The next batch, or nullopt if nothing new arrived within `wait`. Batches of one partition
  // come in order; partitions interleave fairly: a full batch (max_records or max_bytes) goes
  // first, otherwise the partition whose records have waited longest, so a quiet or slow
  // partition is never held back behind a busy one. While a backlog is ready, it gathers until
  // some partition fills a batch (at most about one batch per partition is held).
  absl::StatusOr<std::optional<SourceBatch>> Next(absl::Duration wait) override;

  // The partitions' high watermarks (last stable offsets), for heartbeats and lag.
  absl::StatusOr<std::map<int32_t, int64_t>> HighWatermarks(absl::Duration timeout) override;

  // Where each partition stands: the next offset a batch will start from.
  const std::map<int32_t, int64_t>& positions() const override { return positions_; }

 private:
  SourceReader(std::unique_ptr<kafka::Consumer> consumer, std::string topic,
               std::map<int32_t, int64_t> start, BatchLimits limits)
      : consumer_(std::move(consumer)),
        topic_(std::move(topic)),
        positions_(std::move(start)),
        limits_(limits) {}
  // Checks `start` against what the source holds, then assigns it.
  static absl::StatusOr<std::unique_ptr<SourceReader>> Assign(
      std::unique_ptr<kafka::Consumer> consumer, std::string topic,
      std::map<int32_t, int64_t> start, BatchLimits limits, absl::Duration timeout);
  // Records fetched but not yet cut, per partition.
  struct Pending {
    std::deque<kafka::ConsumedRecord> records;
    int64_t bytes = 0;
    uint64_t since = 0;  // the poll that made the queue non-empty: its head's wait
  };
  bool Full(const Pending& q) const {
    return static_cast<int32_t>(q.records.size()) >= limits_.max_records ||
           q.bytes >= limits_.max_bytes;
  }
  // The partition to cut next: among the full ones (or, unless full_only, the non-empty ones)
  // the one waiting longest; ties go to the lowest partition.
  std::optional<int32_t> Pick(bool full_only) const;
  std::optional<SourceBatch> Cut(int32_t partition, bool drained);

  std::unique_ptr<kafka::Consumer> consumer_;
  const std::string topic_;
  std::map<int32_t, int64_t> positions_;
  const BatchLimits limits_;
  std::map<int32_t, Pending> pending_;
  uint64_t polls_ = 0;
};

int64_t ConsumedBytes(const kafka::ConsumedRecord& r);

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_SOURCE_READER_H_
