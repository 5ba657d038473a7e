// Kafka producers: the Producer and TransactionalProducer interfaces and their librdkafka
// implementations.
//
//   ProducerOptions options;
//   options.client.bootstrap_servers = "127.0.0.1:9092";
//   ASSIGN_OR_RETURN(auto producer, IdempotentProducer::Create(options));
//   producer->Send({.topic = "groningen.mobility.bike-counts", .key = "counter-7", .value = v},
//                  [](absl::StatusOr<RecordMetadata> r) { ... });
//
// Guarantees, fixed by Polder and not overridable through ClientOptions::properties:
// acks=all, enable.idempotence=true, partitioner=murmur2_random (the Java client's, so every
// client puts a key on the same partition), max.in.flight ≤ 5; delivery, request and
// transaction timeouts come from the options.
//
// Every Send's callback runs exactly once: with the record's partition and offset once the
// broker acknowledged it, or with an error. A record refused at once (queue full, record too
// large) is reported before Send returns, on the caller's thread; the others on the producer's
// delivery thread, or on a thread inside CommitTransaction (librdkafka flushes there).
// Callbacks may call Send; they must not block for long, call Flush() or destroy the producer.
#ifndef POLDER_COMMON_KAFKA_PRODUCER_H_
#define POLDER_COMMON_KAFKA_PRODUCER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <set>
#include <unordered_set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/client_config.h"
#include "common/kafka/record.h"

namespace polder {
namespace kafka {

struct ProducerOptions {
  ClientOptions client;
  // How long a record may take to be acknowledged, retries included (message.timeout.ms);
  // after that its callback gets UNAVAILABLE.
  absl::Duration delivery_timeout = absl::Seconds(30);
  // Largest produce request, and so the largest batch, in bytes (message.max.bytes). A topic's
  // max.message.bytes must be at least this: a broker rejects a whole batch above it.
  int64_t max_request_bytes = 1000000;
  // Largest batch per partition (batch.size); at most max_request_bytes.
  int64_t batch_bytes = 1000000;
  // How long to wait to fill a batch (linger.ms).
  absl::Duration linger = absl::Milliseconds(5);
  // Records buffered before Send reports RESOURCE_EXHAUSTED (queue.buffering.max.messages).
  int max_buffered_records = 100000;
  // TransactionalProducer only: the fixed transactional id (a second instance with the same id
  // fences this one) and transaction.timeout.ms (at least delivery_timeout).
  std::string transactional_id;
  absl::Duration transaction_timeout = absl::Seconds(60);
};

// Produces records to Kafka. Thread-safe.
class Producer {
 public:
  using DeliveryCallback = std::function<void(absl::StatusOr<RecordMetadata>)>;

  virtual ~Producer() = default;

  // Queues `record`; `done` runs exactly once with the outcome (see the file comment).
  virtual void Send(const ProducerRecord& record, DeliveryCallback done) = 0;

  // Waits until every record sent before the call has been reported (its callback returned), or
  // `timeout` passed (DEADLINE_EXCEEDED; the records stay in flight). Records sent meanwhile by
  // other threads are not waited for.
  virtual absl::Status Flush(absl::Duration timeout) = 0;

  // Records sent and not yet reported.
  virtual int64_t InFlight() const = 0;
};

// A Producer whose operations are grouped into Kafka transactions. Usage per transaction:
// BeginTransaction, Send..., CommitTransaction (which flushes). On an error for which
// RequiresAbort() holds: AbortTransaction, then retry. On IsFatal() (IsFenced() when a newer
// instance took the transactional id): the instance is unusable; a fenced owner must end its
// role rather than re-initialise.
class TransactionalProducer : public Producer {
 public:
  // Registers the transactional id with the coordinator, fencing older instances and
  // completing or aborting their open transaction. Once per instance.
  virtual absl::Status InitTransactions(absl::Duration timeout) = 0;
  virtual absl::Status BeginTransaction() = 0;
  // Flushes and commits. OK means every record of the transaction is committed.
  virtual absl::Status CommitTransaction(absl::Duration timeout) = 0;
  // Aborts: the transaction's records are never visible to read_committed readers.
  virtual absl::Status AbortTransaction(absl::Duration timeout) = 0;
};

// Sends one record and waits for its outcome (at most delivery_timeout plus a margin, since the
// producer reports every record within its delivery timeout).
absl::StatusOr<RecordMetadata> SendAndWait(Producer& producer, ProducerRecord record);

// Runs one transaction: BeginTransaction, `fill` (which sends the transaction's records and
// returns an error to abandon it), CommitTransaction. Retriable commit/abort failures are
// resumed until `timeout`; on an abortable error (from the commit, or a send refused because
// the transaction already failed) it aborts and runs `fill` again in a new transaction, up to
// `max_attempts` in all. A fatal error (IsFatal, IsFenced), an error of `fill`'s own, or a
// commit still unresolved at the deadline ("commit outcome unknown") is returned at once. OK
// means exactly one attempt committed and every other attempt was aborted.
//
// Retrying matters with librdkafka 2.0.2: after a record was rejected inside a transaction, the
// transaction after the abort can fail once more with OUT_OF_ORDER_SEQUENCE_NUMBER (abortable);
// the second abort bumps the producer epoch and the next attempt commits (see ADR 0002).
absl::Status RunInTransaction(TransactionalProducer& producer,
                              const std::function<absl::Status()>& fill, int max_attempts,
                              absl::Duration timeout);

namespace internal {

// The librdkafka handle, delivery bookkeeping and polling thread shared by both producers.
class ProducerCore {
 public:
  ProducerCore(ProducerOptions options, bool transactional);
  ~ProducerCore();

