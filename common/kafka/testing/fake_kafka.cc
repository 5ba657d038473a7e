#include "common/kafka/testing/fake_kafka.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/kafka/errors.h"
#include "common/status/status_macros.h"

namespace polder {
namespace kafka {
namespace testing {

namespace {

enum class TxnState { kOpen, kCommitted, kAborted };

struct Txn {
  std::string transactional_id;
  TxnState state = TxnState::kOpen;
  absl::Time deadline;
  std::set<std::pair<std::string, int32_t>> partitions;
  // A send of this transaction failed: it can only be aborted.
  bool failed = false;
};

struct Entry {
  ConsumedRecord record;
  bool marker = false;
  std::shared_ptr<Txn> txn;  // null: not transactional
};

struct Partition {
  int64_t log_start = 0;
  std::vector<Entry> log;  // offset == index
  int64_t end() const { return static_cast<int64_t>(log.size()); }
};

struct Topic {
  TopicSpec spec;
  std::vector<Partition> partitions;
  int32_t next_unkeyed = 0;
};

struct TransactionalId {
  int64_t epoch = 0;
  std::shared_ptr<Txn> open;
};

struct Fault {
  FakeOp op;
  absl::Status status;
  int remaining;
  std::string who;
};

struct CommitRule {
  CommitFault fault;
  std::string transactional_id;
  absl::Status status;
};

absl::Status Transport(absl::string_view context) {
  KafkaErrorFlags flags;
  flags.retriable = true;
  return MakeKafkaError(absl::StatusCode::kUnavailable, "_TRANSPORT", context,
                        "Broker transport failure (fake: down)", flags);
}

absl::Status UnknownTopic(const std::string& topic, int32_t partition) {
  return MakeKafkaError(absl::StatusCode::kNotFound, "UNKNOWN_TOPIC_OR_PART",
                        absl::StrCat(topic, "[", partition, "]"),
                        "Broker: Unknown topic or partition", {});
}

absl::Status Fenced(absl::string_view context) {
  KafkaErrorFlags flags;
  flags.fatal = true;
  flags.fenced = true;
  return MakeKafkaError(
      absl::StatusCode::kFailedPrecondition, "PRODUCER_FENCED", context,
      "Broker: producer fenced by a newer instance with the same transactional id", flags);
}

absl::Status State(absl::string_view context, absl::string_view what) {
  return MakeKafkaError(absl::StatusCode::kFailedPrecondition, "_STATE", context, what, {});
}

}  // namespace

class FakeGroupMember;

class FakeKafka::Impl {
 public:
  absl::Mutex mu;
  std::map<std::string, Topic> topics ABSL_GUARDED_BY(mu);
  std::map<std::string, TransactionalId> ids ABSL_GUARDED_BY(mu);
  std::vector<Fault> faults ABSL_GUARDED_BY(mu);
  std::vector<CommitRule> commit_rules ABSL_GUARDED_BY(mu);
  bool down ABSL_GUARDED_BY(mu) = false;
  // Bumped on every change a reader may wait for.
  int64_t version ABSL_GUARDED_BY(mu) = 0;

  // Consumer groups. `rebalance_mu` serialises membership changes and the listener callbacks
  // they make (taken before `mu`, never while holding it).
  absl::Mutex rebalance_mu;
  // Members in join order, per group; a paused member (session expired, not told yet) is in
  // `zombies` instead.
  std::map<std::string, std::vector<FakeGroupMember*>> groups ABSL_GUARDED_BY(rebalance_mu);
  std::map<std::string, FakeGroupMember*> zombies ABSL_GUARDED_BY(rebalance_mu);
  // Static members that closed: their partitions wait for them (group → instance → partitions)
  // until they return or their session expires (ExpireStaticMember).
  std::map<std::string, std::map<std::string, std::set<TopicPartition>>> departed
      ABSL_GUARDED_BY(rebalance_mu);
  int64_t next_member ABSL_GUARDED_BY(rebalance_mu) = 0;

  void Rebalance(const std::string& group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(rebalance_mu);

  std::optional<absl::Status> TakeFault(FakeOp op, const std::string& client,
                                        const std::string& txn_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (auto it = faults.begin(); it != faults.end(); ++it) {
      if (it->op != op) continue;
      if (!it->who.empty() && !absl::StrContains(client, it->who) &&
          !absl::StrContains(txn_id, it->who))
        continue;
      absl::Status s = it->status;
      if (--it->remaining <= 0) faults.erase(it);
      return s;
    }
    return std::nullopt;
  }

  Partition* Find(const std::string& topic, int32_t partition) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = topics.find(topic);
    if (it == topics.end() || partition < 0 ||
        partition >= static_cast<int32_t>(it->second.partitions.size())) {
      return nullptr;
    }
    return &it->second.partitions[partition];
  }

