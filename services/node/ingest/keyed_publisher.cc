#include "services/node/ingest/keyed_publisher.h"

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/kafka/errors.h"
#include "common/kafka/partitioner.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"

namespace polder {
namespace node {
namespace {

absl::Status NoHolder(int32_t partition, absl::Duration timeout) {
  return absl::UnavailableError(absl::StrCat(
      partition < 0 ? std::string("no replica holds a key partition")
                    : absl::StrCat("no replica took key partition ", partition),
      " within ", absl::FormatDuration(timeout),
      " (a rebalance is moving it); nothing of the batch was committed: retry it (with the same "
      "idempotency key, if any)"));
}

void Add(Publisher::Stats* sum, const Publisher::Stats& s) {
  sum->transactions += s.transactions;
  sum->failed_transactions += s.failed_transactions;
  sum->producer_recreations += s.producer_recreations;
  sum->known_keys += s.known_keys;
  sum->queued_bytes += s.queued_bytes;
}

}  // namespace

int32_t KeyedPublisher::PartitionOf(const std::string& map_key) const {
  return kafka::JavaPartition(map_key, options_.partitions);
}

std::string KeyedPublisher::TransactionalIdOf(int32_t partition) const {
  return absl::StrCat("polder-ingest-", options_.city, "-k", partition);
}

absl::StatusOr<std::unique_ptr<KeyedPublisher>> KeyedPublisher::Start(Options options,
                                                                      kafka::ClientFactory& kafka,
                                                                      ReplicaForwarder* forwarder) {
  if (options.partitions < 1) {
    return absl::InvalidArgumentError("the keys topic needs at least one partition");
  }
  if (options.city.empty() || options.replica_id.empty()) {
    return absl::InvalidArgumentError("keyed ingest needs the city and the replica id");
  }
  std::unique_ptr<KeyedPublisher> p(new KeyedPublisher(std::move(options), kafka, forwarder));
  const Options& o = p->options_;
  ReplicaDirectory::Options dir;
  dir.consumer = o.publisher.keys_consumer;
  dir.topic = o.replicas_topic;
  ASSIGN_OR_RETURN(p->directory_, ReplicaDirectory::Start(dir, kafka));
  // This replica's address, for calls addressed to it by name.
  {
    kafka::ProducerOptions po = o.publisher.producer;
    po.transactional_id.clear();
    ASSIGN_OR_RETURN(std::unique_ptr<kafka::Producer> producer, kafka.NewProducer(po));
    RETURN_IF_ERROR(
        kafka::SendAndWait(*producer,
                           ReplicaDirectory::ReplicaRecord(
                               o.replicas_topic, {o.replica_id, o.internal_endpoint, absl::Now()}))
            .status());
  }
  kafka::GroupOptions group = o.group;
  group.group_id = absl::StrCat("polder-", o.city, "-keys");
  group.topics = {o.keys_topic};
  group.client.client_id = absl::StrCat("polder-", o.city, "-", o.replica_id, "-keys");
  // Static membership: a replica restarted (kill -9, a pod rescheduled under its name) takes its
  // partitions back at once instead of after its old session expired (ADR 0021).
  group.instance_id = o.replica_id;
  ASSIGN_OR_RETURN(p->member_, kafka.NewGroupMember(group, p.get()));
  return p;
}

KeyedPublisher::~KeyedPublisher() {
  Drain();
  std::vector<std::thread> retiring;
  {
    absl::MutexLock lock(&mu_);
    retiring.swap(retiring_);
  }
  for (std::thread& t : retiring) t.join();
  directory_.reset();
}

void KeyedPublisher::Drain() {
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
  }
  // Leaving the group revokes every partition (Revoked: each publisher commits what it queued).
  member_.reset();
}

bool KeyedPublisher::ready() const {
  {
    absl::MutexLock lock(&mu_);
    if (draining_) return false;
  }
  return member_ != nullptr && member_->joined() && assignments_done_.load() > 0 &&
         directory_->loaded();
}

bool KeyedPublisher::AwaitReady(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  while (!ready()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

std::vector<int32_t> KeyedPublisher::held() const {
  absl::MutexLock lock(&mu_);
  std::vector<int32_t> out;
  for (const auto& [k, pub] : held_) out.push_back(k);
  return out;
}

KeyedPublisher::Stats KeyedPublisher::stats() const {
  Stats s;
  std::vector<std::shared_ptr<Publisher>> pubs;
  {
    absl::MutexLock lock(&mu_);
    s.publishers = retired_;
    for (const auto& [k, pub] : held_) pubs.push_back(pub);
  }
  for (const auto& pub : pubs) Add(&s.publishers, pub->stats());
  s.partitions_held = static_cast<int64_t>(pubs.size());
  s.forwarded_ok = forwarded_ok_.load();
  s.forwarded_failed = forwarded_failed_.load();
  s.rebalances = member_ != nullptr ? member_->rebalances() : 0;
  return s;
}

std::shared_ptr<Publisher> KeyedPublisher::Held(int32_t partition) const {
  absl::MutexLock lock(&mu_);
  auto it = held_.find(partition);
  return it == held_.end() ? nullptr : it->second;
}

std::pair<int32_t, std::shared_ptr<Publisher>> KeyedPublisher::AnyHeld() {
  absl::MutexLock lock(&mu_);
  if (held_.empty()) return {-1, nullptr};
  auto it = held_.begin();
  std::advance(it, next_unkeyed_++ % held_.size());
  return *it;
}

Publisher::Ticket KeyedPublisher::Submit(PublishBatch batch) {
  {
    absl::MutexLock lock(&mu_);
    if (draining_) {
      return Publisher::Ticket::Deferred([]() -> absl::StatusOr<PublishOutcome> {
        return absl::UnavailableError("the node is shutting down; retry against another instance");
      });
    }
  }
  const int32_t partition =
      batch.idempotency_key.empty()
          ? -1
          : PartitionOf(absl::StrCat(batch.identity, "\n", batch.idempotency_key));
  std::shared_ptr<Publisher> pub = partition >= 0 ? Held(partition) : AnyHeld().second;
  const absl::Time deadline = absl::Now() + options_.publisher.publish_timeout;
  if (pub != nullptr && pub->accepting()) {
    // Committed here unless this replica turns out to be deposed (fenced) or gives the partition
    // up first: then nothing of it was committed and it goes to the new holder.
    auto local = std::make_shared<Publisher::Ticket>(pub->Submit(std::move(batch)));
    return Publisher::Ticket::Deferred([this, partition, local, deadline] {
      absl::StatusOr<PublishOutcome> r = local->Wait();
      if (r.ok() || !local->NothingCommitted()) return r;
      PublishBatch again = local->TakeBack();
      return Route(partition, again, deadline);
    });
  }
  auto shared = std::make_shared<PublishBatch>(std::move(batch));
  return Publisher::Ticket::Deferred(
      [this, partition, shared, deadline] { return Route(partition, *shared, deadline); });
}

absl::StatusOr<PublishOutcome> KeyedPublisher::Route(int32_t partition, const PublishBatch& batch,
                                                     absl::Time deadline) {
  const bool keyed = partition >= 0;
  int attempt = 0;
  while (true) {
    std::shared_ptr<Publisher> pub = keyed ? Held(partition) : AnyHeld().second;
    if (pub != nullptr && pub->accepting()) {
      Publisher::Ticket local = pub->Submit(batch);
      absl::StatusOr<PublishOutcome> r = local.Wait();
      // Deposed while it waited: nothing of it was committed here; find the new holder.
      if (r.ok() || !local.NothingCommitted()) return r;
    } else {
      std::optional<ReplicaAddress> owner;
      if (keyed) {
        owner = directory_->KeyOwner(partition);
      } else {
        std::vector<ReplicaAddress> others;
        for (auto& [k, a] : directory_->KeyOwners()) {
          if (a.replica != options_.replica_id) others.push_back(a);
        }
        if (!others.empty()) owner = others[attempt % others.size()];
      }
      if (owner.has_value() && owner->replica != options_.replica_id && forwarder_ != nullptr) {
        absl::StatusOr<PublishOutcome> r =
            forwarder_->ForwardPublish(owner->endpoint, partition, batch,
                                       std::max(deadline - absl::Now(), absl::Milliseconds(100)));
        const absl::StatusCode code = r.ok() ? absl::StatusCode::kOk : r.status().code();
        // Not the holder (the directory was behind): nothing was done, ask again. A keyed batch
        // is also retried after a failed call (its key commits it at most once); an unkeyed
        // one is answered (it may have been committed).
        const bool retry = code == absl::StatusCode::kFailedPrecondition ||
                           (keyed && (code == absl::StatusCode::kUnavailable ||
                                      code == absl::StatusCode::kDeadlineExceeded));
        if (!retry || absl::Now() >= deadline) {
          (r.ok() ? forwarded_ok_ : forwarded_failed_)++;
          return r;
        }
        log::Debug("forwarded batch retried", {{"partition", partition},
                                               {"replica", owner->replica},
                                               {"error", std::string(r.status().message())}});
      }
    }
    if (absl::Now() >= deadline) {
      forwarded_failed_++;
      return NoHolder(partition, options_.publisher.publish_timeout);
    }
    ++attempt;
    absl::SleepFor(std::min(absl::Milliseconds(20 * attempt), absl::Milliseconds(200)));
  }
}

absl::StatusOr<PublishOutcome> KeyedPublisher::PublishHeld(int32_t partition, PublishBatch batch) {
  std::shared_ptr<Publisher> pub = partition >= 0 ? Held(partition) : AnyHeld().second;
  auto not_held = [&] {
    return absl::FailedPreconditionError(
        partition < 0 ? absl::StrCat("replica ", options_.replica_id, " holds no key partition")
                      : absl::StrCat("replica ", options_.replica_id,
                                     " does not hold key partition ", partition));
  };
  if (pub == nullptr || !pub->accepting()) return not_held();
  Publisher::Ticket local = pub->Submit(std::move(batch));
  absl::StatusOr<PublishOutcome> r = local.Wait();
  // Deposed while it was queued: nothing of it was committed here; the caller asks the new holder.
  if (!r.ok() && local.NothingCommitted()) return not_held();
  return r;
}

void KeyedPublisher::AbortLegacyTransaction() {
  // A single node always made its keys topic: without one there is no old transaction to abort
  // (and a start does not pay another InitTransactions).
  if (options_.legacy_transactional_id.empty() || options_.legacy_keys_topic.empty()) return;
  kafka::ProducerOptions po = options_.publisher.producer;
  po.transactional_id = options_.legacy_transactional_id;
  absl::StatusOr<std::unique_ptr<kafka::TransactionalProducer>> legacy =
      kafka_.NewTransactionalProducer(po);
  absl::Status s = legacy.ok() ? (*legacy)->InitTransactions(options_.publisher.publish_timeout)
                               : legacy.status();
  if (!s.ok()) {
    log::Warning("could not initialise the single node's transactional id",
                 {{"transactional_id", po.transactional_id}, {"error", std::string(s.message())}});
  }
}

absl::StatusOr<std::unique_ptr<Publisher>> KeyedPublisher::StartPartition(int32_t partition) {
  if (partition == 0) AbortLegacyTransaction();
  Publisher::Options po = options_.publisher;
  po.producer.transactional_id = TransactionalIdOf(partition);
  po.producer.client.client_id = absl::StrCat(po.producer.client.client_id, "-k", partition);
  po.keys_topic = options_.keys_topic;
  po.keys_partition = partition;
  const ReplicaAddress self{options_.replica_id, options_.internal_endpoint, absl::Now()};
  const std::string replicas_topic = options_.replicas_topic;
  po.announce = [replicas_topic, partition, self] {
    return std::vector<kafka::ProducerRecord>{
        ReplicaDirectory::KeyClaim(replicas_topic, partition, self)};
  };
  po.legacy_keys_topic = options_.legacy_keys_topic;
  po.owns_legacy_key = [this, partition](const std::string& map_key) {
    return PartitionOf(map_key) == partition;
  };
  return Publisher::Start(std::move(po), kafka_);
}

void KeyedPublisher::Assigned(const std::vector<kafka::TopicPartition>& partitions) {
  struct Done {
    std::atomic<int64_t>* n;
    ~Done() { ++*n; }
  } done{&assignments_done_};
  if (partitions.empty()) return;
  // Each partition's producer is initialised (fencing the previous holder) and its keys read in
  // parallel; a partition that cannot start now is retried until it starts or is revoked.
  std::vector<std::thread> starters;
  for (const kafka::TopicPartition& tp : partitions) {
    starters.emplace_back([this, k = tp.partition] {
      const absl::Time deadline = absl::Now() + 4 * options_.publisher.publish_timeout;
      absl::Duration backoff = absl::Milliseconds(200);
      while (true) {
        {
          absl::MutexLock lock(&mu_);
          if (draining_) return;
        }
        absl::StatusOr<std::unique_ptr<Publisher>> pub = StartPartition(k);
        if (pub.ok()) {
          absl::MutexLock lock(&mu_);
          held_[k] = std::shared_ptr<Publisher>(std::move(*pub));
          log::Info("key partition held", {{"partition", k},
                                           {"replica", options_.replica_id},
                                           {"transactional_id", TransactionalIdOf(k)}});
          return;
        }
        // Fenced while starting: a newer holder exists, the group will say so.
        if (kafka::IsFenced(pub.status()) || absl::Now() > deadline) {
          log::Error("key partition not started",
                     {{"partition", k}, {"error", std::string(pub.status().message())}});
          return;
        }
        log::Warning("key partition start retried",
                     {{"partition", k}, {"error", std::string(pub.status().message())}});
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, absl::Seconds(5));
      }
    });
  }
  for (std::thread& t : starters) t.join();
}

void KeyedPublisher::Revoked(const std::vector<kafka::TopicPartition>& partitions, bool lost) {
  std::vector<std::shared_ptr<Publisher>> stopping;
  {
    absl::MutexLock lock(&mu_);
    for (const kafka::TopicPartition& tp : partitions) {
      auto it = held_.find(tp.partition);
      if (it == held_.end()) continue;
      stopping.push_back(std::move(it->second));
      held_.erase(it);
    }
  }
  if (lost) {
    // The partitions may be held elsewhere already (the session expired): whatever these
    // publishers still commit is fenced by the new holder. They stop on their own thread, so the
    // member rejoins now instead of after their last commit attempts time out.
    for (const auto& pub : stopping) pub->Drain();
    absl::MutexLock lock(&mu_);
    retiring_.emplace_back([this, stopping] {
      for (const auto& pub : stopping) pub->Stop();
      absl::MutexLock retired(&mu_);
      for (const auto& pub : stopping) Add(&retired_, pub->stats());
    });
    log::Info("key partitions lost",
              {{"partitions", stopping.size()}, {"replica", options_.replica_id}});
    return;
  }
  // What each queued is committed before the partition goes.
  for (const auto& pub : stopping) pub->Stop();
  absl::MutexLock lock(&mu_);
  for (const auto& pub : stopping) Add(&retired_, pub->stats());
  if (!stopping.empty()) {
    std::vector<int32_t> ks;
    for (const auto& tp : partitions) ks.push_back(tp.partition);
    log::Info(
        "key partitions given up",
        {{"partitions", absl::StrJoin(ks, ",")}, {"replica", options_.replica_id}, {"lost", lost}});
  }
}

}  // namespace node
}  // namespace polder
