#include "common/kafka/rdkafka_producer.h"

#include <chrono>
#include <future>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/kafka/rdkafka_errors.h"
#include "common/status/status_macros.h"

namespace polder {
namespace kafka {

absl::StatusOr<std::map<std::string, std::string>> ProducerProperties(
    const ProducerOptions& options, bool transactional) {
  ASSIGN_OR_RETURN(auto props, CommonProperties(options.client));
  if (options.delivery_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("Kafka producer delivery_timeout must be positive");
  }
  if (options.client.request_timeout > options.delivery_timeout) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Kafka request_timeout (", absl::FormatDuration(options.client.request_timeout),
        ") must not exceed delivery_timeout (", absl::FormatDuration(options.delivery_timeout),
        ")"));
  }
  if (options.max_request_bytes < 1024) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Kafka producer max_request_bytes must be at least 1024, got ", options.max_request_bytes));
  }
  if (options.batch_bytes < 1 || options.batch_bytes > options.max_request_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Kafka producer batch_bytes (", options.batch_bytes,
        ") must be between 1 and max_request_bytes (", options.max_request_bytes, ")"));
  }
  if (options.max_buffered_records < 1) {
    return absl::InvalidArgumentError("Kafka producer max_buffered_records must be positive");
  }
  // Polder's guarantees: set last so ClientOptions::properties cannot weaken them.
  props["enable.idempotence"] = "true";
  props["acks"] = "all";
  props["partitioner"] = "murmur2_random";
  props["max.in.flight.requests.per.connection"] = "5";
  props["message.timeout.ms"] = Millis(options.delivery_timeout);
  props["request.timeout.ms"] = Millis(options.client.request_timeout);
  props["message.max.bytes"] = std::to_string(options.max_request_bytes);
  props["batch.size"] = std::to_string(options.batch_bytes);
  props["linger.ms"] = Millis(options.linger);
  props["queue.buffering.max.messages"] = std::to_string(options.max_buffered_records);
  props.erase("transactional.id");
  if (transactional) {
    if (options.transactional_id.empty()) {
      return absl::InvalidArgumentError("Kafka transactional producer needs a transactional_id");
    }
    if (options.transaction_timeout < options.delivery_timeout) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Kafka transaction_timeout (", absl::FormatDuration(options.transaction_timeout),
          ") must be at least delivery_timeout (", absl::FormatDuration(options.delivery_timeout),
          ")"));
    }
    props["transactional.id"] = options.transactional_id;
    props["transaction.timeout.ms"] = Millis(options.transaction_timeout);
  }
  return props;
}

namespace internal {
namespace {

// Fails every queued and in-flight record of `rk` (their delivery callbacks run with a purge
// error) and serves those callbacks, for at most a few seconds.
void PurgeAndDrain(rd_kafka_t* rk) {
  rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (rd_kafka_outq_len(rk) > 0 && absl::Now() < deadline) rd_kafka_poll(rk, 50);
}

}  // namespace

ProducerCore::ProducerCore(ProducerOptions options, bool transactional)
    : options_(std::move(options)), transactional_(transactional) {}

absl::StatusOr<HandlePtr> ProducerCore::NewHandle() {
  ASSIGN_OR_RETURN(auto props, ProducerProperties(options_, transactional_));
  ASSIGN_OR_RETURN(ConfPtr conf, BuildConf(props));
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &ProducerCore::OnDelivery);
  rd_kafka_conf_set_error_cb(conf.get(), &ProducerCore::OnError);
  rd_kafka_conf_set_opaque(conf.get(), this);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err);
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("creating Kafka producer: ", err));
  }
  conf.release();  // Owned by rk now.
  return HandlePtr(rk);
}

absl::Status ProducerCore::Start() {
  ASSIGN_OR_RETURN(HandlePtr rk, NewHandle());
  {
    absl::WriterMutexLock lock(&handle_mu_);
    rk_ = std::move(rk);
  }
  poller_ = std::thread([this] { PollLoop(); });
  return absl::OkStatus();
}

ProducerCore::~ProducerCore() {
  stop_ = true;
  if (poller_.joinable()) poller_.join();
  closing_ = true;
  HandlePtr rk;
  {
    absl::WriterMutexLock lock(&handle_mu_);
    rk = std::move(rk_);
  }
  if (rk != nullptr) {
    // Whatever is still queued was never acknowledged: report it (CANCELLED), then destroy.
    PurgeAndDrain(rk.get());
    rk.reset();
  }
  for (Pending* p : ClaimAll()) {
    Finish(p, absl::CancelledError("Kafka producer closed before the record was acknowledged"));
  }
}

