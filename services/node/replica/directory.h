// ReplicaDirectory: who owns which key partition, as every replica of a city reads it from the
// compacted `_polder.replicas` topic (ADR 0021 §2).
//
// The owner of key partition k writes `keys/<k>` → {replica, endpoint} inside the first
// transaction under the partition's transactional id after it was assigned k, so the record is
// committed only while it is not fenced: the last committed claim of a partition is its current
// owner (or the last one, while a rebalance is moving it). Replicas also write `replica/<id>` →
// {endpoint} when they start (not transactional: an address, not a claim), for calls addressed
// to a replica by name (a stream's receipts). A reader thread tails the topic read_committed
// from its beginning.
#ifndef POLDER_SERVICES_NODE_REPLICA_DIRECTORY_H_
#define POLDER_SERVICES_NODE_REPLICA_DIRECTORY_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/record.h"

namespace polder {
namespace node {

struct ReplicaAddress {
  std::string replica;   // the replica id (its pod name on Kubernetes)
  std::string endpoint;  // host:port of its internal port
  absl::Time at;         // when the record was written
};

class ReplicaDirectory {
 public:
  struct Options {
    kafka::ConsumerOptions consumer;
    std::string topic = "_polder.replicas";
  };

  static absl::StatusOr<std::unique_ptr<ReplicaDirectory>> Start(Options options,
                                                                 kafka::ClientFactory& kafka);
  ~ReplicaDirectory();

  // The last committed owner of key partition `partition`.
  std::optional<ReplicaAddress> KeyOwner(int32_t partition) const;
  std::map<int32_t, ReplicaAddress> KeyOwners() const;
  // The internal endpoint replica `id` announced.
  std::optional<ReplicaAddress> Replica(const std::string& id) const;
  // True once the topic was read to the end it had at start (readiness).
  bool loaded() const { return loaded_.load(); }
  // Waits up to `timeout` until everything committed before this call has been read.
  bool CatchUp(absl::Duration timeout) const;

  // The records a replica writes: its claim on a key partition and its address.
  static kafka::ProducerRecord KeyClaim(const std::string& topic, int32_t partition,
                                        const ReplicaAddress& owner);
  static kafka::ProducerRecord ReplicaRecord(const std::string& topic, const ReplicaAddress& self);

 private:
  ReplicaDirectory(Options options, kafka::ClientFactory& kafka)
      : options_(std::move(options)), kafka_(kafka) {}
  void Loop();
  void Apply(const kafka::ConsumedRecord& r);

  const Options options_;
  kafka::ClientFactory& kafka_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> loaded_{false};
  int64_t load_end_ = 0;
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::map<int32_t, ReplicaAddress> keys_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, ReplicaAddress> replicas_ ABSL_GUARDED_BY(mu_);
  int64_t position_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_REPLICA_DIRECTORY_H_
