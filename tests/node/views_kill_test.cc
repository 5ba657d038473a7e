// The view job under kill -9 (ADR 0016 §4, §13), against a real broker and real processes: the
// node is killed between producing a view's cells and committing them (the test-hooks build),
// right after a commit, and right after records were published (while the job reads). After
// each restart the output must hold exactly one record per (window, group), each equal to a
// recomputation from the source topic with the node's own view key — so nothing was emitted
// twice, lost, or merged twice into a cell.
#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/views/binding.h"
#include "common/views/changelog.h"
#include "common/views/engine.h"
#include "common/views/gate.h"
#include "common/views/guard.h"
#include "common/views/names.h"
#include "common/views/ptable.h"
#include "common/views/view_key.h"
#include "common/wire/confluent_frame.h"
#include "polder/datasets/mobility/v1/bike_count.pb.h"
#include "proto/polder/views/v1/aggregate_cell.pb.h"
#include "tests/kafka/broker_chaos.h"
#include "tests/node/federation_fixture.h"
#include "tools/kafka/kafka_cluster.h"

namespace polder {
namespace {

using namespace node_testing;  // NOLINT: the federation fixture and its helpers
namespace vv1 = ::polder::views::v1;
namespace mobility = ::polder::datasets::mobility::v1;

constexpr char kView[] = "quarter-municipality";

views::ViewSetSpec Spec() {
  views::ViewSetSpec spec;
  spec.dataset = kBikes;
  spec.grace = absl::ZeroDuration();
  spec.idle_timeout = absl::Hours(1);
  views::ViewSpec v;
  v.id = kView;
  v.window = views::WindowSize::kQuarterHour;
  v.group_by = {*views::ParseDimension("municipality")};
  v.measures = {*views::ParseMeasure("count")};
  spec.views.push_back(v);
  // As the node's config makes it: feed quality's entities views join every set, and the gate
  // decides the set's cells together.
  absl::StatusOr<views::ViewSetSpec> with = views::WithFeedQualityViews(spec);
  EXPECT_OK(with.status());
  return with.ok() ? *with : spec;
}

constexpr char kViewsYaml[] =
    "views:\n  - dataset: mobility.bike-counts\n    grace: 0s\n    idle_timeout: 1h\n"
    "    views:\n      - id: quarter-municipality\n        window: 15m\n"
    "        group_by: [municipality]\n        measures: [count]\n";

class ViewsKillTest : public FederationFixture {
 protected:
  // The node's cluster: the suite's broker, or a three-broker cluster (data_bootstrap_).
  std::string data_bootstrap_;
  std::string DataBootstrap() const {
    return data_bootstrap_.empty() ? broker().bootstrap_servers() : data_bootstrap_;
  }

  // Every committed record of the source topic, by partition in offset order.
  std::vector<kafka::ConsumedRecord> Source(size_t records) {
    if (data_bootstrap_.empty())
      return ReadRecords(kTopic, kPartitions, records, absl::Seconds(30));
    std::vector<kafka::ConsumedRecord> out;
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = DataBootstrap();
    o.read_committed = true;
    kafka::RdKafkaClientFactory clients;
    for (int p = 0; p < kPartitions; ++p) {
      EXPECT_OK(kafka::ReadToEnd(clients, o, kTopic, p, 0, absl::Seconds(30),
                                 [&](const kafka::ConsumedRecord& r) {
                                   out.push_back(r);
                                   return absl::OkStatus();
                                 })
                    .status());
    }
    return out;
  }

  std::unique_ptr<ServiceProcess> StartProvider(const std::map<std::string, std::string>& env) {
    peer_ = "groningen";
    node_identity_ = "groningen";
    bootstrap_ = data_bootstrap_;
    federation_yaml_ = absl::StrCat(FederationYaml("  max_batch_records: 200\n"), kViewsYaml);
    auto node = std::make_unique<ServiceProcess>(
        RunfilesPath(env.empty() ? "services/node/polder-node"
                                 : "services/node/polder-node-test-hooks"),
        "node-groningen", WriteNodeConfig());
    for (const auto& [k, v] : env) node->SetEnv(k, v);
    node->Start();
    return node;
  }