void ProducerCore::PollLoop() {
  while (!stop_) {
    bool polled = WithHandle([](rd_kafka_t* rk) {
      if (rk == nullptr) return false;
      rd_kafka_poll(rk, 100);
      return true;
    });
    if (!polled) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (fatal_ && !transactional_) RecreateAfterFatal();
  }
}

void ProducerCore::RecreateAfterFatal() {
  // Take the broken handle out under the lock; Send sees no handle meanwhile and fails fast
  // with UNAVAILABLE. Callbacks run outside the lock, so they may call Send.
  HandlePtr old;
  {
    absl::WriterMutexLock lock(&handle_mu_);
    old = std::move(rk_);
  }
  if (old != nullptr) {
    NoteFatal(old.get());
    PurgeAndDrain(old.get());
    old.reset();
  }
  // Anything not reported by the purge is failed here: none of it was acknowledged.
  absl::Status why;
  {
    absl::MutexLock l(&mu_);
    why = last_fatal_;
  }
  for (Pending* p : ClaimAll()) {
    Finish(p,
           absl::UnavailableError(absl::StrCat(
               "record not acknowledged: the Kafka producer was recreated after ", why.message())));
  }
  absl::StatusOr<HandlePtr> fresh = NewHandle();
  if (!fresh.ok()) return;  // No handle: sends fail with UNAVAILABLE; the next loop retries.
  {
    absl::WriterMutexLock lock(&handle_mu_);
    rk_ = std::move(*fresh);
  }
  {
    absl::MutexLock l(&mu_);
    last_fatal_ = absl::OkStatus();
  }
  fatal_ = false;
  ++recreations_;
}

std::vector<ProducerCore::Pending*> ProducerCore::ClaimAll() {
  absl::MutexLock lock(&mu_);
  std::vector<Pending*> all(pending_.begin(), pending_.end());
  pending_.clear();
  return all;
}

void ProducerCore::Report(Pending* p, absl::StatusOr<RecordMetadata> result) {
  {
    absl::MutexLock lock(&mu_);
    if (pending_.erase(p) != 1) return;  // Already claimed (failed during a recreation).
  }
  Finish(p, std::move(result));
}

void ProducerCore::Finish(Pending* p, absl::StatusOr<RecordMetadata> result) {
  p->done(std::move(result));
  uint64_t seq = p->seq;
  delete p;
  absl::MutexLock lock(&mu_);
  unfinished_.erase(seq);
}

absl::Status ProducerCore::ErrorFor(rd_kafka_resp_err_t err, const char* context) {
  if (closing_ &&
      (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)) {
    return absl::CancelledError("Kafka producer closed before the record was acknowledged");
  }
  if (err == RD_KAFKA_RESP_ERR__FATAL || fatal_) {
    absl::Status why;
    {
      absl::MutexLock l(&mu_);
      why = last_fatal_;
    }
    if (transactional_) {
      // The owner must recreate the producer (or, if fenced, give up its role).
      KafkaErrorFlags flags;
      flags.fatal = true;
      if (why.ok()) return KafkaStatus(RD_KAFKA_RESP_ERR__FATAL, context, flags);
      return Prepend(why, absl::StrCat(context, ": "));
    }
    return absl::UnavailableError(
        absl::StrCat(context,
                     ": record not acknowledged, the Kafka producer hit a fatal error and is being "
                     "recreated",
                     why.ok() ? "" : absl::StrCat(" (", why.message(), ")")));
  }
  return KafkaStatus(err, context);
}

void ProducerCore::OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque) {
  auto* core = static_cast<ProducerCore*>(opaque);
  auto* p = static_cast<Pending*>(msg->_private);
  if (p == nullptr) return;
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    core->Report(p, core->ErrorFor(msg->err, "delivering record"));
    return;
  }
  RecordMetadata md;
  md.topic = rd_kafka_topic_name(msg->rkt);
  md.partition = msg->partition;
  md.offset = msg->offset;
  core->Report(p, std::move(md));
}

void ProducerCore::NoteFatal(rd_kafka_t* rk) {
  char reason[512] = {0};
  rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, reason, sizeof reason);
  if (orig == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  KafkaErrorFlags flags;
  flags.fatal = true;
  absl::MutexLock l(&mu_);
  if (last_fatal_.ok()) {
    last_fatal_ = KafkaStatus(orig, absl::StrCat("fatal producer error: ", reason), flags);
  }
  fatal_ = true;
}

void ProducerCore::OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* core = static_cast<ProducerCore*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__FATAL) core->NoteFatal(rk);
  // Other errors are informational (librdkafka retries); the log callback has them.
}

