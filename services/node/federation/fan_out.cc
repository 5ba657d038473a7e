#include "services/node/federation/fan_out.h"

#include <algorithm>
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"

namespace polder {
namespace node {

namespace {

// glibc malloc's chunk for a request of `n` bytes: 8 bytes of header, 16-byte aligned, 32 at
// least.
int64_t MallocChunk(size_t n) {
  return std::max<int64_t>(32, static_cast<int64_t>((n + 8 + 15) / 16 * 16));
}

// The heap buffer of a string (none while it fits libstdc++'s 15-byte inline buffer).
int64_t StringHeap(const std::string& s) {
  return s.capacity() > 15 ? MallocChunk(s.capacity() + 1) : 0;
}

std::string TailKey(const SourceTopic& source) {
  return absl::StrCat(source.topic, "@", source.epoch);
}

}  // namespace

// Follows one topic from the live edge into a ring of recent records, on its own thread, for as
// long as a stream holds it.
int64_t FanOut::HeldBytes(const kafka::ConsumedRecord& r) {
  // One allocation of make_shared: the record and the shared pointer's control block.
  int64_t n = MallocChunk(sizeof(kafka::ConsumedRecord) + 16);
  n += StringHeap(r.topic) + StringHeap(r.value) + (r.key ? StringHeap(*r.key) : 0);
  if (r.headers.capacity() > 0) n += MallocChunk(r.headers.capacity() * sizeof(kafka::Header));
  for (const kafka::Header& h : r.headers) n += StringHeap(h.key) + StringHeap(h.value);
  return n;
}

class FanOut::Tail {
 public:
  struct Entry {
    std::shared_ptr<const kafka::ConsumedRecord> record;
    int64_t bytes;
    uint64_t arrival;  // order of arrival over all partitions: the fairness of cutting
  };
  // The offsets [start, end) of one partition: everything a read_committed reader sees there is
  // in `entries` (aborted records and transaction markers take offsets but are never entries).
  struct Ring {
    int64_t start = 0;
    int64_t end = 0;
    std::deque<Entry> entries;
  };
  enum class Cut { kBatch, kNothing, kBehind, kNotFollowing };

  Tail(FanOut* owner, SourceTopic source) : owner_(owner), source_(std::move(source)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Tail() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  // Whether the ring follows the topic and `positions` lie before its start.
  bool Behind(const std::map<int32_t, int64_t>& positions) const {
    absl::MutexLock lock(&mu_);
    return ready_ && !CoversLocked(positions);
  }

  // Whether `positions` lie within the ring, every partition at or after its start.
  bool Covers(const std::map<int32_t, int64_t>& positions) const {
    absl::MutexLock lock(&mu_);
    return CoversLocked(positions);
  }

  // Cuts the next batch for a stream at `positions` (moved past the batch, and past markers
  // where nothing follows), waiting up to `wait` for records: kBehind if the ring no longer
  // holds a position (the stream must catch up), kNothing if nothing arrived in time.
  Cut Next(std::map<int32_t, int64_t>& positions, const BatchLimits& limits, absl::Duration wait,
           SourceBatch* batch) {
    const absl::Time deadline = absl::Now() + wait;
    std::vector<std::shared_ptr<const kafka::ConsumedRecord>> taken;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        if (ready_) {
          if (!CoversLocked(positions)) return Cut::kBehind;
          if (CutLocked(positions, limits, &taken, batch)) break;
        }
        if (stop_ || changed_.WaitWithDeadline(&mu_, deadline)) {
          if (!ready_) return Cut::kNotFollowing;
          if (!CoversLocked(positions)) return Cut::kBehind;
          if (CutLocked(positions, limits, &taken, batch)) break;
          return Cut::kNothing;
        }
      }
    }
    // The copies are made outside the lock: the ring's records are immutable.
    batch->records.reserve(taken.size());
    for (const auto& r : taken) batch->records.push_back(*r);
    return Cut::kBatch;
  }

  // Whether it follows the topic now (started, and its consumer did not fail since).
  bool following() const {
    absl::MutexLock lock(&mu_);
    return ready_;
  }

  int64_t bytes() const {
    absl::MutexLock lock(&mu_);
    return bytes_;
  }

  // The watermarks the tail's consumer last fetched (no broker call); UNAVAILABLE while it does
  // not follow the topic.
  absl::StatusOr<std::map<int32_t, int64_t>> HighWatermarks() const {
    absl::MutexLock lock(&mu_);
    if (!ready_ || consumer_ == nullptr) {
      return absl::UnavailableError("the dataset's tail does not follow its topic now");
    }
    std::map<int32_t, int64_t> out;
    for (const auto& [p, ring] : rings_) {
      ASSIGN_OR_RETURN(auto marks, consumer_->CachedWatermarks(source_.topic, p));
      // Before a fetch told it, the ring's end is the last stable offset known.
      out[p] = std::max(marks.second, ring.end);
    }
    return out;
  }

