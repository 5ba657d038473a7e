// The national figures end to end (ADR 0018), every part real: three cities' nodes (Groningen,
// Amersfoort, Ede), each on its own Kafka cluster, compute a guarded view of the bicycle counts
// published through their ingest; the national operator's node, on a fourth cluster, mirrors each
// city's view over mutual TLS under an aggregate-only contract; polder-aggregator on the national
// cluster combines them into national figures and serves them on its API. Ede's contract is signed
// late — its mirror lags past the national deadline — so the window closes without Ede (marked
// incomplete) and Ede's result, once mirrored, revises it. The national cluster holds no raw
// topic of any city, and the national node's contracts let it read aggregates only (a raw
// Subscribe under them is refused). Feed quality: each city offers its own to contract holders
// only, the aggregator serves it per city, and entities reporting is what the cities' guarded
// entities views published — Ede's hour of three counters withheld.
#include <signal.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/views/spec.h"
#include "tests/aggregator/aggregator_fixture.h"

namespace polder {
namespace {

using namespace aggregator_testing;  // NOLINT: the aggregator fixture and its helpers
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kCityView[] = "quarter-municipality";

class NationalE2eTest : public AggregatorFixture {
 protected:
  struct City {
    std::string name, municipality;
    int count;
    // Counters in the previous hour: below the guard's k = 5 (Ede) its entities reporting is
    // withheld. Nine elsewhere (every source partition gets a record, so the watermark moves).
    int hour_counters;
  };
  const std::vector<City> cities_in_test_ = {
      {"amersfoort", "GM0307", 20, 9}, {"ede", "GM0228", 30, 3}, {"groningen", "GM0014", 10, 9}};

  static std::string ViewsYaml() {
    return absl::StrCat(
        "views:\n  - dataset: mobility.bike-counts\n    grace: 0s\n    idle_timeout: 1h\n"
        "    views:\n      - id: ",
        kCityView,
        "\n        window: 15m\n        group_by: [municipality]\n"
        "        measures: [count]\n");
  }

  // A city's node on a cluster of its own (Groningen: the suite's broker), serving federation.
  std::unique_ptr<ServiceProcess> StartCity(const std::string& city) {
    peer_ = city;
    node_identity_ = city;
    bootstrap_.clear();
    if (city != "groningen") {
      kafka_testing::KafkaBrokerOptions bo;
      bo.name = city;
      auto b = kafka_testing::KafkaBroker::Start(bo);
      EXPECT_OK(b.status());
      if (!b.ok()) return nullptr;
      bootstrap_ = (*b)->bootstrap_servers();
      brokers_[city] = *std::move(b);
    }
    federation_yaml_ = absl::StrCat(FederationYaml("  max_batch_records: 200\n"), ViewsYaml());
    return StartNode();
  }

  std::string Bootstrap(const std::string& who) const {
    auto it = brokers_.find(who);
    return it == brokers_.end() ? broker().bootstrap_servers() : it->second->bootstrap_servers();
  }

  json Statusz(const ServiceProcess& p) {
    std::string out;
    testing::RunCommand(absl::StrCat("curl -sS http://127.0.0.1:", p.port("ops_port"), "/statusz"),
                        &out);
    return json::parse(out, nullptr, false);
  }

  std::string DefinitionHash(const ServiceProcess& node) {
    for (absl::Time until = absl::Now() + absl::Seconds(60); absl::Now() < until;) {
      json s = Statusz(node);
      if (s.is_object() && s.contains("views") && !s["views"].empty() &&
          s["views"][0]["state"] == "running") {
        return s["views"][0]["views"][0]["definition_hash"].get<std::string>();
      }
      absl::SleepFor(absl::Milliseconds(500));
    }
    ADD_FAILURE() << "the view job did not run: " << Statusz(node).dump();
    return "";
  }