  // 9 counters in two municipalities, counting `count` + i, at event time `at`.
  void PublishAt(int grpc_port, absl::Time at, int count, const std::string& tag) {
    PublishCountsAt(
        grpc_port, at, tag, [count](int i) { return count + i; },
        [](int i) { return std::string(i < 6 ? "GM0014" : "GM0034"); });
  }

  // Output cells by (window start, group key), counted; the close records by window start go to
  // `closes`.
  std::map<int64_t, std::vector<vv1::WindowClose>> closes;
  std::map<std::pair<int64_t, std::string>, std::vector<vv1::AggregateCell>> Output() {
    closes.clear();
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = DataBootstrap();
    kafka::RdKafkaClientFactory clients;
    std::map<std::pair<int64_t, std::string>, std::vector<vv1::AggregateCell>> out;
    EXPECT_OK(kafka::ReadToEnd(
                  clients, o, views::ViewTopic("groningen", kBikes, kView), 0, 0, absl::Seconds(30),
                  [&](const kafka::ConsumedRecord& r) -> absl::Status {
                    ASSIGN_OR_RETURN(wire::Frame f, wire::Decode(r.value));
                    vv1::AggregateCell c;
                    if (!c.ParseFromArray(f.payload.data(), static_cast<int>(f.payload.size()))) {
                      return absl::DataLossError("not an AggregateCell");
                    }
                    if (c.has_window_close()) {
                      closes[c.window_start().seconds()].push_back(c.window_close());
                    } else {
                      out[{c.window_start().seconds(), c.group_key()}].push_back(c);
                    }
                    return absl::OkStatus();
                  })
                  .status());
    return out;
  }

  size_t WaitForWindows(size_t windows, absl::Duration timeout) {
    std::set<int64_t> seen;
    for (absl::Time until = absl::Now() + timeout; absl::Now() < until;) {
      seen.clear();
      for (const auto& [key, cells] : Output()) seen.insert(key.first);
      if (seen.size() >= windows) break;
      absl::SleepFor(absl::Milliseconds(500));
    }
    return seen.size();
  }

  // The close decisions the node committed, read from its changelog, in commit order (each
  // commit's decisions share its watermark and input positions; the watermark only grows).
  std::vector<views::CloseDecision> Closes() {
    const views::SetLayout layout = views::SetLayout::Of(Spec(), true);
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = DataBootstrap();
    o.read_committed = true;
    kafka::RdKafkaClientFactory clients;
    views::RestoredViews restored;
    EXPECT_OK(
        kafka::ReadToEnd(clients, o, views::ViewChangelogTopic(kBikes), 0, 0, absl::Seconds(30),
                         [&](const kafka::ConsumedRecord& r) -> absl::Status {
                           if (!r.key.has_value()) return absl::DataLossError("no key");
                           return restored.Apply(
                               layout, *r.key,
                               r.tombstone ? std::nullopt : std::optional<std::string>(r.value));
                         })
            .status());
    std::vector<views::CloseDecision> out;
    for (const auto& [key, d] : restored.closes) out.push_back(d);
    std::sort(out.begin(), out.end(),
              [](const views::CloseDecision& a, const views::CloseDecision& b) {
                return a.watermark < b.watermark;
              });
    return out;
  }

