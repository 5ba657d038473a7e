// polder-aggregator under kill -9 (ADR 0018 §5), against a real broker and real processes: killed
// between producing national figures and committing them (the test-hooks build), right after a
// commit that wrote figures, and while it reads new city results. After the restarts the national
// topic must hold exactly one record per (window, revision), revisions numbered from 0 without a
// gap, and every figure must equal a recomputation from the cities' view records for the cities
// that figure says it includes (the decisions the changelog replayed): nothing written twice,
// lost, or counted twice.
//
// Every window is past its national deadline when read, and Enschede's mirror lags a round behind
// the other two cities: a window closes with the cities read by the first commit after one of them
// closed it (or with all three when a restart finds them all) and takes a revision for each city
// read later. Each city's records come in its own order, as its view job writes them.
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/aggregator/aggregator_fixture.h"
#include "tests/kafka/broker_chaos.h"
#include "tools/kafka/kafka_cluster.h"

namespace polder {
namespace {

using namespace aggregator_testing;  // NOLINT: the aggregator fixture and its helpers

class AggregatorKillTest : public AggregatorFixture {
 protected:
  static constexpr char kDeadline[] = "0s";

  // Round r: window r from Groningen (its second cell withheld every third round) and
  // Amersfoort; Enschede's part of window r - 1, late.
  void WriteRound(int r) {
    Cell("groningen", r, "GM0014", 10 * r + 1);
    Cell("groningen", r, "GM0034", r % 3 == 0 ? std::nullopt : std::optional<double>(7));
    Close("groningen", r, 2);
    Cell("amersfoort", r, "GM0307", 10 * r + 2);
    Close("amersfoort", r, 1);
    if (r > 0) LateEnschede(r - 1);
    Flush();
  }
  void LateEnschede(int r) {
    Cell("enschede", r, "GM0153", 10 * r + 3);
    Close("enschede", r, 1);
  }

  // What the cities published: per (window start, city) the count's sum and withheld cells,
  // and whether the city closed the window.
  struct Part {
    double sum = 0;
    int64_t published = 0;
    int64_t withheld = 0;
    bool closed = false;
  };
  std::map<int64_t, std::map<std::string, Part>> ReadInputs() {
    std::map<int64_t, std::map<std::string, Part>> out;
    kafka::ConsumerOptions o;
    o.client = DataClientOptions();
    kafka::RdKafkaClientFactory clients;
    for (const std::string& city : Cities()) {
      EXPECT_OK(kafka::ReadToEnd(clients, o, views::ViewTopic(city, kBikes, view_), 0, 0,
                                 absl::Seconds(30),
                                 [&](const kafka::ConsumedRecord& r) -> absl::Status {
                                   absl::StatusOr<wire::Frame> f = wire::Decode(r.value);
                                   if (!f.ok()) return f.status();
                                   vv1::AggregateCell c;
                                   if (!c.ParseFromArray(f->payload.data(),
                                                         static_cast<int>(f->payload.size()))) {
                                     return absl::DataLossError("not a cell");
                                   }
                                   Part& p = out[c.window_start().seconds()][city];
                                   if (c.has_window_close()) {
                                     p.closed = true;
                                   } else if (c.measures(0).has_value()) {
                                     p.sum += c.measures(0).value();
                                     ++p.published;
                                   } else {
                                     ++p.withheld;
                                   }
                                   return absl::OkStatus();
                                 })
                    .status());
    }
    return out;
  }

  // Whether the figures cover every window the cities closed with every city that closed it.
  static bool Covered(const std::vector<natv1::NationalFigure>& figures,
                      const std::map<int64_t, std::map<std::string, Part>>& inputs) {
    std::map<int64_t, size_t> cities;  // window → cities in its newest figure
    for (const natv1::NationalFigure& f : figures) {
      cities[f.window_start().seconds()] = static_cast<size_t>(f.cities_size());
    }
    for (const auto& [window, parts] : inputs) {
      size_t closed = 0;
      for (const auto& [city, p] : parts) closed += p.closed ? 1 : 0;
      if (closed > 0 && cities[window] != closed) return false;
    }
    return true;
  }

