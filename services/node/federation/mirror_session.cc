#include "services/node/federation/mirror_session.h"

#include <algorithm>
#include <deque>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "services/node/federation/stream_audit.h"
#include "services/node/federation/wire_records.h"

namespace polder {
namespace node {

namespace fv1 = ::polder::federation::v1;

absl::string_view SubscriptionStatusName(SubscriptionStatus status) {
  switch (status) {
    case SubscriptionStatus::kStarting:
      return "starting";
    case SubscriptionStatus::kStreaming:
      return "streaming";
    case SubscriptionStatus::kReconnecting:
      return "reconnecting";
    case SubscriptionStatus::kRefused:
      return "refused";
    case SubscriptionStatus::kNoCredentials:
      return "no-credentials";
    case SubscriptionStatus::kFenced:
      return "fenced";
    case SubscriptionStatus::kStopped:
      return "stopped";
    case SubscriptionStatus::kElsewhere:
      return "elsewhere";
  }
  return "starting";
}

// ---- SubscriptionState ------------------------------------------------------------------------

SubscriptionCounters SubscriptionState::snapshot() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

void SubscriptionState::Set(SubscriptionStatus status, absl::string_view error) {
  absl::MutexLock lock(&mu_);
  counters_.status = status;
  if (!error.empty()) counters_.last_error = std::string(error);
}

void SubscriptionState::Reconnecting() {
  absl::MutexLock lock(&mu_);
  ++counters_.reconnects;
}

void SubscriptionState::Gap() {
  absl::MutexLock lock(&mu_);
  ++counters_.gaps;
}

void SubscriptionState::Purged() {
  absl::MutexLock lock(&mu_);
  counters_.purged = true;
}

void SubscriptionState::ReceiptFailed() {
  absl::MutexLock lock(&mu_);
  ++counters_.receipt_failures;
}

void SubscriptionState::ReceiptKept(const std::string& stream_id, uint64_t sequence) {
  absl::MutexLock lock(&mu_);
  ++counters_.receipts;
  if (receipted_.first != stream_id || receipted_.second < sequence) {
    receipted_ = {stream_id, sequence};
  }
}

bool SubscriptionState::Receipted(const std::string& stream_id, uint64_t sequence) const {
  absl::MutexLock lock(&mu_);
  return receipted_.first == stream_id && receipted_.second >= sequence;
}

void SubscriptionState::Committed(const std::vector<MirrorBatch>& batches, int64_t bytes,
                                  const std::map<int32_t, int64_t>& high) {
  absl::MutexLock lock(&mu_);
  for (const MirrorBatch& mb : batches) {
    for (const fv1::Record& r : mb.batch.records())
      newest_ms_ = std::max(newest_ms_, r.timestamp_ms());
    counters_.records += mb.batch.records_size();
    ++counters_.batches;
    auto hw = high.find(mb.batch.partition());
    if (hw != high.end()) {
      counters_.lag[mb.batch.partition()] =
          std::max<int64_t>(0, hw->second - mb.batch.next_offset());
    }
  }
  counters_.bytes += bytes;
}

void SubscriptionState::Heartbeat(const std::map<int32_t, int64_t>& high,
                                  const MirrorCursor& cursor) {
  absl::MutexLock lock(&mu_);
  int64_t total = 0;
  for (const auto& [p, hw] : high) {
    auto it = cursor.next_offsets.find(p);
    counters_.lag[p] =
        std::max<int64_t>(0, hw - (it == cursor.next_offsets.end() ? 0 : it->second));
    total += counters_.lag[p];
  }
  counters_.lag_seconds =
      total > 0 && newest_ms_ > 0
          ? std::max(0.0, absl::ToDoubleSeconds(absl::Now() - absl::FromUnixMillis(newest_ms_)))
          : 0.0;
}

void SubscriptionState::FeedQuality(const fv1::FeedQuality& quality) {
  absl::MutexLock lock(&mu_);
  counters_.feed_quality = quality;
}

// ---- Receipts -----------------------------------------------------------------------------------

bool CancelSlot::Arm(std::function<void()> cancel) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  cancel_ = std::move(cancel);
  return true;
}

void CancelSlot::Disarm() {
  absl::MutexLock lock(&mu_);
  cancel_ = nullptr;
}

void CancelSlot::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (cancel_) cancel_();
}

