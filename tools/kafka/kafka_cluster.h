// KafkaCluster: a real KRaft cluster of N combined broker + controller nodes for tests (ADR
// 0020), shaped as production runs it: replication factor 3 and min.insync.replicas 2 for
// every topic by default, the offsets topic and the transaction state log included, unclean
// leader election off, a static controller quorum over every node.
//
//   ASSIGN_OR_RETURN(auto cluster, KafkaCluster::Start({}));   // three nodes
//   ASSIGN_OR_RETURN(int leader, cluster->LeaderOf("topic", 0));
//   RETURN_IF_ERROR(cluster->node(leader).Kill());              // kill -9 the partition leader
//   RETURN_IF_ERROR(cluster->node(leader).Restart());
//
// Every node is launched before any is waited for (a quorum needs a majority); the ports of the
// whole cluster are chosen at once and the cluster is started again on fresh ports when one was
// taken. Nodes are numbered 1…N (their node.id). The lookups tell the tests whom to kill: the
// leader of a partition, the transaction coordinator of a transactional id, the active
// controller.
#ifndef POLDER_TOOLS_KAFKA_KAFKA_CLUSTER_H_
#define POLDER_TOOLS_KAFKA_KAFKA_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/kafka/kafka_broker.h"

namespace polder {
namespace kafka_testing {

struct KafkaClusterOptions {
  int nodes = 3;
  // Each node's options (runtime, heap, timeouts, bind address, extra properties); each node
  // gets its own work dir below `node.work_dir` (or a fresh folder) and the name
  // "<node.name>-<id>".
  KafkaBrokerOptions node;
  // 0: min(nodes, 3) and replication_factor - 1 (at least 1).
  int replication_factor = 0;
  int min_insync_replicas = 0;
  // Partitions of the transaction state log and the offsets topic (coordinators spread over the
  // nodes).
  int coordinator_partitions = 3;
};

class KafkaCluster {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaCluster>> Start(KafkaClusterOptions options);
  // Several clusters at once (one per city where cities meet): every node of every cluster is
  // formatted and launched before any is waited for, which overlaps their JVMs' starts.
  static absl::StatusOr<std::vector<std::unique_ptr<KafkaCluster>>> StartAll(
      std::vector<KafkaClusterOptions> options);
  // Kills every node (kill -9: the data is thrown away).
  ~KafkaCluster();
  // Stops every node at once (SIGTERM, a controlled shutdown; kill -9 after the stop timeout):
  // for a cluster whose data is kept (polder-kafka --work_dir). One by one, the last nodes would
  // wait for a quorum already gone.
  absl::Status Stop();
  KafkaCluster(const KafkaCluster&) = delete;
  KafkaCluster& operator=(const KafkaCluster&) = delete;

  // Every node's address, comma-separated.
  std::string bootstrap_servers() const;
  int size() const { return static_cast<int>(nodes_.size()); }
  // Node `id` (1…size()).
  KafkaBroker& node(int id) { return *nodes_.at(static_cast<size_t>(id - 1)); }
  const std::string& cluster_id() const { return cluster_id_; }
  int replication_factor() const { return replication_factor_; }
  int min_insync_replicas() const { return min_insync_replicas_; }

  // Launches the stopped nodes `ids` again (same ports, same data) without waiting for them;
  // AwaitServing waits until they serve (launching one again whose port was still being
  // released). Restarting several nodes — of several clusters — this way overlaps their starts.
  // From the thread that started the cluster (the nodes' parent-death signal).
  absl::Status Relaunch(const std::vector<int>& ids);
  absl::Status AwaitServing(const std::vector<int>& ids);
  // Until every node is registered and every partition of every topic (the internal ones
  // included) has a leader and its full replica set in sync — a node restarted after a kill has
  // caught up — or DEADLINE_EXCEEDED naming a partition behind. Before the next kill: killing
  // another node while one is still catching up leaves partitions below min ISR.
  absl::Status AwaitInSync(absl::Duration timeout = absl::Seconds(60)) const;

  // The node leading `topic`'s `partition` now (from the running nodes' metadata); NOT_FOUND
  // while it has none.
  absl::StatusOr<int> LeaderOf(const std::string& topic, int32_t partition,
                               absl::Duration timeout = absl::Seconds(10)) const;
  // The nodes in the partition's in-sync replica set.
  absl::StatusOr<std::vector<int>> InSyncReplicas(const std::string& topic, int32_t partition,
                                                  absl::Duration timeout = absl::Seconds(10)) const;
  // The transaction coordinator of `transactional_id`: the leader of its partition of
  // __transaction_state (abs(Java hashCode) % partitions, as Kafka places it).
  absl::StatusOr<int> TransactionCoordinatorOf(const std::string& transactional_id,
                                               absl::Duration timeout = absl::Seconds(10)) const;
  // The active controller (the KRaft quorum's leader), asked of a running node.
  absl::StatusOr<int> ActiveController() const;
  // The nodes the metadata lists as brokers now.
  absl::StatusOr<std::vector<int>> Brokers(absl::Duration timeout = absl::Seconds(10)) const;

  // Java's String.hashCode of an ASCII string (what Kafka partitions coordinators by).
  static int32_t JavaHashCode(const std::string& s);

 private:
  explicit KafkaCluster(KafkaClusterOptions options);
  // The nodes' options and properties.
  absl::Status Prepare();
  // Fresh ports (none of `taken`, which gains them), a cluster id and every node's config.
  absl::Status Configure(std::set<int>& taken);
  // Every launched node serving and registered as a broker.
  absl::Status AwaitStarted();
  std::string RunningBootstrap() const;

  KafkaClusterOptions options_;
  std::vector<std::unique_ptr<KafkaBroker>> nodes_;
  std::string cluster_id_;
  int replication_factor_ = 3;
  int min_insync_replicas_ = 2;
};

}  // namespace kafka_testing
}  // namespace polder

#endif  // POLDER_TOOLS_KAFKA_KAFKA_CLUSTER_H_