  std::vector<natv1::NationalFigure> WaitForCoverage(absl::Duration timeout) {
    const auto inputs = ReadInputs();
    std::vector<natv1::NationalFigure> figures;
    for (absl::Time until = absl::Now() + timeout; absl::Now() < until;) {
      figures = ReadFigures();
      if (Covered(figures, inputs)) break;
      absl::SleepFor(absl::Milliseconds(500));
    }
    EXPECT_TRUE(Covered(figures, inputs)) << "every closed window in its newest figure";
    return figures;
  }

  // Checks the figures against the recomputation; returns how many it checked.
  size_t CheckAgainstRecomputation(const std::vector<natv1::NationalFigure>& figures) {
    const auto inputs = ReadInputs();
    std::map<std::string, std::vector<int32_t>> revisions;  // figure key → revisions in order
    size_t checked = 0;
    for (const natv1::NationalFigure& f : figures) {
      const std::string key = f.figure_key();
      revisions[key].push_back(f.revision());
      const auto& parts = inputs.at(f.window_start().seconds());
      std::set<std::string> added;
      double total = 0;
      int64_t withheld = 0, published = 0;
      for (const natv1::CityPart& c : f.cities()) {
        const Part& p = parts.at(c.peer());
        EXPECT_TRUE(p.closed) << key << ": " << c.peer() << " included before it closed";
        EXPECT_LE(c.included_in_revision(), f.revision()) << key;
        if (c.included_in_revision() == f.revision()) added.insert(c.peer());
        EXPECT_EQ(c.measures_size(), 1) << key;
        if (c.measures_size() != 1) continue;
        EXPECT_EQ(c.measures(0).value(), p.sum) << key << " " << c.peer();
        EXPECT_EQ(c.measures(0).withheld_cells(), p.withheld) << key << " " << c.peer();
        total += p.sum;
        withheld += p.withheld;
        published += p.published;
      }
      EXPECT_EQ(std::set<std::string>(f.cities_added().begin(), f.cities_added().end()), added)
          << key << " revision " << f.revision();
      EXPECT_FALSE(added.empty()) << key << ": a revision adds a city";
      EXPECT_EQ(f.totals_size(), 1) << key;
      if (f.totals_size() != 1) continue;
      EXPECT_EQ(f.totals(0).value(), total) << key << " revision " << f.revision();
      EXPECT_EQ(f.totals(0).withheld_cells(), withheld) << key;
      EXPECT_EQ(f.complete(), f.cities_size() == 3) << key;
      ++checked;
    }
    for (const auto& [key, numbers] : revisions) {
      for (size_t i = 0; i < numbers.size(); ++i) {
        EXPECT_EQ(numbers[i], static_cast<int32_t>(i))
            << key << ": each revision once, in order (" << numbers.size() << " written)";
      }
    }
    return checked;
  }

  // The ops page as JSON ({} while it does not answer, e.g. a paused process).
  json Statusz(const ServiceProcess& p) {
    json j = json::parse(Ops(p, "/statusz"), nullptr, false);
    return j.is_object() ? j : json::object();
  }

