// KafkaSchemaStore: keeps the registry's state in the compacted topic `_polder.schemas`.
//
// Every replica tails the topic (read_committed, from the beginning) and applies each record to
// its Registry, so all replicas hold the same state. Exactly one replica is the primary and
// writes: its producer has the fixed transactional id `polder-registry-<federation>`, so a
// primary that takes over fences the previous one, and every write is a Kafka transaction —
// acknowledged only once committed.
//
// Who is primary is explicit: the ["primary"] record in the topic (replica, epoch), or, while
// no such record exists, the replica named in configuration. A replica becomes primary when the
// record names it (or MakePrimary asks it to take over): it initialises transactions (fencing
// the old primary and resolving its open transaction), reads the topic to its end, then writes
// a primary record with the next epoch. A fenced primary steps down and does not take over
// again until a newer primary record names it, so two replicas never fence each other in turn.
// Replicas that are not primary answer writes with 50003 naming the primary.
#ifndef POLDER_SERVICES_REGISTRY_KAFKA_STORE_H_
#define POLDER_SERVICES_REGISTRY_KAFKA_STORE_H_

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/admin.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/consumer.h"
#include "common/kafka/producer.h"
#include "common/kafka/state_writer.h"
#include "services/registry/registry.h"

namespace polder {
namespace registry {

class KafkaSchemaStore : public RecordLog {
 public:
  struct Options {
    kafka::ClientOptions client;
    std::string topic = "_polder.schemas";
    int replication_factor = 1;
    std::string replica_id;       // this replica's name
    std::string federation;       // part of the transactional id
    std::string initial_primary;  // primary while the topic names none
    absl::Duration timeout = absl::Seconds(30);
  };

  // Clients come from `kafka`, which must outlive the store.
  static absl::StatusOr<std::unique_ptr<KafkaSchemaStore>> Create(Options options,
                                                                  kafka::ClientFactory& kafka);
  ~KafkaSchemaStore() override;

  // Binds the registry this store feeds (once, before Start). The registry must outlive the
  // store: the store's threads apply records to it until the store is destroyed.
  void Attach(Registry* registry) { registry_ = registry; }

  // Creates the topic if missing (compacted, one partition), starts tailing it, waits until
  // the existing records are applied, then takes the primary role if it is ours.
  absl::Status Start();

  absl::StatusOr<int64_t> Commit(const std::vector<StoreRecord>& records) override;
  absl::Status Sync() override { return WaitCaughtUp(options_.timeout); }

  bool is_primary() const { return primary_.load(); }
  // The replica currently named primary.
  std::string primary_replica() const;
  // Makes `replica` the primary: this replica takes over if it is `replica`; the current
  // primary hands over (writes the record and steps down). FAILED_PRECONDITION otherwise.
  absl::Status MakePrimary(const std::string& replica);

  // Waits until every record committed before the call is applied.
  absl::Status WaitCaughtUp(absl::Duration timeout);

  // What /statusz, /readyz and the metrics report: the role, how far the tail has read the
  // topic against its end (queried now, within `timeout`), and whether Kafka answers.
  struct Status {
    bool primary = false;
    std::string primary_replica;
    int64_t epoch = -1;       // of the primary record; -1 while the topic names none
    int64_t position = 0;     // next offset the tail reads
    int64_t end_offset = -1;  // the topic's end (high watermark); -1 if Kafka did not answer
    std::string kafka_error;  // why the end could not be read, or the tail's last error
    absl::Time last_read_ok;  // the tail's last successful poll
    int64_t lag() const {
      return end_offset < 0 ? -1 : std::max<int64_t>(0, end_offset - position);
    }
  };
  Status status(absl::Duration timeout) const;

 private:
  KafkaSchemaStore(Options options, kafka::ClientFactory& kafka)
      : options_(std::move(options)), kafka_(kafka) {}
  void TailLoop();
  void RoleLoop();
  absl::Status BecomePrimary() ABSL_EXCLUSIVE_LOCKS_REQUIRED(role_mu_);
  void StepDown(const std::string& why);
  // A transactional producer for our fixed id, transactions initialised (fencing any other
  // holder of the id and resolving a transaction it left open).
  // A writer with a fresh producer (fencing an older primary), one per term as primary: a
  // fenced writer stays fenced, and an explicit MakePrimary starts a new term.
  absl::StatusOr<std::unique_ptr<kafka::StateWriter>> NewWriter();

  // Serialises role changes (take-over, hand-over, step-down decisions).
  absl::Mutex role_mu_;

  const Options options_;
  kafka::ClientFactory& kafka_;
  Registry* registry_ = nullptr;
  std::unique_ptr<kafka::Consumer> tail_;
  std::unique_ptr<kafka::Consumer> marks_;   // watermark queries only
  std::atomic<int64_t> position_{0};         // next offset the tail will read
  std::atomic<int64_t> last_read_ok_ms_{0};  // the tail's last successful poll (Unix ms)
  mutable absl::Mutex tail_error_mu_;
  std::string tail_error_ ABSL_GUARDED_BY(tail_error_mu_);  // empty after a successful poll
  std::atomic<bool> stop_{false};
  std::atomic<bool> primary_{false};
  std::thread tail_thread_;
  std::thread role_thread_;

  absl::Mutex write_mu_;
  std::unique_ptr<kafka::StateWriter> writer_ ABSL_GUARDED_BY(write_mu_);
  // Epoch of the primary record naming us when we were fenced: we do not take over again
  // until a newer record names us.
  int64_t fenced_at_epoch_ ABSL_GUARDED_BY(write_mu_) = -1;

  // The primary record as last seen by the role loop: Commit runs under the registry's lock
  // and must not call back into the registry.
  mutable absl::Mutex seen_mu_;
  std::optional<Primary> seen_primary_ ABSL_GUARDED_BY(seen_mu_);
  void RefreshSeenPrimary();
  std::optional<Primary> SeenPrimary() const;
};

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_KAFKA_STORE_H_
