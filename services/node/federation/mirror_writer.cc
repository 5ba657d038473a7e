#include "services/node/federation/mirror_writer.h"

#include <atomic>
#include <cstdlib>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/audit/audit_index.h"
#include "common/json/bounded.h"
#include "common/kafka/errors.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"
#include "services/node/federation/wire_records.h"

namespace polder {
namespace node {

using nlohmann::json;

namespace {

std::string CursorJson(const MirrorCursor& c) {
  json offsets = json::object();
  for (const auto& [p, o] : c.next_offsets) offsets[std::to_string(p)] = o;
  return json{{"epoch", c.epoch},
              {"next_offsets", offsets},
              {"stream_id", c.stream_id},
              {"audit_sequence", c.audit_sequence},
              {"audit_hash", c.audit_hash}}
      .dump();
}

absl::StatusOr<MirrorCursor> ParseCursor(const std::string& text) {
  json j = json_input::ParseOrDiscarded(text);
  if (!j.is_object()) return absl::DataLossError("a cursor record is not JSON");
  MirrorCursor c;
  c.epoch = json_input::StringOr(j, "epoch", "");
  c.stream_id = json_input::StringOr(j, "stream_id", "");
  c.audit_sequence = json_input::UintOr(j, "audit_sequence", 0);
  c.audit_hash = json_input::StringOr(j, "audit_hash", "");
  auto offsets = j.find("next_offsets");
  if (offsets != j.end() && offsets->is_object()) {
    for (const auto& [p, o] : offsets->items()) {
      int32_t partition = 0;
      if (!absl::SimpleAtoi(p, &partition) || partition < 0 || !o.is_number_integer() ||
          o.get<int64_t>() < 0) {
        return absl::DataLossError(
            absl::StrCat("a cursor record names partition '", p, "' with offset ", o.dump()));
      }
      c.next_offsets[partition] = o.get<int64_t>();
    }
  }
  return c;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MirrorWriter>> MirrorWriter::Start(Options options,
                                                                  kafka::ClientFactory& kafka) {
  std::unique_ptr<MirrorWriter> w(new MirrorWriter(std::move(options), kafka));
  RETURN_IF_ERROR(w->Recover());
  return w;
}

kafka::StateWriter::Options MirrorWriter::StateOptions(const Options& options) {
  kafka::StateWriter::Options o;
  o.producer = options.producer;
  if (o.producer.transactional_id.empty()) {
    o.producer.transactional_id = absl::StrCat("polder-mirror-", options.subscription);
  }
  o.consumer = options.consumer;
  // The cursors topic is small and compacted: the subscription's last committed value wins.
  o.state_topic = options.cursors_topic;
  o.timeout = options.timeout;
  return o;
}

absl::Status MirrorWriter::Recover() {
  std::optional<MirrorCursor> found;
  absl::StatusOr<int64_t> read =
      state_.Recover([&](const kafka::ConsumedRecord& r) -> absl::Status {
        if (r.key != options_.subscription) return absl::OkStatus();
        ASSIGN_OR_RETURN(found, ParseCursor(r.value));
        return absl::OkStatus();
      });
  if (!read.ok()) return Prepend(read.status(), "recovering the mirror's cursor: ");
  if (found.has_value()) cursor_ = *std::move(found);
  if (!options_.audit_index_topic.empty()) {
    kafka::ConsumerOptions o = options_.consumer;
    o.read_committed = false;
    absl::StatusOr<std::unique_ptr<kafka::Consumer>> probe = kafka_.NewConsumer(o);
    absl::StatusOr<std::pair<int64_t, int64_t>> marks =
        probe.ok() ? (*probe)->QueryWatermarks(options_.audit_topic, 0, options_.timeout)
                   : absl::StatusOr<std::pair<int64_t, int64_t>>(probe.status());
    if (!marks.ok()) {
      state_.Invalidate();
      return Prepend(marks.status(), "finding the audit topic's end: ");
    }
    audit_low_ = std::max(audit_low_, marks->second);
  }
  log::Info("mirror resumes", {{"subscription", options_.subscription},
                               {"stream", cursor_.stream_id},
                               {"audit_sequence", cursor_.audit_sequence}});
  return absl::OkStatus();
}

absl::Status MirrorWriter::EnsureRecovered() {
  if (fenced()) {
    return absl::FailedPreconditionError(absl::StrCat("subscription ", options_.subscription,
                                                      " is mirrored by another instance (fenced)"));
  }
  if (!needs_recovery()) return absl::OkStatus();
  absl::Status s = Recover();
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("mirror: ", s.message()));
  return absl::OkStatus();
}

void MirrorWriter::BeginStream(const std::string& stream_id, const std::string& epoch) {
  if (cursor_.stream_id != stream_id) {
    if (!cursor_.stream_id.empty() && cursor_.audit_sequence > 0) {
      ended_ = {cursor_.stream_id, {cursor_.audit_sequence, cursor_.audit_hash}};
      resumable_ = cursor_.stream_id;
    }
    cursor_.stream_id = stream_id;
    cursor_.audit_sequence = 0;
    cursor_.audit_hash = audit::AuditChain::Genesis(stream_id);
  }
  cursor_.epoch = epoch;
}

absl::Status MirrorWriter::Write(int32_t partition,
                                 const std::vector<kafka::ConsumedRecord>& records,
                                 int64_t next_offset, audit::AuditEntry entry) {
  std::vector<MirrorBatch> one(1);
  one[0].batch.set_partition(partition);
  for (const kafka::ConsumedRecord& r : records) ToWireRecord(r, one[0].batch.add_records());
  one[0].batch.set_next_offset(next_offset);
  one[0].entry = std::move(entry);
  return WriteAll(one);
}

absl::Status MirrorWriter::WriteAll(std::vector<MirrorBatch>& batches) {
  if (fenced()) {
    return absl::FailedPreconditionError(absl::StrCat("subscription ", options_.subscription,
                                                      " is mirrored by another instance (fenced)"));
  }
  if (needs_recovery()) {
    // The cursor this stream started from may not be what was committed: end the stream.
    return absl::UnavailableError(
        "mirror: a previous write failed; the stream restarts from the committed cursor");
  }
  if (batches.empty()) return absl::OkStatus();
  MirrorCursor next = cursor_;
  audit::AuditChain chain =
      next.audit_sequence == 0
          ? audit::AuditChain(next.stream_id)
          : audit::AuditChain::Resume(next.stream_id, {next.audit_sequence, next.audit_hash, ""});
  std::vector<audit::AuditLink> links;
  for (MirrorBatch& b : batches) {
    // Never write source offsets the cursor has passed (defence in depth: a stream always starts
    // from the committed cursor).
    const int32_t partition = b.batch.partition();
    auto committed = next.next_offsets.find(partition);
    if (committed != next.next_offsets.end() && b.batch.records_size() > 0 &&
        b.batch.records(0).source_offset() < committed->second) {
      const int64_t first = b.batch.records(0).source_offset();
      log::Error("mirror: a batch below the committed cursor was offered; refusing it",
                 {{"subscription", options_.subscription},
                  {"partition", partition},
                  {"first_offset", first},
                  {"cursor", committed->second}});
      return absl::UnavailableError(absl::StrCat("mirror: partition ", partition,
                                                 " batch starts at ", first,
                                                 ", below the committed cursor ", committed->second,
                                                 "; the stream restarts from the cursor"));
    }
    next.next_offsets[partition] = b.batch.next_offset();
    b.entry.transaction_id = next.stream_id;
    ASSIGN_OR_RETURN(audit::AuditLink link, chain.Append(b.entry));
    next.audit_sequence = link.sequence;
    next.audit_hash = link.hash;
    links.push_back(std::move(link));
  }
  // Where this transaction's audit entries land lies at or after audit_low_; the highest offset
  // delivered moves it for the next transaction.
  auto delivered = std::make_shared<std::atomic<int64_t>>(audit_low_);
  // This attempt's records (the first refused at once abandons the transaction).
  std::optional<kafka::TransactionRecords> txn;
  auto index = [&](const audit::IndexRecord& rec) {
    if (options_.audit_index_topic.empty()) return;
    kafka::ProducerRecord out;
    out.topic = options_.audit_index_topic;
    out.partition = 0;
    out.key = rec.Key();
    out.value = rec.Value();
    txn->Enqueue(out);
  };
  auto fill = [&]() -> absl::Status {
    txn.emplace(state_.producer());  // each attempt is a new transaction
    if (ended_.has_value())
      index(audit::EndRecord(ended_->first, ended_->second.first, ended_->second.second));
    for (size_t i = 0; i < batches.size(); ++i) {
      for (const federation::v1::Record& r : batches[i].batch.records()) {
        txn->Enqueue(ToMirrorRecord(r, options_.mirror_topic, batches[i].batch.partition()));
      }
      kafka::ProducerRecord audit_record;
      audit_record.topic = options_.audit_topic;
      audit_record.partition = 0;
      audit_record.key = audit::AuditRecordKey(next.stream_id, links[i].sequence);
      audit_record.value = audit::EncodeAuditRecord(links[i]);
      state_.producer()->Send(
          std::move(audit_record), [delivered](absl::StatusOr<kafka::RecordMetadata> m) {
            if (!m.ok()) return;
            int64_t seen = delivered->load();
            while (m->offset + 1 > seen && !delivered->compare_exchange_weak(seen, m->offset + 1)) {
            }
          });
      if (links[i].sequence == 1) {
        index(audit::StreamRecord(next.stream_id, batches[i].entry.source,
                                  batches[i].entry.destination, batches[i].entry.direction,
                                  audit_low_));
      }
      if (links[i].sequence % audit::kIndexCheckpointEvery == 0) {
        index(
            audit::CheckpointRecord(next.stream_id, links[i].sequence, links[i].hash, audit_low_));
      }
    }
    kafka::ProducerRecord cursor_record;
    cursor_record.topic = options_.cursors_topic;
    cursor_record.partition = 0;
    cursor_record.key = options_.subscription;
    cursor_record.value = CursorJson(next);
    txn->Enqueue(cursor_record);
    RETURN_IF_ERROR(txn->status());
    // Deliver before committing: with librdkafka 2.0.2 an explicit flush here halves the
    // transaction's time against leaving it to commit_transaction (measured in
    // bench/federation_bench: ~44 -> ~20 ms per group commit). Its errors surface at the commit.
    (void)state_.producer()->Flush(options_.timeout);
    if (options_.before_commit) options_.before_commit(++writes_);
    return absl::OkStatus();
  };
  absl::Status s = state_.Transact(fill);
  if (s.ok()) {
    cursor_ = std::move(next);
    audit_low_ = std::max(audit_low_, delivered->load());
    ended_.reset();
    return absl::OkStatus();
  }
  if (fenced()) {
    log::Error("mirror fenced by another instance; this one stops",
               {{"subscription", options_.subscription}, {"reason", std::string(s.message())}});
    return absl::FailedPreconditionError(
        absl::StrCat("subscription ", options_.subscription,
                     " is mirrored by another instance (fenced): ", s.message()));
  }
  return absl::UnavailableError(
      absl::StrCat("mirror transaction failed; nothing of the batch was written: ", s.message()));
}

}  // namespace node
}  // namespace polder
