#include "services/node/federation/source_reader.h"

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/trust/document.h"

namespace polder {
namespace node {

int64_t ConsumedBytes(const kafka::ConsumedRecord& r) {
  int64_t n =
      static_cast<int64_t>(r.value.size()) + (r.key ? static_cast<int64_t>(r.key->size()) : 0);
  for (const kafka::Header& h : r.headers) n += static_cast<int64_t>(h.key.size() + h.value.size());
  return n;
}

namespace {

// The offset of `position` in partition `p`: earliest, latest or the first at a time.
absl::StatusOr<int64_t> OffsetOf(kafka::Consumer& consumer, const std::string& topic,
                                 const std::string& position, int32_t p, absl::string_view whose,
                                 absl::Duration timeout) {
  if (position == "earliest" || position == "latest") {
    ASSIGN_OR_RETURN(auto marks, consumer.QueryWatermarks(topic, p, timeout));
    return position == "earliest" ? marks.first : marks.second;
  }
  absl::StatusOr<absl::Time> at = trust::ParseRfc3339(position);
  if (!at.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        whose, " start position '", position, "' is not earliest, latest or an RFC 3339 time"));
  }
  return consumer.OffsetForTime(topic, p, *at, timeout);
}

}  // namespace

absl::StatusOr<std::map<int32_t, int64_t>> ResolveStart(kafka::Consumer& consumer,
                                                        const SourceTopic& source,
                                                        const StreamStart& start,
                                                        absl::Duration timeout) {
  if (!start.cursor_epoch.empty() && start.cursor_epoch != source.epoch) {
    return absl::OutOfRangeError(absl::StrCat("the cursor is of epoch ", start.cursor_epoch, ", ",
                                              source.topic, " is now epoch ", source.epoch,
                                              " (re-created): subscribe from the "
                                              "contract's start again and reconcile the mirror"));
  }
  std::map<int32_t, int64_t> next;
  if (start.cursor.empty()) {
    for (int32_t p = 0; p < source.partitions; ++p) {
      ASSIGN_OR_RETURN(
          int64_t contract_start,
          OffsetOf(consumer, source.topic, start.contract_position, p, "the contract's", timeout));
      int64_t requested = contract_start;
      if (!start.requested_position.empty()) {
        ASSIGN_OR_RETURN(requested, OffsetOf(consumer, source.topic, start.requested_position, p,
                                             "start_position: the requested", timeout));
      }
      next[p] = std::max(contract_start, requested);
    }
    return next;
  }
  for (const auto& [p, o] : start.cursor) {
    if (p < 0 || p >= source.partitions) {
      return absl::InvalidArgumentError(absl::StrCat("the cursor names partition ", p, "; ",
                                                     source.topic, " has partitions 0 to ",
                                                     source.partitions - 1));
    }
    if (o < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("the cursor's offset ", o, " of partition ", p, " is negative"));
    }
    next[p] = o;
  }
  if (static_cast<int32_t>(next.size()) != source.partitions) {
    return absl::FailedPreconditionError(absl::StrCat("the cursor names ", next.size(),
                                                      " partitions; ", source.topic, " has ",
                                                      source.partitions));
  }
  if (start.contract_position == "earliest") return next;
  const std::string bound =
      start.contract_position == "latest"
          ? absl::FormatTime(absl::RFC3339_sec, start.contract_valid_from, absl::UTCTimeZone())
          : start.contract_position;
  std::map<int32_t, int64_t> first;
  bool below = false;
  for (int32_t p = 0; p < source.partitions; ++p) {
    ASSIGN_OR_RETURN(first[p],
                     OffsetOf(consumer, source.topic, bound, p, "the contract's", timeout));
    below |= next[p] < first[p];
  }
  if (below) {
    std::string offsets;
    for (const auto& [p, f] : first)
      absl::StrAppend(&offsets, offsets.empty() ? "" : ", ", p, ":", f);
    return absl::PermissionDeniedError(
        absl::StrCat("the cursor reaches before the start of contract ", start.contract_id, " (",
                     bound, "): its first offsets per partition are {", offsets, "}"));
  }
  return next;
}