  void EndTxn(const std::shared_ptr<Txn>& txn, bool commit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (txn->state != TxnState::kOpen) return;
    txn->state = commit ? TxnState::kCommitted : TxnState::kAborted;
    const int64_t now = absl::ToUnixMillis(absl::Now());
    for (const auto& [topic, partition] : txn->partitions) {
      Partition* p = Find(topic, partition);
      if (p == nullptr) continue;
      Entry marker;
      marker.marker = true;
      marker.txn = txn;
      marker.record.topic = topic;
      marker.record.partition = partition;
      marker.record.offset = p->end();
      marker.record.timestamp_ms = now;
      p->log.push_back(std::move(marker));
    }
    auto id = ids.find(txn->transactional_id);
    if (id != ids.end() && id->second.open == txn) id->second.open.reset();
    ++version;
  }

  // Aborts transactions open past their timeout, as the coordinator does.
  void Expire() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const absl::Time now = absl::Now();
    for (auto& [name, id] : ids) {
      if (id.open != nullptr && id.open->deadline <= now) {
        std::shared_ptr<Txn> txn = id.open;
        EndTxn(txn, false);
        ++id.epoch;  // the coordinator bumps the epoch: the owner is fenced
      }
    }
  }

  int64_t Lso(const Partition& p) const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    for (int64_t o = p.log_start; o < p.end(); ++o) {
      const Entry& e = p.log[o];
      if (!e.marker && e.txn != nullptr && e.txn->state == TxnState::kOpen) return o;
    }
    return p.end();
  }

  absl::StatusOr<RecordMetadata> Append(const ProducerRecord& record,
                                        const std::shared_ptr<Txn>& txn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = topics.find(record.topic);
    if (it == topics.end()) return UnknownTopic(record.topic, record.partition);
    Topic& t = it->second;
    const int32_t n = static_cast<int32_t>(t.partitions.size());
    int32_t partition = record.partition;
    if (partition == kAnyPartition) {
      partition = record.key.has_value() ? JavaPartition(*record.key, n) : (t.next_unkeyed++ % n);
    }
    if (partition < 0 || partition >= n) return UnknownTopic(record.topic, partition);
    Partition& p = t.partitions[partition];
    Entry e;
    e.record.topic = record.topic;
    e.record.partition = partition;
    e.record.offset = p.end();
    e.record.key = record.key;
    e.record.tombstone = record.tombstone;
    if (!record.tombstone) e.record.value = record.value;
    e.record.headers = record.headers;
    e.record.timestamp_ms =
        record.timestamp_ms != 0 ? record.timestamp_ms : absl::ToUnixMillis(absl::Now());
    e.txn = txn;
    if (txn != nullptr) txn->partitions.insert({record.topic, partition});
    RecordMetadata md{record.topic, partition, e.record.offset};
    p.log.push_back(std::move(e));
    ++version;
    return md;
  }
};

FakeKafka::FakeKafka() : impl_(std::make_unique<Impl>()) {}
FakeKafka::~FakeKafka() = default;

absl::Status FakeKafka::CreateTopic(const TopicSpec& spec) {
  absl::MutexLock lock(&impl_->mu);
  if (spec.name.empty() || spec.partitions < 1 || spec.replication_factor < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("topic '", spec.name, "': invalid name, partitions (", spec.partitions,
                     ") or replication factor (", spec.replication_factor, ")"));
  }
  if (impl_->topics.count(spec.name) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("topic '", spec.name, "' already exists"));
  }
  Topic t;
  t.spec = spec;
  t.partitions.resize(spec.partitions);
  impl_->topics.emplace(spec.name, std::move(t));
  return absl::OkStatus();
}

void FakeKafka::FailNext(FakeOp op, absl::Status status, int times, std::string who) {
  absl::MutexLock lock(&impl_->mu);
  impl_->faults.push_back({op, std::move(status), times, std::move(who)});
}

void FakeKafka::FailCommit(CommitFault fault, std::string transactional_id, absl::Status status) {
  absl::MutexLock lock(&impl_->mu);
  impl_->commit_rules.push_back({fault, std::move(transactional_id), std::move(status)});
}

void FakeKafka::SetDown(bool down) {
  absl::MutexLock lock(&impl_->mu);
  impl_->down = down;
  ++impl_->version;
}

void FakeKafka::Fence(const std::string& transactional_id) {
  absl::MutexLock lock(&impl_->mu);
  TransactionalId& id = impl_->ids[transactional_id];
  if (id.open != nullptr) {
    std::shared_ptr<Txn> txn = id.open;
    impl_->EndTxn(txn, false);
  }
  ++id.epoch;
}

std::vector<ConsumedRecord> FakeKafka::Committed(const std::string& topic, int32_t partition) {
  absl::MutexLock lock(&impl_->mu);
  impl_->Expire();
  std::vector<ConsumedRecord> out;
  const Partition* p = impl_->Find(topic, partition);
  if (p == nullptr) return out;
  const int64_t lso = impl_->Lso(*p);
  for (int64_t o = p->log_start; o < lso; ++o) {
    const Entry& e = p->log[o];
    if (e.marker || (e.txn != nullptr && e.txn->state != TxnState::kCommitted)) continue;
    out.push_back(e.record);
  }
  return out;
}

int64_t FakeKafka::EndOffset(const std::string& topic, int32_t partition) {
  absl::MutexLock lock(&impl_->mu);
  const Partition* p = impl_->Find(topic, partition);
  return p == nullptr ? -1 : p->end();
}