 private:
  bool CoversLocked(const std::map<int32_t, int64_t>& positions) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ready_) return false;
    for (const auto& [p, next] : positions) {
      auto r = rings_.find(p);
      if (r == rings_.end() || next < r->second.start) return false;
    }
    return true;
  }

  // The partition whose first unread record arrived first; positions where only markers
  // follow move to the ring's end. False if no record waits.
  bool CutLocked(std::map<int32_t, int64_t>& positions, const BatchLimits& limits,
                 std::vector<std::shared_ptr<const kafka::ConsumedRecord>>* taken,
                 SourceBatch* batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto first_unread = [](const Ring& ring, int64_t next) {
      return std::lower_bound(
          ring.entries.begin(), ring.entries.end(), next,
          [](const Entry& e, int64_t offset) { return e.record->offset < offset; });
    };
    int32_t best = -1;
    uint64_t best_arrival = 0;
    for (auto& [p, next] : positions) {
      const Ring& ring = rings_.at(p);
      auto it = first_unread(ring, next);
      if (it == ring.entries.end()) {
        next = std::max(next, ring.end);
        continue;
      }
      if (best < 0 || it->arrival < best_arrival) {
        best = p;
        best_arrival = it->arrival;
      }
    }
    if (best < 0) return false;
    const Ring& ring = rings_.at(best);
    batch->partition = best;
    batch->bytes = 0;
    auto it = first_unread(ring, positions[best]);
    for (; it != ring.entries.end() && static_cast<int32_t>(taken->size()) < limits.max_records;
         ++it) {
      const int64_t size = ConsumedBytes(*it->record);
      if (!taken->empty() && batch->bytes + size > limits.max_bytes) break;
      batch->bytes += size;
      taken->push_back(it->record);
    }
    // Everything the ring holds was taken: the batch also covers the markers up to its end.
    batch->next_offset = it == ring.entries.end() ? ring.end : taken->back()->offset + 1;
    positions[best] = batch->next_offset;
    return true;
  }

  void Run() {
    while (true) {
      absl::Status status = Follow();
      absl::MutexLock lock(&mu_);
      // Whatever the ring held says nothing about what follows: its streams catch up.
      ready_ = false;
      consumer_ = nullptr;
      rings_.clear();
      bytes_ = 0;
      changed_.SignalAll();
      if (stop_) return;
      ++owner_->tail_failures_;
      log::Warning("a fan-out tail stopped; its streams read on their own until it follows again",
                   {{"topic", source_.topic}, {"error", status.ToString()}});
      mu_.AwaitWithTimeout(absl::Condition(&stop_), owner_->options_.tail_retry);
      if (stop_) return;
    }
  }

  // Reads the topic from its last stable offsets until stopped; returns why it could not go on.
  absl::Status Follow() {
    const Options& o = owner_->options_;
    ASSIGN_OR_RETURN(std::unique_ptr<kafka::Consumer> consumer,
                     owner_->kafka_.NewConsumer(owner_->ReadingConsumer()));
    std::map<int32_t, Ring> rings;
    std::vector<kafka::TopicPartitionOffset> assignment;
    for (int32_t p = 0; p < source_.partitions; ++p) {
      ASSIGN_OR_RETURN(auto marks, consumer->QueryWatermarks(source_.topic, p, o.kafka_timeout));
      rings[p].start = rings[p].end = marks.second;
      assignment.push_back({source_.topic, p, marks.second});
    }
    RETURN_IF_ERROR(consumer->Assign(assignment));
    {
      absl::MutexLock lock(&mu_);
      rings_ = std::move(rings);
      consumer_ = consumer.get();
      ready_ = true;
      changed_.SignalAll();
    }
    // Before `consumer` goes, nothing may use it.
    absl::Cleanup forget = [this] {
      absl::MutexLock lock(&mu_);
      consumer_ = nullptr;
      ready_ = false;
    };
    constexpr int kPollRecords = 1000;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (stop_) return absl::CancelledError("stopped");
      }
      ASSIGN_OR_RETURN(std::vector<kafka::ConsumedRecord> records,
                       consumer->Poll(o.tail_poll, kPollRecords));
      // Everything fetched was handed out: positions also cover the markers that followed.
      std::map<int32_t, int64_t> positions;
      if (static_cast<int>(records.size()) < kPollRecords) {
        for (int32_t p = 0; p < source_.partitions; ++p) {
          absl::StatusOr<int64_t> pos = consumer->Position(source_.topic, p);
          if (pos.ok() && *pos >= 0) positions[p] = *pos;
        }
      }
      absl::MutexLock lock(&mu_);
      bool changed = false;
      for (kafka::ConsumedRecord& r : records) {
        auto ring = rings_.find(r.partition);
        if (ring == rings_.end() || r.offset < ring->second.end) continue;
        // The topic is the tail's, the same in every record: not kept per record.
        std::string().swap(r.topic);
        const int64_t size = FanOut::HeldBytes(r) + static_cast<int64_t>(sizeof(Entry));
        ring->second.end = r.offset + 1;
        ring->second.entries.push_back(
            {std::make_shared<const kafka::ConsumedRecord>(std::move(r)), size, ++arrivals_});
        bytes_ += size;
        changed = true;
      }
      for (const auto& [p, pos] : positions) {
        Ring& ring = rings_[p];
        if (pos > ring.end) {
          ring.end = pos;
          changed = true;
        }
      }
      // At its bound the ring drops its oldest records, over all partitions.
      while (bytes_ > o.tail_bytes) {
        Ring* oldest = nullptr;
        for (auto& [p, ring] : rings_) {
          if (ring.entries.empty()) continue;
          if (oldest == nullptr || ring.entries.front().arrival < oldest->entries.front().arrival) {
            oldest = &ring;
          }
        }
        if (oldest == nullptr) break;
        bytes_ -= oldest->entries.front().bytes;
        oldest->start = oldest->entries.front().record->offset + 1;
        oldest->entries.pop_front();
      }
      if (changed) changed_.SignalAll();
    }
  }

  FanOut* const owner_;
  const SourceTopic source_;
  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  std::map<int32_t, Ring> rings_ ABSL_GUARDED_BY(mu_);
  kafka::Consumer* consumer_ ABSL_GUARDED_BY(mu_) = nullptr;  // Follow's, while it follows
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t arrivals_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

