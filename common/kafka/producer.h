// Kafka producers: the Producer and TransactionalProducer interfaces. The librdkafka
// implementations are in rdkafka_producer.h, fakes in common/kafka/testing; classes that produce
// get them from a ClientFactory (client_factory.h) passed to their constructor.
//
//   ProducerOptions options;
//   options.client.bootstrap_servers = "127.0.0.1:9092";
//   ASSIGN_OR_RETURN(std::unique_ptr<Producer> producer, factory.NewProducer(options));
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

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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
  // TransactionalProducer only, honoured by StateWriter: the least time from the end of one
  // transaction to the start of the next. Kafka's transaction coordinator answers a commit
  // before it has written the commit markers; a transaction that registers partitions before
  // that is refused (CONCURRENT_TRANSACTIONS), and librdkafka 2.0.2 retries the registration
  // only after a fixed 20 ms. A writer committing back to back waits this long instead,
  // collecting what arrives meanwhile, and its registration is rarely refused. Zero: no wait.
  absl::Duration transaction_spacing = absl::ZeroDuration();
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
  // Queues `record` in the open transaction with no report of its own: the commit decides (a
  // record the broker refuses makes CommitTransaction fail, so the transaction is aborted).
  // For callers that only need the transaction's outcome, it saves Send's per-record
  // bookkeeping (a callback, an entry in the in-flight sets); Flush waits for it as well.
  // An error means the record was refused at once (no open transaction, queue full, record
  // too large, fatal or fenced producer): it is not in the transaction, and the caller must
  // not commit it (return the error from RunInTransaction's `fill`).
  virtual absl::Status Enqueue(const ProducerRecord& record) = 0;
  // Flushes and commits. OK means every record of the transaction is committed.
  virtual absl::Status CommitTransaction(absl::Duration timeout) = 0;
  // Aborts: the transaction's records are never visible to read_committed readers.
  virtual absl::Status AbortTransaction(absl::Duration timeout) = 0;
  // Looks up `topics`' partitions and leaders now, so the first transaction writing them does
  // not wait for the client to discover them (librdkafka 2.0.2 holds a record for a topic it has
  // not seen for up to a second). Optional: a failure only means the first send is slower.
  virtual absl::Status PrepareTopics(const std::vector<std::string>& topics,
                                     absl::Duration timeout) {
    (void)topics;
    (void)timeout;
    return absl::OkStatus();
  }
};

// A transaction's records, enqueued from wherever a fill produces them: the first record
// refused at once is kept and the rest are skipped, so the fill returns status() once at its
// end (RunInTransaction then aborts the transaction). One per attempt.
class TransactionRecords {
 public:
  explicit TransactionRecords(TransactionalProducer* producer) : producer_(producer) {}
  void Enqueue(const ProducerRecord& record) {
    if (status_.ok()) status_ = producer_->Enqueue(record);
  }
  const absl::Status& status() const { return status_; }

 private:
  TransactionalProducer* const producer_;
  absl::Status status_;
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

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_PRODUCER_H_
