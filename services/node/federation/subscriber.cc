#include "services/node/federation/subscriber.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "services/node/federation/source_reader.h"

namespace polder {
namespace node {

namespace fv1 = ::polder::federation::v1;

void Subscriber::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Subscriber::Stop() {
  stop_ = true;
  {
    absl::MutexLock lock(&mu_);
    if (active_ != nullptr) active_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

Subscriber::State Subscriber::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

void Subscriber::Set(const std::string& status, const std::string& error) {
  absl::MutexLock lock(&mu_);
  state_.status = status;
  if (!error.empty()) state_.last_error = error;
}

void Subscriber::Run() {
  absl::Duration backoff = options_.min_backoff;
  std::unique_ptr<MirrorWriter> writer;
  while (!stop_) {
    if (writer == nullptr) {
      absl::StatusOr<std::unique_ptr<MirrorWriter>> w = MirrorWriter::Start(options_.writer);
      if (!w.ok()) {
        Set("reconnecting", std::string(w.status().message()));
        absl::SleepFor(backoff);
        backoff = std::min(2 * backoff, options_.max_backoff);
        continue;
      }
      writer = *std::move(w);
    }
    grpc::Status s = StreamOnce(*writer);
    if (stop_) break;
    if (writer->fenced()) {
      Set("fenced", s.error_message());
      log::Error("subscription fenced by another instance; it stops here",
                 {{"dataset", options_.dataset}, {"provider", options_.provider}});
      return;
    }
    const bool refused = s.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
                         s.error_code() == grpc::StatusCode::OUT_OF_RANGE ||
                         s.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
                         s.error_code() == grpc::StatusCode::DATA_LOSS;
    Set(refused ? "refused" : "reconnecting", s.error_message());
    log::Warning("subscription stream ended", {{"dataset", options_.dataset},
                                               {"provider", options_.provider},
                                               {"code", static_cast<int>(s.error_code())},
                                               {"error", s.error_message()}});
    {
      absl::MutexLock lock(&mu_);
      ++state_.reconnects;
    }
    const absl::Duration wait = refused ? options_.max_backoff : backoff;
    for (absl::Time until = absl::Now() + wait; !stop_ && absl::Now() < until;) absl::SleepFor(absl::Milliseconds(50));
    backoff = std::min(2 * backoff, options_.max_backoff);
  }
  Set("stopped");
}

grpc::Status Subscriber::StreamOnce(MirrorWriter& writer) {
  auto stub = fv1::FederationService::NewStub(options_.channel());
  grpc::ClientContext ctx;
  {
    absl::MutexLock lock(&mu_);
    active_ = &ctx;
  }
  struct Clear {
    Subscriber* s;
    ~Clear() {
      absl::MutexLock lock(&s->mu_);
      s->active_ = nullptr;
    }
  } clear{this};
  if (stop_) return grpc::Status::CANCELLED;
  fv1::SubscribeRequest req;
  req.set_protocol_version(fv1::PROTOCOL_VERSION_1);
  req.set_dataset_id(options_.dataset);
  req.set_contract_id(options_.contract_id);
  const MirrorCursor& cursor = writer.cursor();
  if (!cursor.next_offsets.empty()) {
    req.mutable_cursor()->set_epoch(cursor.epoch);
    for (int32_t p = 0; p < options_.mirror_partitions; ++p) {
      auto it = cursor.next_offsets.find(p);
      (*req.mutable_cursor()->mutable_next_offsets())[p] = it == cursor.next_offsets.end() ? 0 : it->second;
    }
  }
  auto reader = stub->Subscribe(&ctx, req);
  fv1::SubscribeResponse msg;
  bool opened = false;
  while (reader->Read(&msg)) {
    if (msg.has_opened()) {
      if (msg.opened().partitions() != options_.mirror_partitions) {
        ctx.TryCancel();
        reader->Finish();
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                            absl::StrCat("the source has ", msg.opened().partitions(), " partitions, the mirror ",
                                         options_.mirror_partitions, ": refusing to mirror"));
      }
      writer.BeginStream(msg.opened().stream_id(), msg.opened().epoch());
      opened = true;
      Set("streaming");
      continue;
    }
    if (msg.has_heartbeat()) {
      absl::MutexLock lock(&mu_);
      for (const auto& [p, hw] : msg.heartbeat().high_watermarks()) {
        auto it = writer.cursor().next_offsets.find(p);
        state_.lag[p] = hw - (it == writer.cursor().next_offsets.end() ? 0 : it->second);
      }
      continue;
    }
    if (!msg.has_batch() || !opened) continue;
    const fv1::RecordBatch& b = msg.batch();
    for (int32_t id : b.schema_ids()) {
      if (schemas_seen_.insert(id).second && options_.on_schema) options_.on_schema(id);
    }
    std::vector<kafka::ConsumedRecord> records;
    records.reserve(b.records_size());
    int64_t bytes = 0;
    for (const fv1::Record& r : b.records()) {
      kafka::ConsumedRecord c;
      c.partition = b.partition();
      c.offset = r.source_offset();
      c.key = r.key();
      c.value = r.value();
      for (const fv1::Header& h : r.headers()) c.headers.push_back({h.key(), h.value()});
      c.timestamp_ms = r.timestamp_ms();
      bytes += ConsumedBytes(c);  // counted as the provider counts them, so both audit entries agree
      records.push_back(std::move(c));
    }
    audit::AuditEntry entry;
    entry.direction = "received";
    entry.contract_hash = options_.contract_hash;
    entry.source = options_.provider;
    entry.destination = options_.self;
    entry.dataset = options_.dataset;
    entry.partition = b.partition();
    entry.first_offset = records.empty() ? b.next_offset() : records.front().offset;
    entry.next_offset = b.next_offset();
    entry.records = static_cast<int64_t>(records.size());
    entry.bytes = bytes;
    entry.at = absl::Now();
    entry.purpose = options_.purpose;
    absl::Status w = writer.Write(b.partition(), records, b.next_offset(), entry);
    if (!w.ok()) {
      ctx.TryCancel();
      reader->Finish();
      return grpc::Status(w.code() == absl::StatusCode::kFailedPrecondition ? grpc::StatusCode::FAILED_PRECONDITION
                                                                           : grpc::StatusCode::UNAVAILABLE,
                          std::string(w.message()));
    }
    absl::MutexLock lock(&mu_);
    state_.records += static_cast<int64_t>(records.size());
    ++state_.batches;
  }
  return reader->Finish();
}

}  // namespace node
}  // namespace polder