  // The cells recomputed from the source topic with the node's key, replaying the changelog's
  // close decisions: for each commit that closed windows, the source records before its input
  // positions are offered (a record of a window closed earlier is late, as it was for the
  // node), the watermark moves to the decision's, and the cells that close are guarded and
  // gated together, as the node's commit did.
  std::map<std::pair<int64_t, std::string>, views::PublishedCell> Recompute(size_t records) {
    const views::ViewSetSpec spec = Spec();
    views::SetLayout layout = views::SetLayout::Of(spec, true);
    absl::StatusOr<views::WindowClock> clock = views::WindowClock::Amsterdam();
    EXPECT_OK(clock.status());
    absl::StatusOr<views::ViewKey> key =
        views::ViewKey::Load(absl::StrCat(dir_, "/state-groningen/views/", kBikes, ".key"));
    EXPECT_OK(key.status());
    absl::StatusOr<views::PTable> table = views::PTable::Build(spec.guard.ptable);
    EXPECT_OK(table.status());
    absl::StatusOr<views::Binding> binding =
        views::Binding::Of(&layout, mobility::BikeCount::descriptor());
    EXPECT_OK(binding.status());
    std::map<std::pair<int64_t, std::string>, views::PublishedCell> out;
    if (!clock.ok() || !key.ok() || !table.ok() || !binding.ok()) return out;
    const absl::Time now = absl::Now();
    views::Engine engine(&layout, &*clock, {0, 1, 2}, now);
    views::Guard guard(spec.guard, views::DataClass::kAggregated, &*table);
    views::Gate gate(&layout, &*clock, spec.guard, views::DataClass::kAggregated, &*table);
    const std::vector<kafka::ConsumedRecord> source = Source(records);
    EXPECT_EQ(source.size(), records) << "every acknowledged record is in the source once";
    std::map<int32_t, std::vector<const kafka::ConsumedRecord*>> by_partition;
    for (const kafka::ConsumedRecord& r : source) by_partition[r.partition].push_back(&r);
    for (auto& [p, rs] : by_partition) {
      std::sort(rs.begin(), rs.end(),
                [](const kafka::ConsumedRecord* a, const kafka::ConsumedRecord* b) {
                  return a->offset < b->offset;
                });
    }
    std::map<int32_t, size_t> fed;
    const std::vector<views::CloseDecision> closes = Closes();
    EXPECT_FALSE(closes.empty()) << "the changelog holds no close decision";
    for (size_t i = 0; i < closes.size();) {
      // One commit: the decisions with the same watermark.
      size_t j = i;
      while (j < closes.size() && closes[j].watermark == closes[i].watermark) ++j;
      for (const auto& [p, position] : closes[i].positions) {
        const std::vector<const kafka::ConsumedRecord*>& rs = by_partition[p];
        for (size_t& n = fed[p]; n < rs.size() && rs[n]->offset < position; ++n) {
          absl::StatusOr<wire::Frame> f = wire::Decode(rs[n]->value);
          EXPECT_OK(f.status());
          mobility::BikeCount b;
          EXPECT_TRUE(b.ParseFromArray(f->payload.data(), static_cast<int>(f->payload.size())));
          absl::StatusOr<views::Fact> fact = binding->Extract(b, *key);
          EXPECT_OK(fact.status());
          fact->partition = rs[n]->partition;
          fact->offset = rs[n]->offset;
          const views::Outcome o = engine.Offer(*fact, now);
          EXPECT_TRUE(o == views::Outcome::kMerged || o == views::Outcome::kLate);
        }
      }
      engine.AdvanceTo(closes[i].watermark);
      const std::vector<views::ClosedCell> closed = engine.TakeClosed();
      std::vector<views::PublishedCell> published;
      for (const views::ClosedCell& c : closed) published.push_back(guard.Apply(layout, c));
      EXPECT_OK(gate.Apply(closed, &published).status());
      for (size_t c = 0; c < closed.size(); ++c) {
        if (spec.views[closed[c].id.view].id != kView) continue;  // the output read is kView's
        out[{absl::ToUnixSeconds(closed[c].cell.window.start), closed[c].id.group_key}] =
            published[c];
      }
      // Each decision of the commit names a window that closed here, with as many cells.
      for (size_t d = i; d < j; ++d) {
        const int64_t cells =
            std::count_if(closed.begin(), closed.end(), [&](const views::ClosedCell& c) {
              return spec.views[c.id.view].id == closes[d].view &&
                     c.cell.window.start == closes[d].window_start;
            });
        EXPECT_EQ(cells, closes[d].cells)
            << closes[d].view << " window " << absl::FormatTime(closes[d].window_start);
      }
      i = j;
    }
    return out;
  }