int64_t FakeKafka::LastStableOffset(const std::string& topic, int32_t partition) {
  absl::MutexLock lock(&impl_->mu);
  impl_->Expire();
  const Partition* p = impl_->Find(topic, partition);
  return p == nullptr ? -1 : impl_->Lso(*p);
}

int FakeKafka::OpenTransactions() {
  absl::MutexLock lock(&impl_->mu);
  impl_->Expire();
  int n = 0;
  for (const auto& [name, id] : impl_->ids) n += id.open != nullptr ? 1 : 0;
  return n;
}

int FakeKafka::Partitions(const std::string& topic) {
  absl::MutexLock lock(&impl_->mu);
  auto it = impl_->topics.find(topic);
  return it == impl_->topics.end() ? 0 : static_cast<int>(it->second.partitions.size());
}

namespace {

// Runs delivery callbacks on a thread of their own, in order.
class Deliverer {
 public:
  Deliverer() : thread_([this] { Loop(); }) {}
  ~Deliverer() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  void Add(Producer::DeliveryCallback done, absl::StatusOr<RecordMetadata> result) {
    absl::MutexLock lock(&mu_);
    queue_.emplace_back(std::move(done), std::move(result));
    ++unfinished_;
  }

  absl::Status Flush(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return unfinished_ == 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
      return absl::DeadlineExceededError(absl::StrCat(unfinished_, " record(s) still in flight"));
    }
    return absl::OkStatus();
  }

  int64_t InFlight() const {
    absl::MutexLock lock(&mu_);
    return unfinished_;
  }

 private:
  void Loop() {
    while (true) {
      std::pair<Producer::DeliveryCallback, absl::StatusOr<RecordMetadata>> item;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
        mu_.Await(absl::Condition(&ready));
        if (queue_.empty()) return;  // stopping, everything delivered
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      item.first(std::move(item.second));
      absl::MutexLock lock(&mu_);
      --unfinished_;
    }
  }

  mutable absl::Mutex mu_;
  std::deque<std::pair<Producer::DeliveryCallback, absl::StatusOr<RecordMetadata>>> queue_
      ABSL_GUARDED_BY(mu_);
  int64_t unfinished_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

absl::Status DeliveryTimeout(const std::string& topic) {
  KafkaErrorFlags flags;
  flags.retriable = true;
  return MakeKafkaError(absl::StatusCode::kUnavailable, "_MSG_TIMED_OUT",
                        absl::StrCat("producing to ", topic),
                        "Local: Message timed out (fake: down)", flags);
}

class FakeIdempotentProducer : public Producer {
 public:
  FakeIdempotentProducer(FakeKafka::Impl* k, ProducerOptions options)
      : k_(k), options_(std::move(options)) {}

  void Send(const ProducerRecord& record, DeliveryCallback done) override {
    absl::StatusOr<RecordMetadata> result;
    {
      absl::MutexLock lock(&k_->mu);
      if (std::optional<absl::Status> f =
              k_->TakeFault(FakeOp::kSend, options_.client.client_id, "")) {
        result = *f;
      } else if (k_->down) {
        result = DeliveryTimeout(record.topic);
      } else {
        result = k_->Append(record, nullptr);
      }
    }
    deliverer_.Add(std::move(done), std::move(result));
  }
  absl::Status Flush(absl::Duration timeout) override { return deliverer_.Flush(timeout); }
  int64_t InFlight() const override { return deliverer_.InFlight(); }

 private:
  FakeKafka::Impl* const k_;
  const ProducerOptions options_;
  Deliverer deliverer_;
};

class FakeTransactionalProducer : public TransactionalProducer {
 public:
  FakeTransactionalProducer(FakeKafka::Impl* k, ProducerOptions options)
      : k_(k), options_(std::move(options)) {}

  void Send(const ProducerRecord& record, DeliveryCallback done) override {
    absl::StatusOr<RecordMetadata> result;
    {
      absl::MutexLock lock(&k_->mu);
      result = Produce(record, nullptr);
    }
    deliverer_.Add(std::move(done), std::move(result));
  }
  absl::Status Enqueue(const ProducerRecord& record) override {
    absl::MutexLock lock(&k_->mu);
    bool refused = false;
    absl::StatusOr<RecordMetadata> result = Produce(record, &refused);
    // As librdkafka: only a record refused at once is an error here; a failed delivery fails
    // the transaction, and the commit reports it.
    return refused ? result.status() : absl::OkStatus();
  }
  absl::Status Flush(absl::Duration timeout) override { return deliverer_.Flush(timeout); }
  int64_t InFlight() const override { return deliverer_.InFlight(); }

  absl::Status InitTransactions(absl::Duration) override {
    absl::MutexLock lock(&k_->mu);
    if (dead_) return Crashed();
    if (initialised_) return State("initialising transactions", "Local: already initialised");
    if (auto f = k_->TakeFault(FakeOp::kInitTransactions, options_.client.client_id,
                               options_.transactional_id)) {
      return *f;
    }
    if (k_->down) return Transport("initialising transactions");
    TransactionalId& id = k_->ids[options_.transactional_id];
    if (id.open != nullptr) {
      std::shared_ptr<Txn> previous = id.open;
      k_->EndTxn(previous, false);  // the previous instance's open transaction
    }
    epoch_ = ++id.epoch;
    initialised_ = true;
    return absl::OkStatus();
  }

