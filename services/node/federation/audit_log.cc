#include "services/node/federation/audit_log.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace polder {
namespace node {

namespace {

constexpr uint64_t kCheckpointEvery = 64;

// Readers of the audit topic hold little: the topic can be large and calls come from peers.
kafka::ConsumerOptions SmallPrefetch(kafka::ConsumerOptions o) {
  o.client.properties["queued.max.messages.kbytes"] = "1024";
  o.max_fetch_bytes = std::min<int64_t>(o.max_fetch_bytes, 4 << 20);
  return o;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Create(kafka::ProducerOptions producer,
                                                           kafka::ConsumerOptions consumer, std::string topic) {
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::IdempotentProducer> p, kafka::IdempotentProducer::Create(producer));
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(p), SmallPrefetch(std::move(consumer)), std::move(topic)));
}

AuditLog::AuditLog(std::unique_ptr<kafka::IdempotentProducer> producer, kafka::ConsumerOptions consumer,
                   std::string topic)
    : producer_(std::move(producer)), consumer_(std::move(consumer)), topic_(std::move(topic)) {
  indexer_ = std::thread([this] { IndexLoop(); });
}

AuditLog::~AuditLog() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (indexer_.joinable()) indexer_.join();
}

void AuditLog::IndexLoop() {
  std::unique_ptr<kafka::KafkaConsumer> reader;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    if (reader == nullptr) {
      absl::StatusOr<std::unique_ptr<kafka::KafkaConsumer>> r = kafka::KafkaConsumer::Create(consumer_);
      int64_t from;
      {
        absl::MutexLock lock(&mu_);
        from = indexed_to_;
      }
      if (!r.ok() || !(*r)->Assign({{topic_, 0, from}}).ok()) {
        absl::SleepFor(absl::Seconds(1));
        continue;
      }
      reader = *std::move(r);
    }
    absl::StatusOr<std::vector<kafka::ConsumedRecord>> records = reader->Poll(absl::Milliseconds(200), 2000);
    if (!records.ok()) {
      reader.reset();  // recreated from the last indexed offset
      absl::SleepFor(absl::Milliseconds(500));
      continue;
    }
    absl::MutexLock lock(&mu_);
    for (const kafka::ConsumedRecord& r : *records) {
      if (r.key && !absl::StartsWith(*r.key, "receipt/")) {
        absl::StatusOr<audit::AuditLink> link = audit::DecodeAuditRecord(r.value);
        absl::StatusOr<audit::AuditEntry> e =
            link.ok() ? audit::ParseEntry(link->canonical_json) : absl::StatusOr<audit::AuditEntry>(link.status());
        const size_t slash = r.key->rfind('/');
        if (e.ok() && slash != std::string::npos) {
          StreamIndex& s = index_[r.key->substr(0, slash)];  // the key is "<stream>/<sequence>"
          if (s.checkpoints.empty()) {
            s.source = e->source;
            s.destination = e->destination;
          }
          if (s.checkpoints.empty() || (link->sequence % kCheckpointEvery == 0 && link->sequence > s.last_sequence)) {
            s.checkpoints.emplace_back(link->sequence, r.offset);
          }
          s.last_sequence = std::max(s.last_sequence, link->sequence);
        }
      }
      indexed_to_ = std::max(indexed_to_, r.offset + 1);
    }
    // Past transaction markers and aborted records too.
    absl::StatusOr<int64_t> position = reader->Position(topic_, 0);
    if (position.ok() && *position > indexed_to_) indexed_to_ = *position;
  }
}

absl::StatusOr<int64_t> AuditLog::Locate(const std::string& stream_id, uint64_t from, const std::string& reader,
                                         absl::Time deadline) {
  int64_t end = -1;  // the topic's end when first looked for; the index must reach it
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto it = index_.find(stream_id);
      if (it != index_.end()) {
        const StreamIndex& s = it->second;
        if (!reader.empty() && s.destination != reader) {
          return absl::PermissionDeniedError(absl::StrCat("stream ", stream_id, " is not a stream of '", reader, "'"));
        }
        int64_t offset = s.checkpoints.front().second;
        for (const auto& [sequence, at] : s.checkpoints) {
          if (sequence > from) break;
          offset = at;
        }
        return offset;
      }
      if (end >= 0 && indexed_to_ >= end) {
        return absl::NotFoundError(absl::StrCat("no audit entries of stream ", stream_id));
      }
    }
    if (end < 0) {
      kafka::ConsumerOptions o = consumer_;
      o.read_committed = false;
      ASSIGN_OR_RETURN(auto probe, kafka::KafkaConsumer::Create(o));
      ASSIGN_OR_RETURN(auto marks, probe->QueryWatermarks(topic_, 0, std::max(deadline - absl::Now(), absl::Seconds(1))));
      end = marks.second;
      continue;
    }
    if (absl::Now() > deadline) {
      return absl::UnavailableError("the audit index is still catching up with the audit topic; retry shortly");
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

absl::StatusOr<audit::AuditLink> AuditLog::Record(audit::AuditChain& chain, const audit::AuditEntry& entry) {
  audit::AuditChain next = chain;
  ASSIGN_OR_RETURN(audit::AuditLink link, next.Append(entry));
  kafka::ProducerRecord r;
  r.topic = topic_;
  r.partition = 0;
  r.key = audit::AuditRecordKey(chain.stream_id(), link.sequence);
  r.value = audit::EncodeAuditRecord(link);
  absl::StatusOr<kafka::RecordMetadata> written = kafka::SendAndWait(*producer_, std::move(r));
  if (!written.ok()) {
    return Prepend(written.status(), absl::StrCat("audit entry ", link.sequence, " of stream ", chain.stream_id(),
                                                  " not recorded; the batch is not sent: "));
  }
  chain = std::move(next);
  return link;
}

absl::Status AuditLog::StoreReceipt(const audit::Receipt& receipt) {
  kafka::ProducerRecord r;
  r.topic = topic_;
  r.partition = 0;
  r.key = audit::ReceiptRecordKey(receipt);
  r.value = audit::EncodeReceipt(receipt);
  absl::StatusOr<kafka::RecordMetadata> written = kafka::SendAndWait(*producer_, std::move(r));
  if (!written.ok()) {
    return Prepend(written.status(), absl::StrCat("receipt of ", receipt.peer, " for stream ", receipt.stream_id,
                                                  " not stored: "));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<audit::AuditLink>> AuditLog::Read(const std::string& stream_id, uint64_t from, int max,
                                                             absl::Duration timeout, const std::string& reader) {
  const absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(int64_t start, Locate(stream_id, from, reader, deadline));
  std::vector<audit::AuditLink> out;
  const std::string prefix = absl::StrCat(stream_id, "/");
  // Stops as soon as `max` links are in (a sentinel status, not an error).
  const absl::Status enough = absl::CancelledError("enough");
  absl::StatusOr<int64_t> read = kafka::ReadToEnd(
      consumer_, topic_, 0, start, std::max(deadline - absl::Now(), absl::Seconds(1)),
      [&](const kafka::ConsumedRecord& r) -> absl::Status {
        if (!r.key || !absl::StartsWith(*r.key, prefix)) return absl::OkStatus();
        ASSIGN_OR_RETURN(audit::AuditLink link, audit::DecodeAuditRecord(r.value));
        if (link.sequence >= from) out.push_back(std::move(link));
        return static_cast<int>(out.size()) >= max ? enough : absl::OkStatus();
      });
  if (!read.ok() && read.status() != enough) return read.status();
  return out;
}

}  // namespace node
}  // namespace polder
