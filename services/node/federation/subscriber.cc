#include "services/node/federation/subscriber.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
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
      absl::StatusOr<std::unique_ptr<MirrorWriter>> w =
          MirrorWriter::Start(options_.writer, kafka_);
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
    if (s.error_code() == grpc::StatusCode::PERMISSION_DENIED && options_.purge &&
        options_.revoked && !state().purged && options_.revoked()) {
      absl::Status purged = options_.purge();
      if (purged.ok()) {
        absl::MutexLock lock(&mu_);
        state_.purged = true;
      }
      log::Write(purged.ok() ? log::Severity::kWarning : log::Severity::kError,
                 purged.ok() ? "contract revoked: mirror purged"
                             : "contract revoked: purging the mirror failed",
                 {{"dataset", options_.dataset},
                  {"provider", options_.provider},
                  {"error", std::string(purged.message())}});
    }
    if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
        absl::StartsWith(s.error_message(), "not dialled")) {
      Set("no-credentials", s.error_message());
      log::Error("subscription not dialled: no usable credentials",
                 {{"dataset", options_.dataset},
                  {"provider", options_.provider},
                  {"error", s.error_message()}});
      for (absl::Time until = absl::Now() + backoff; !stop_ && absl::Now() < until;) {
        absl::SleepFor(absl::Milliseconds(50));
      }
      backoff = std::min(2 * backoff, options_.max_backoff);
      continue;
    }
    const bool refused = s.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
                         s.error_code() == grpc::StatusCode::OUT_OF_RANGE ||
                         s.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
                         s.error_code() == grpc::StatusCode::DATA_LOSS;
    Set(refused ? "refused" : "reconnecting", s.error_message());
    if (s.error_code() == grpc::StatusCode::OUT_OF_RANGE ||
        s.error_code() == grpc::StatusCode::DATA_LOSS) {
      RecordGap(s);
    }
    log::Warning("subscription stream ended", {{"dataset", options_.dataset},
                                               {"provider", options_.provider},
                                               {"code", static_cast<int>(s.error_code())},
                                               {"error", s.error_message()}});
    {
      absl::MutexLock lock(&mu_);
      ++state_.reconnects;
    }
    const absl::Duration wait = refused ? options_.max_backoff : backoff;
    for (absl::Time until = absl::Now() + wait; !stop_ && absl::Now() < until;)
      absl::SleepFor(absl::Milliseconds(50));
    backoff = std::min(2 * backoff, options_.max_backoff);
  }
  Set("stopped");
}

void Subscriber::RecordGap(const grpc::Status& s) {
  if (s.error_message() == last_gap_) return;  // the same gap, reported again on retry
  last_gap_ = s.error_message();
  {
    absl::MutexLock lock(&mu_);
    ++state_.gaps;
  }
  log::Error("subscription gap: the provider no longer has what the mirror's cursor points at",
             {{"dataset", options_.dataset},
              {"provider", options_.provider},
              {"error", s.error_message()}});
  if (options_.audit == nullptr) return;
  audit::AuditEntry e;
  e.transaction_id = absl::StrCat("gap-", options_.self, "-", options_.provider, "-",
                                  options_.dataset, "-", absl::ToUnixMillis(absl::Now()));
  e.direction = "gap";
  e.contract_hash = contract_hash_;
  e.source = options_.provider;
  e.destination = options_.self;
  e.dataset = options_.dataset;
  e.at = absl::Now();
  e.purpose = purpose_;
  e.detail = s.error_message();
  audit::AuditChain chain(e.transaction_id);
  absl::StatusOr<audit::AuditLink> recorded = options_.audit->Record(chain, e);
  if (!recorded.ok()) {
    last_gap_.clear();  // try again on the next report
    log::Warning("gap not recorded in the audit log",
                 {{"error", std::string(recorded.status().message())}});
    return;
  }
  // The provider countersigns it before the next stream (CatchUpReceipts).
  MirrorCursor head;
  head.stream_id = chain.stream_id();
  head.audit_sequence = recorded->sequence;
  head.audit_hash = recorded->hash;
  unreceipted_gap_ = std::move(head);
}