void ProducerCore::Send(const ProducerRecord& record, Producer::DeliveryCallback done) {
  auto* p = new Pending{this, std::move(done), 0};
  {
    absl::MutexLock lock(&mu_);
    p->seq = next_seq_++;
    unfinished_.insert(p->seq);
  }
  rd_kafka_resp_err_t err = WithHandle([&](rd_kafka_t* rk) {
    if (rk == nullptr || (fatal_ && !transactional_)) return RD_KAFKA_RESP_ERR__FATAL;
    // Registered under the handle lock, so a recreation either sees it in librdkafka (the purge
    // reports it) or in pending_ (claimed and failed), never half-way.
    {
      absl::MutexLock lock(&mu_);
      pending_.insert(p);
    }
    rd_kafka_resp_err_t e = Produce(rk, record, p);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // Refused: librdkafka does not hold it, and no recreation can claim it while we hold
      // the handle lock, so it is ours alone again.
      absl::MutexLock lock(&mu_);
      pending_.erase(p);
    }
    if (e == RD_KAFKA_RESP_ERR__FATAL) NoteFatal(rk);
    return e;
  });
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  Finish(p, ErrorFor(err, absl::StrCat("producing to '", record.topic, "'").c_str()));
}

rd_kafka_resp_err_t ProducerCore::Produce(rd_kafka_t* rk, const ProducerRecord& record,
                                          void* opaque) {
  rd_kafka_headers_t* headers = nullptr;
  if (!record.headers.empty()) {
    headers = rd_kafka_headers_new(record.headers.size());
    for (const auto& h : record.headers) {
      rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                          static_cast<ssize_t>(h.value.size()));
    }
  }
  rd_kafka_resp_err_t e;
  if (record.tombstone) {
    e = record.key.has_value()
            ? rd_kafka_producev(
                  rk, RD_KAFKA_V_TOPIC(record.topic.c_str()),
                  RD_KAFKA_V_PARTITION(record.partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                  RD_KAFKA_V_KEY(record.key->data(), record.key->size()),
                  RD_KAFKA_V_VALUE(nullptr, 0), RD_KAFKA_V_HEADERS(headers),
                  RD_KAFKA_V_TIMESTAMP(record.timestamp_ms), RD_KAFKA_V_OPAQUE(opaque),
                  RD_KAFKA_V_END)
            : RD_KAFKA_RESP_ERR__INVALID_ARG;  // A tombstone without a key deletes nothing.
  } else if (record.key.has_value()) {
    e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(record.topic.c_str()),
                          RD_KAFKA_V_PARTITION(record.partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY(record.key->data(), record.key->size()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(record.value.data()),
                                           record.value.size()),  // F_COPY: copied
                          RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_TIMESTAMP(record.timestamp_ms),
                          RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  } else {
    e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(record.topic.c_str()),
                          RD_KAFKA_V_PARTITION(record.partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_VALUE(const_cast<char*>(record.value.data()),
                                           record.value.size()),  // F_COPY: copied
                          RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_TIMESTAMP(record.timestamp_ms),
                          RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  }
  // librdkafka owns the headers only when it accepted the record.
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) rd_kafka_headers_destroy(headers);
  return e;
}

absl::Status ProducerCore::Enqueue(const ProducerRecord& record) {
  rd_kafka_resp_err_t err = WithHandle([&](rd_kafka_t* rk) {
    if (rk == nullptr) return RD_KAFKA_RESP_ERR__FATAL;
    // No opaque: OnDelivery ignores the record; the transaction's commit reports its failure.
    rd_kafka_resp_err_t e = Produce(rk, record, nullptr);
    if (e == RD_KAFKA_RESP_ERR__FATAL) NoteFatal(rk);
    return e;
  });
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  return ErrorFor(err, absl::StrCat("producing to '", record.topic, "'").c_str());
}

absl::Status ProducerCore::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const uint64_t target = next_seq_;
  // Done when no record sent before the call is still unfinished.
  auto done = [this, target]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return unfinished_.empty() || *unfinished_.begin() >= target;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    size_t waiting = 0;
    for (uint64_t seq : unfinished_) waiting += seq < target ? 1 : 0;
    return absl::DeadlineExceededError(
        absl::StrCat(waiting, " record(s) still in flight after ", absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

int64_t ProducerCore::InFlight() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(unfinished_.size());
}

}  // namespace internal

// ---- IdempotentProducer ------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<IdempotentProducer>> IdempotentProducer::Create(
    ProducerOptions options) {
  options.transactional_id.clear();
  auto core = std::make_unique<internal::ProducerCore>(std::move(options), false);
  RETURN_IF_ERROR(core->Start());
  return std::unique_ptr<IdempotentProducer>(new IdempotentProducer(std::move(core)));
}