// One stream's source: live on the tail, or catching up with a reader of its own.
class FanOut::TailSource : public StreamSource {
 public:
  TailSource(FanOut* owner, std::shared_ptr<Tail> tail, SourceTopic source,
             std::map<int32_t, int64_t> start, BatchLimits limits)
      : owner_(owner),
        tail_(std::move(tail)),
        source_(std::move(source)),
        limits_(limits),
        positions_(std::move(start)) {
    // While the tail has not started yet, a stream waits for it as a live one.
    if (tail_->Behind(positions_)) {
      Wait();
    } else {
      mode_ = Mode::kLive;
      ++owner_->live_;
    }
  }
  ~TailSource() override {
    switch (mode_) {
      case Mode::kLive:
        --owner_->live_;
        break;
      case Mode::kWaiting:
        owner_->Forget(ticket_);
        break;
      case Mode::kCatchingUp:
        reader_.reset();
        --owner_->catching_up_;
        owner_->Release();
        break;
    }
  }

  absl::StatusOr<std::optional<SourceBatch>> Next(absl::Duration wait) override {
    const absl::Time deadline = absl::Now() + wait;
    if (mode_ == Mode::kLive) {
      SourceBatch batch;
      switch (tail_->Next(positions_, limits_, wait, &batch)) {
        case Tail::Cut::kBatch:
          return std::optional<SourceBatch>(std::move(batch));
        case Tail::Cut::kNothing:
          not_following_since_ = absl::InfiniteFuture();
          return std::optional<SourceBatch>();
        case Tail::Cut::kNotFollowing:
          // The tail is starting, or its consumer failed: wait for it a while, then read on
          // our own rather than stall.
          if (not_following_since_ == absl::InfiniteFuture()) not_following_since_ = absl::Now();
          if (absl::Now() - not_following_since_ < owner_->options_.kafka_timeout) {
            return std::optional<SourceBatch>();
          }
          not_following_since_ = absl::InfiniteFuture();
          --owner_->live_;
          Wait();
          break;
        case Tail::Cut::kBehind:
          --owner_->live_;
          ++owner_->fell_behind_;
          Wait();
          break;
      }
    }
    if (mode_ == Mode::kWaiting) {
      if (!owner_->Acquire(ticket_, std::max(absl::ZeroDuration(), deadline - absl::Now()))) {
        return std::optional<SourceBatch>();
      }
      absl::StatusOr<std::unique_ptr<SourceReader>> reader =
          SourceReader::Create(owner_->kafka_, owner_->ReadingConsumer(), source_.topic, positions_,
                               limits_, owner_->options_.kafka_timeout);
      if (!reader.ok()) {
        owner_->Release();
        ticket_ = owner_->Enqueue();  // the stream ends with the error; the destructor forgets it
        return reader.status();
      }
      reader_ = *std::move(reader);
      mode_ = Mode::kCatchingUp;
      ++owner_->catching_up_;
    }
    ASSIGN_OR_RETURN(std::optional<SourceBatch> batch,
                     reader_->Next(std::max(absl::ZeroDuration(), deadline - absl::Now())));
    positions_ = reader_->positions();
    if (tail_->Covers(positions_)) {
      reader_.reset();
      owner_->Release();
      --owner_->catching_up_;
      mode_ = Mode::kLive;
      ++owner_->live_;
    }
    return batch;
  }

