// BrokerChaos: seeded random broker kills on a three-broker test cluster, for the soak matrices
// of ADR 0020 §2 (views, the national aggregator, registry writes, ingest and mirroring under
// broker failures). Each round picks one of the named targets — the leader of a partition, the
// transaction coordinator of a transactional id, the active controller, any node — kills it
// (kill -9) after a random delay, keeps it down for a random time, restarts it and waits until
// every partition's replicas are in sync again, so the next round never kills a second node
// while one is still catching up (that would be "two down", a scenario of its own).
//
//   BrokerChaos chaos(cluster.get(), seed);
//   chaos.Add("view changelog leader", [&](KafkaCluster& c) { return c.LeaderOf(topic, 0); });
//   chaos.Add("view job coordinator", [&](KafkaCluster& c) {
//     return c.TransactionCoordinatorOf(id); });
//   chaos.AddController();  chaos.AddAnyNode();
//   ... work ...;  ASSERT_OK_AND_ASSIGN(std::string what, chaos.Round());
//
// Round() must run on the thread that started the cluster (the nodes' parent-death signal).
// The seed and every round are printed, so a failing run can be repeated.
#ifndef POLDER_TESTS_KAFKA_BROKER_CHAOS_H_
#define POLDER_TESTS_KAFKA_BROKER_CHAOS_H_

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/kafka/kafka_cluster.h"

namespace polder {
namespace chaos {

// A three-broker cluster for failure tests, its nodes named "<name>-<id>": a silent node is
// fenced after 4 s (broker.session.timeout.ms, Kafka's default 9 s; heartbeats every second), so
// the failovers a test waits for come sooner; nothing else differs from KafkaCluster's defaults.
kafka_testing::KafkaClusterOptions FailureClusterOptions(const std::string& name);

class BrokerChaos {
 public:
  using Whom = std::function<absl::StatusOr<int>(kafka_testing::KafkaCluster&)>;

  BrokerChaos(kafka_testing::KafkaCluster* cluster, uint32_t seed,
              absl::Duration max_delay = absl::Milliseconds(1500),
              absl::Duration max_down = absl::Seconds(6));

  void Add(std::string what, Whom whom);
  void AddController();
  void AddAnyNode();

  // One round: a random target, killed after a random delay, restarted after a random time
  // down, in sync again. Returns what was killed ("<what>: node <id>, down <d>").
  absl::StatusOr<std::string> Round();
  uint32_t seed() const { return seed_; }
  // Every round so far, one per line.
  const std::vector<std::string>& rounds() const { return rounds_; }

 private:
  kafka_testing::KafkaCluster* cluster_;
  uint32_t seed_;
  std::mt19937 random_;
  absl::Duration max_delay_, max_down_;
  std::vector<std::pair<std::string, Whom>> targets_;
  std::vector<std::string> rounds_;
};

}  // namespace chaos
}  // namespace polder

#endif  // POLDER_TESTS_KAFKA_BROKER_CHAOS_H_