  // Compares every output cell with the recomputation: each (window, group) once, value and
  // protection equal. Returns how many cells were compared.
  size_t CheckAgainstRecomputation(size_t published) {
    const auto output = Output();
    const auto expected = Recompute(published);
    size_t compared = 0;
    for (const auto& [key, cells] : output) {
      EXPECT_EQ(cells.size(), 1u) << "window " << key.first << " group " << key.second
                                  << " emitted " << cells.size() << " times";
      auto e = expected.find(key);
      if (e == expected.end()) {
        ADD_FAILURE() << "a cell the source does not explain: " << key.second;
        continue;
      }
      const vv1::MeasureValue& got = cells[0].measures(0);
      const views::PublishedMeasure& want = e->second.measures[0];
      EXPECT_EQ(got.has_value(), want.value.has_value()) << key.second;
      if (got.has_value() && want.value.has_value()) {
        EXPECT_EQ(got.value(), *want.value) << key.second << " at " << key.first;
      }
      // A withheld cell says only that it is withheld (ADR 0016), never why.
      EXPECT_EQ(got.protection(), want.protection == views::Protection::kNone
                                      ? vv1::PROTECTION_UNSPECIFIED
                                      : vv1::PROTECTION_SUPPRESSED)
          << key.second;
      ++compared;
    }
    // Close records (ADR 0018 §2): each window closed once, after its cells, with their number.
    std::map<int64_t, int64_t> per_window;
    for (const auto& [key, cells] : output) ++per_window[key.first];
    for (const auto& [start, n] : per_window) {
      auto c = closes.find(start);
      if (c == closes.end()) {
        ADD_FAILURE() << "no close record for window " << start;
        continue;
      }
      EXPECT_EQ(c->second[0].cells(), n) << "window " << start;
    }
    for (const auto& [start, records] : closes) {
      EXPECT_EQ(records.size(), 1u)
          << "window " << start << " closed " << records.size() << " times";
    }
    return compared;
  }
};

TEST_F(ViewsKillTest, KilledAtThreePointsTheOutputHoldsEachCellOnceAsRecomputed) {
  const absl::Time base =
      absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) / 900 * 900) - absl::Hours(2);
  auto at = [&](int quarter) { return base + absl::Minutes(15) * quarter; };
  size_t published = 0;

  // 1. Killed between producing the first cells and committing them.
  auto node = StartProvider({{"POLDER_TEST_CRASH_VIEW_COMMIT", "1"}});
  PublishAt(node->grpc_port(), at(1), 10, "q1");
  PublishAt(node->grpc_port(), at(2), 20, "q2");  // closes the quarter ending at(1)
  published += 18;
  const int died = node->WaitForExit(absl::Seconds(90));
  ASSERT_NE(died, -1) << "the hook did not fire:\n" << node->Log();
  ASSERT_TRUE(WIFSIGNALED(died) && WTERMSIG(died) == SIGKILL) << died;
  EXPECT_TRUE(Output().empty()) << "the killed transaction's cells are invisible";

  // 2. Restarted: the cells are emitted once; then killed right after a commit.
  node = StartProvider({});
  ASSERT_EQ(WaitForWindows(1, absl::Seconds(60)), 1u) << node->Log();
  PublishAt(node->grpc_port(), at(3), 30, "q3");
  published += 9;
  ASSERT_EQ(WaitForWindows(2, absl::Seconds(60)), 2u) << node->Log();
  node->Kill();

  // 3. Restarted, and killed while it reads records just published.
  node = StartProvider({});
  PublishAt(node->grpc_port(), at(4), 40, "q4");
  published += 9;
  absl::SleepFor(absl::Milliseconds(150));
  node->Kill();

  // Restarted for good: a last batch closes every earlier quarter.
  node = StartProvider({});
  PublishAt(node->grpc_port(), at(5), 50, "q5");
  published += 9;
  ASSERT_EQ(WaitForWindows(4, absl::Seconds(90)), 4u) << node->Log();

  EXPECT_EQ(CheckAgainstRecomputation(published), 8u)
      << "quarters 1–4 closed, two municipalities each; quarter 5 is still open";
  node->Signal(SIGTERM);
}

