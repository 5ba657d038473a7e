#include "services/node/federation/audit_log.h"

#include <algorithm>
#include <atomic>
#include <future>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"

namespace polder {
namespace node {

namespace {

// Readers of the audit topic hold little: the topic can be large and calls come from peers.
kafka::ConsumerOptions SmallPrefetch(kafka::ConsumerOptions o) {
  o.client.properties["queued.max.messages.kbytes"] = "1024";
  o.max_fetch_bytes = std::min<int64_t>(o.max_fetch_bytes, 4 << 20);
  return o;
}

// "receipt/<stream>/<peer>/<sequence>" → (stream, peer, sequence).
bool ParseReceiptKey(const std::string& key, std::string& stream, std::string& peer,
                     uint64_t& sequence) {
  const std::string rest = key.substr(8);
  const size_t last = rest.rfind('/');
  if (last == std::string::npos || last == 0) return false;
  const size_t middle = rest.rfind('/', last - 1);
  if (middle == std::string::npos) return false;
  stream = rest.substr(0, middle);
  peer = rest.substr(middle + 1, last - middle - 1);
  return absl::SimpleAtoi(rest.substr(last + 1), &sequence);
}

// An index record as a Kafka record of the index topic (one partition).
kafka::ProducerRecord ToProducerRecord(const std::string& topic, const audit::IndexRecord& rec) {
  kafka::ProducerRecord r;
  r.topic = topic;
  r.partition = 0;
  r.key = rec.Key();
  r.value = rec.Value();
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Create(kafka::ClientFactory& kafka,
                                                           kafka::ProducerOptions producer,
                                                           kafka::ConsumerOptions consumer,
                                                           Options options) {
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::Producer> p, kafka.NewProducer(producer));
  return std::unique_ptr<AuditLog>(
      new AuditLog(kafka, std::move(p), SmallPrefetch(std::move(consumer)), std::move(options)));
}

AuditLog::AuditLog(kafka::ClientFactory& kafka, std::unique_ptr<kafka::Producer> producer,
                   kafka::ConsumerOptions consumer, Options options)
    : kafka_(kafka),
      producer_(std::move(producer)),
      consumer_(std::move(consumer)),
      options_(std::move(options)) {
  indexer_ = std::thread([this] { IndexLoop(); });
}

AuditLog::~AuditLog() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (indexer_.joinable()) indexer_.join();
  (void)producer_->Flush(absl::Seconds(5));
}

AuditLog::IndexStats AuditLog::index_stats() const {
  absl::MutexLock lock(&mu_);
  IndexStats s = stats_;
  s.loaded = loaded_;
  s.indexed_to = indexed_to_;
  s.streams = static_cast<int64_t>(index_.size());
  return s;
}

void AuditLog::Apply(const audit::IndexRecord& r) {
  using Kind = audit::IndexRecord::Kind;
  if (r.kind == Kind::kThrough) {
    indexed_to_ = std::max(indexed_to_, r.offset);
    return;
  }
  StreamIndex& s = index_[r.stream_id];
  switch (r.kind) {
    case Kind::kStream:
      s.source = r.source;
      s.destination = r.destination;
      s.direction = r.direction;
      s.first_offset = s.first_offset < 0 ? r.offset : std::min(s.first_offset, r.offset);
      if (s.last_sequence == 0) s.last_sequence = 1;  // its first entry exists
      break;
    case Kind::kCheckpoint: {
      auto at =
          std::lower_bound(s.checkpoints.begin(), s.checkpoints.end(), r.sequence,
                           [](const Checkpoint& c, uint64_t seq) { return c.sequence < seq; });
      if (at == s.checkpoints.end() || at->sequence != r.sequence)
        s.checkpoints.insert(at, {r.sequence, r.offset, r.hash});
      if (r.sequence > s.last_sequence || s.last_hash.empty()) {
        if (r.sequence >= s.last_sequence) {
          s.last_sequence = r.sequence;
          s.last_hash = r.hash;
        }
      }
      break;
    }
    case Kind::kEnd:
      if (r.sequence >= s.last_sequence) {
        s.last_sequence = r.sequence;
        s.last_hash = r.hash;
        s.head_exact = true;
      }
      break;
    case Kind::kThrough:
      break;
  }
}

absl::Status AuditLog::LoadIndex() {
  std::vector<audit::IndexRecord> records;
  int64_t unreadable = 0;
  ASSIGN_OR_RETURN(
      int64_t end,
      kafka::ReadToEnd(kafka_, consumer_, options_.index_topic, 0, 0, absl::Seconds(60),
                       [&](const kafka::ConsumedRecord& r) -> absl::Status {
                         absl::StatusOr<audit::IndexRecord> d =
                             audit::DecodeIndexRecord(r.key.value_or(""), r.value);
                         if (d.ok()) {
                           records.push_back(*std::move(d));
                         } else {
                           ++unreadable;
                         }
                         return absl::OkStatus();
                       }));
  (void)end;
  absl::MutexLock lock(&mu_);
  index_.clear();
  indexed_to_ = 0;
  for (const audit::IndexRecord& r : records) Apply(r);
  // Streams whose stream record was not found (a checkpoint or end alone) are incomplete: the
  // tail or a read repairs them; they are not served parties they do not have.
  for (auto it = index_.begin(); it != index_.end();) {
    it = it->second.first_offset < 0 ? index_.erase(it) : std::next(it);
  }
  stats_.loaded_from = indexed_to_;
  last_mark_ = indexed_to_;
  stats_.index_records_loaded = static_cast<int64_t>(records.size());
  stats_.unreadable = unreadable;
  if (unreadable > 0) {
    log::Warning(
        "audit index: records that do not decode were skipped (the tail repairs what they held)",
        {{"topic", options_.index_topic}, {"unreadable", unreadable}});
  }
  return absl::OkStatus();
}

void AuditLog::Tail(const kafka::ConsumedRecord& r) {
  ++stats_.records_tailed;
  if (!r.key) return;
  if (absl::StartsWith(*r.key, "receipt/")) {
    std::string stream, peer;
    uint64_t sequence = 0;
    if (ParseReceiptKey(*r.key, stream, peer, sequence)) {
      auto it = index_.find(stream);
      if (it != index_.end()) {
        uint64_t& held = it->second.receipted[peer];
        held = std::max(held, sequence);
      }
    }
    return;
  }
  absl::StatusOr<audit::AuditLink> link = audit::DecodeAuditRecord(r.value);
  absl::StatusOr<audit::AuditEntry> e = link.ok()
                                            ? audit::ParseEntry(link->canonical_json)
                                            : absl::StatusOr<audit::AuditEntry>(link.status());
  const size_t slash = r.key->rfind('/');
  if (!e.ok() || slash == std::string::npos) return;
  const std::string stream = r.key->substr(0, slash);  // the key is "<stream>/<sequence>"
  StreamIndex& s = index_[stream];
  if (s.first_offset < 0) {
    s.source = e->source;
    s.destination = e->destination;
    s.direction = e->direction;
    s.first_offset = r.offset;
    audit::IndexRecord rec =
        audit::StreamRecord(stream, s.source, s.destination, s.direction, r.offset);
    unmarked_[rec.Key()] = rec;
  }
  if (link->sequence % audit::kIndexCheckpointEvery == 0) {
    auto at = std::lower_bound(s.checkpoints.begin(), s.checkpoints.end(), link->sequence,
                               [](const Checkpoint& c, uint64_t seq) { return c.sequence < seq; });
    if (at == s.checkpoints.end() || at->sequence != link->sequence) {
      s.checkpoints.insert(at, {link->sequence, r.offset, link->hash});
      audit::IndexRecord rec =
          audit::CheckpointRecord(stream, link->sequence, link->hash, r.offset);
      unmarked_[rec.Key()] = rec;
    }
  }
  // Every entry of this stream past the mark is tailed, and the earlier ones have lower
  // sequences: the highest tailed is the head.
  if (link->sequence >= s.last_sequence) {
    s.last_sequence = link->sequence;
    s.last_hash = link->hash;
  }
  s.head_exact = true;
}

void AuditLog::WriteIndex(const audit::IndexRecord& rec, bool remember) {
  if (options_.index_topic.empty()) return;
  producer_->Send(ToProducerRecord(options_.index_topic, rec),
                  [this, remember, key = rec.Key()](absl::StatusOr<kafka::RecordMetadata> m) {
                    if (!m.ok() || !remember) return;
                    absl::MutexLock lock(&mu_);
                    written_.insert(key);
                  });
}

void AuditLog::WriteMark() {
  std::map<std::string, audit::IndexRecord> records;
  int64_t mark;
  {
    absl::MutexLock lock(&mu_);
    if ((indexed_to_ <= last_mark_ || !mark_writer_) && unmarked_.empty()) return;
    for (const std::string& k : written_) unmarked_.erase(k);
    written_.clear();
    records.swap(unmarked_);
    mark = indexed_to_;
  }
  auto failed = std::make_shared<std::atomic<int>>(0);
  for (const auto& [key, rec] : records) {
    producer_->Send(ToProducerRecord(options_.index_topic, rec),
                    [failed](absl::StatusOr<kafka::RecordMetadata> m) {
                      if (!m.ok()) failed->fetch_add(1);
                    });
  }
  absl::Status flushed = producer_->Flush(absl::Seconds(10));
  if (flushed.ok() && failed->load() == 0 && !mark_writer_) {
    absl::MutexLock lock(&mu_);
    stats_.index_records_written += static_cast<int64_t>(records.size());
    return;
  }
  if (flushed.ok() && failed->load() == 0) {
    if (kafka::SendAndWait(*producer_,
                           ToProducerRecord(options_.index_topic, audit::ThroughRecord(mark)))
            .ok()) {
      absl::MutexLock lock(&mu_);
      stats_.index_records_written += static_cast<int64_t>(records.size());
      ++stats_.marks_written;
      last_mark_ = std::max(last_mark_, mark);
      return;
    }
  }
  // Not written: kept for the next mark, which is not written before they are.
  absl::MutexLock lock(&mu_);
  for (auto& [key, rec] : records) unmarked_.emplace(key, std::move(rec));
}

void AuditLog::IndexLoop() {
  if (options_.index_topic.empty()) {
    absl::MutexLock lock(&mu_);
    loaded_ = true;
  }
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      if (loaded_) break;
    }
    absl::Status s = LoadIndex();
    if (s.ok()) {
      absl::MutexLock lock(&mu_);
      loaded_ = true;
      log::Info("audit index loaded", {{"topic", options_.index_topic},
                                       {"streams", static_cast<int64_t>(index_.size())},
                                       {"tail_from", indexed_to_}});
      break;
    }
    log::Warning("audit index: cannot load yet; retrying",
                 {{"topic", options_.index_topic}, {"error", std::string(s.message())}});
    for (int i = 0; i < 20; ++i) {
      absl::SleepFor(absl::Milliseconds(100));
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
  }
  std::unique_ptr<kafka::Consumer> reader;
  absl::Time next_mark = absl::Now() + options_.mark_interval;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    if (!options_.index_topic.empty() && absl::Now() >= next_mark) {
      WriteMark();
      next_mark = absl::Now() + options_.mark_interval;
    }
    if (reader == nullptr) {
      absl::StatusOr<std::unique_ptr<kafka::Consumer>> r = kafka_.NewConsumer(consumer_);
      int64_t from;
      {
        absl::MutexLock lock(&mu_);
        from = indexed_to_;
      }
      if (!r.ok() || !(*r)->Assign({{options_.topic, 0, from}}).ok()) {
        absl::SleepFor(absl::Seconds(1));
        continue;
      }
      reader = *std::move(r);
    }
    absl::StatusOr<std::vector<kafka::ConsumedRecord>> records =
        reader->Poll(absl::Milliseconds(200), 2000);
    if (!records.ok()) {
      reader.reset();  // recreated from the last indexed offset
      absl::SleepFor(absl::Milliseconds(500));
      continue;
    }
    absl::MutexLock lock(&mu_);
    for (const kafka::ConsumedRecord& r : *records) {
      Tail(r);
      indexed_to_ = std::max(indexed_to_, r.offset + 1);
    }
    // Past transaction markers and aborted records too.
    absl::StatusOr<int64_t> position = reader->Position(options_.topic, 0);
    if (position.ok() && *position > indexed_to_) indexed_to_ = *position;
  }
}

