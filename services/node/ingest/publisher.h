// Publisher: commits validated ingest batches into the city's Kafka, exactly once per
// idempotency key (ARCHITECTURE §7).
//
// One transactional producer (a fixed transactional.id per node, so a second instance fences
// the first) and one committing thread. Batches queue up; the thread takes as many as fit in
// max_transaction_bytes, sends their records and one entry per idempotency key to the keys
// topic (`_polder.ingest-keys`) in one Kafka transaction, commits, and only then answers each
// caller: OK means committed. A key already committed (by this or an earlier instance, within
// the idempotency window) is answered from the keys topic without writing anything; the same
// key with different content is refused.
//
// Failures: a transaction that aborts, times out (publish_timeout) or meets a broker outage
// answers its batches UNAVAILABLE — nothing of them was acknowledged; the client retries with
// the same key. Afterwards the producer is replaced (which resolves a transaction whose outcome
// was unknown) and the keys topic is read to its end before the next commit, so a retry of a
// batch that did commit is recognised. A fenced producer (another instance took the
// transactional id) ends this instance's ingest role: every later call is UNAVAILABLE.
#ifndef POLDER_SERVICES_NODE_INGEST_PUBLISHER_H_
#define POLDER_SERVICES_NODE_INGEST_PUBLISHER_H_

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/consumer.h"
#include "common/kafka/producer.h"
#include "common/kafka/state_writer.h"

namespace polder {
namespace node {

struct PublishBatch {
  std::string identity;         // who publishes (for keys: the same key of two identities differ)
  std::string idempotency_key;  // empty: no deduplication
  std::string content_hash;     // identifies the batch's content (same key, other content: refused)
  std::string dataset_id;
  int32_t schema_id = 0;
  std::vector<kafka::ProducerRecord> records;
};

struct PublishOutcome {
  int32_t records = 0;
  int32_t schema_id = 0;
  bool duplicate = false;  // committed earlier under the same key; nothing written now
};

class Publisher {
 private:
  struct Pending;

 public:
  struct Options {
    kafka::ProducerOptions producer;  // transactional_id required
    kafka::ConsumerOptions keys_consumer;
    std::string keys_topic = "_polder.ingest-keys";
    // The keys topic's partition this publisher owns (its entries are read and written there).
    int32_t keys_partition = 0;
    // Written in one transaction after each (re)start of the producer, before any batch: the
    // owner's claim on its key partition (ADR 0021 §2). Committed only while not fenced.
    std::function<std::vector<kafka::ProducerRecord>()> announce;
    // Topics the batches will be written to: looked up when the producer starts, so the first
    // batch after a (re)start does not wait for the client to discover them.
    std::vector<std::string> data_topics;
    // Keys of the single-partition topic used before replicas (ADR 0021 §2 upgrade): entries
    // younger than the idempotency window for which `owns_legacy_key` is true are loaded at
    // start. "" (or a missing topic): none.
    std::string legacy_keys_topic;
    std::function<bool(const std::string& map_key)> owns_legacy_key;
    absl::Duration idempotency_window = absl::Hours(1);
    // A batch is answered within this (committed, or UNAVAILABLE).
    absl::Duration publish_timeout = absl::Seconds(30);
    // Batches are grouped into one transaction up to this many bytes.
    int64_t max_transaction_bytes = 4 << 20;
    std::function<absl::Time()> clock;  // default absl::Now
  };

  struct Stats {
    int64_t transactions = 0;
    int64_t failed_transactions = 0;
    int64_t producer_recreations = 0;
    int64_t known_keys = 0;
    int64_t queued_bytes = 0;
  };

  // Starts the producer (InitTransactions fences an older instance and resolves its open
  // transaction), reads the keys topic to its end and starts the committing thread. Kafka
  // clients come from `kafka`, which must outlive the publisher.
  static absl::StatusOr<std::unique_ptr<Publisher>> Start(Options options,
                                                          kafka::ClientFactory& kafka);
  ~Publisher();

  class Ticket;

  // Commits `batch` or says why not; blocks until then (at most about publish_timeout).
  absl::StatusOr<PublishOutcome> Publish(PublishBatch batch);

  // Queues `batch` for the next transaction and returns at once (unless a batch with the same
  // key is being committed, which it waits for); Wait() on the ticket gives the outcome. Batches
  // are committed in the order they were submitted.
  Ticket Submit(PublishBatch batch);

  // Stops taking batches (UNAVAILABLE "shutting down"), commits those already queued, stops.
  void Drain();
  // Drain, then waits until the queued batches are answered and the committing thread ended.
  void Stop();

  bool fenced() const;
  // False once draining or fenced: Submit would refuse the batch without queuing it.
  bool accepting() const;
  // True while the producer is up and the keys are read (readiness).
  bool ready() const;
  Stats stats() const;

 private:
  struct KeyEntry {
    std::string content_hash;
    std::string dataset_id;
    int32_t schema_id = 0;
    int32_t records = 0;
    absl::Time committed_at;
  };

  Publisher(Options options, kafka::ClientFactory& kafka)
      : options_(std::move(options)), state_(kafka, StateOptions(options_)) {}
  static kafka::StateWriter::Options StateOptions(const Options& options);
  absl::Time Now() const { return options_.clock ? options_.clock() : absl::Now(); }
  // Replaces the producer and reads the keys topic to its end. Called by the committing thread.
  absl::Status Recover();
  // Loads the legacy topic's entries of this publisher's keys (Options::legacy_keys_topic).
  absl::Status LoadLegacyKeys(kafka::ClientFactory& kafka);
  // One record of the keys topic into keys_ (a stale or unreadable one is skipped).
  absl::Status LoadKey(const kafka::ConsumedRecord& record, int64_t* loaded);
  void Loop();
  void Commit(std::vector<std::shared_ptr<Pending>> group);
  // The answer for `batch` if its key is committed; nullopt if not.
  std::optional<absl::StatusOr<PublishOutcome>> Answered(const PublishBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetExpiredKeys() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  // The producer and the keys topic's read position: committing thread (and Start) only.
  kafka::StateWriter state_;

  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<Pending>> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, KeyEntry> keys_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Pending>> in_flight_keys_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool fenced_ ABSL_GUARDED_BY(mu_) = false;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  absl::Mutex stop_mu_;  // one joiner of thread_
  std::thread thread_;
};

// A submitted batch: its outcome once committed (or refused at once).
class Publisher::Ticket {
 public:
  Ticket() = default;
  // A ticket whose outcome `resolve` computes when waited for (a batch forwarded to another
  // replica: the call is made by Wait).
  static Ticket Deferred(std::function<absl::StatusOr<PublishOutcome>()> resolve) {
    Ticket t;
    t.deferred_ = std::move(resolve);
    return t;
  }
  // Blocks until the batch is committed or failed; at most about publish_timeout.
  absl::StatusOr<PublishOutcome> Wait();
  // After Wait: true if nothing of the batch can have been committed by this publisher because
  // it was refused before queuing (draining, fenced) or its transaction was fenced. The batch
  // can then go to the partition's new holder (TakeBack).
  bool NothingCommitted() const;
  // The batch, moved out (after Wait, when NothingCommitted).
  PublishBatch TakeBack();

 private:
  friend class Publisher;
  std::shared_ptr<Pending> pending_;
  std::shared_ptr<Pending> refused_;  // a batch refused before queuing
  std::function<absl::StatusOr<PublishOutcome>()> deferred_;
  absl::StatusOr<PublishOutcome> immediate_ = absl::UnknownError("not submitted");
  absl::Duration timeout_;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_INGEST_PUBLISHER_H_