void Subscriber::CatchUpReceipts(fv1::FederationService::Stub& stub,
                                 const MirrorCursor& committed) {
  if (options_.signer == nullptr) return;
  if (unreceipted_gap_.has_value()) {
    grpc::ClientContext ctx;
    if (Exchange(stub, *unreceipted_gap_, ctx)) unreceipted_gap_.reset();
  }
  if (committed.stream_id.empty() || committed.audit_sequence == 0) return;
  {
    absl::MutexLock lock(&mu_);
    if (receipted_.first == committed.stream_id && receipted_.second >= committed.audit_sequence)
      return;
  }
  grpc::ClientContext ctx;
  (void)Exchange(stub, committed, ctx);
}

namespace {

// Receipt exchanges off the write path: the writer posts its committed cursor (with the bytes
// committed so far) and goes on; one thread exchanges the newest posted cursor at a time — a
// newer post replaces one still waiting. Stop() cancels an exchange in flight.
class ReceiptPoster {
 public:
  using ExchangeFn = std::function<bool(const MirrorCursor&, grpc::ClientContext&)>;
  explicit ReceiptPoster(ExchangeFn exchange)
      : exchange_(std::move(exchange)), thread_([this] { Run(); }) {}
  ~ReceiptPoster() { Stop(); }

  void Post(const MirrorCursor& cursor, int64_t committed_bytes) {
    absl::MutexLock lock(&mu_);
    posted_ = Posted{cursor, committed_bytes};
    posted_at_ = absl::Now();
  }
  // Committed bytes the provider has acknowledged.
  int64_t acknowledged() const {
    absl::MutexLock lock(&mu_);
    return acknowledged_;
  }
  // When the last cursor was posted (or the poster started).
  absl::Time posted_at() const {
    absl::MutexLock lock(&mu_);
    return posted_at_;
  }
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      if (inflight_ != nullptr) inflight_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Posted {
    MirrorCursor cursor;
    int64_t committed_bytes = 0;
  };
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || posted_.has_value();
  }
  void Run() {
    while (true) {
      Posted p;
      grpc::ClientContext ctx;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &ReceiptPoster::HasWork));
        if (stopping_) return;
        p = *std::move(posted_);
        posted_.reset();
        inflight_ = &ctx;
      }
      const bool ok = exchange_(p.cursor, ctx);
      absl::MutexLock lock(&mu_);
      inflight_ = nullptr;
      if (ok) acknowledged_ = std::max(acknowledged_, p.committed_bytes);
    }
  }

  const ExchangeFn exchange_;
  mutable absl::Mutex mu_;
  std::optional<Posted> posted_ ABSL_GUARDED_BY(mu_);
  absl::Time posted_at_ ABSL_GUARDED_BY(mu_) = absl::Now();
  int64_t acknowledged_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* inflight_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace

bool Subscriber::Exchange(fv1::FederationService::Stub& stub, const MirrorCursor& cursor,
                          grpc::ClientContext& ctx) {
  if (options_.signer == nullptr) return false;
  absl::StatusOr<audit::Receipt> ours = options_.signer->Sign(
      cursor.stream_id, cursor.audit_sequence, cursor.audit_hash, absl::Now());
  auto fail = [&](const std::string& why) {
    absl::MutexLock lock(&mu_);
    ++state_.receipt_failures;
    log::Warning("receipt exchange failed", {{"dataset", options_.dataset},
                                             {"provider", options_.provider},
                                             {"stream", cursor.stream_id},
                                             {"error", why}});
    return false;
  };
  if (!ours.ok()) return fail(std::string(ours.status().message()));
  fv1::ExchangeReceiptsRequest req;
  *req.mutable_receipt() = ToProto(*ours);
  req.mutable_committed()->set_epoch(cursor.epoch);
  for (const auto& [p, o] : cursor.next_offsets)
    (*req.mutable_committed()->mutable_next_offsets())[p] = o;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  fv1::ExchangeReceiptsResponse resp;
  grpc::Status s = stub.ExchangeReceipts(&ctx, req, &resp);
  if (!s.ok()) return fail(s.error_message());
  const audit::Receipt theirs = FromProto(resp.receipt());
  absl::Status valid = options_.signer->Verify(theirs, options_.provider, cursor.stream_id);
  if (!valid.ok()) return fail(std::string(valid.message()));
  if (theirs.sequence < cursor.audit_sequence) {
    return fail(absl::StrCat("the provider receipted ", theirs.sequence, " batches offered; ",
                             cursor.audit_sequence, " were received"));
  }
  if (options_.audit != nullptr) {
    absl::Status kept = options_.audit->StoreReceipt(theirs);
    if (!kept.ok()) return fail(std::string(kept.message()));
  }
  absl::MutexLock lock(&mu_);
  ++state_.receipts;
  if (receipted_.first != cursor.stream_id || receipted_.second < cursor.audit_sequence) {
    receipted_ = {cursor.stream_id, cursor.audit_sequence};
  }
  return true;
}