  absl::Status BeginTransaction() override {
    absl::MutexLock lock(&k_->mu);
    k_->Expire();
    RETURN_IF_ERROR(Alive("beginning transaction"));
    if (auto f = k_->TakeFault(FakeOp::kBeginTransaction, options_.client.client_id,
                               options_.transactional_id)) {
      return *f;
    }
    if (txn_ != nullptr)
      return State("beginning transaction", "Local: a transaction is in progress");
    txn_ = std::make_shared<Txn>();
    txn_->transactional_id = options_.transactional_id;
    txn_->deadline = absl::Now() + options_.transaction_timeout;
    k_->ids[options_.transactional_id].open = txn_;
    commit_reported_ = false;
    return absl::OkStatus();
  }

  absl::Status CommitTransaction(absl::Duration timeout) override {
    // Flush first, as librdkafka does: every record's callback has run when the commit returns.
    absl::Status flushed = deliverer_.Flush(timeout);
    absl::MutexLock lock(&k_->mu);
    k_->Expire();
    RETURN_IF_ERROR(Alive("committing transaction"));
    if (txn_ == nullptr) {
      // A commit resumed after a retriable error whose transaction did commit.
      if (last_committed_ != nullptr && !commit_reported_) {
        commit_reported_ = true;
        return absl::OkStatus();
      }
      return State("committing transaction", "Local: no transaction in progress");
    }
    if (!flushed.ok()) return flushed;
    if (txn_->state == TxnState::kAborted) {
      return Fenced("committing transaction: the coordinator aborted it (transaction timeout)");
    }
    if (txn_->failed) {
      KafkaErrorFlags flags;
      flags.txn_requires_abort = true;
      return MakeKafkaError(absl::StatusCode::kAborted, "_STATE", "committing transaction",
                            "Local: a record of the transaction failed: abort it", flags);
    }
    for (auto it = k_->commit_rules.begin(); it != k_->commit_rules.end(); ++it) {
      if (!it->transactional_id.empty() && it->transactional_id != options_.transactional_id)
        continue;
      CommitRule rule = *it;
      k_->commit_rules.erase(it);
      switch (rule.fault) {
        case CommitFault::kFailBeforeCommit:
          return rule.status;
        case CommitFault::kFailAfterCommit:
          k_->EndTxn(txn_, true);
          last_committed_ = std::move(txn_);
          commit_reported_ = false;
          return rule.status;
        case CommitFault::kCrashBeforeCommit:
          dead_ = true;
          return Crashed();
      }
    }
    if (k_->down) {
      KafkaErrorFlags flags;
      flags.retriable = true;
      return MakeKafkaError(absl::StatusCode::kUnavailable, "_TIMED_OUT", "committing transaction",
                            "Local: timed out (fake: down)", flags);
    }
    k_->EndTxn(txn_, true);
    last_committed_ = std::move(txn_);
    commit_reported_ = true;
    return absl::OkStatus();
  }

  absl::Status AbortTransaction(absl::Duration timeout) override {
    (void)deliverer_.Flush(timeout);
    absl::MutexLock lock(&k_->mu);
    k_->Expire();
    RETURN_IF_ERROR(Alive("aborting transaction"));
    if (auto f = k_->TakeFault(FakeOp::kAbortTransaction, options_.client.client_id,
                               options_.transactional_id)) {
      return *f;
    }
    if (txn_ == nullptr) return State("aborting transaction", "Local: no transaction in progress");
    if (k_->down) return Transport("aborting transaction");
    k_->EndTxn(txn_, false);
    txn_.reset();
    return absl::OkStatus();
  }

 private:
  // One record into the open transaction; `refused` (if given) is set when it was refused at
  // once rather than failing its delivery.
  absl::StatusOr<RecordMetadata> Produce(const ProducerRecord& record, bool* refused)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(k_->mu) {
    k_->Expire();
    bool at_once = true;
    absl::StatusOr<RecordMetadata> result;
    absl::Status alive = Alive("producing");
    if (!alive.ok()) {
      result = alive;
    } else if (txn_ == nullptr) {
      result = State("producing", "Local: no transaction in progress");
    } else if (txn_->state != TxnState::kOpen) {
      result = Fenced("producing: the transaction was aborted by the coordinator");
    } else if (std::optional<absl::Status> f = k_->TakeFault(
                   FakeOp::kSend, options_.client.client_id, options_.transactional_id)) {
      txn_->failed = true;
      at_once = false;
      result = *f;
    } else if (k_->down) {
      txn_->failed = true;
      at_once = false;
      result = DeliveryTimeout(record.topic);
    } else {
      result = k_->Append(record, txn_);
      if (!result.ok()) txn_->failed = true;
      at_once = false;
    }
    if (refused != nullptr) *refused = !result.ok() && at_once;
    return result;
  }