// The soak: kill -9 at six random moments (seeded and printed), each after a batch was
// acknowledged — while the job reads, emits, commits or idles.
TEST_F(ViewsKillTest, RandomKillPoints) {
  const absl::Time base =
      absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) / 900 * 900) - absl::Hours(3);
  auto at = [&](int quarter) { return base + absl::Minutes(15) * quarter; };
  const uint32_t seed = static_cast<uint32_t>(absl::ToUnixMicros(absl::Now()));
  std::printf("kill points seeded with %u\n", seed);
  std::mt19937 random(seed);
  size_t published = 0;
  constexpr int kKills = 6;
  for (int i = 1; i <= kKills; ++i) {
    auto node = StartProvider({});
    PublishAt(node->grpc_port(), at(i), 10 * i, absl::StrCat("k", i));
    published += 9;
    const int wait_ms = static_cast<int>(random() % 800);
    std::printf("kill %d after %d ms\n", i, wait_ms);
    absl::SleepFor(absl::Milliseconds(wait_ms));
    node->Kill();
  }
  auto node = StartProvider({});
  PublishAt(node->grpc_port(), at(kKills + 1), 5, "last");
  published += 9;
  ASSERT_EQ(WaitForWindows(kKills, absl::Seconds(120)), static_cast<size_t>(kKills)) << node->Log();
  EXPECT_EQ(CheckAgainstRecomputation(published), 2u * kKills);
  node->Signal(SIGTERM);
}

// The soak under broker failures (ADR 0020 §2): the node on a three-broker cluster (RF 3, min
// ISR 2) while seeded random kills -9 — of the source's leader, the view topic's, the
// changelog's, the view job's transaction coordinator, the active controller or any node — follow
// each acknowledged batch; the node itself is never killed. Every cell once, as recomputed.
TEST_F(ViewsKillTest, BrokerKillsOnThreeBrokers) {
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<kafka_testing::KafkaCluster> cluster,
      kafka_testing::KafkaCluster::Start(chaos::FailureClusterOptions("groningen")));
  data_bootstrap_ = cluster->bootstrap_servers();
  replication_ = 3;
  min_insync_replicas_ = 2;
  const absl::Time base =
      absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) / 900 * 900) - absl::Hours(4);
  auto at = [&](int quarter) { return base + absl::Minutes(15) * quarter; };
  chaos::BrokerChaos chaos(cluster.get(), static_cast<uint32_t>(absl::ToUnixMicros(absl::Now())));
  const std::string view_topic = views::ViewTopic("groningen", kBikes, kView);
  const std::string changelog = views::ViewChangelogTopic(kBikes);
  const std::string job_id = views::ViewTransactionalId("groningen", kBikes);
  chaos.Add("source leader", [](kafka_testing::KafkaCluster& c) { return c.LeaderOf(kTopic, 0); });
  chaos.Add("view topic leader",
            [&](kafka_testing::KafkaCluster& c) { return c.LeaderOf(view_topic, 0); });
  chaos.Add("changelog leader",
            [&](kafka_testing::KafkaCluster& c) { return c.LeaderOf(changelog, 0); });
  chaos.Add("view job's transaction coordinator",
            [&](kafka_testing::KafkaCluster& c) { return c.TransactionCoordinatorOf(job_id); });
  chaos.AddController();
  chaos.AddAnyNode();

  auto node = StartProvider({});
  size_t published = 0;
  constexpr int kRounds = 8;
  for (int i = 1; i <= kRounds; ++i) {
    PublishAt(node->grpc_port(), at(i), 10 * i, absl::StrCat("b", i));
    published += 9;
    ASSERT_OK(chaos.Round().status()) << node->Log();
  }
  PublishAt(node->grpc_port(), at(kRounds + 1), 5, "last");
  published += 9;
  ASSERT_EQ(WaitForWindows(kRounds, absl::Seconds(120)), static_cast<size_t>(kRounds))
      << node->Log();
  EXPECT_EQ(CheckAgainstRecomputation(published), 2u * kRounds);
  EXPECT_EQ(node->WaitForExit(absl::Milliseconds(200)), -1)
      << "the node died under broker failures:\n"
      << node->Log();
  node->Signal(SIGTERM);
}

}  // namespace
}  // namespace polder