namespace {

// Receipt exchanges off the write path: the writer posts its committed cursor (with the bytes
// committed so far) and goes on; one thread exchanges the newest posted cursor at a time — a
// newer post replaces one still waiting. Stop() cancels an exchange in flight.
class ReceiptPoster {
 public:
  using ExchangeFn = std::function<bool(const MirrorCursor&, CancelSlot*)>;
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
      if (stopping_) return;
      stopping_ = true;
    }
    cancel_.Cancel();
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
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &ReceiptPoster::HasWork));
        if (stopping_) return;
        p = *std::move(posted_);
        posted_.reset();
      }
      const bool ok = exchange_(p.cursor, &cancel_);
      absl::MutexLock lock(&mu_);
      if (ok) acknowledged_ = std::max(acknowledged_, p.committed_bytes);
    }
  }

  const ExchangeFn exchange_;
  CancelSlot cancel_;
  mutable absl::Mutex mu_;
  std::optional<Posted> posted_ ABSL_GUARDED_BY(mu_);
  absl::Time posted_at_ ABSL_GUARDED_BY(mu_) = absl::Now();
  int64_t acknowledged_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the members above exist
};

absl::Status ProviderBrokeProtocol(int64_t beyond, int64_t window) {
  return absl::ResourceExhaustedError(
      absl::StrCat("the provider ignored flow control: it sent ", beyond,
                   " bytes beyond what this node acknowledged (window ", window, ")"));
}

}  // namespace

bool MirrorSession::ExchangeReceipt(ProviderConnection& provider, const MirrorCursor& cursor,
                                    CancelSlot* cancel) {
  if (options_.signer == nullptr) return false;
  auto fail = [&](absl::string_view why) {
    state_->ReceiptFailed();
    log::Warning("receipt exchange failed", {{"dataset", options_.dataset},
                                             {"provider", options_.provider},
                                             {"stream", cursor.stream_id},
                                             {"error", std::string(why)}});
    return false;
  };
  absl::StatusOr<audit::Receipt> ours =
      options_.signer->Sign(cursor.stream_id, cursor.audit_sequence, cursor.audit_hash, Now());
  if (!ours.ok()) return fail(ours.status().message());
  fv1::ExchangeReceiptsRequest req;
  *req.mutable_receipt() = ToProto(*ours);
  req.mutable_committed()->set_epoch(cursor.epoch);
  for (const auto& [p, o] : cursor.next_offsets) {
    (*req.mutable_committed()->mutable_next_offsets())[p] = o;
  }
  absl::StatusOr<fv1::ExchangeReceiptsResponse> resp = provider.ExchangeReceipts(req, cancel);
  if (!resp.ok()) return fail(resp.status().message());
  const audit::Receipt theirs = FromProto(resp->receipt());
  absl::Status valid = options_.signer->Verify(theirs, options_.provider, cursor.stream_id);
  if (!valid.ok()) return fail(valid.message());
  if (theirs.sequence < cursor.audit_sequence) {
    return fail(absl::StrCat("the provider receipted ", theirs.sequence, " batches offered; ",
                             cursor.audit_sequence, " were received"));
  }
  if (options_.audit != nullptr) {
    absl::Status kept = options_.audit->StoreReceipt(theirs);
    if (!kept.ok()) return fail(kept.message());
  }
  state_->ReceiptKept(cursor.stream_id, cursor.audit_sequence);
  return true;
}

void MirrorSession::CatchUpReceipts(ProviderConnection& provider, const MirrorCursor& committed) {
  if (options_.signer == nullptr) return;
  if (unreceipted_gap_.has_value() && ExchangeReceipt(provider, *unreceipted_gap_)) {
    unreceipted_gap_.reset();
  }
  if (committed.stream_id.empty() || committed.audit_sequence == 0) return;
  if (state_->Receipted(committed.stream_id, committed.audit_sequence)) return;
  (void)ExchangeReceipt(provider, committed);
}

