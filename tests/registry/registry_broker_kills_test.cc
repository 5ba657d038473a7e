// Registry writes under broker failures (ADR 0020 §2), a soak: the registry's topic on a
// three-broker cluster (RF 3, min ISR 2) while three writers register schemas and seeded random
// kills -9 — of the topic's leader, the registry's transaction coordinator, the active controller
// or any node — follow one another; the registry itself is never killed. Every acknowledged
// registration is there with the id it was acknowledged with and no id is used twice, in the
// running registry and again in one restarted from the topic; a registration refused during a
// failure was refused as unavailable (503), never as the writer's fault.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/kafka/broker_chaos.h"
#include "tests/registry/registry_fixture.h"
#include "tools/kafka/kafka_cluster.h"

namespace polder {
namespace {

using namespace registry_testing;  // NOLINT: the fixture and its helpers

class RegistryBrokerKillsTest : public RegistryE2eTest {
 protected:
  static std::string Subject(int n) { return absl::StrCat("polder.datasets.load.v1.S", n); }

  // Every acknowledged registration is served with its id; no id twice among them.
  void ExpectAcknowledged(RegistryProcess& registry, const std::map<int, int>& acked) {
    auto client = Rest(registry, "national");
    std::set<int> ids;
    for (const auto& [n, id] : acked) {
      int st = 0;
      json v = Get(*client, absl::StrCat("/subjects/", Subject(n), "/versions/latest"), &st);
      ASSERT_EQ(st, 200) << "acknowledged registration " << Subject(n) << " lost: " << v;
      EXPECT_EQ(v["id"], id) << Subject(n);
      EXPECT_TRUE(ids.insert(id).second) << "id " << id << " acknowledged twice";
    }
  }
};

TEST_F(RegistryBrokerKillsTest, RegistrationsSurviveRandomBrokerKills) {
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<kafka_testing::KafkaCluster> cluster,
      kafka_testing::KafkaCluster::Start(chaos::FailureClusterOptions("national")));
  registry_replication_ = 3;
  auto registry = Start("reg-a", "reg-a", cluster->bootstrap_servers());

  chaos::BrokerChaos chaos(cluster.get(), static_cast<uint32_t>(absl::ToUnixMicros(absl::Now())));
  const std::string topic = topic_;
  chaos.Add("registry topic leader",
            [&](kafka_testing::KafkaCluster& c) { return c.LeaderOf(topic, 0); });
  chaos.Add("registry's transaction coordinator", [](kafka_testing::KafkaCluster& c) {
    return c.TransactionCoordinatorOf(absl::StrCat("polder-registry-", tls::kTestFederation));
  });
  chaos.AddController();
  chaos.AddAnyNode();

  std::mutex mu;
  std::map<int, int> acked;     // schema number → the id acknowledged
  std::map<int, int> statuses;  // HTTP status → answers
  std::atomic<int> next{0};
  std::atomic<bool> stop{false};
  auto writer = [&] {
    auto client = Rest(*registry, "national");
    while (!stop) {
      const int n = next++;
      int st = 0;
      json r = Post(*client, absl::StrCat("/subjects/", Subject(n), "/versions"),
                    Proto(absl::StrCat("syntax = \"proto3\"; package polder.datasets.load.v1; "
                                       "message S",
                                       n, " { int32 v = 1; }")),
                    &st);
      std::lock_guard<std::mutex> lock(mu);
      ++statuses[st];
      if (st == 200) acked[n] = r["id"].get<int>();
    }
  };
  std::vector<std::thread> writers;
  for (int i = 0; i < 3; ++i) writers.emplace_back(writer);
  constexpr int kRounds = 8;
  size_t before = 0;
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_OK(chaos.Round().status()) << registry->Log();
    // Registrations go on after each failure.
    const absl::Time until = absl::Now() + absl::Seconds(60);
    size_t now = 0;
    while (absl::Now() < until) {
      {
        std::lock_guard<std::mutex> lock(mu);
        now = acked.size();
      }
      if (now > before) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    EXPECT_GT(now, before) << "no registration after " << chaos.rounds().back();
    before = now;
  }
  stop = true;
  for (auto& t : writers) t.join();

  std::string answers;
  for (const auto& [st, n] : statuses) absl::StrAppend(&answers, " ", st, ": ", n);
  std::printf("registrations acknowledged: %zu; answers:%s\n", acked.size(), answers.c_str());
  for (const auto& [st, n] : statuses) {
    EXPECT_TRUE(st == 200 || st == 503) << n << " answers " << st << " under broker failures";
  }
  ExpectAcknowledged(*registry, acked);
  EXPECT_EQ(registry->WaitForExit(absl::Milliseconds(200)), -1)
      << "the registry died under broker failures:\n"
      << registry->Log();

  // A registry started afresh from the topic serves the same.
  registry->Kill();
  registry = Start("reg-a", "reg-a", cluster->bootstrap_servers());
  ExpectAcknowledged(*registry, acked);
}

}  // namespace
}  // namespace polder