  // A dead process answers nothing: fatal, so no caller waits for it.
  absl::Status Crashed() const {
    KafkaErrorFlags flags;
    flags.fatal = true;
    return MakeKafkaError(absl::StatusCode::kUnavailable, "_FATAL",
                          absl::StrCat("producer ", options_.transactional_id),
                          "crashed (injected)", flags);
  }

  absl::Status Alive(absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k_->mu) {
    if (dead_) return Crashed();
    if (!initialised_) return State(what, "Local: InitTransactions has not run");
    if (k_->ids[options_.transactional_id].epoch != epoch_) {
      if (txn_ != nullptr) txn_.reset();
      return Fenced(what);
    }
    return absl::OkStatus();
  }

  FakeKafka::Impl* const k_;
  const ProducerOptions options_;
  bool initialised_ ABSL_GUARDED_BY(k_->mu) = false;
  bool dead_ ABSL_GUARDED_BY(k_->mu) = false;
  int64_t epoch_ ABSL_GUARDED_BY(k_->mu) = 0;
  std::shared_ptr<Txn> txn_ ABSL_GUARDED_BY(k_->mu);
  std::shared_ptr<Txn> last_committed_ ABSL_GUARDED_BY(k_->mu);
  bool commit_reported_ ABSL_GUARDED_BY(k_->mu) = false;
  Deliverer deliverer_;
};

class FakeConsumer : public Consumer {
 public:
  FakeConsumer(FakeKafka::Impl* k, ConsumerOptions options) : k_(k), options_(std::move(options)) {}

  absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) override {
    absl::MutexLock lock(&k_->mu);
    k_->Expire();
    std::vector<Cursor> cursors;
    for (const TopicPartitionOffset& tp : partitions) {
      if (tp.offset < kOffsetBeginning) {
        return absl::InvalidArgumentError(absl::StrCat("invalid start offset ", tp.offset, " for ",
                                                       tp.topic, "[", tp.partition, "]"));
      }
      Cursor c{tp.topic, tp.partition, tp.offset};
      if (tp.offset >= 0) {
        c.position = tp.offset;
      } else if (const Partition* p = k_->Find(tp.topic, tp.partition)) {
        c.position = Resolve(c, *p);
      }
      cursors.push_back(c);
    }
    cursors_ = std::move(cursors);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<ConsumedRecord>> Poll(absl::Duration timeout,
                                                   int max_records) override {
    const absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock lock(&k_->mu);
    if (auto f = k_->TakeFault(FakeOp::kPoll, options_.client.client_id, "")) return *f;
    while (true) {
      k_->Expire();
      std::vector<ConsumedRecord> out;
      if (!k_->down) {
        for (Cursor& c : cursors_) {
          const Partition* p = k_->Find(c.topic, c.partition);
          if (p == nullptr) return UnknownTopic(c.topic, c.partition);
          if (c.position < 0) c.position = Resolve(c, *p);
          if (c.position < p->log_start || c.position > p->end()) {
            if (!out.empty()) break;
            return MakeKafkaError(
                absl::StatusCode::kOutOfRange, "OFFSET_OUT_OF_RANGE",
                absl::StrCat("reading ", c.topic, "[", c.partition, "] at offset ", c.position),
                absl::StrCat("Broker: Offset out of range (log ", p->log_start, "..", p->end(),
                             ")"),
                {});
          }
          const int64_t limit = options_.read_committed ? k_->Lso(*p) : p->end();
          while (c.position < limit && static_cast<int>(out.size()) < max_records) {
            const Entry& e = p->log[c.position++];
            if (e.marker) continue;
            if (options_.read_committed && e.txn != nullptr && e.txn->state != TxnState::kCommitted)
              continue;
            out.push_back(e.record);
          }
        }
      }
      if (!out.empty()) return out;
      const int64_t seen = k_->version;
      auto changed = [this, seen]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(k_->mu) { return k_->version != seen; };
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return out;
      // Wake at least every 50 ms: transaction timeouts expire without a change to wait for.
      k_->mu.AwaitWithTimeout(absl::Condition(&changed), std::min(left, absl::Milliseconds(50)));
    }
  }

  absl::StatusOr<std::pair<int64_t, int64_t>> QueryWatermarks(const std::string& topic,
                                                              int32_t partition,
                                                              absl::Duration) override {
    absl::MutexLock lock(&k_->mu);
    k_->Expire();
    if (auto f = k_->TakeFault(FakeOp::kQueryWatermarks, options_.client.client_id, "")) return *f;
    if (k_->down)
      return Transport(absl::StrCat("querying watermarks of ", topic, "[", partition, "]"));
    const Partition* p = k_->Find(topic, partition);
    if (p == nullptr) return UnknownTopic(topic, partition);
    return std::make_pair(p->log_start, options_.read_committed ? k_->Lso(*p) : p->end());
  }

  absl::StatusOr<int64_t> OffsetForTime(const std::string& topic, int32_t partition, absl::Time at,
                                        absl::Duration) override {
    absl::MutexLock lock(&k_->mu);
    if (k_->down)
      return Transport(absl::StrCat("looking up the offset of ", topic, "[", partition, "]"));
    const Partition* p = k_->Find(topic, partition);
    if (p == nullptr) return UnknownTopic(topic, partition);
    const int64_t ms = absl::ToUnixMillis(at);
    for (int64_t o = p->log_start; o < p->end(); ++o) {
      if (!p->log[o].marker && p->log[o].record.timestamp_ms >= ms) return o;
    }
    return options_.read_committed ? k_->Lso(*p) : p->end();
  }

  absl::StatusOr<int64_t> Position(const std::string& topic, int32_t partition) override {
    absl::MutexLock lock(&k_->mu);
    for (const Cursor& c : cursors_) {
      if (c.topic == topic && c.partition == partition) return c.position;
    }
    return absl::NotFoundError(absl::StrCat(topic, "[", partition, "] is not assigned"));
  }

 private:
  struct Cursor {
    std::string topic;
    int32_t partition;
    int64_t offset;         // as assigned
    int64_t position = -1;  // next offset to read; -1 until resolved
  };

  // Where kOffsetBeginning / kOffsetEnd start.
  int64_t Resolve(const Cursor& c, const Partition& p) const ABSL_SHARED_LOCKS_REQUIRED(k_->mu) {
    if (c.offset >= 0) return c.offset;
    if (c.offset == kOffsetBeginning) return p.log_start;
    return options_.read_committed ? k_->Lso(p) : p.end();
  }

  FakeKafka::Impl* const k_;
  const ConsumerOptions options_;
  std::vector<Cursor> cursors_ ABSL_GUARDED_BY(k_->mu);
};

class FakeAdmin : public Admin {
 public:
  FakeAdmin(FakeKafka* kafka, FakeKafka::Impl* k, ClientOptions options)
      : kafka_(kafka), k_(k), options_(std::move(options)) {}

