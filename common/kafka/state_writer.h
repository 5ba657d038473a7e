// The recover-then-write sequence of a writer whose state lives in a Kafka topic beside what it
// writes — the ingest publisher (idempotency keys), the mirror writer (cursors), the registry's
// store (its log):
//
//   1. a transactional producer; InitTransactions fences an older instance with the same
//      transactional id and resolves (aborts) the transaction it left open, so what it did or
//      did not commit is settled before anything is read;
//   2. the state topic's partition read to its end, read_committed, from a given offset (each
//      record handed to a loader): the state now reflects every committed write;
//   3. transactions that write records and state together (RunInTransaction), all or nothing.
//
// After a failed or unknown transaction outcome the writer needs recovery: Recover() again,
// from where the last read ended, before the next write — never writing from state that a failed
// transaction may or may not have changed. A fenced writer (another instance took over) stays
// fenced.
//
//   StateWriter state(clients, options);
//   RETURN_IF_ERROR(state.Recover([&](const ConsumedRecord& r) { return Load(r); }).status());
//   RETURN_IF_ERROR(state.Transact([&] { ...Send(state.producer())...; return OkStatus(); }));
//
// Not thread-safe: one owner serialises Recover and Transact.
#ifndef POLDER_COMMON_KAFKA_STATE_WRITER_H_
#define POLDER_COMMON_KAFKA_STATE_WRITER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/consumer.h"
#include "common/kafka/producer.h"

namespace polder {
namespace kafka {

class StateWriter {
 public:
  struct Options {
    ProducerOptions producer;  // transactional_id required
    ConsumerOptions consumer;  // for reading the state (read_committed is forced)
    std::string state_topic;   // "": no state to read (step 2 is skipped)
    int32_t state_partition = 0;
    absl::Duration timeout = absl::Seconds(30);  // bounds InitTransactions and the read
    int max_attempts = 3;                        // per transaction (RunInTransaction)
  };
  using Loader = std::function<absl::Status(const ConsumedRecord& record)>;

  // Clients come from `kafka`, which must outlive the writer.
  StateWriter(ClientFactory& kafka, Options options)
      : kafka_(kafka), options_(std::move(options)) {}

  // Steps 1 and 2: a fresh producer, InitTransactions, then the state from `next_state_offset()`
  // to its end, each record to `load`. Returns the offset after the last record read (also
  // next_state_offset() from then on). On error the writer has no producer and still needs
  // recovery; the message says which step failed.
  absl::StatusOr<int64_t> Recover(const Loader& load);

  // Step 3: one transaction whose records `fill` sends with producer(). A failure leaves the
  // writer needing recovery; fencing (IsFenced) leaves it fenced for good. Starts no earlier
  // than next_transaction_at() (it sleeps until then).
  absl::Status Transact(const std::function<absl::Status()>& fill);

  // When the next transaction may start: the producer's `transaction_spacing` after the last
  // one ended (ProducerOptions: why Kafka transactions need a gap). A
  // group-committing owner waits until then before taking what it will write, so nothing that
  // arrives meanwhile waits for a later transaction.
  absl::Time next_transaction_at() const {
    return transaction_ended_ + options_.producer.transaction_spacing;
  }

  // The producer of the current instance; nullptr while recovery is needed.
  TransactionalProducer* producer() const { return producer_.get(); }
  bool needs_recovery() const { return producer_ == nullptr; }
  bool fenced() const { return fenced_; }
  // Drops the producer: the next write first recovers (after an error seen outside Transact).
  void Invalidate() { producer_.reset(); }
  int64_t next_state_offset() const { return next_state_offset_; }
  // How many times Recover succeeded.
  int64_t recoveries() const { return recoveries_; }

 private:
  ClientFactory& kafka_;
  const Options options_;
  std::unique_ptr<TransactionalProducer> producer_;
  int64_t next_state_offset_ = 0;
  bool fenced_ = false;
  int64_t recoveries_ = 0;
  absl::Time transaction_ended_ = absl::InfinitePast();
};

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_STATE_WRITER_H_