absl::Status CheckWithinSource(kafka::Consumer& consumer, const std::string& topic,
                               const std::map<int32_t, int64_t>& start, absl::Duration timeout) {
  for (const auto& [partition, offset] : start) {
    ASSIGN_OR_RETURN(auto marks, consumer.QueryWatermarks(topic, partition, timeout));
    if (offset < marks.first || offset > marks.second) {
      return absl::OutOfRangeError(absl::StrCat(
          "partition ", partition, " of ", topic, " holds offsets ", marks.first, " to ",
          marks.second, "; the cursor asks for ", offset,
          offset < marks.first ? " (retention deleted what the subscriber did not read yet)"
                               : " (the topic was re-created or truncated)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SourceReader>> SourceReader::Create(
    kafka::ClientFactory& kafka, kafka::ConsumerOptions options, std::string topic,
    std::map<int32_t, int64_t> start, BatchLimits limits, absl::Duration timeout) {
  options.read_committed = true;
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::Consumer> consumer, kafka.NewConsumer(options));
  return Assign(std::move(consumer), std::move(topic), std::move(start), limits, timeout);
}

absl::StatusOr<std::unique_ptr<SourceReader>> SourceReader::Open(
    kafka::ClientFactory& kafka, kafka::ConsumerOptions options, const SourceTopic& source,
    const StreamStart& start, BatchLimits limits, absl::Duration timeout) {
  options.read_committed = true;
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::Consumer> consumer, kafka.NewConsumer(options));
  using Offsets = std::map<int32_t, int64_t>;
  ASSIGN_OR_RETURN(Offsets next, ResolveStart(*consumer, source, start, timeout));
  return Assign(std::move(consumer), source.topic, std::move(next), limits, timeout);
}

absl::StatusOr<std::unique_ptr<SourceReader>> SourceReader::Assign(
    std::unique_ptr<kafka::Consumer> consumer, std::string topic, std::map<int32_t, int64_t> start,
    BatchLimits limits, absl::Duration timeout) {
  RETURN_IF_ERROR(CheckWithinSource(*consumer, topic, start, timeout));
  std::vector<kafka::TopicPartitionOffset> assignment;
  for (const auto& [partition, offset] : start) assignment.push_back({topic, partition, offset});
  RETURN_IF_ERROR(consumer->Assign(assignment));
  return std::unique_ptr<SourceReader>(
      new SourceReader(std::move(consumer), std::move(topic), std::move(start), limits));
}

std::optional<int32_t> SourceReader::Pick(bool full_only) const {
  std::optional<int32_t> best;
  uint64_t best_since = 0;
  for (const auto& [partition, q] : pending_) {
    if (q.records.empty() || (full_only && !Full(q))) continue;
    if (!best.has_value() || q.since < best_since) {
      best = partition;
      best_since = q.since;
    }
  }
  return best;
}

std::optional<SourceBatch> SourceReader::Cut(int32_t partition, bool drained) {
  Pending& queue = pending_[partition];
  if (queue.records.empty()) return std::nullopt;
  SourceBatch batch;
  batch.partition = partition;
  while (!queue.records.empty() &&
         static_cast<int32_t>(batch.records.size()) < limits_.max_records) {
    const int64_t size = ConsumedBytes(queue.records.front());
    if (!batch.records.empty() && batch.bytes + size > limits_.max_bytes) break;
    batch.bytes += size;
    queue.bytes -= size;
    batch.records.push_back(std::move(queue.records.front()));
    queue.records.pop_front();
  }
  batch.next_offset = batch.records.back().offset + 1;
  if (queue.records.empty() && drained) {
    // Everything fetched is in the batch: the consumer's position also skips the transaction
    // markers after the last record.
    absl::StatusOr<int64_t> pos = consumer_->Position(topic_, partition);
    if (pos.ok() && *pos > batch.next_offset) batch.next_offset = *pos;
  }
  positions_[partition] = batch.next_offset;
  return batch;
}

absl::StatusOr<std::optional<SourceBatch>> SourceReader::Next(absl::Duration wait) {
  // A full batch waiting: hand it out before fetching more.
  if (std::optional<int32_t> full = Pick(/*full_only=*/true)) return Cut(*full, false);
  // Take what is ready (waiting only when nothing is held); while whole polls come back — a
  // backlog — keep gathering until some partition has a full batch.
  bool holding = Pick(/*full_only=*/false).has_value();
  bool drained = false;
  while (!drained) {
    ASSIGN_OR_RETURN(std::vector<kafka::ConsumedRecord> records,
                     consumer_->Poll(holding ? absl::ZeroDuration() : wait, limits_.max_records));
    ++polls_;
    drained = static_cast<int32_t>(records.size()) < limits_.max_records;
    for (kafka::ConsumedRecord& r : records) {
      Pending& q = pending_[r.partition];
      if (q.records.empty()) q.since = polls_;
      q.bytes += ConsumedBytes(r);
      q.records.push_back(std::move(r));
      holding = true;
    }
    if (Pick(/*full_only=*/true).has_value()) break;
  }
  if (std::optional<int32_t> next = Pick(/*full_only=*/false)) return Cut(*next, drained);
  // Nothing new: positions may still move past markers of committed or aborted transactions.
  for (auto& [partition, next] : positions_) {
    absl::StatusOr<int64_t> pos = consumer_->Position(topic_, partition);
    if (pos.ok() && *pos > next) next = *pos;
  }
  return std::optional<SourceBatch>();
}

absl::StatusOr<std::map<int32_t, int64_t>> SourceReader::HighWatermarks(absl::Duration timeout) {
  std::map<int32_t, int64_t> out;
  for (const auto& [partition, unused] : positions_) {
    // What the last fetch told (no broker call), else ask.
    absl::StatusOr<std::pair<int64_t, int64_t>> marks =
        consumer_->CachedWatermarks(topic_, partition);
    if (!marks.ok()) marks = consumer_->QueryWatermarks(topic_, partition, timeout);
    if (!marks.ok()) return marks.status();
    out[partition] = marks->second;
  }
  return out;
}

}  // namespace node
}  // namespace polder