  absl::Status CreateTopic(const TopicSpec& spec, absl::Duration) override {
    {
      absl::MutexLock lock(&k_->mu);
      if (auto f = k_->TakeFault(FakeOp::kCreateTopic, options_.client_id, "")) return *f;
      if (k_->down) return Transport(absl::StrCat("creating topic ", spec.name));
    }
    return kafka_->CreateTopic(spec);
  }

  absl::StatusOr<TopicDescription> DescribeTopic(const std::string& name, absl::Duration) override {
    absl::MutexLock lock(&k_->mu);
    if (k_->down) return Transport(absl::StrCat("describing topic ", name));
    auto it = k_->topics.find(name);
    if (it == k_->topics.end())
      return absl::NotFoundError(absl::StrCat("topic '", name, "' does not exist"));
    TopicDescription d;
    d.name = name;
    d.partitions = static_cast<int>(it->second.partitions.size());
    d.replication_factor = it->second.spec.replication_factor;
    // The broker defaults a describe reports, overridden by the topic's own configs.
    d.configs = {{"cleanup.policy", {"delete", true, false, "DEFAULT_CONFIG"}},
                 {"min.insync.replicas", {"1", true, false, "DEFAULT_CONFIG"}},
                 {"max.message.bytes", {"1048588", true, false, "DEFAULT_CONFIG"}},
                 {"retention.ms", {"604800000", true, false, "DEFAULT_CONFIG"}}};
    for (const auto& [key, value] : it->second.spec.configs) {
      d.configs[key] = {value, false, false, "DYNAMIC_TOPIC_CONFIG"};
    }
    return d;
  }

  absl::Status DeleteRecords(const std::string& topic, const std::map<int32_t, int64_t>& before,
                             absl::Duration) override {
    absl::MutexLock lock(&k_->mu);
    if (k_->down) return Transport(absl::StrCat("deleting records of ", topic));
    for (const auto& [partition, offset] : before) {
      Partition* p = k_->Find(topic, partition);
      if (p == nullptr) return UnknownTopic(topic, partition);
      const int64_t to = offset == kOffsetEnd ? p->end() : offset;
      if (to < 0 || to > p->end()) {
        return absl::OutOfRangeError(absl::StrCat("offset ", offset, " is past the end of ", topic,
                                                  "[", partition, "] (", p->end(), ")"));
      }
      p->log_start = std::max(p->log_start, to);
    }
    ++k_->version;
    return absl::OkStatus();
  }

 private:
  FakeKafka* const kafka_;
  FakeKafka::Impl* const k_;
  const ClientOptions options_;
};

}  // namespace

// A group member over FakeKafka: membership changes (join, leave, PauseMember, ResumeMember)
// rebalance at once, on the thread that made the change, calling the listeners there.
class FakeGroupMember : public GroupMember {
 public:
  FakeGroupMember(FakeKafka::Impl* k, GroupOptions options, GroupListener* listener, std::string id)
      : k_(k), options_(std::move(options)), listener_(listener), id_(std::move(id)) {}

  ~FakeGroupMember() override {
    absl::MutexLock rebalance(&k_->rebalance_mu);
    auto zombie = k_->zombies.find(id_);
    if (zombie != k_->zombies.end()) {
      k_->zombies.erase(zombie);
      TakeAll(true);
      return;
    }
    const std::set<TopicPartition> held = Current();
    TakeAll(false);
    if (!options_.instance_id.empty()) {
      // A static member does not leave: its partitions wait for it.
      k_->departed[options_.group_id][options_.instance_id] = held;
    }
    auto& members = k_->groups[options_.group_id];
    members.erase(std::remove(members.begin(), members.end(), this), members.end());
    k_->Rebalance(options_.group_id);
  }

