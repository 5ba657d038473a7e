// KeyedPublisher: ingest on every replica of a city, each idempotency key committed exactly once
// across them (ADR 0021 §2).
//
// The keys topic (`_polder.ingest-keys.v2`) has P partitions; a key's partition is
// murmur2(identity "\n" key) % P, as Kafka's default partitioner. The replicas of a city are
// members of the consumer group `polder-<city>-keys` subscribed to that topic, so the group
// coordinator gives every key partition to one replica. The replica holding k runs a Publisher
// for k under the transactional id `polder-ingest-<city>-k<k>`: its InitTransactions fences the
// previous holder and aborts the transaction it left open, it loads k's keys, and it claims k in
// the replica directory inside its first transaction. A batch for a partition this replica does
// not hold is forwarded to the holder over the internal port (Forwarder); a batch without a key
// is committed under a partition this replica holds (round robin), or forwarded to a holder.
// While a rebalance moves a partition, its batches wait for the new holder (publish_timeout),
// then UNAVAILABLE: the client retries with the same key.
#ifndef POLDER_SERVICES_NODE_INGEST_KEYED_PUBLISHER_H_
#define POLDER_SERVICES_NODE_INGEST_KEYED_PUBLISHER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/group.h"
#include "services/node/ingest/publisher.h"
#include "services/node/replica/directory.h"

namespace polder {
namespace node {

// Calls another replica's internal port (services/node/replica/internal_service.h).
class ReplicaForwarder {
 public:
  virtual ~ReplicaForwarder() = default;
  // Asks the replica at `endpoint` to commit `batch` under key partition `partition` (-1: any it
  // holds). FAILED_PRECONDITION: it does not hold the partition (nothing was done).
  virtual absl::StatusOr<PublishOutcome> ForwardPublish(const std::string& endpoint,
                                                        int32_t partition,
                                                        const PublishBatch& batch,
                                                        absl::Duration timeout) = 0;
};

class KeyedPublisher : public kafka::GroupListener {
 public:
  struct Options {
    // The template of every partition's publisher: producer (its transactional id is replaced),
    // keys consumer, idempotency window, publish timeout, batching.
    Publisher::Options publisher;
    std::string city;               // the node's peer id
    std::string replica_id;         // this replica
    std::string internal_endpoint;  // where the others reach this replica
    std::string keys_topic = "_polder.ingest-keys.v2";
    int32_t partitions = 12;
    std::string replicas_topic = "_polder.replicas";
    // Before replicas (ADR 0021 §2 upgrade): the single-partition keys topic ("" if it does not
    // exist) and the single node's transactional id, initialised once by the holder of
    // partition 0 so an open transaction of the old node is aborted (only if the old keys
    // topic exists: a single node always made it).
    std::string legacy_keys_topic;
    std::string legacy_transactional_id;
    // Membership: client, session timeout, heartbeat (group id and topics are set here).
    kafka::GroupOptions group;
  };

  struct Stats {
    Publisher::Stats publishers;  // summed over the partitions held
    int64_t partitions_held = 0;
    int64_t forwarded_ok = 0;
    int64_t forwarded_failed = 0;
    int64_t rebalances = 0;
  };

  // Joins the group and starts reading the replica directory; partitions arrive through the
  // group (Assigned) shortly after. `kafka` and `forwarder` must outlive the publisher.
  static absl::StatusOr<std::unique_ptr<KeyedPublisher>> Start(Options options,
                                                               kafka::ClientFactory& kafka,
                                                               ReplicaForwarder* forwarder);
  ~KeyedPublisher() override;

  // As Publisher::Submit: the batch is committed here (a partition this replica holds) or
  // forwarded when the ticket is waited for.
  Publisher::Ticket Submit(PublishBatch batch);
  absl::StatusOr<PublishOutcome> Publish(PublishBatch batch) {
    return Submit(std::move(batch)).Wait();
  }

  // The holder's side of a forwarded batch: committed under `partition` (-1: any held), or
  // FAILED_PRECONDITION when this replica does not hold it.
  absl::StatusOr<PublishOutcome> PublishHeld(int32_t partition, PublishBatch batch);

  // Stops taking batches, commits what is queued, leaves the group.
  void Drain();

  // Ready: joined the group and read the directory (a replica holding no partition is ready:
  // it forwards).
  bool ready() const;
  // Waits up to `timeout` for ready() (the first assignment started its partitions).
  bool AwaitReady(absl::Duration timeout) const;
  std::vector<int32_t> held() const;
  std::map<int32_t, ReplicaAddress> owners() const { return directory_->KeyOwners(); }
  // The internal endpoint replica `id` announced in the directory.
  std::optional<ReplicaAddress> ReplicaEndpoint(const std::string& id) const {
    return directory_->Replica(id);
  }
  const std::string& replica_id() const { return options_.replica_id; }
  Stats stats() const;
  // The key partition of a batch's map key (identity "\n" key).
  int32_t PartitionOf(const std::string& map_key) const;
  std::string TransactionalIdOf(int32_t partition) const;

  // kafka::GroupListener (called on the member's thread).
  void Assigned(const std::vector<kafka::TopicPartition>& partitions) override;
  void Revoked(const std::vector<kafka::TopicPartition>& partitions, bool lost) override;

 private:
  KeyedPublisher(Options options, kafka::ClientFactory& kafka, ReplicaForwarder* forwarder)
      : options_(std::move(options)), kafka_(kafka), forwarder_(forwarder) {}
  std::shared_ptr<Publisher> Held(int32_t partition) const;
  std::pair<int32_t, std::shared_ptr<Publisher>> AnyHeld();
  // Forwards (or commits here, if the partition arrived meanwhile) until publish_timeout.
  absl::StatusOr<PublishOutcome> Route(int32_t partition, const PublishBatch& batch,
                                       absl::Time deadline);
  absl::StatusOr<std::unique_ptr<Publisher>> StartPartition(int32_t partition);
  void AbortLegacyTransaction();

  const Options options_;
  kafka::ClientFactory& kafka_;
  ReplicaForwarder* const forwarder_;
  std::unique_ptr<ReplicaDirectory> directory_;
  std::unique_ptr<kafka::GroupMember> member_;

  mutable absl::Mutex mu_;
  std::map<int32_t, std::shared_ptr<Publisher>> held_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t next_unkeyed_ ABSL_GUARDED_BY(mu_) = 0;
  Publisher::Stats retired_ ABSL_GUARDED_BY(mu_);  // of publishers no longer held
  // Publishers of lost partitions, stopping in the background (joined by the destructor).
  std::vector<std::thread> retiring_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> assignments_done_{0};
  std::atomic<int64_t> forwarded_ok_{0};
  std::atomic<int64_t> forwarded_failed_{0};
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_INGEST_KEYED_PUBLISHER_H_
