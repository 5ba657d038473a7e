#include "services/node/ingest/publisher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/json/bounded.h"
#include "common/kafka/errors.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"
#include "services/node/ingest/validator.h"

namespace polder {
namespace node {

using nlohmann::json;

struct Publisher::Pending {
  PublishBatch batch;
  bool fenced = false;  // its transaction was fenced: nothing of it was committed
  std::string map_key;  // identity \n idempotency key; empty without a key
  int64_t bytes = 0;
  absl::StatusOr<PublishOutcome> result = absl::UnknownError("not committed");
  absl::Notification done;
};

namespace {

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

// Nothing of the batch reached Kafka in this attempt.
absl::Status Unavailable(absl::string_view why) {
  return absl::UnavailableError(absl::StrCat(
      why,
      "; nothing of the batch was committed: retry it (with the same idempotency key, if any)"));
}

// The batch may or may not have been committed. With an idempotency key a retry is safe; without
// one it may store the batch twice, and the caller must hear that.
absl::Status OutcomeUnknown(absl::string_view why, bool has_key) {
  return absl::UnavailableError(
      absl::StrCat(why, "; the batch may have been committed: ",
                   has_key ? "retry it with the same idempotency key (it is committed at most once)"
                           : "it has no idempotency key, so a retry may store it twice (send an "
                             "Idempotency-Key to retry safely)"));
}

}  // namespace

kafka::StateWriter::Options Publisher::StateOptions(const Options& options) {
  kafka::StateWriter::Options o;
  o.producer = options.producer;
  o.consumer = options.keys_consumer;
  o.state_topic = options.keys_topic;
  o.state_partition = options.keys_partition;
  o.timeout = options.publish_timeout;
  return o;
}

absl::StatusOr<std::unique_ptr<Publisher>> Publisher::Start(Options options,
                                                            kafka::ClientFactory& kafka) {
  if (options.producer.transactional_id.empty()) {
    return absl::InvalidArgumentError("the ingest publisher needs a transactional id");
  }
  std::unique_ptr<Publisher> p(new Publisher(std::move(options), kafka));
  RETURN_IF_ERROR(p->LoadLegacyKeys(kafka));
  RETURN_IF_ERROR(p->Recover());
  p->thread_ = std::thread([raw = p.get()] { raw->Loop(); });
  return p;
}

Publisher::~Publisher() { Stop(); }

void Publisher::Stop() {
  Drain();
  absl::MutexLock lock(&stop_mu_);
  if (thread_.joinable()) thread_.join();
}

void Publisher::Drain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool Publisher::fenced() const {
  absl::MutexLock lock(&mu_);
  return fenced_;
}

bool Publisher::accepting() const {
  absl::MutexLock lock(&mu_);
  return !fenced_ && !draining_;
}

bool Publisher::ready() const {
  absl::MutexLock lock(&mu_);
  return ready_ && !fenced_ && !draining_;
}

Publisher::Stats Publisher::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s = stats_;
  s.known_keys = static_cast<int64_t>(keys_.size());
  s.queued_bytes = queued_bytes_;
  return s;
}

std::optional<absl::StatusOr<PublishOutcome>> Publisher::Answered(const PublishBatch& batch) {
  auto it = keys_.find(absl::StrCat(batch.identity, "\n", batch.idempotency_key));
  if (it == keys_.end()) return std::nullopt;
  const KeyEntry& e = it->second;
  if (e.committed_at + options_.idempotency_window < Now()) {
    keys_.erase(it);
    return std::nullopt;
  }
  if (e.content_hash != batch.content_hash) {
    return absl::StatusOr<PublishOutcome>(absl::AlreadyExistsError(
        absl::StrCat("idempotency key '", batch.idempotency_key, "' was used at ",
                     Rfc3339(e.committed_at), " for a different batch (", e.records, " records of ",
                     e.dataset_id, "); use a new key for new data")));
  }
  return absl::StatusOr<PublishOutcome>(PublishOutcome{e.records, e.schema_id, true});
}

void Publisher::ForgetExpiredKeys() {
  const absl::Time cutoff = Now() - options_.idempotency_window;
  for (auto it = keys_.begin(); it != keys_.end();) {
    it = it->second.committed_at < cutoff ? keys_.erase(it) : std::next(it);
  }
}

absl::StatusOr<PublishOutcome> Publisher::Ticket::Wait() {
  if (deferred_) return deferred_();
  if (pending_ == nullptr) return immediate_;
  // The answer is bounded by publish_timeout (and a small margin) even if Kafka takes longer to
  // resolve the transaction: the caller retries with the same key.
  if (!pending_->done.WaitForNotificationWithTimeout(timeout_ + absl::Seconds(2))) {
    return OutcomeUnknown(
        absl::StrCat("the batch was not committed within ", absl::FormatDuration(timeout_)),
        !pending_->map_key.empty());
  }
  return pending_->result;
}

bool Publisher::Ticket::NothingCommitted() const {
  if (refused_ != nullptr) return true;
  return pending_ != nullptr && pending_->done.HasBeenNotified() && pending_->fenced;
}

PublishBatch Publisher::Ticket::TakeBack() {
  if (refused_ != nullptr) return std::move(refused_->batch);
  return pending_ != nullptr ? std::move(pending_->batch) : PublishBatch();
}

absl::StatusOr<PublishOutcome> Publisher::Publish(PublishBatch batch) {
  return Submit(std::move(batch)).Wait();
}

Publisher::Ticket Publisher::Submit(PublishBatch batch) {
  Ticket ticket;
  ticket.timeout_ = options_.publish_timeout;
  auto p = std::make_shared<Pending>();
  p->batch = std::move(batch);
  if (!p->batch.idempotency_key.empty())
    p->map_key = absl::StrCat(p->batch.identity, "\n", p->batch.idempotency_key);
  for (const kafka::ProducerRecord& r : p->batch.records) p->bytes += RecordBytes(r);
  {
    absl::MutexLock lock(&mu_);
    while (true) {
      if (fenced_) {
        ticket.immediate_ = absl::UnavailableError(
            "this node instance no longer publishes: another instance took over its transactional "
            "id (fenced)");
        ticket.refused_ = std::move(p);
        return ticket;
      }
      if (draining_) {
        ticket.immediate_ =
            absl::UnavailableError("the node is shutting down; retry against another instance");
        ticket.refused_ = std::move(p);
        return ticket;
      }
      if (p->map_key.empty()) break;
      if (auto answer = Answered(p->batch)) {
        ticket.immediate_ = *answer;
        return ticket;
      }
      auto it = in_flight_keys_.find(p->map_key);
      if (it == in_flight_keys_.end()) break;
      // The same key is being committed right now (a client retrying early): wait for it.
      std::shared_ptr<Pending> other = it->second;
      mu_.Unlock();
      const bool finished =
          other->done.WaitForNotificationWithTimeout(options_.publish_timeout + absl::Seconds(5));
      mu_.Lock();
      if (!finished) {
        ticket.immediate_ =
            Unavailable("a batch with the same idempotency key is still being committed");
        return ticket;
      }
    }
    if (!p->map_key.empty()) in_flight_keys_[p->map_key] = p;
    queue_.push_back(p);
    queued_bytes_ += p->bytes;
  }
  ticket.pending_ = std::move(p);
  return ticket;
}

absl::Status Publisher::LoadKey(const kafka::ConsumedRecord& r, int64_t* loaded) {
  json v = json_input::ParseOrDiscarded(r.value);
  if (!r.key || !v.is_object()) {
    log::Warning("skipped an unreadable ingest-key record", {{"offset", r.offset}});
    return absl::OkStatus();
  }
  KeyEntry e;
  e.content_hash = json_input::StringOr(v, "hash", "");
  e.dataset_id = json_input::StringOr(v, "dataset", "");
  e.schema_id = static_cast<int32_t>(json_input::IntOr(v, "schema_id", 0));
  e.records = static_cast<int32_t>(json_input::IntOr(v, "records", 0));
  e.committed_at = absl::FromUnixMillis(r.timestamp_ms);
  absl::MutexLock lock(&mu_);
  if (e.committed_at + options_.idempotency_window >= Now()) {
    keys_[*r.key] = std::move(e);
    ++*loaded;
  }
  return absl::OkStatus();
}

absl::Status Publisher::LoadLegacyKeys(kafka::ClientFactory& kafka) {
  if (options_.legacy_keys_topic.empty()) return absl::OkStatus();
  kafka::ConsumerOptions consumer = options_.keys_consumer;
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> probe = kafka.NewConsumer(consumer);
  if (!probe.ok()) return probe.status();
  // Only entries still inside the idempotency window can answer a retry.
  absl::StatusOr<int64_t> from = (*probe)->OffsetForTime(
      options_.legacy_keys_topic, 0, Now() - options_.idempotency_window, options_.publish_timeout);
  if (!from.ok()) {
    if (from.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();  // none
    return Prepend(from.status(), absl::StrCat("reading ", options_.legacy_keys_topic, ": "));
  }
  int64_t loaded = 0;
  absl::StatusOr<int64_t> end = kafka::ReadToEnd(
      kafka, consumer, options_.legacy_keys_topic, 0, *from, options_.publish_timeout,
      [&](const kafka::ConsumedRecord& r) -> absl::Status {
        if (!r.key || (options_.owns_legacy_key && !options_.owns_legacy_key(*r.key))) {
          return absl::OkStatus();
        }
        return LoadKey(r, &loaded);
      });
  if (!end.ok()) {
    if (end.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
    return Prepend(end.status(), absl::StrCat("reading ", options_.legacy_keys_topic, ": "));
  }
  if (loaded > 0) {
    log::Info("ingest keys read from the single-partition topic",
              {{"topic", options_.legacy_keys_topic},
               {"partition", options_.keys_partition},
               {"loaded", loaded}});
  }
  return absl::OkStatus();
}

absl::Status Publisher::Recover() {
  {
    absl::MutexLock lock(&mu_);
    ready_ = false;
  }
  const int64_t from = state_.next_state_offset();
  int64_t loaded = 0;
  absl::StatusOr<int64_t> through =
      state_.Recover([&](const kafka::ConsumedRecord& r) { return LoadKey(r, &loaded); });
  if (!through.ok()) return Prepend(through.status(), "starting the ingest producer: ");
  if (*through != from) {
    log::Info("ingest keys read", {{"topic", options_.keys_topic},
                                   {"partition", options_.keys_partition},
                                   {"through_offset", *through},
                                   {"loaded", loaded}});
  }
  std::vector<kafka::ProducerRecord> claim;
  if (options_.announce) claim = options_.announce();
  if ((!options_.data_topics.empty() || !claim.empty()) && state_.producer() != nullptr) {
    // The claim's topic too: its first record would otherwise wait for the producer's topic
    // scan (~1 s in librdkafka 2.0.2) before the partition is held.
    std::vector<std::string> topics = options_.data_topics;
    topics.push_back(options_.keys_topic);
    for (const kafka::ProducerRecord& r : claim) {
      if (std::find(topics.begin(), topics.end(), r.topic) == topics.end()) {
        topics.push_back(r.topic);
      }
    }
    if (absl::Status s = state_.producer()->PrepareTopics(topics, options_.publish_timeout);
        !s.ok()) {
      log::Warning("looking up the ingest topics", {{"error", std::string(s.message())}});
    }
  }
  if (options_.announce) {
    absl::Status s = state_.Transact([&]() -> absl::Status {
      for (const kafka::ProducerRecord& r : claim) RETURN_IF_ERROR(state_.producer()->Enqueue(r));
      return absl::OkStatus();
    });
    if (!s.ok()) {
      if (kafka::IsFenced(s)) {
        absl::MutexLock lock(&mu_);
        fenced_ = true;
      }
      return Prepend(s, "announcing the key partition's owner: ");
    }
  }
  absl::MutexLock lock(&mu_);
  ready_ = true;
  ++stats_.producer_recreations;
  return absl::OkStatus();
}

void Publisher::Loop() {
  while (true) {
    std::vector<std::shared_ptr<Pending>> group;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || draining_;
      };
      if (!mu_.AwaitWithTimeout(absl::Condition(&has_work), absl::Seconds(1))) {
        ForgetExpiredKeys();
        if (state_.needs_recovery() && !fenced_) {
          // Idle after a failure: recover now, so readiness comes back without waiting for traffic.
          mu_.Unlock();
          absl::Status s = Recover();
          if (!s.ok())
            log::Warning("ingest producer recovery", {{"error", std::string(s.message())}});
          mu_.Lock();
        }
        continue;
      }
      if (queue_.empty()) break;  // draining and nothing left
      // The next transaction starts no earlier than the producer's transaction_spacing allows:
      // what is published until then joins it (state_ is only used by this thread).
      mu_.AwaitWithDeadline(absl::Condition(&draining_), state_.next_transaction_at());
      int64_t bytes = 0;
      while (!queue_.empty() &&
             (group.empty() || bytes + queue_.front()->bytes <= options_.max_transaction_bytes)) {
        // One transaction holds a key once: a second batch with the same key waits in Publish.
        bytes += queue_.front()->bytes;
        queued_bytes_ -= queue_.front()->bytes;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    Commit(std::move(group));
  }
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

void Publisher::Commit(std::vector<std::shared_ptr<Pending>> group) {
  auto finish = [this](const std::shared_ptr<Pending>& p, absl::StatusOr<PublishOutcome> result)
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                      p->result = std::move(result);
                      if (!p->map_key.empty()) in_flight_keys_.erase(p->map_key);
                      p->done.Notify();
                    };
  bool fenced;
  {
    absl::MutexLock lock(&mu_);
    fenced = fenced_;
  }
  if (fenced) {
    absl::MutexLock lock(&mu_);
    for (auto& p : group) {
      p->fenced = true;
      finish(p, absl::UnavailableError("this node instance was fenced by another instance"));
    }
    return;
  }
  if (state_.needs_recovery()) {
    absl::Status s = Recover();
    if (!s.ok()) {
      log::Error("ingest producer recovery failed", {{"error", std::string(s.message())}});
      absl::MutexLock lock(&mu_);
      for (auto& p : group)
        finish(p, Unavailable(absl::StrCat("Kafka is unavailable: ", s.message())));
      return;
    }
    // Keys read during recovery may answer some of these batches (an earlier attempt committed).
    absl::MutexLock lock(&mu_);
    std::vector<std::shared_ptr<Pending>> rest;
    for (auto& p : group) {
      std::optional<absl::StatusOr<PublishOutcome>> answer;
      if (!p->map_key.empty()) answer = Answered(p->batch);
      if (answer.has_value()) {
        finish(p, *answer);
      } else {
        rest.push_back(p);
      }
    }
    group.swap(rest);
    if (group.empty()) return;
  }
  const absl::Time now = Now();
  auto fill = [&]() -> absl::Status {
    for (const auto& p : group) {
      // The commit decides; a record refused at once abandons the transaction.
      for (const kafka::ProducerRecord& r : p->batch.records) {
        RETURN_IF_ERROR(state_.producer()->Enqueue(r));
      }
      if (!p->map_key.empty()) {
        kafka::ProducerRecord entry;
        entry.topic = options_.keys_topic;
        entry.partition = options_.keys_partition;
        entry.key = p->map_key;
        entry.value = json{{"hash", p->batch.content_hash},
                           {"dataset", p->batch.dataset_id},
                           {"schema_id", p->batch.schema_id},
                           {"records", p->batch.records.size()}}
                          .dump();
        entry.timestamp_ms = absl::ToUnixMillis(now);
        RETURN_IF_ERROR(state_.producer()->Enqueue(entry));
      }
    }
    return absl::OkStatus();
  };
  absl::Status s = state_.Transact(fill);
  absl::MutexLock lock(&mu_);
  if (s.ok()) {
    ++stats_.transactions;
    for (auto& p : group) {
      if (!p->map_key.empty()) {
        keys_[p->map_key] = KeyEntry{p->batch.content_hash, p->batch.dataset_id, p->batch.schema_id,
                                     static_cast<int32_t>(p->batch.records.size()), now};
      }
      finish(p, PublishOutcome{static_cast<int32_t>(p->batch.records.size()), p->batch.schema_id,
                               false});
    }
    return;
  }
  ++stats_.failed_transactions;
  ready_ = false;
  if (kafka::IsFenced(s)) {
    fenced_ = true;
    log::Error(
        "ingest producer fenced: another instance took over this node's transactional id; ingest "
        "stops",
        {{"transactional_id", options_.producer.transactional_id},
         {"reason", std::string(s.message())}});
    for (auto& p : group) {
      p->fenced = true;
      finish(p, absl::UnavailableError("this node instance was fenced by another instance with its "
                                       "transactional id; nothing of the "
                                       "batch was acknowledged"));
    }
    return;
  }
  // Aborted, fatal, or outcome unknown: the state writer replaces the producer and re-reads the
  // keys before the next commit.
  log::Warning("ingest transaction failed",
               {{"batches", group.size()}, {"error", std::string(s.message())}});
  for (auto& p : group) {
    finish(p, OutcomeUnknown(absl::StrCat("Kafka did not confirm the commit: ", s.message()),
                             !p->map_key.empty()));
  }
}

}  // namespace node
}  // namespace polder