grpc::Status Subscriber::StreamOnce(MirrorWriter& writer) {
  // A failed write left the cursor uncertain: resolve it before asking for the next batches.
  if (absl::Status r = writer.EnsureRecovered(); !r.ok()) {
    return grpc::Status(r.code() == absl::StatusCode::kFailedPrecondition
                            ? grpc::StatusCode::FAILED_PRECONDITION
                            : grpc::StatusCode::UNAVAILABLE,
                        std::string(r.message()));
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = options_.channel();
  if (!channel.ok()) {
    return grpc::Status(
        grpc::StatusCode::UNAUTHENTICATED,
        absl::StrCat("not dialled: this node's federation credentials cannot be used: ",
                     channel.status().message()));
  }
  auto stub = fv1::FederationService::NewStub(*channel);
  CatchUpReceipts(*stub, writer.cursor());
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
  contract_hash_ = options_.contract_hash;
  purpose_ = options_.purpose;
  if (options_.contract) {
    if (std::optional<trust::Contract> c = options_.contract(); c.has_value()) {
      contract_hash_ = c->Hash().value_or("");
      purpose_ = c->purpose;
    }
  }
  fv1::SubscribeRequest req;
  req.set_protocol_version(fv1::PROTOCOL_VERSION_1);
  req.set_dataset_id(options_.dataset);
  req.set_contract_id(options_.contract_id);
  req.set_max_unacknowledged_bytes(options_.max_unacknowledged_bytes);
  const MirrorCursor& cursor = writer.cursor();
  if (cursor.next_offsets.empty()) req.set_start_position(options_.start_position);
  if (!cursor.next_offsets.empty()) {
    req.mutable_cursor()->set_epoch(cursor.epoch);
    for (int32_t p = 0; p < options_.mirror_partitions; ++p) {
      auto it = cursor.next_offsets.find(p);
      (*req.mutable_cursor()->mutable_next_offsets())[p] =
          it == cursor.next_offsets.end() ? 0 : it->second;
    }
  }
  auto reader = stub->Subscribe(&ctx, req);
  // A pump thread queues the stream's messages while the writer commits, so everything that
  // arrived during one transaction goes into the next one (group commit). The queue is bounded
  // by the provider's window of unacknowledged bytes.
  absl::Mutex qmu;
  absl::CondVar qcv;
  std::deque<fv1::SubscribeResponse> queue;
  bool pumped_all = false;
  // A provider that ignores flow control would grow the queue without bound: past twice the
  // window asked for (plus one largest message) the pump stops reading and the stream ends.
  const int64_t queue_limit = 2 * options_.max_unacknowledged_bytes + (8 << 20);
  int64_t queued_bytes = 0;
  bool overflowed = false;
  std::thread pump([&] {
    fv1::SubscribeResponse m;
    while (reader->Read(&m)) {
      const int64_t n = static_cast<int64_t>(m.ByteSizeLong());
      absl::MutexLock lock(&qmu);
      if (queued_bytes + n > queue_limit) {
        overflowed = true;
        break;
      }
      queued_bytes += n;
      queue.push_back(std::move(m));
      m.Clear();
      qcv.Signal();
    }
    absl::MutexLock lock(&qmu);
    pumped_all = true;
    qcv.Signal();
  });
  bool opened = false;
  int64_t window = options_.max_unacknowledged_bytes;
  int64_t committed = 0;  // bytes committed on this stream
  ReceiptPoster receipts(
      [&](const MirrorCursor& c, grpc::ClientContext& x) { return Exchange(*stub, c, x); });
  int64_t newest_ms = 0;            // the newest mirrored record's timestamp
  std::map<int32_t, int64_t> high;  // the provider's high watermarks, from heartbeats
  std::optional<grpc::Status> failure;
  std::vector<MirrorBatch> pending;
  int64_t pending_bytes = 0;
  constexpr size_t kMaxBatchesPerTransaction = 64;
  // Commits the pending batches in one transaction; false (failure set) if it failed.
  auto flush = [&]() -> bool {
    if (pending.empty()) return true;
    absl::Status w = writer.WriteAll(pending);
    if (!w.ok()) {
      failure = grpc::Status(w.code() == absl::StatusCode::kFailedPrecondition
                                 ? grpc::StatusCode::FAILED_PRECONDITION
                                 : grpc::StatusCode::UNAVAILABLE,
                             std::string(w.message()));
      return false;
    }
    {
      absl::MutexLock lock(&mu_);
      for (const MirrorBatch& mb : pending) {
        for (const kafka::ConsumedRecord& r : mb.records)
          newest_ms = std::max(newest_ms, r.timestamp_ms);
        state_.records += static_cast<int64_t>(mb.records.size());
        ++state_.batches;
        auto hw = high.find(mb.partition);
        if (hw != high.end())
          state_.lag[mb.partition] = std::max<int64_t>(0, hw->second - mb.next_offset);
      }
      state_.bytes += pending_bytes;
    }
    // Acknowledge (and exchange receipts) every quarter window, and at least every interval.
    committed += pending_bytes;
    pending.clear();
    pending_bytes = 0;
    if ((committed - receipts.acknowledged()) * 4 >= window ||
        absl::Now() - receipts.posted_at() >= options_.receipt_interval) {
      receipts.Post(writer.cursor(), committed);
    }
    return true;
  };
  int64_t received = 0;  // record bytes received on this stream
  const auto ignored_flow_control = [&](int64_t beyond) {
    return grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("the provider ignored flow control: it sent ", beyond,
                     " bytes beyond what this node acknowledged (window ", window, ")"));
  };
  while (!failure.has_value()) {
    std::deque<fv1::SubscribeResponse> got;
    {
      absl::MutexLock lock(&qmu);
      while (queue.empty() && !pumped_all) qcv.Wait(&qmu);
      if (queue.empty()) {
        if (overflowed) failure = ignored_flow_control(queue_limit);
        break;  // the stream ended
      }
      got.swap(queue);
      queued_bytes = 0;
    }
    for (fv1::SubscribeResponse& msg : got) {
      if (failure.has_value()) break;
      if (msg.has_opened()) {
        if (msg.opened().partitions() != options_.mirror_partitions) {
          failure = grpc::Status(
              grpc::StatusCode::FAILED_PRECONDITION,
              absl::StrCat("the source has ", msg.opened().partitions(), " partitions, the mirror ",
                           options_.mirror_partitions, ": refusing to mirror"));
          break;
        }
        writer.BeginStream(msg.opened().stream_id(), msg.opened().epoch());
        // The provider may narrow the window asked for, never widen it.
        if (msg.opened().max_unacknowledged_bytes() > 0) {
          window =
              std::min(msg.opened().max_unacknowledged_bytes(), options_.max_unacknowledged_bytes);
        }
        opened = true;
        Set("streaming");
        continue;
      }
      if (msg.has_heartbeat()) {
        if (!flush()) break;
        if (opened && committed > receipts.acknowledged())
          receipts.Post(writer.cursor(), committed);
        absl::MutexLock lock(&mu_);
        int64_t total = 0;
        for (const auto& [p, hw] : msg.heartbeat().high_watermarks()) {
          high[p] = hw;
          auto it = writer.cursor().next_offsets.find(p);
          state_.lag[p] = std::max<int64_t>(
              0, hw - (it == writer.cursor().next_offsets.end() ? 0 : it->second));
          total += state_.lag[p];
        }
        state_.lag_seconds =
            total > 0 && newest_ms > 0
                ? std::max(0.0,
                           absl::ToDoubleSeconds(absl::Now() - absl::FromUnixMillis(newest_ms)))
                : 0.0;
        continue;
      }
      if (!msg.has_batch() || !opened) continue;
      const fv1::RecordBatch& b = msg.batch();
      if (b.partition() < 0 || b.partition() >= options_.mirror_partitions) {
        failure = grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("the provider sent a batch of partition ", b.partition(),
                         "; the mirror has ", options_.mirror_partitions, " partitions"));
        break;
      }
      for (int32_t id : b.schema_ids()) {
        if (schemas_seen_.insert(id).second && options_.on_schema) options_.on_schema(id);
      }
      MirrorBatch mb;
      mb.partition = b.partition();
      mb.next_offset = b.next_offset();
      mb.records.reserve(b.records_size());
      int64_t bytes = 0;
      for (const fv1::Record& r : b.records()) {
        kafka::ConsumedRecord c;
        c.partition = b.partition();
        c.offset = r.source_offset();
        c.key = r.key();
        c.value = r.value();
        for (const fv1::Header& h : r.headers()) c.headers.push_back({h.key(), h.value()});
        c.timestamp_ms = r.timestamp_ms();
        bytes +=
            ConsumedBytes(c);  // counted as the provider counts them, so both audit entries agree
        mb.records.push_back(std::move(c));
      }
      audit::AuditEntry& entry = mb.entry;
      entry.direction = "received";
      entry.contract_hash = contract_hash_;
      entry.source = options_.provider;
      entry.destination = options_.self;
      entry.dataset = options_.dataset;
      entry.partition = b.partition();
      entry.first_offset = mb.records.empty() ? b.next_offset() : mb.records.front().offset;
      entry.next_offset = b.next_offset();
      entry.records = static_cast<int64_t>(mb.records.size());
      entry.bytes = bytes;
      entry.at = absl::Now();
      entry.purpose = purpose_;
      pending.push_back(std::move(mb));
      pending_bytes += bytes;
      received += bytes;
      // A provider sends at most a window beyond what it saw acknowledged; this side learns of an
      // acknowledgement a moment later (at most one exchange, up to another window), plus a
      // batch of slack. A provider that keeps sending without receipts ends its stream.
      if (received - receipts.acknowledged() > 2 * window + (8 << 20)) {
        failure = ignored_flow_control(received - receipts.acknowledged());
        break;
      }
      // A transaction holds at most a quarter of the window, so acknowledgements (and the
      // provider's next batches) flow while the next one commits.
      if ((pending.size() >= kMaxBatchesPerTransaction || pending_bytes * 4 >= window) && !flush())
        break;
    }
    if (!failure.has_value()) flush();
  }
  if (failure.has_value()) ctx.TryCancel();
  pump.join();
  grpc::Status end = reader->Finish();
  receipts.Stop();
  if (failure.has_value()) return *failure;
  // The provider ended the stream on purpose (contract, certificate, schema version): it is
  // reachable, so hand over the last receipt of the stream.
  if (opened && committed > receipts.acknowledged() && !stop_ &&
      (end.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
       end.error_code() == grpc::StatusCode::FAILED_PRECONDITION)) {
    grpc::ClientContext last;
    Exchange(*stub, writer.cursor(), last);
  }
  return end;
}

}  // namespace node
}  // namespace polder