void IdempotentProducer::Send(const ProducerRecord& record, DeliveryCallback done) {
  core_->Send(record, std::move(done));
}
absl::Status IdempotentProducer::Flush(absl::Duration timeout) { return core_->Flush(timeout); }
int64_t IdempotentProducer::InFlight() const { return core_->InFlight(); }

absl::Status IdempotentProducer::InjectFatalErrorForTesting() {
  return core_->WithHandle([](rd_kafka_t* rk) {
    if (rk == nullptr) return absl::FailedPreconditionError("producer is being recreated");
    return KafkaStatus(rd_kafka_test_fatal_error(rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                                 "injected by test"),
                       "injecting fatal error");
  });
}

// ---- KafkaTransactionalProducer -----------------------------------------------------------------

absl::StatusOr<std::unique_ptr<KafkaTransactionalProducer>> KafkaTransactionalProducer::Create(
    ProducerOptions options) {
  auto core = std::make_unique<internal::ProducerCore>(std::move(options), true);
  RETURN_IF_ERROR(core->Start());
  return std::unique_ptr<KafkaTransactionalProducer>(
      new KafkaTransactionalProducer(std::move(core)));
}

void KafkaTransactionalProducer::Send(const ProducerRecord& record, DeliveryCallback done) {
  core_->Send(record, std::move(done));
}
absl::Status KafkaTransactionalProducer::Enqueue(const ProducerRecord& record) {
  return core_->Enqueue(record);
}
absl::Status KafkaTransactionalProducer::Flush(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  RETURN_IF_ERROR(core_->Flush(timeout));
  // Enqueued records have no callback to wait for: wait until librdkafka holds nothing
  // unacknowledged (the poller serves the delivery reports). Not rd_kafka_flush: it would run
  // callbacks under the handle lock.
  while (true) {
    const int left =
        core_->WithHandle([](rd_kafka_t* rk) { return rk ? rd_kafka_outq_len(rk) : 0; });
    if (left == 0) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(left, " record(s) still in flight after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Microseconds(200));
  }
}
int64_t KafkaTransactionalProducer::InFlight() const { return core_->InFlight(); }

namespace {

// Runs a transactional API call and converts its rd_kafka_error_t.
template <typename Fn>
absl::Status TxnCall(internal::ProducerCore& core, const char* what, Fn fn) {
  return core.WithHandle([&](rd_kafka_t* rk) {
    if (rk == nullptr) return absl::UnavailableError(absl::StrCat(what, ": no producer handle"));
    rd_kafka_error_t* error = fn(rk);
    absl::Status s = KafkaStatus(error, what);
    if (error != nullptr) rd_kafka_error_destroy(error);
    return s;
  });
}

int Ms(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

}  // namespace

absl::Status KafkaTransactionalProducer::InitTransactions(absl::Duration timeout) {
  return TxnCall(*core_, "initialising transactions",
                 [&](rd_kafka_t* rk) { return rd_kafka_init_transactions(rk, Ms(timeout)); });
}

absl::Status KafkaTransactionalProducer::PrepareTopics(const std::vector<std::string>& topics,
                                                       absl::Duration timeout) {
  return core_->WithHandle([&](rd_kafka_t* rk) -> absl::Status {
    if (rk == nullptr) return absl::UnavailableError("the producer is being recreated");
    for (const std::string& topic : topics) {
      // A metadata request for the topic fills the client's metadata cache; the topic object
      // the first send creates takes its partitions from there.
      rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
      if (rkt == nullptr) continue;
      const rd_kafka_metadata_t* md = nullptr;
      const rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, Ms(timeout));
      if (md != nullptr) rd_kafka_metadata_destroy(md);
      rd_kafka_topic_destroy(rkt);
      RETURN_IF_ERROR(KafkaStatus(err, absl::StrCat("looking up topic ", topic)));
    }
    return absl::OkStatus();
  });
}

absl::Status KafkaTransactionalProducer::BeginTransaction() {
  return TxnCall(*core_, "beginning transaction",
                 [](rd_kafka_t* rk) { return rd_kafka_begin_transaction(rk); });
}

absl::Status KafkaTransactionalProducer::CommitTransaction(absl::Duration timeout) {
  return TxnCall(*core_, "committing transaction",
                 [&](rd_kafka_t* rk) { return rd_kafka_commit_transaction(rk, Ms(timeout)); });
}

absl::Status KafkaTransactionalProducer::AbortTransaction(absl::Duration timeout) {
  return TxnCall(*core_, "aborting transaction",
                 [&](rd_kafka_t* rk) { return rd_kafka_abort_transaction(rk, Ms(timeout)); });
}

}  // namespace kafka
}  // namespace polder