  std::vector<TopicPartition> Assignment() const override {
    absl::MutexLock lock(&mu_);
    return {assignment_.begin(), assignment_.end()};
  }
  std::string member_id() const override {
    absl::MutexLock lock(&mu_);
    return joined_ ? id_ : "";
  }
  bool joined() const override {
    absl::MutexLock lock(&mu_);
    return joined_;
  }
  int64_t rebalances() const override {
    absl::MutexLock lock(&mu_);
    return rebalances_;
  }

  const GroupOptions& options() const { return options_; }
  const std::string& id() const { return id_; }
  std::set<TopicPartition> Current() const {
    absl::MutexLock lock(&mu_);
    return assignment_;
  }
  // Revokes everything (told to the listener).
  void TakeAll(bool lost) {
    std::set<TopicPartition> all;
    {
      absl::MutexLock lock(&mu_);
      all.swap(assignment_);
      if (lost) joined_ = false;
    }
    if (!all.empty()) listener_->Revoked({all.begin(), all.end()}, lost);
  }
  void Revoke(const std::vector<TopicPartition>& partitions) {
    {
      absl::MutexLock lock(&mu_);
      for (const auto& tp : partitions) assignment_.erase(tp);
    }
    listener_->Revoked(partitions, false);
  }
  void Assign(const std::vector<TopicPartition>& partitions) {
    {
      absl::MutexLock lock(&mu_);
      assignment_.insert(partitions.begin(), partitions.end());
      joined_ = true;
      ++rebalances_;
    }
    listener_->Assigned(partitions);
  }

 private:
  FakeKafka::Impl* const k_;
  const GroupOptions options_;
  GroupListener* const listener_;
  const std::string id_;
  mutable absl::Mutex mu_;
  std::set<TopicPartition> assignment_ ABSL_GUARDED_BY(mu_);
  bool joined_ ABSL_GUARDED_BY(mu_) = false;
  int64_t rebalances_ ABSL_GUARDED_BY(mu_) = 0;
};

// Sticky and balanced, as cooperative-sticky: each member keeps what it holds up to its share,
// the rest goes to members below theirs; revocations are told before assignments.
void FakeKafka::Impl::Rebalance(const std::string& group) {
  std::vector<FakeGroupMember*>& members = groups[group];
  if (members.empty()) return;
  std::set<std::string> subscribed;
  for (FakeGroupMember* m : members) {
    subscribed.insert(m->options().topics.begin(), m->options().topics.end());
  }
  std::set<TopicPartition> all;
  {
    absl::MutexLock lock(&mu);
    for (const std::string& t : subscribed) {
      auto it = topics.find(t);
      if (it == topics.end()) continue;
      for (int32_t p = 0; p < static_cast<int32_t>(it->second.partitions.size()); ++p) {
        all.insert({t, p});
      }
    }
  }
  for (const auto& [instance, held] : departed[group]) {
    for (const TopicPartition& tp : held) all.erase(tp);  // waiting for their static member
  }
  const size_t n = all.size(), m = members.size();
  std::vector<std::set<TopicPartition>> current(m), target(m);
  std::set<TopicPartition> taken;
  for (size_t i = 0; i < m; ++i) {
    current[i] = members[i]->Current();
    const size_t share = n / m + (i < n % m ? 1 : 0);
    for (const TopicPartition& tp : current[i]) {
      if (target[i].size() < share && all.count(tp) > 0 && taken.insert(tp).second) {
        target[i].insert(tp);
      }
    }
  }
  auto next_free = all.begin();
  for (size_t i = 0; i < m; ++i) {
    const size_t share = n / m + (i < n % m ? 1 : 0);
    while (target[i].size() < share && next_free != all.end()) {
      if (taken.insert(*next_free).second) target[i].insert(*next_free);
      ++next_free;
    }
  }
  for (size_t i = 0; i < m; ++i) {
    std::vector<TopicPartition> revoked;
    for (const TopicPartition& tp : current[i]) {
      if (target[i].count(tp) == 0) revoked.push_back(tp);
    }
    if (!revoked.empty()) members[i]->Revoke(revoked);
  }
  for (size_t i = 0; i < m; ++i) {
    std::vector<TopicPartition> added;
    for (const TopicPartition& tp : target[i]) {
      if (current[i].count(tp) == 0) added.push_back(tp);
    }
    members[i]->Assign(added);
  }
}

std::vector<std::string> FakeKafka::GroupMembers(const std::string& group_id) {
  absl::MutexLock rebalance(&impl_->rebalance_mu);
  std::vector<std::string> out;
  for (FakeGroupMember* m : impl_->groups[group_id]) out.push_back(m->id());
  return out;
}