  // `counters` counters of `city` count `count` each at `at`, through its ingest (keyed,
  // retried).
  void PublishAt(const ServiceProcess& node, const City& city, absl::Time at,
                 const std::string& tag, int counters = 9) {
    auto stub = Ingest(node.grpc_port(), true, city.name);
    nv1::PublishRequest req;
    req.set_dataset(kBikes);
    req.set_idempotency_key(tag);
    for (int i = 0; i < counters; ++i) {
      auto* r = req.add_records();
      r->set_json(absl::StrCat(R"({"counterId":")", city.name, "-counter-", i, R"(","eventTime":")",
                               absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", at, absl::UTCTimeZone()),
                               R"(","count":")", city.count,
                               R"(","location":{"latitude":52.0,"longitude":5.6,)",
                               R"("municipalityCode":")", city.municipality, R"("}})"));
      r->set_ce_id(absl::StrCat(tag, "-", i));
    }
    PublishRetried(*stub, req, 10);
  }

  // The value a city published for the window starting at `start` (its own cluster's view
  // topic), or -1 until its cell and close record are there.
  double Published(const std::string& city, absl::Time start, const std::string& view = kCityView) {
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = Bootstrap(city);
    kafka::RdKafkaClientFactory clients;
    double value = -1;
    bool closed = false;
    (void)kafka::ReadToEnd(
        clients, o, views::ViewTopic(city, kBikes, view), 0, 0, absl::Seconds(10),
        [&](const kafka::ConsumedRecord& r) -> absl::Status {
          absl::StatusOr<wire::Frame> f = wire::Decode(r.value);
          if (!f.ok()) return f.status();
          vv1::AggregateCell c;
          if (!c.ParseFromArray(f->payload.data(), static_cast<int>(f->payload.size()))) {
            return absl::DataLossError("not a cell");
          }
          if (views::TimeFromProto(c.window_start()) != start) return absl::OkStatus();
          if (c.has_window_close()) {
            closed = true;
          } else if (c.measures_size() == 1 && c.measures(0).has_value()) {
            value = c.measures(0).value();
          }
          return absl::OkStatus();
        });
    return closed ? value : -1;
  }

  void WriteNationalContract(const std::string& city, const std::string& hash) {
    WriteContract(absl::StrCat(city.substr(0, 2), "-na-view"), [&](trust::Contract& c) {
      c.provider = city;
      c.consumer = "national";
      c.access = trust::Access::kAggregateOnly;
      c.view = trust::ViewGrant{kCityView, {hash}};
      c.purpose = "national cycling figures";
    });
  }