void MirrorSession::RecordGap(const absl::Status& reported) {
  const std::string detail(reported.message());
  if (detail == last_gap_) return;  // the same gap, reported again on retry
  last_gap_ = detail;
  state_->Gap();
  log::Error("subscription gap: the provider no longer has what the mirror's cursor points at",
             {{"dataset", options_.dataset}, {"provider", options_.provider}, {"error", detail}});
  if (options_.audit == nullptr) return;
  const StreamParties parties{options_.provider, options_.self, options_.dataset,
                              contract_hash_,    purpose_,      "",
                              options_.view};
  audit::AuditEntry e = GapEntry(parties,
                                 absl::StrCat("gap-", options_.self, "-", options_.provider, "-",
                                              options_.dataset, "-", absl::ToUnixMillis(Now())),
                                 detail, Now());
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

fv1::SubscribeRequest MirrorSession::Request(const MirrorCursor& cursor,
                                             const std::string& previous_stream) const {
  fv1::SubscribeRequest req;
  req.set_protocol_version(fv1::PROTOCOL_VERSION_1);
  req.set_dataset_id(options_.dataset);
  req.set_contract_id(options_.contract_id);
  req.set_view_id(options_.view);
  req.set_max_unacknowledged_bytes(options_.max_unacknowledged_bytes);
  req.set_previous_stream_id(previous_stream);
  if (cursor.next_offsets.empty()) {
    req.set_start_position(options_.start_position);
    return req;
  }
  req.mutable_cursor()->set_epoch(cursor.epoch);
  for (int32_t p = 0; p < options_.mirror_partitions; ++p) {
    auto it = cursor.next_offsets.find(p);
    (*req.mutable_cursor()->mutable_next_offsets())[p] =
        it == cursor.next_offsets.end() ? 0 : it->second;
  }
  return req;
}

absl::Status MirrorSession::StreamOnce(MirrorWriter& writer, ProviderConnection& provider) {
  // A failed write left the cursor uncertain: resolve it before asking for the next batches.
  if (absl::Status r = writer.EnsureRecovered(); !r.ok()) {
    return r.code() == absl::StatusCode::kFailedPrecondition ? r
                                                             : absl::UnavailableError(r.message());
  }
  CatchUpReceipts(provider, writer.cursor());
  if (stop_->load()) return absl::CancelledError("the subscription is stopping");
  contract_hash_ = options_.contract_hash;
  purpose_ = options_.purpose;
  if (options_.contract) {
    if (std::optional<trust::Contract> c = options_.contract(); c.has_value()) {
      contract_hash_ = c->Hash().value_or("");
      purpose_ = c->purpose;
    }
  }
  const fv1::SubscribeRequest request = Request(writer.cursor(), writer.resumable_stream());
  provider.Subscribe(request);

  // The reader thread queues the stream's messages while the writer commits. The queue is
  // bounded by the provider's window: a provider that ignores flow control would grow it without
  // bound, so past twice the window asked for (plus one largest message) it stops reading and
  // the stream ends.
  absl::Mutex qmu;
  std::deque<fv1::SubscribeResponse> queue;
  bool pumped_all = false;
  const int64_t queue_limit = 2 * options_.max_unacknowledged_bytes + (8 << 20);
  int64_t queued_bytes = 0;
  bool overflowed = false;
  std::thread pump([&] {
    fv1::SubscribeResponse m;
    while (provider.Read(&m)) {
      const int64_t n = static_cast<int64_t>(m.ByteSizeLong());
      absl::MutexLock lock(&qmu);
      if (queued_bytes + n > queue_limit) {
        overflowed = true;
        break;
      }
      queued_bytes += n;
      queue.push_back(std::move(m));
      m.Clear();
    }
    absl::MutexLock lock(&qmu);
    pumped_all = true;
  });
  auto has_messages = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(qmu) {
    return !queue.empty() || pumped_all;
  };

  const StreamParties parties{options_.provider, options_.self, options_.dataset,
                              contract_hash_,    purpose_,      "",
                              options_.view};
  bool opened = false;
  int64_t window = options_.max_unacknowledged_bytes;
  int64_t committed = 0;  // bytes committed on this stream
  ReceiptPoster receipts([&](const MirrorCursor& c, CancelSlot* cancel) {
    return ExchangeReceipt(provider, c, cancel);
  });
  std::map<int32_t, int64_t> high;  // the provider's high watermarks, from heartbeats
  std::optional<absl::Status> failure;
  std::vector<MirrorBatch> pending;
  int64_t pending_bytes = 0;
  constexpr size_t kMaxBatchesPerTransaction = 64;
  // Commits the pending batches in one transaction; false (failure set) if it failed.
  auto flush = [&]() -> bool {
    if (pending.empty()) return true;
    absl::Status w = writer.WriteAll(pending);
    if (!w.ok()) {
      failure = w.code() == absl::StatusCode::kFailedPrecondition
                    ? w
                    : absl::UnavailableError(w.message());
      return false;
    }
    state_->Committed(pending, pending_bytes, high);
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
  bool first_entry = true;
  while (!failure.has_value()) {
    std::deque<fv1::SubscribeResponse> got;
    {
      absl::MutexLock lock(&qmu);
      qmu.Await(absl::Condition(&has_messages));
      // The next transaction starts no earlier than the writer allows (see
      // kafka::ProducerOptions::transaction_spacing): what arrives until then joins it.
      qmu.AwaitWithDeadline(absl::Condition(&pumped_all), writer.next_write_at());
      if (queue.empty()) {
        if (overflowed) failure = ProviderBrokeProtocol(queue_limit, window);
        break;  // the stream ended
      }
      got.swap(queue);
      queued_bytes = 0;
    }
    for (fv1::SubscribeResponse& msg : got) {
      if (failure.has_value()) break;
      if (msg.has_opened()) {
        if (msg.opened().partitions() != options_.mirror_partitions) {
          failure = absl::FailedPreconditionError(
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
        state_->Set(SubscriptionStatus::kStreaming);
        continue;
      }
      if (msg.has_heartbeat()) {
        if (!flush()) break;
        if (opened && committed > receipts.acknowledged())
          receipts.Post(writer.cursor(), committed);
        for (const auto& [p, hw] : msg.heartbeat().high_watermarks()) high[p] = hw;
        state_->Heartbeat(
            {msg.heartbeat().high_watermarks().begin(), msg.heartbeat().high_watermarks().end()},
            writer.cursor());
        if (msg.heartbeat().has_feed_quality()) {
          state_->FeedQuality(msg.heartbeat().feed_quality());
        }
        continue;
      }
      if (!msg.has_batch() || !opened) continue;
      fv1::RecordBatch* b = msg.mutable_batch();
      if (b->partition() < 0 || b->partition() >= options_.mirror_partitions) {
        failure = absl::InvalidArgumentError(
            absl::StrCat("the provider sent a batch of partition ", b->partition(),
                         "; the mirror has ", options_.mirror_partitions, " partitions"));
        break;
      }
      for (int32_t id : b->schema_ids()) {
        if (schemas_seen_.insert(id).second && options_.on_schema) options_.on_schema(id);
      }
      // Counted as the provider counts them, so both audit entries agree.
      int64_t bytes = 0;
      for (const fv1::Record& r : b->records()) bytes += WireRecordBytes(r);
      BatchFacts facts;
      facts.partition = b->partition();
      facts.first_offset = b->records().empty() ? b->next_offset() : b->records(0).source_offset();
      facts.next_offset = b->next_offset();
      facts.records = b->records_size();
      facts.bytes = bytes;
      MirrorBatch mb;
      mb.entry = BatchEntry(parties, AuditDirection::kReceived, facts, Now());
      if (first_entry) {
        // The stream's first entry names the stream it resumes and the cursor asked for, as the
        // provider's first entry does (ADR 0021 §4).
        ResumeFacts(request, &mb.entry);
        first_entry = false;
      }
      mb.batch.Swap(b);
      pending.push_back(std::move(mb));
      pending_bytes += bytes;
      received += bytes;
      // A provider sends at most a window beyond what it saw acknowledged; this side learns of an
      // acknowledgement a moment later (at most one exchange, up to another window), plus a
      // batch of slack. A provider that keeps sending without receipts ends its stream.
      if (received - receipts.acknowledged() > 2 * window + (8 << 20)) {
        failure = ProviderBrokeProtocol(received - receipts.acknowledged(), window);
        break;
      }
      // A transaction holds at most a quarter of the window, so acknowledgements (and the
      // provider's next batches) flow while the next one commits.
      if ((pending.size() >= kMaxBatchesPerTransaction || pending_bytes * 4 >= window) && !flush())
        break;
    }
    if (!failure.has_value()) flush();
  }
  if (failure.has_value()) provider.CancelStream();
  pump.join();
  absl::Status end = provider.FinishStream();
  receipts.Stop();
  if (failure.has_value()) return *failure;
  // The provider ended the stream on purpose (contract, certificate, schema version): it is
  // reachable, so hand over the last receipt of the stream.
  if (opened && committed > receipts.acknowledged() && !stop_->load() &&
      (end.code() == absl::StatusCode::kPermissionDenied ||
       end.code() == absl::StatusCode::kFailedPrecondition)) {
    ExchangeReceipt(provider, writer.cursor());
  }
  return end;
}

}  // namespace node
}  // namespace polder