absl::StatusOr<AuditLog::StreamIndex> AuditLog::Find(const std::string& stream_id,
                                                     const std::string& reader,
                                                     absl::Time deadline) {
  int64_t end = -1;  // the topic's end when first looked for; the index must reach it
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto it = loaded_ ? index_.find(stream_id) : index_.end();
      if (it != index_.end()) {
        const StreamIndex& s = it->second;
        if (!reader.empty() && s.destination != reader) {
          return absl::PermissionDeniedError(
              absl::StrCat("stream ", stream_id, " is not a stream of '", reader, "'"));
        }
        return s;
      }
      if (loaded_ && end >= 0 && indexed_to_ >= end) {
        return absl::NotFoundError(absl::StrCat("no audit entries of stream ", stream_id));
      }
    }
    if (end < 0) {
      kafka::ConsumerOptions o = consumer_;
      o.read_committed = false;
      ASSIGN_OR_RETURN(auto probe, kafka_.NewConsumer(o));
      ASSIGN_OR_RETURN(auto marks,
                       probe->QueryWatermarks(options_.topic, 0,
                                              std::max(deadline - absl::Now(), absl::Seconds(1))));
      end = marks.second;
      continue;
    }
    if (absl::Now() > deadline) {
      return absl::UnavailableError(
          "the audit index is still catching up with the audit topic; retry shortly");
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

absl::StatusOr<audit::AuditLink> AuditLog::Record(audit::AuditChain& chain,
                                                  const audit::AuditEntry& entry) {
  ASSIGN_OR_RETURN(std::vector<audit::AuditLink> links, RecordAll(chain, {entry}));
  return std::move(links.front());
}

absl::StatusOr<std::vector<audit::AuditLink>> AuditLog::RecordAll(
    audit::AuditChain& chain, const std::vector<audit::AuditEntry>& entries) {
  audit::AuditChain next = chain;
  std::vector<audit::AuditLink> links;
  links.reserve(entries.size());
  for (const audit::AuditEntry& entry : entries) {
    ASSIGN_OR_RETURN(audit::AuditLink link, next.Append(entry));
    links.push_back(std::move(link));
  }
  // Sent together (one produce request), then every acknowledgement waited for.
  using Outcome = std::promise<absl::StatusOr<kafka::RecordMetadata>>;
  std::vector<std::shared_ptr<Outcome>> outcomes;
  outcomes.reserve(links.size());
  for (const audit::AuditLink& link : links) {
    kafka::ProducerRecord r;
    r.topic = options_.topic;
    r.partition = 0;
    r.key = audit::AuditRecordKey(chain.stream_id(), link.sequence);
    r.value = audit::EncodeAuditRecord(link);
    auto outcome = std::make_shared<Outcome>();
    producer_->Send(std::move(r), [outcome](absl::StatusOr<kafka::RecordMetadata> m) {
      outcome->set_value(std::move(m));
    });
    outcomes.push_back(std::move(outcome));
  }
  std::vector<int64_t> offsets;
  absl::Status failed;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    absl::StatusOr<kafka::RecordMetadata> written = outcomes[i]->get_future().get();
    if (!written.ok() && failed.ok()) {
      failed = Prepend(written.status(),
                       absl::StrCat("audit entry ", links[i].sequence, " of stream ",
                                    chain.stream_id(), " not recorded; the batch is not sent: "));
    }
    offsets.push_back(written.ok() ? written->offset : -1);
  }
  if (!failed.ok()) return failed;
  // The index follows the acknowledged entries; if this write is lost, the index reader repairs
  // it.
  for (size_t i = 0; i < links.size(); ++i) {
    const audit::AuditLink& link = links[i];
    if (link.sequence == 1) {
      WriteIndex(audit::StreamRecord(chain.stream_id(), entries[i].source, entries[i].destination,
                                     entries[i].direction, offsets[i]),
                 true);
    }
    if (link.sequence % audit::kIndexCheckpointEvery == 0) {
      WriteIndex(audit::CheckpointRecord(chain.stream_id(), link.sequence, link.hash, offsets[i]),
                 true);
    }
  }
  chain = std::move(next);
  return links;
}