  std::map<std::string, std::unique_ptr<kafka_testing::KafkaBroker>> brokers_;
};

TEST_F(NationalE2eTest, ThreeCitiesViewsBecomeNationalFiguresWithALateCitysRevision) {
  const absl::Time now = absl::Now();
  const absl::Time quarter = absl::FromUnixSeconds(absl::ToUnixSeconds(now) / 900 * 900);
  const absl::Time window = quarter - absl::Minutes(15);  // closed by the records at `now`
  const absl::Time hour = absl::FromUnixSeconds(absl::ToUnixSeconds(now) / 3600 * 3600);

  // Each city: counts in the previous hour (closed for feed quality's entities reporting) and
  // the previous quarter, then one at `now` moves its watermark past both.
  std::map<std::string, std::unique_ptr<ServiceProcess>> nodes;
  std::map<std::string, std::string> hashes;
  for (const City& c : cities_in_test_) {
    nodes[c.name] = StartCity(c.name);
    ASSERT_NE(nodes[c.name], nullptr);
    hashes[c.name] = DefinitionHash(*nodes[c.name]);
    PublishAt(*nodes[c.name], c, hour - absl::Minutes(55), c.name + "-h", c.hour_counters);
    PublishAt(*nodes[c.name], c, window + absl::Minutes(5), c.name + "-q");
    PublishAt(*nodes[c.name], c, now, c.name + "-now");
  }
  std::map<std::string, double> published;
  for (const City& c : cities_in_test_) {
    for (absl::Time until = absl::Now() + absl::Seconds(60);
         (published[c.name] = Published(c.name, window)) < 0 && absl::Now() < until;) {
      absl::SleepFor(absl::Seconds(1));
    }
    ASSERT_GT(published[c.name], 0) << c.name << " closed no window:\n" << nodes[c.name]->Log();
  }

  // The national operator: a node on its own cluster mirroring Groningen's and Amersfoort's
  // views (Ede's contract comes later), and the aggregator beside it.
  WriteNationalContract("groningen", hashes["groningen"]);
  WriteNationalContract("amersfoort", hashes["amersfoort"]);
  {
    kafka_testing::KafkaBrokerOptions bo;
    bo.name = "national";
    auto b = kafka_testing::KafkaBroker::Start(bo);
    ASSERT_OK(b.status());
    brokers_["national"] = *std::move(b);
  }
  peer_ = "national";
  node_identity_ = "national";
  bootstrap_ = Bootstrap("national");
  std::string subscriptions = "  subscriptions:\n";
  for (const City& c : cities_in_test_) {
    absl::StrAppend(&subscriptions, "    - {provider: ", c.name,
                    ", endpoint: \"localhost:", nodes[c.name]->port("federation_port"),
                    "\", dataset: ", kBikes, ", view: ", kCityView,
                    ", contract: ", c.name.substr(0, 2), "-na-view, replication_factor: 1}\n");
  }
  federation_yaml_ = FederationYaml(subscriptions);
  auto national = StartNode();

  view_ = kCityView;
  aggregator_bootstrap_ = Bootstrap("national");
  cities_ = {"amersfoort", "ede", "groningen"};
  definition_hashes_.clear();
  for (const auto& [city, hash] : hashes) {
    if (std::find(definition_hashes_.begin(), definition_hashes_.end(), hash) ==
        definition_hashes_.end()) {
      definition_hashes_.push_back(hash);
    }
  }
  auto aggregator = StartAggregator("0s");
  const std::string key =
      FigureKeyOf(0).substr(0, FigureKeyOf(0).rfind('/') + 1) + views::FormatInstant(window);

  // The window closes without Ede: incomplete, Ede named as missing.
  std::vector<natv1::NationalFigure> figures;
  auto with_cities = [&](size_t n) {
    for (const natv1::NationalFigure& f : figures) {
      if (f.figure_key() == key && static_cast<size_t>(f.cities_size()) == n) return true;
    }
    return false;
  };
  for (absl::Time until = absl::Now() + absl::Seconds(90);
       !with_cities(2) && absl::Now() < until;) {
    absl::SleepFor(absl::Seconds(1));
    figures = ReadFigures();
  }
  ASSERT_TRUE(with_cities(2)) << "no national figure of Groningen and Amersfoort:\n"
                              << aggregator->Log() << national->Log();
  EXPECT_EQ(figures[0].reason(), natv1::REVISION_REASON_DEADLINE);
  EXPECT_FALSE(figures[0].complete());
  json open = ApiJson(*aggregator, absl::StrCat(FiguresPath(), "/", views::FormatInstant(window)));
  EXPECT_EQ(open["latest"]["cities_missing"], json::array({"ede"})) << open.dump();

  // Ede's contract is signed; its view is mirrored; the window is revised.
  WriteNationalContract("ede", hashes["ede"]);
  for (absl::Time until = absl::Now() + absl::Seconds(120);
       !with_cities(3) && absl::Now() < until;) {
    absl::SleepFor(absl::Seconds(1));
    figures = ReadFigures();
  }
  ASSERT_TRUE(with_cities(3)) << "Ede's late result revised nothing:\n"
                              << aggregator->Log() << national->Log();
  std::map<int32_t, int> per_revision;
  for (const natv1::NationalFigure& f : figures) {
    if (f.figure_key() != key) continue;
    ++per_revision[f.revision()];
  }
  for (const auto& [revision, n] : per_revision) {
    EXPECT_EQ(n, 1) << "revision " << revision << " written " << n << " times";
  }
  const natv1::NationalFigure& last = figures.back();
  EXPECT_EQ(last.figure_key(), key);
  EXPECT_EQ(last.reason(), natv1::REVISION_REASON_LATE_CITY);
  EXPECT_EQ(std::vector<std::string>(last.cities_added().begin(), last.cities_added().end()),
            std::vector<std::string>{"ede"});
  EXPECT_TRUE(last.complete());
  ASSERT_EQ(last.totals_size(), 1);
  EXPECT_EQ(last.totals(0).value(),
            published["groningen"] + published["amersfoort"] + published["ede"])
      << "the sum of what the three cities published, each once";
  json revised =
      ApiJson(*aggregator, absl::StrCat(FiguresPath(), "/", views::FormatInstant(window)));
  EXPECT_TRUE(revised["latest"]["complete"]) << revised.dump();
  EXPECT_EQ(revised["latest"]["totals"][0]["value"], last.totals(0).value());
  EXPECT_EQ(revised["revisions"].size(), per_revision.size());

  // The national cluster holds the cities' views and the national figures, no raw topic.
  std::string topics;
  ASSERT_EQ(testing::RunCommand(
                absl::StrCat("java -cp '", kafka_testing::DefaultKafkaHome(),
                             "/libs/*' org.apache.kafka.tools.TopicCommand --bootstrap-server ",
                             Bootstrap("national"), " --list"),
                &topics),
            0)
      << topics;
  std::set<std::string> views_seen;
  for (absl::string_view t : absl::StrSplit(topics, '\n', absl::SkipWhitespace())) {
    for (const City& c : cities_in_test_) {
      if (!absl::StartsWith(t, c.name + ".")) continue;
      EXPECT_TRUE(absl::StrContains(t, ".view.")) << "a raw topic of " << c.name << ": " << t;
      views_seen.insert(c.name);
    }
  }
  EXPECT_EQ(views_seen.size(), 3u) << topics;
  // The national node's contracts are aggregate-only: a raw Subscribe under one is refused.
  for (const City& c : cities_in_test_) {
    auto creds = tls::MakeChannelCredentials(files_["national"], fed_->Checker(), c.name);
    ASSERT_OK(creds.status());
    auto stub = fv1::FederationService::NewStub(grpc::CreateChannel(
        absl::StrCat("localhost:", nodes[c.name]->port("federation_port")), *creds));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    auto reader = stub->Subscribe(&ctx, Subscribe(c.name.substr(0, 2) + "-na-view"));
    fv1::SubscribeResponse m;
    while (reader->Read(&m)) {
    }
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << c.name;
    EXPECT_THAT(s.error_message(), HasSubstr("allows aggregates only")) << c.name;
  }
  json status = Statusz(*national);
  ASSERT_EQ(status["subscriptions"].size(), 3u);
  for (const json& sub : status["subscriptions"]) EXPECT_EQ(sub["view"], kCityView) << sub.dump();

  // Feed quality (ADR 0018 §6): each city offers its own to contract holders only — in
  // ListDatasets and its streams' heartbeats —, the national node keeps what it received in
  // `_polder.feed-quality`, and the aggregator shows it per city.
  for (const City& c : cities_in_test_) {
    for (const char* who : {"national", "amersfoort"}) {
      if (c.name == who) continue;
      auto creds = tls::MakeChannelCredentials(files_[who], fed_->Checker(), c.name);
      ASSERT_OK(creds.status());
      auto stub = fv1::FederationService::NewStub(grpc::CreateChannel(
          absl::StrCat("localhost:", nodes[c.name]->port("federation_port")), *creds));
      grpc::ClientContext ctx;
      fv1::ListDatasetsResponse list;
      ASSERT_TRUE(stub->ListDatasets(&ctx, {}, &list).ok());
      if (std::string(who) == "national") {
        ASSERT_EQ(list.datasets_size(), 1) << c.name;
        EXPECT_EQ(list.datasets(0).feed_quality().records_accepted(), 18 + c.hour_counters)
            << c.name;
        EXPECT_TRUE(list.datasets(0).feed_quality().has_freshness_seconds()) << c.name;
        EXPECT_TRUE(list.datasets(0).feed_quality().has_entities_hour()) << c.name;
      } else {
        EXPECT_EQ(list.datasets_size(), 0) << who << " holds no contract of " << c.name;
      }
    }
  }
  json quality;
  auto reported = [&] {
    if (!quality.is_object() || !quality.contains("feed_quality")) return 0;
    int n = 0;
    for (const json& q : quality["feed_quality"]) {
      const bool accepted_all =
          q["feed_quality"].is_object() &&
          std::any_of(cities_in_test_.begin(), cities_in_test_.end(), [&](const City& c) {
            return q["city"] == c.name &&
                   q["feed_quality"]["records_accepted"] == 18 + c.hour_counters;
          });
      n += accepted_all && q["feed_quality"]["entities_hour"].is_object() ? 1 : 0;
    }
    return n;
  };
  for (absl::Time until = absl::Now() + absl::Seconds(60); reported() < 3 && absl::Now() < until;) {
    absl::SleepFor(absl::Seconds(1));
    quality = ApiJson(*aggregator, "/api/v1/feed-quality");
  }
  EXPECT_EQ(reported(), 3) << quality.dump();
  for (const json& q : quality["feed_quality"]) {
    EXPECT_FALSE(q["feed_quality"]["freshness_seconds"].is_null()) << q.dump();
    EXPECT_EQ(q["feed_quality"]["records_rejected"], 0) << q.dump();
    // Entities reporting: the counters of the previous hour, as the city's entities-hour view
    // published them on its own cluster (the national cluster has no copy) — nine perturbed,
    // Ede's three withheld (below k), never shown as a number. (When `window` lies in the
    // previous hour too, the nine counters of its records are in Ede's hour as well.)
    const json& entities = q["feed_quality"]["entities_hour"];
    EXPECT_EQ(entities["window_start"], views::FormatInstant(hour - absl::Hours(1))) << q.dump();
    const double own =
        Published(q["city"].get<std::string>(), hour - absl::Hours(1), views::kEntitiesHourView);
    if (q["city"] == "ede" && window >= hour) {
      EXPECT_EQ(own, -1) << "withheld on Ede's own cluster too";
      EXPECT_EQ(entities["withheld"], true) << q.dump();
      EXPECT_TRUE(entities["value"].is_null()) << q.dump();
      continue;
    }
    ASSERT_GT(own, 0) << q.dump();
    EXPECT_EQ(entities["value"], own) << q.dump();
    EXPECT_EQ(entities["perturbed"], true) << q.dump();
    EXPECT_EQ(entities["withheld"], false) << q.dump();
  }
  // And for monitoring: per city on the aggregator's /metrics and /statusz.
  const std::string metrics = Ops(*aggregator, "/metrics");
  for (const City& c : cities_in_test_) {
    EXPECT_THAT(metrics, HasSubstr(absl::StrCat("polder_aggregator_city_freshness_seconds{city=\"",
                                                c.name, "\",dataset=\"", kBikes, "\"}")));
    const std::string entities =
        absl::StrCat("polder_aggregator_city_entities_reporting{city=\"", c.name, "\",dataset=\"",
                     kBikes, "\",window=\"hour\"}");
    if (c.name == "ede" && window >= hour) {
      EXPECT_THAT(metrics, Not(HasSubstr(entities))) << "withheld: no series";
    } else {
      EXPECT_THAT(metrics, HasSubstr(entities));
    }
  }
  const json statusz_quality = Statusz(*aggregator)["feed_quality"];
  for (const City& c : cities_in_test_) {
    EXPECT_TRUE(statusz_quality.contains(absl::StrCat(c.name, "/", kBikes))) << statusz_quality;
  }

  EXPECT_EQ(aggregator->Signal(SIGTERM), 0);
  EXPECT_EQ(national->Signal(SIGTERM), 0);
}

}  // namespace
}  // namespace polder