void FakeKafka::PauseMember(const std::string& member_id) {
  absl::MutexLock rebalance(&impl_->rebalance_mu);
  for (auto& [group, members] : impl_->groups) {
    for (auto it = members.begin(); it != members.end(); ++it) {
      if ((*it)->id() != member_id) continue;
      impl_->zombies[member_id] = *it;
      members.erase(it);
      // The others take its partitions; it still believes it holds them.
      impl_->Rebalance(group);
      return;
    }
  }
}

void FakeKafka::ResumeMember(const std::string& member_id) {
  absl::MutexLock rebalance(&impl_->rebalance_mu);
  auto it = impl_->zombies.find(member_id);
  if (it == impl_->zombies.end()) return;
  FakeGroupMember* m = it->second;
  impl_->zombies.erase(it);
  m->TakeAll(true);
  impl_->groups[m->options().group_id].push_back(m);
  impl_->Rebalance(m->options().group_id);
}

void FakeKafka::ExpireStaticMember(const std::string& group_id, const std::string& instance_id) {
  absl::MutexLock rebalance(&impl_->rebalance_mu);
  impl_->departed[group_id].erase(instance_id);
  impl_->Rebalance(group_id);
}

void FakeKafka::RebalanceGroup(const std::string& group_id) {
  absl::MutexLock rebalance(&impl_->rebalance_mu);
  impl_->Rebalance(group_id);
}

absl::StatusOr<std::unique_ptr<GroupMember>> FakeClientFactory::NewGroupMember(
    const GroupOptions& options, GroupListener* listener) {
  if (options.group_id.empty() || options.topics.empty() || listener == nullptr) {
    return absl::InvalidArgumentError("a group member needs a group id, topics and a listener");
  }
  {
    absl::MutexLock lock(&kafka_->impl_->mu);
    if (auto f = kafka_->impl_->TakeFault(FakeOp::kNewClient, options.client.client_id, ""))
      return *f;
  }
  FakeKafka::Impl* k = kafka_->impl_.get();
  absl::MutexLock rebalance(&k->rebalance_mu);
  auto m = std::make_unique<FakeGroupMember>(
      k, options, listener, absl::StrCat(options.client.client_id, "-", ++k->next_member));
  k->groups[options.group_id].push_back(m.get());
  if (!options.instance_id.empty()) {
    auto& departed = k->departed[options.group_id];
    auto it = departed.find(options.instance_id);
    if (it != departed.end()) {
      // A static member back under its instance id takes its partitions at once.
      const std::set<TopicPartition> held = std::move(it->second);
      departed.erase(it);
      m->Assign({held.begin(), held.end()});
    }
  }
  k->Rebalance(options.group_id);
  return std::unique_ptr<GroupMember>(std::move(m));
}

absl::StatusOr<std::unique_ptr<Producer>> FakeClientFactory::NewProducer(
    const ProducerOptions& options) {
  {
    absl::MutexLock lock(&kafka_->impl_->mu);
    if (auto f = kafka_->impl_->TakeFault(FakeOp::kNewClient, options.client.client_id, ""))
      return *f;
  }
  absl::MutexLock lock(&mu_);
  ++producers_;
  return std::unique_ptr<Producer>(new FakeIdempotentProducer(kafka_->impl_.get(), options));
}

absl::StatusOr<std::unique_ptr<TransactionalProducer>> FakeClientFactory::NewTransactionalProducer(
    const ProducerOptions& options) {
  if (options.transactional_id.empty()) {
    return absl::InvalidArgumentError("Kafka transactional producer needs a transactional_id");
  }
  {
    absl::MutexLock lock(&kafka_->impl_->mu);
    if (auto f = kafka_->impl_->TakeFault(FakeOp::kNewClient, options.client.client_id,
                                          options.transactional_id)) {
      return *f;
    }
  }
  absl::MutexLock lock(&mu_);
  ++producers_;
  return std::unique_ptr<TransactionalProducer>(
      new FakeTransactionalProducer(kafka_->impl_.get(), options));
}

absl::StatusOr<std::unique_ptr<Consumer>> FakeClientFactory::NewConsumer(
    const ConsumerOptions& options) {
  {
    absl::MutexLock lock(&kafka_->impl_->mu);
    if (auto f = kafka_->impl_->TakeFault(FakeOp::kNewClient, options.client.client_id, ""))
      return *f;
  }
  absl::MutexLock lock(&mu_);
  ++consumers_;
  return std::unique_ptr<Consumer>(new FakeConsumer(kafka_->impl_.get(), options));
}

absl::StatusOr<std::unique_ptr<Admin>> FakeClientFactory::NewAdmin(const ClientOptions& options) {
  {
    absl::MutexLock lock(&kafka_->impl_->mu);
    if (auto f = kafka_->impl_->TakeFault(FakeOp::kNewClient, options.client_id, "")) return *f;
  }
  return std::unique_ptr<Admin>(new FakeAdmin(kafka_, kafka_->impl_.get(), options));
}

int FakeClientFactory::producers_created() const {
  absl::MutexLock lock(&mu_);
  return producers_;
}

int FakeClientFactory::consumers_created() const {
  absl::MutexLock lock(&mu_);
  return consumers_;
}

}  // namespace testing
}  // namespace kafka
}  // namespace polder
