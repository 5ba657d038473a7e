// The librdkafka implementations of Producer and TransactionalProducer (producer.h). Only
// RdKafkaClientFactory (rdkafka_client_factory.h) and tests of this package create them.
#ifndef POLDER_COMMON_KAFKA_RDKAFKA_PRODUCER_H_
#define POLDER_COMMON_KAFKA_RDKAFKA_PRODUCER_H_

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/producer.h"
#include "common/kafka/rdkafka_conf.h"

namespace polder {
namespace kafka {

namespace internal {

// The librdkafka handle, delivery bookkeeping and polling thread shared by both producers.
class ProducerCore {
 public:
  ProducerCore(ProducerOptions options, bool transactional);
  ~ProducerCore();

  absl::Status Start();
  void Send(const ProducerRecord& record, Producer::DeliveryCallback done);
  // Hands `record` to librdkafka untracked (TransactionalProducer::Enqueue).
  absl::Status Enqueue(const ProducerRecord& record);
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
  // rd_kafka_producev of `record` (copied) with `opaque` as its delivery opaque.
  static rd_kafka_resp_err_t Produce(rd_kafka_t* rk, const ProducerRecord& record, void* opaque);
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
  absl::Status Enqueue(const ProducerRecord& record) override;
  absl::Status CommitTransaction(absl::Duration timeout) override;
  absl::Status AbortTransaction(absl::Duration timeout) override;
  absl::Status PrepareTopics(const std::vector<std::string>& topics,
                             absl::Duration timeout) override;

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

#endif  // POLDER_COMMON_KAFKA_RDKAFKA_PRODUCER_H_