  // A catching-up stream asks its own consumer; the others take what the tail last fetched.
  absl::StatusOr<std::map<int32_t, int64_t>> HighWatermarks(absl::Duration timeout) override {
    if (mode_ == Mode::kCatchingUp) return reader_->HighWatermarks(timeout);
    return tail_->HighWatermarks();
  }

  const std::map<int32_t, int64_t>& positions() const override { return positions_; }

 private:
  enum class Mode { kLive, kWaiting, kCatchingUp };

  void Wait() {
    mode_ = Mode::kWaiting;
    ticket_ = owner_->Enqueue();
  }

  FanOut* const owner_;
  const std::shared_ptr<Tail> tail_;
  const SourceTopic source_;
  const BatchLimits limits_;
  std::map<int32_t, int64_t> positions_;
  Mode mode_ = Mode::kWaiting;
  uint64_t ticket_ = 0;
  std::unique_ptr<SourceReader> reader_;
  absl::Time not_following_since_ = absl::InfiniteFuture();
};

FanOut::FanOut(Options options, kafka::ClientFactory& kafka)
    : options_(std::move(options)), kafka_(kafka) {}

FanOut::~FanOut() = default;

kafka::ConsumerOptions FanOut::ReadingConsumer() const {
  kafka::ConsumerOptions o = options_.consumer;
  o.read_committed = true;
  o.client.properties["queued.max.messages.kbytes"] =
      std::to_string(std::max<int64_t>(1, options_.prefetch_bytes / 1024));
  return o;
}

std::shared_ptr<FanOut::Tail> FanOut::TailOf(const SourceTopic& source) {
  absl::MutexLock lock(&mu_);
  for (auto it = tails_.begin(); it != tails_.end();) {
    it = it->second.expired() ? tails_.erase(it) : std::next(it);
  }
  std::weak_ptr<Tail>& slot = tails_[TailKey(source)];
  if (std::shared_ptr<Tail> tail = slot.lock()) return tail;
  auto tail = std::make_shared<Tail>(this, source);
  slot = tail;
  return tail;
}

absl::StatusOr<std::unique_ptr<StreamSource>> FanOut::Open(const SourceTopic& source,
                                                           const StreamStart& start,
                                                           BatchLimits limits) {
  // The tail first: a stream starting at the live edge then starts within it.
  std::shared_ptr<Tail> tail = TailOf(source);
  // A consumer of the stream's own for its start: fresh metadata, and a slow broker delays only
  // this stream.
  kafka::ConsumerOptions o = options_.consumer;
  o.read_committed = true;
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::Consumer> lookup, kafka_.NewConsumer(o));
  using Offsets = std::map<int32_t, int64_t>;
  ASSIGN_OR_RETURN(Offsets positions, ResolveStart(*lookup, source, start, options_.kafka_timeout));
  RETURN_IF_ERROR(CheckWithinSource(*lookup, source.topic, positions, options_.kafka_timeout));
  return std::unique_ptr<StreamSource>(
      new TailSource(this, std::move(tail), source, std::move(positions), limits));
}

uint64_t FanOut::Enqueue() {
  absl::MutexLock lock(&mu_);
  const uint64_t ticket = ++next_ticket_;
  // Queued behind others, or every reader taken: this stream waits for its turn.
  if (!waiting_.empty() || readers_in_use_ >= options_.max_catchup_readers) ++waited_;
  waiting_.insert(ticket);
  return ticket;
}

bool FanOut::Acquire(uint64_t ticket, absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  auto turn = [this, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return readers_in_use_ < options_.max_catchup_readers && !waiting_.empty() &&
           *waiting_.begin() == ticket;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&turn), wait)) return false;
  waiting_.erase(ticket);
  ++readers_in_use_;
  return true;
}

void FanOut::Forget(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  waiting_.erase(ticket);
}

void FanOut::Release() {
  absl::MutexLock lock(&mu_);
  --readers_in_use_;
}

FanOut::Stats FanOut::stats() const {
  Stats s;
  std::vector<std::shared_ptr<Tail>> tails;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, weak] : tails_) {
      if (std::shared_ptr<Tail> t = weak.lock()) tails.push_back(std::move(t));
    }
    s.waiting = static_cast<int64_t>(waiting_.size());
    s.waited = waited_;
  }
  for (const auto& t : tails) {
    if (t->following()) ++s.tails;
    s.tail_bytes += t->bytes();
  }
  s.live = live_;
  s.catching_up = catching_up_;
  s.fell_behind = fell_behind_;
  s.tail_failures = tail_failures_;
  return s;
}

}  // namespace node
}  // namespace polder
