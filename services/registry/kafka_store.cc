#include "services/registry/kafka_store.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/kafka/errors.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "services/registry/errors.h"

namespace polder {
namespace registry {

absl::StatusOr<std::unique_ptr<KafkaSchemaStore>> KafkaSchemaStore::Create(
    Options options, kafka::ClientFactory& kafka) {
  if (options.replica_id.empty()) return absl::InvalidArgumentError("registry replica_id is empty");
  if (options.federation.empty()) return absl::InvalidArgumentError("registry federation is empty");
  if (options.initial_primary.empty())
    return absl::InvalidArgumentError("registry primary is empty");
  return std::unique_ptr<KafkaSchemaStore>(new KafkaSchemaStore(std::move(options), kafka));
}

KafkaSchemaStore::~KafkaSchemaStore() {
  stop_ = true;
  if (role_thread_.joinable()) role_thread_.join();
  if (tail_thread_.joinable()) tail_thread_.join();
  absl::MutexLock lock(&write_mu_);
  writer_.reset();
}

void KafkaSchemaStore::RefreshSeenPrimary() {
  std::optional<Primary> p = registry_->primary();
  absl::MutexLock lock(&seen_mu_);
  seen_primary_ = p;
}

std::optional<Primary> KafkaSchemaStore::SeenPrimary() const {
  absl::MutexLock lock(&seen_mu_);
  return seen_primary_;
}

std::string KafkaSchemaStore::primary_replica() const {
  std::optional<Primary> p = SeenPrimary();
  return p.has_value() ? p->replica : options_.initial_primary;
}

absl::Status KafkaSchemaStore::Start() {
  if (registry_ == nullptr)
    return absl::FailedPreconditionError("registry store: no registry attached");
  ASSIGN_OR_RETURN(auto admin, kafka_.NewAdmin(options_.client));
  kafka::TopicSpec spec;
  spec.name = options_.topic;
  spec.partitions = 1;  // One partition: one total order of registry writes.
  spec.replication_factor = options_.replication_factor;
  spec.configs = {{"cleanup.policy", "compact"}, {"min.compaction.lag.ms", "0"}};
  absl::Status created = admin->CreateTopic(spec, options_.timeout);
  if (!created.ok() && !absl::IsAlreadyExists(created)) {
    return Prepend(created, absl::StrCat("creating ", options_.topic, ": "));
  }
  ASSIGN_OR_RETURN(kafka::TopicDescription d,
                   admin->DescribeTopic(options_.topic, options_.timeout));
  if (d.partitions != 1) {
    return absl::FailedPreconditionError(absl::StrCat(options_.topic, " has ", d.partitions,
                                                      " partitions; the registry needs exactly 1"));
  }
  auto policy = d.configs.find("cleanup.policy");
  if (policy == d.configs.end() || policy->second.value.find("compact") == std::string::npos) {
    log::Warning("registry topic is not compacted; it will grow without bound",
                 {{"topic", options_.topic}});
  }

  kafka::ConsumerOptions copts;
  copts.client = options_.client;
  copts.read_committed = true;
  ASSIGN_OR_RETURN(tail_, kafka_.NewConsumer(copts));
  // The end to catch up with is the high watermark, not the last stable offset: right after a
  // commit returns, the commit markers may not be written yet and the stable offset still lags,
  // so waiting for it would return before the records just committed are applied.
  kafka::ConsumerOptions mopts = copts;
  mopts.read_committed = false;
  ASSIGN_OR_RETURN(marks_, kafka_.NewConsumer(mopts));
  RETURN_IF_ERROR(tail_->Assign({{options_.topic, 0, kafka::kOffsetBeginning}}));
  tail_thread_ = std::thread([this] { TailLoop(); });
  // A transaction left open by a crashed primary holds read_committed readers back until the
  // broker aborts it (after the transaction timeout) or a new primary initialises: allow for it.
  RETURN_IF_ERROR(WaitCaughtUp(options_.timeout * 3));
  RefreshSeenPrimary();
  log::Info("registry state loaded", {{"topic", options_.topic},
                                      {"records_through_offset", registry_->applied_offset()},
                                      {"replica", options_.replica_id},
                                      {"primary", primary_replica()}});
  if (primary_replica() == options_.replica_id) {
    absl::MutexLock role(&role_mu_);
    RETURN_IF_ERROR(BecomePrimary());
  }
  role_thread_ = std::thread([this] { RoleLoop(); });
  return absl::OkStatus();
}

void KafkaSchemaStore::TailLoop() {
  while (!stop_) {
    absl::StatusOr<std::vector<kafka::ConsumedRecord>> batch =
        tail_->Poll(absl::Milliseconds(200), 1000);
    if (!batch.ok()) {
      log::Error("reading the registry topic", {{"error", std::string(batch.status().message())}});
      {
        absl::MutexLock lock(&tail_error_mu_);
        tail_error_ = std::string(batch.status().message());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    last_read_ok_ms_ = absl::ToUnixMillis(absl::Now());
    {
      absl::MutexLock lock(&tail_error_mu_);
      tail_error_.clear();
    }
    for (const kafka::ConsumedRecord& r : *batch) {
      StoreRecord rec{r.key.value_or(""),
                      r.tombstone ? std::nullopt : std::optional<std::string>(r.value)};
      absl::Status s = registry_->ApplyFromLog(rec, r.offset);
      if (!s.ok()) {
        log::Warning("skipped an unreadable registry record",
                     {{"offset", r.offset}, {"reason", std::string(s.message())}});
      }
    }
    absl::StatusOr<int64_t> pos = tail_->Position(options_.topic, 0);
    if (pos.ok() && *pos >= 0) position_ = *pos;
  }
}

KafkaSchemaStore::Status KafkaSchemaStore::status(absl::Duration timeout) const {
  Status s;
  s.primary = primary_.load();
  std::optional<Primary> p = SeenPrimary();
  s.primary_replica = p.has_value() ? p->replica : options_.initial_primary;
  s.epoch = p.has_value() ? p->epoch : -1;
  s.position = position_.load();
  s.last_read_ok = absl::FromUnixMillis(last_read_ok_ms_.load());
  absl::StatusOr<std::pair<int64_t, int64_t>> marks =
      marks_->QueryWatermarks(options_.topic, 0, timeout);
  if (marks.ok()) {
    s.end_offset = marks->second;
  } else {
    s.kafka_error = std::string(marks.status().message());
  }
  absl::MutexLock lock(&tail_error_mu_);
  if (s.kafka_error.empty()) s.kafka_error = tail_error_;
  return s;
}

absl::Status KafkaSchemaStore::WaitCaughtUp(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(auto marks, marks_->QueryWatermarks(options_.topic, 0, timeout));
  const int64_t end = marks.second;
  while (absl::Now() < deadline) {
    if (position_.load() >= end || registry_->applied_offset() >= end - 1) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return RegistryError(kOperationTimeout, absl::StrCat("registry did not read ", options_.topic,
                                                       " to its end (offset ", end, ") within ",
                                                       absl::FormatDuration(timeout),
                                                       "; read through ", position_.load()));
}

absl::StatusOr<int64_t> KafkaSchemaStore::Commit(const std::vector<StoreRecord>& records) {
  absl::MutexLock lock(&write_mu_);
  if (!primary_ || writer_ == nullptr || writer_->needs_recovery()) {
    return RegistryError(kNotPrimary, absl::StrCat("this registry replica ('", options_.replica_id,
                                                   "') is not the primary; send writes to '",
                                                   primary_replica(), "'"));
  }
  // Shared with the delivery callbacks, which may outlive this call if it fails.
  struct Deliveries {
    absl::Mutex mu;
    int64_t last ABSL_GUARDED_BY(mu) = -1;
  };
  auto deliveries = std::make_shared<Deliveries>();
  auto fill = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) -> absl::Status {
    for (const StoreRecord& r : records) {
      kafka::ProducerRecord pr;
      pr.topic = options_.topic;
      pr.partition = 0;
      pr.key = r.key;
      pr.tombstone = !r.value.has_value();
      pr.value = r.value.value_or("");
      writer_->producer()->Send(
          std::move(pr), [deliveries](absl::StatusOr<kafka::RecordMetadata> md) {
            if (!md.ok()) return;  // The transaction's outcome decides; it fails as a whole.
            absl::MutexLock l(&deliveries->mu);
            deliveries->last = std::max(deliveries->last, md->offset);
          });
    }
    return absl::OkStatus();
  };
  absl::Status s = writer_->Transact(fill);
  // Every delivery callback has run.
  if (s.ok()) s = writer_->producer()->Flush(options_.timeout);
  if (!s.ok()) {
    if (writer_->fenced()) {
      std::optional<Primary> p = SeenPrimary();
      if (p.has_value() && p->replica == options_.replica_id) fenced_at_epoch_ = p->epoch;
      primary_ = false;
      writer_.reset();
      log::Error("registry primary fenced by a newer primary; stepping down",
                 {{"replica", options_.replica_id}, {"reason", std::string(s.message())}});
      return RegistryError(
          kNotPrimary, absl::StrCat("this replica was fenced by a newer primary: ", s.message()));
    }
    // The transaction failed, or its outcome is unknown: the producer may be stuck in it.
    // A new producer with the same id resolves it (completing or aborting it at the
    // coordinator); the registry syncs with the log before its next write.
    log::Warning("registry write failed; replacing the transactional producer",
                 {{"reason", std::string(s.message())}});
    writer_->Invalidate();
    absl::Status fresh = writer_->Recover(nullptr).status();
    if (!fresh.ok()) {
      writer_.reset();
      primary_ = false;  // Not fenced: the role loop takes the role again when it can.
      log::Error("registry primary cannot write; stepping down until Kafka recovers",
                 {{"reason", std::string(fresh.message())}});
    }
    return RegistryError(kStoreError,
                         absl::StrCat("storing in ", options_.topic, " failed: ", s.message()));
  }
  absl::MutexLock l(&deliveries->mu);
  if (deliveries->last < 0)
    return RegistryError(kStoreError, "committed, but no offsets were reported");
  return deliveries->last;
}

absl::StatusOr<std::unique_ptr<kafka::StateWriter>> KafkaSchemaStore::NewWriter() {
  kafka::StateWriter::Options o;
  o.producer.client = options_.client;
  o.producer.delivery_timeout = options_.timeout;
  o.producer.transaction_timeout =
      options_.timeout;  // A crashed primary's open transaction ends soon.
  o.producer.transactional_id = absl::StrCat("polder-registry-", options_.federation);
  o.timeout = options_.timeout;
  // No state topic here: the tail thread reads the log; WaitCaughtUp syncs with it.
  auto writer = std::make_unique<kafka::StateWriter>(kafka_, std::move(o));
  RETURN_IF_ERROR(writer->Recover(nullptr).status());
  return writer;
}

absl::Status KafkaSchemaStore::BecomePrimary() {
  {
    absl::MutexLock lock(&write_mu_);
    if (primary_) return absl::OkStatus();
    ASSIGN_OR_RETURN(writer_, NewWriter());
  }
  // Everything the previous primary committed is applied before we assign ids.
  absl::Status caught_up = WaitCaughtUp(options_.timeout);
  if (!caught_up.ok()) {
    absl::MutexLock lock(&write_mu_);
    writer_.reset();
    return caught_up;
  }
  primary_ = true;
  std::optional<Primary> current = registry_->primary();
  Primary me{options_.replica_id, current.has_value() ? current->epoch + 1 : 1};
  absl::Status written = registry_->WritePrimary(me);
  RefreshSeenPrimary();
  if (!written.ok()) {
    StepDown(absl::StrCat("could not record the primary: ", written.message()));
    return written;
  }
  log::Info("registry replica is now the primary",
            {{"replica", options_.replica_id}, {"epoch", me.epoch}});
  return absl::OkStatus();
}

void KafkaSchemaStore::StepDown(const std::string& why) {
  absl::MutexLock lock(&write_mu_);
  if (!primary_ && writer_ == nullptr) return;
  primary_ = false;
  writer_.reset();
  log::Warning("registry replica stepped down",
               {{"replica", options_.replica_id}, {"reason", why}});
}

absl::Status KafkaSchemaStore::MakePrimary(const std::string& replica) {
  absl::MutexLock role(&role_mu_);
  if (replica == options_.replica_id) {
    {
      absl::MutexLock lock(&write_mu_);
      fenced_at_epoch_ = -1;  // An explicit request overrides a past fencing.
    }
    return BecomePrimary();
  }
  if (!primary_) {
    return absl::FailedPreconditionError(
        absl::StrCat("replica '", options_.replica_id, "' is not the primary (the primary is '",
                     primary_replica(), "'); ask the primary to hand over, or ask '", replica,
                     "' to take over"));
  }
  std::optional<Primary> current = registry_->primary();
  RETURN_IF_ERROR(registry_->WritePrimary({replica, current.has_value() ? current->epoch + 1 : 1}));
  RefreshSeenPrimary();
  StepDown(absl::StrCat("handed over to '", replica, "'"));
  return absl::OkStatus();
}

void KafkaSchemaStore::RoleLoop() {
  while (!stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    absl::MutexLock role(&role_mu_);
    RefreshSeenPrimary();
    std::optional<Primary> record = SeenPrimary();
    const std::string desired = record.has_value() ? record->replica : options_.initial_primary;
    const int64_t epoch = record.has_value() ? record->epoch : 0;
    if (desired == options_.replica_id && !primary_) {
      int64_t fenced_at;
      {
        absl::MutexLock lock(&write_mu_);
        fenced_at = fenced_at_epoch_;
      }
      if (epoch > fenced_at) {
        absl::Status s = BecomePrimary();
        if (!s.ok())
          log::Error("taking over as registry primary", {{"error", std::string(s.message())}});
      }
    } else if (desired != options_.replica_id && primary_) {
      StepDown(absl::StrCat("the primary record names '", desired, "'"));
    }
  }
}

}  // namespace registry
}  // namespace polder