void AuditLog::EndStream(const audit::AuditChain& chain) {
  if (chain.sequence() == 0) return;
  WriteIndex(audit::EndRecord(chain.stream_id(), chain.sequence(), chain.head()),
             /*remember=*/false);
}

absl::Status AuditLog::StoreReceipt(const audit::Receipt& receipt) {
  kafka::ProducerRecord r;
  r.topic = options_.topic;
  r.partition = 0;
  r.key = audit::ReceiptRecordKey(receipt);
  r.value = audit::EncodeReceipt(receipt);
  absl::StatusOr<kafka::RecordMetadata> written = kafka::SendAndWait(*producer_, std::move(r));
  if (!written.ok()) {
    return Prepend(written.status(), absl::StrCat("receipt of ", receipt.peer, " for stream ",
                                                  receipt.stream_id, " not stored: "));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<audit::AuditLink>> AuditLog::Read(const std::string& stream_id,
                                                             uint64_t from, int max,
                                                             absl::Duration timeout,
                                                             const std::string& reader) {
  const absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(StreamIndex s, Find(stream_id, reader, deadline));
  int64_t start = s.first_offset;
  for (const Checkpoint& c : s.checkpoints) {
    if (c.sequence > from) break;
    start = std::max(start, c.offset);
  }
  std::vector<audit::AuditLink> out;
  const std::string prefix = absl::StrCat(stream_id, "/");
  // Stops as soon as `max` links are in (a sentinel status, not an error).
  const absl::Status enough = absl::CancelledError("enough");
  absl::StatusOr<int64_t> read =
      kafka::ReadToEnd(kafka_, consumer_, options_.topic, 0, start,
                       std::max(deadline - absl::Now(), absl::Seconds(1)),
                       [&](const kafka::ConsumedRecord& r) -> absl::Status {
                         if (!r.key || !absl::StartsWith(*r.key, prefix)) return absl::OkStatus();
                         ASSIGN_OR_RETURN(audit::AuditLink link, audit::DecodeAuditRecord(r.value));
                         if (link.sequence >= from) out.push_back(std::move(link));
                         return static_cast<int>(out.size()) >= max ? enough : absl::OkStatus();
                       });
  if (!read.ok() && read.status() != enough) return read.status();
  return out;
}

absl::StatusOr<AuditLog::StreamHead> AuditLog::Head(const std::string& stream_id,
                                                    absl::Duration timeout,
                                                    const std::string& reader) {
  const absl::Time deadline = absl::Now() + timeout;
  // Every entry the topic holds now must be counted: the index catches up with its end first.
  {
    kafka::ConsumerOptions o = consumer_;
    o.read_committed = false;
    ASSIGN_OR_RETURN(auto probe, kafka_.NewConsumer(o));
    ASSIGN_OR_RETURN(
        auto marks, probe->QueryWatermarks(options_.topic, 0, std::max(timeout, absl::Seconds(1))));
    absl::MutexLock lock(&mu_);
    auto caught_up = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return loaded_ && indexed_to_ >= marks.second;
    };
    while (!caught_up() && absl::Now() < deadline) {
      mu_.AwaitWithDeadline(absl::Condition(&caught_up), deadline);
    }
    if (!caught_up()) {
      return absl::UnavailableError(
          "the audit index is still catching up with the audit topic; retry shortly");
    }
  }
  ASSIGN_OR_RETURN(StreamIndex s, Find(stream_id, reader, deadline));
  StreamHead head{s.source, s.destination, s.direction, s.last_sequence, s.last_hash, s.receipted};
  if (s.head_exact) return head;
  // Loaded from the persisted index without an end record (its node stopped mid-stream): the
  // links past its last checkpoint are read (fewer than 64 of this stream).
  const uint64_t from = s.checkpoints.empty() ? 1 : s.checkpoints.back().sequence;
  ASSIGN_OR_RETURN(
      std::vector<audit::AuditLink> links,
      Read(stream_id, from, 1 << 16, std::max(deadline - absl::Now(), absl::Seconds(1)), reader));
  if (links.empty())
    return absl::DataLossError(absl::StrCat("the audit index names stream ", stream_id,
                                            " but the audit topic holds none of its entries"));
  head.sequence = links.back().sequence;
  head.hash = links.back().hash;
  absl::MutexLock lock(&mu_);
  StreamIndex& cached = index_[stream_id];
  if (head.sequence >= cached.last_sequence) {
    cached.last_sequence = head.sequence;
    cached.last_hash = head.hash;
    cached.head_exact = true;
  }
  return head;
}

}  // namespace node
}  // namespace polder