  absl::Status Start();
  void Send(const ProducerRecord& record, Producer::DeliveryCallback done);
  absl::Status Flush(absl::Duration timeout);
  int64_t InFlight() const;
  int64_t recreations() const { return recreations_.load(); }

  // Runs `fn` with the current handle (nullptr while being recreated) under the handle lock.
  template <typename Fn>
  auto WithHandle(Fn fn) {
    absl::ReaderMutexLock lock(&handle_mu_);
    return fn(rk_.get());
  }

 private:
  struct Pending {
    ProducerCore* core;
    Producer::DeliveryCallback done;
    uint64_t seq;
  };

  absl::StatusOr<HandlePtr> NewHandle();
  void PollLoop();
  void RecreateAfterFatal();
  // Records the handle's fatal error in last_fatal_ and raises fatal_. Takes only mu_.
  void NoteFatal(rd_kafka_t* rk);
  // Takes every pending record out of the pending set (they are then being reported).
  std::vector<Pending*> ClaimAll();
  // Runs `p`'s callback with `result` unless it was already claimed; exactly once per record.
  void Report(Pending* p, absl::StatusOr<RecordMetadata> result);
  // Runs the callback of a claimed record and forgets it.
  void Finish(Pending* p, absl::StatusOr<RecordMetadata> result);
  absl::Status ErrorFor(rd_kafka_resp_err_t err, const char* context);

  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);

  const ProducerOptions options_;
  const bool transactional_;

  // Readers use the handle; the poller swaps it (after a fatal error) under the writer lock.
  // No callback ever runs while the writer lock is held.
  mutable absl::Mutex handle_mu_;
  HandlePtr rk_ ABSL_GUARDED_BY(handle_mu_);

  mutable absl::Mutex mu_;
  // Records handed to librdkafka and not yet claimed for reporting.
  std::unordered_set<Pending*> pending_ ABSL_GUARDED_BY(mu_);
  // Sequence numbers of records whose callback has not returned yet (pending or reporting).
  std::set<uint64_t> unfinished_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_fatal_ ABSL_GUARDED_BY(mu_);

  std::atomic<bool> fatal_{false};
  std::atomic<bool> closing_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> recreations_{0};
  std::thread poller_;
};

}  // namespace internal

// An idempotent (not transactional) producer. On a librdkafka fatal error (for example the
// idempotence sequence desynchronisation after a broker crash, librdkafka #4438) it fails every
// record in flight with UNAVAILABLE — none of them was acknowledged — and recreates its
// librdkafka handle, so later sends work again. Nothing hangs.
class IdempotentProducer : public Producer {
 public:
  static absl::StatusOr<std::unique_ptr<IdempotentProducer>> Create(ProducerOptions options);
  ~IdempotentProducer() override = default;

  void Send(const ProducerRecord& record, DeliveryCallback done) override;
  absl::Status Flush(absl::Duration timeout) override;
  int64_t InFlight() const override;

  // How many times the handle was recreated after a fatal error.
  int64_t recreations() const { return core_->recreations(); }
  // Raises a librdkafka fatal error as if the broker had caused one (rd_kafka_test_fatal_error).
  absl::Status InjectFatalErrorForTesting();

 private:
  explicit IdempotentProducer(std::unique_ptr<internal::ProducerCore> core)
      : core_(std::move(core)) {}
  std::unique_ptr<internal::ProducerCore> core_;
};

// A transactional producer (transactional.id fixed by the options).
class KafkaTransactionalProducer : public TransactionalProducer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaTransactionalProducer>> Create(
      ProducerOptions options);
  ~KafkaTransactionalProducer() override = default;

  void Send(const ProducerRecord& record, DeliveryCallback done) override;
  absl::Status Flush(absl::Duration timeout) override;
  int64_t InFlight() const override;
  absl::Status InitTransactions(absl::Duration timeout) override;
  absl::Status BeginTransaction() override;
  absl::Status CommitTransaction(absl::Duration timeout) override;
  absl::Status AbortTransaction(absl::Duration timeout) override;

 private:
  explicit KafkaTransactionalProducer(std::unique_ptr<internal::ProducerCore> core)
      : core_(std::move(core)) {}
  std::unique_ptr<internal::ProducerCore> core_;
};

// The librdkafka properties a producer with `options` runs with (exposed for tests and for the
// start-up check that compares size limits across layers).
absl::StatusOr<std::map<std::string, std::string>> ProducerProperties(
    const ProducerOptions& options, bool transactional);

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_PRODUCER_H_