  // Waits for the process to die by the test hook's SIGKILL.
  static void ExpectKilledByHook(ServiceProcess& p) {
    const int status = p.WaitForExit(absl::Seconds(90));
    ASSERT_NE(status, -1) << "the hook did not fire; log:\n" << p.Log();
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  }
};

TEST_F(AggregatorKillTest, KilledAtThreePointsEachFigureIsWrittenOnceAsRecomputed) {
  // 1. Between producing figures and committing them: the second commit that writes figures.
  auto aggregator =
      StartAggregator(kDeadline, "none", {{"POLDER_TEST_CRASH_AGGREGATOR_COMMIT", "2"}});
  WriteRound(0);
  ASSERT_GE(WaitForFigures(1).size(), 1u) << aggregator->Log();
  WriteRound(1);
  ExpectKilledByHook(*aggregator);
  const size_t before_restart = ReadFigures().size();

  // 2. Right after a commit that wrote figures.
  aggregator = StartAggregator(kDeadline);
  ASSERT_GT(WaitForFigures(before_restart + 1).size(), before_restart) << aggregator->Log();
  aggregator->Kill();

  // 3. While it reads new results.
  aggregator = StartAggregator(kDeadline);
  WriteRound(2);
  aggregator->Kill();

  // Restarted for good, as two replicas (ADR 0021 §7): the job runs on one; both serve figures.
  aggregator = StartAggregator(kDeadline);
  auto other = StartAggregator(kDeadline, "none", {}, "national-b");
  WriteRound(3);
  (void)WaitForCoverage(absl::Seconds(90));
  ServiceProcess* holder = nullptr;
  ServiceProcess* standby = nullptr;
  for (absl::Time until = absl::Now() + absl::Seconds(60); absl::Now() < until && !holder;
       absl::SleepFor(absl::Milliseconds(200))) {
    for (auto [p, q] :
         {std::pair{aggregator.get(), other.get()}, {other.get(), aggregator.get()}}) {
      if (Statusz(*p).value("/replica/job_held"_json_pointer, false)) {
        holder = p;
        standby = q;
      }
    }
  }
  ASSERT_NE(holder, nullptr) << "no replica holds the job; " << aggregator->Log() << other->Log();
  EXPECT_FALSE(Statusz(*standby).value("/replica/job_held"_json_pointer, true));
  // The replica without the job serves what the holder committed (read back from the changelog).
  for (absl::Time until = absl::Now() + absl::Seconds(30);
       absl::Now() < until && ApiJson(*standby, FiguresPath()) != ApiJson(*holder, FiguresPath());
       absl::SleepFor(absl::Milliseconds(200))) {
  }
  EXPECT_EQ(ApiJson(*standby, FiguresPath()), ApiJson(*holder, FiguresPath()));

  // The zombie: the holder paused past its session (6 s); the other replica takes the job and
  // goes on. Woken, the zombie's transactional calls are fenced: it stops the job, writes nothing.
  holder->Send(SIGSTOP);
  const absl::Time paused = absl::Now();
  WriteRound(4);
  bool took_over = false;
  for (absl::Time until = paused + absl::Seconds(45); absl::Now() < until && !took_over;
       absl::SleepFor(absl::Milliseconds(100))) {
    took_over = Statusz(*standby).value("/replica/job_held"_json_pointer, false);
  }
  ASSERT_TRUE(took_over) << "within 3x the 15 s failover bound; " << standby->Log();
  std::printf("the standby held the national job %.1f s after the holder was paused\n",
              absl::ToDoubleSeconds(absl::Now() - paused));
  (void)WaitForCoverage(absl::Seconds(60));
  holder->Send(SIGCONT);
  bool gave_up = false;
  for (absl::Time until = absl::Now() + absl::Seconds(30); absl::Now() < until && !gave_up;
       absl::SleepFor(absl::Milliseconds(200))) {
    const json st = Statusz(*holder);
    gave_up = !st.value("/replica/job_held"_json_pointer, true) &&
              st.value("/job/state"_json_pointer, "") != "running";
  }
  EXPECT_TRUE(gave_up) << "the woken zombie still runs the job; " << holder->Log();
  {
    const json st = Statusz(*holder);
    std::printf("the woken zombie: job %s, fenced %s, last error: %s\n",
                st.value("/job/state"_json_pointer, "").c_str(),
                st.value("/replica/roles_fenced"_json_pointer, json::object()).dump().c_str(),
                st.value("/job/error"_json_pointer, "").c_str());
  }
  EXPECT_EQ(holder->WaitForExit(absl::Milliseconds(100)), -1) << "the zombie lives on, unready "
                                                                 "only while it rejoins";
  // The last rounds and Enschede's last late part, on whichever replica holds the job now.
  WriteRound(5);
  LateEnschede(5);
  Flush();
  const std::vector<natv1::NationalFigure> figures = WaitForCoverage(absl::Seconds(90));
  const size_t checked = CheckAgainstRecomputation(figures);
  EXPECT_GE(checked, 6u) << "six windows, each closed at least once; " << aggregator->Log();
  std::printf("checked %zu national figures (%zu windows) against the recomputation\n", checked,
              ReadInputs().size());
  EXPECT_EQ(aggregator->Signal(SIGTERM), 0);
  EXPECT_EQ(other->Signal(SIGTERM), 0);
}

// The soak: kill -9 at six random points (seeded and printed): by the hook at a random commit,
// after a random wait while it reads or commits.
TEST_F(AggregatorKillTest, RandomKillPoints) {
  const uint32_t seed = static_cast<uint32_t>(absl::ToUnixMicros(absl::Now()));
  std::printf("kill points seeded with %u\n", seed);
  std::mt19937 random(seed);
  constexpr int kKills = 6;
  int round = 0;
  for (int i = 0; i < kKills; ++i) {
    if (random() % 3 == 0) {
      const int commit = 1 + static_cast<int>(random() % 2);
      std::printf("kill %d by the hook at commit %d\n", i, commit);
      auto aggregator = StartAggregator(
          kDeadline, "none", {{"POLDER_TEST_CRASH_AGGREGATOR_COMMIT", absl::StrCat(commit)}});
      WriteRound(round++);
      if (commit == 2) {
        // A second commit with figures falls due once the first is written.
        (void)WaitForFigures(ReadFigures().size() + 1, absl::Seconds(20));
        WriteRound(round++);
      }
      if (aggregator->WaitForExit(absl::Seconds(20)) == -1) {
        aggregator->Kill();  // the first commit had written everything: no second one came
      }
    } else {
      const int wait_ms = static_cast<int>(random() % 1500);
      std::printf("kill %d after %d ms\n", i, wait_ms);
      auto aggregator = StartAggregator(kDeadline);
      WriteRound(round++);
      absl::SleepFor(absl::Milliseconds(wait_ms));
      aggregator->Kill();
    }
  }
  auto aggregator = StartAggregator(kDeadline);
  WriteRound(round);
  LateEnschede(round);
  Flush();
  const std::vector<natv1::NationalFigure> figures = WaitForCoverage(absl::Seconds(120));
  const size_t checked = CheckAgainstRecomputation(figures);
  EXPECT_GE(checked, static_cast<size_t>(round + 1)) << aggregator->Log();
  std::printf("checked %zu national figures against the recomputation\n", checked);
  EXPECT_EQ(aggregator->Signal(SIGTERM), 0);
}

// The soak under broker failures (ADR 0020 §2): the aggregator and the cities' view topics on a
// three-broker cluster (RF 3, min ISR 2) while seeded random kills -9 — of a city view topic's
// leader, the national topic's, the changelog's, the aggregator's transaction coordinator, the
// active controller or any node — follow each round; the aggregator itself is never killed.
// Every figure once per revision, as recomputed.
TEST_F(AggregatorKillTest, BrokerKillsOnThreeBrokers) {
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<kafka_testing::KafkaCluster> cluster,
      kafka_testing::KafkaCluster::Start(chaos::FailureClusterOptions("national")));
  UseCluster(cluster->bootstrap_servers());
  chaos::BrokerChaos chaos(cluster.get(), static_cast<uint32_t>(absl::ToUnixMicros(absl::Now())));
  const std::string groningen = views::ViewTopic("groningen", kBikes, view_);
  const std::string national = NationalTopic();
  const std::string changelog = changelog_;
  chaos.Add("Groningen's view topic leader",
            [&](kafka_testing::KafkaCluster& c) { return c.LeaderOf(groningen, 0); });
  chaos.Add("national topic leader",
            [&](kafka_testing::KafkaCluster& c) { return c.LeaderOf(national, 0); });
  chaos.Add("changelog leader",
            [&](kafka_testing::KafkaCluster& c) { return c.LeaderOf(changelog, 0); });
  chaos.Add("aggregator's transaction coordinator", [](kafka_testing::KafkaCluster& c) {
    return c.TransactionCoordinatorOf("polder-aggregator-national");
  });
  chaos.AddController();
  chaos.AddAnyNode();

  auto aggregator = StartAggregator(kDeadline);
  constexpr int kRounds = 8;
  for (int round = 0; round < kRounds; ++round) {
    WriteRound(round);
    ASSERT_OK(chaos.Round().status()) << aggregator->Log();
  }
  WriteRound(kRounds);
  LateEnschede(kRounds);
  Flush();
  const std::vector<natv1::NationalFigure> figures = WaitForCoverage(absl::Seconds(120));
  const size_t checked = CheckAgainstRecomputation(figures);
  EXPECT_GE(checked, static_cast<size_t>(kRounds + 1)) << aggregator->Log();
  std::printf("checked %zu national figures against the recomputation\n", checked);
  EXPECT_EQ(aggregator->WaitForExit(absl::Milliseconds(200)), -1)
      << "the aggregator died under broker failures:\n"
      << aggregator->Log();
  EXPECT_EQ(aggregator->Signal(SIGTERM), 0);
}

}  // namespace
}  // namespace polder
