// Aggregate views end to end (ADR 0016): Groningen's node computes a view of its bike counts
// from records published through its ingest; Amersfoort mirrors the view — and only the view —
// under an aggregate-only contract naming it, exactly once, over mutual TLS; a raw Subscribe
// under that contract is refused; a changed view definition stops new streams until a new
// contract is signed. Real brokers (one per city), real processes, real certificates.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/views/names.h"
#include "common/views/ptable.h"
#include "common/views/view_key.h"
#include "common/wire/confluent_frame.h"
#include "proto/polder/views/v1/aggregate_cell.pb.h"
#include "tests/node/federation_fixture.h"

namespace polder {
namespace {

using namespace node_testing;  // NOLINT: the federation fixture and its helpers
namespace vv1 = ::polder::views::v1;
using json = nlohmann::json;

constexpr char kView[] = "quarter-municipality";

std::string ViewsYaml(const std::string& grace) {
  return absl::StrCat(
      "views:\n  - dataset: mobility.bike-counts\n    grace: ", grace,
      "\n    idle_timeout: 1h\n    views:\n      - id: ", kView,
      "\n        window: 15m\n        group_by: [municipality]\n        measures: [count]\n");
}

// An output record's cell: the Confluent frame, then polder.views.v1.AggregateCell.
absl::StatusOr<vv1::AggregateCell> DecodeCell(const std::string& value) {
  absl::StatusOr<wire::Frame> f = wire::Decode(value);
  if (!f.ok()) return f.status();
  vv1::AggregateCell c;
  if (!c.ParseFromArray(f->payload.data(), static_cast<int>(f->payload.size()))) {
    return absl::DataLossError("not an AggregateCell");
  }
  return c;
}

class ViewsE2eTest : public FederationFixture {
 protected:
  json Statusz(const ServiceProcess& node) {
    std::string out;
    testing::RunCommand(
        absl::StrCat("curl -sS http://127.0.0.1:", node.port("ops_port"), "/statusz"), &out);
    return json::parse(out, nullptr, false);
  }

  // The definition hash Groningen's node reports for the view (waits for the job to run).
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

  // Bike counts of 9 counters in GM0014, `count` each, at event time `at`.
  void PublishAt(int grpc_port, absl::Time at, int count, const std::string& tag) {
    PublishCountsAt(
        grpc_port, at, tag, [count](int) { return count; },
        [](int) { return std::string("GM0014"); });
  }

  // The view's cells in a cluster, by (window start, group key), each counted.
  struct Cells {
    std::map<std::pair<int64_t, std::string>, int> count;
    std::map<std::pair<int64_t, std::string>, vv1::AggregateCell> cells;
    std::vector<std::string> values;  // raw record values, in order (close records too)
    std::map<int64_t, int> closes;    // close records by window start, counted
  };
  Cells ReadCells(const std::string& bootstrap) {
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = bootstrap;
    kafka::RdKafkaClientFactory clients;
    Cells out;
    absl::Status read =
        kafka::ReadToEnd(
            clients, o, views::ViewTopic("groningen", kBikes, kView), 0, 0, absl::Seconds(30),
            [&](const kafka::ConsumedRecord& r) -> absl::Status {
              absl::StatusOr<vv1::AggregateCell> decoded = DecodeCell(r.value);
              if (!decoded.ok()) return decoded.status();
              const vv1::AggregateCell& c = *decoded;
              out.values.push_back(r.value);
              if (c.has_window_close()) {
                ++out.closes[c.window_start().seconds()];
                return absl::OkStatus();
              }
              const auto key = std::make_pair(c.window_start().seconds(), c.group_key());
              ++out.count[key];
              out.cells[key] = c;
              return absl::OkStatus();
            })
            .status();
    EXPECT_OK(read);
    return out;
  }
};

TEST_F(ViewsE2eTest, AViewIsComputedGuardedAndMirroredExactlyOnceUnderAnAggregateOnlyContract) {
  // Windows close as soon as every partition's records pass their end: no grace.
  auto groningen = StartGroningen(absl::StrCat("  max_batch_records: 200\n", ViewsYaml("0s")));
  const std::string hash = DefinitionHash(*groningen);
  ASSERT_EQ(hash.size(), 64u);
  WriteContract("gr-am-view-1", [&](trust::Contract& c) {
    c.access = trust::Access::kAggregateOnly;
    c.view = trust::ViewGrant{kView, {hash}};
  });

  // Two quarters of counts, then counts in a later quarter move the watermark past both.
  const absl::Time now = absl::Now();
  const absl::Time quarter =
      absl::FromUnixSeconds(absl::ToUnixSeconds(now) / 900 * 900);  // this quarter's start
  PublishAt(groningen->grpc_port(), quarter - absl::Minutes(15), 10, "q1");
  PublishAt(groningen->grpc_port(), quarter, 20, "q2");  // ends the previous quarter
  PublishAt(groningen->grpc_port(), now, 1, "now");
  Cells source;
  for (absl::Time until = absl::Now() + absl::Seconds(60);
       source.cells.size() < 2 && absl::Now() < until;) {
    absl::SleepFor(absl::Seconds(1));
    source = ReadCells(broker().bootstrap_servers());
  }
  ASSERT_EQ(source.cells.size(), 2u) << groningen->Log();
  for (const auto& [key, n] : source.count) EXPECT_EQ(n, 1) << "emitted twice: " << key.second;
  EXPECT_FALSE(source.closes.empty()) << "closed windows are marked (ADR 0018 §2)";
  for (const auto& [start, n] : source.closes) EXPECT_EQ(n, 1) << "window closed twice: " << start;
  const vv1::AggregateCell& first =
      source.cells.at({absl::ToUnixSeconds(quarter - absl::Minutes(30)), "municipality=GM0014"});
  EXPECT_EQ(first.definition_hash(), hash);
  EXPECT_EQ(first.source_peer(), "groningen");
  ASSERT_EQ(first.measures_size(), 1);
  EXPECT_TRUE(first.measures(0).perturbed());
  EXPECT_NEAR(first.measures(0).value(), 90, 6) << "nine counters of 10, perturbed by ≤ 6";

  // Amersfoort mirrors the view.
  peer_ = "amersfoort";
  kafka_testing::KafkaBrokerOptions amersfoort_options;
  amersfoort_options.name = "amersfoort";
  auto amersfoort_broker = kafka_testing::KafkaBroker::Start(amersfoort_options);
  ASSERT_OK(amersfoort_broker.status());
  amersfoort_kafka_ = *std::move(amersfoort_broker);
  node_identity_ = "amersfoort";
  bootstrap_ = amersfoort_kafka_->bootstrap_servers();
  federation_yaml_ = FederationYaml(absl::StrCat(
      "  subscriptions:\n    - {provider: groningen, endpoint: \"localhost:",
      groningen->port("federation_port"), "\", dataset: mobility.bike-counts, view: ", kView,
      ", contract: gr-am-view-1, replication_factor: 1}\n"));
  auto amersfoort = StartNode();
  Cells mirror;
  for (absl::Time until = absl::Now() + absl::Seconds(60);
       mirror.values.size() < source.values.size() && absl::Now() < until;) {
    absl::SleepFor(absl::Seconds(1));
    mirror = ReadCells(amersfoort_kafka_->bootstrap_servers());
  }
  EXPECT_EQ(mirror.values, source.values) << "the mirror holds the view's records, byte for byte";
  json status = Statusz(*amersfoort);
  ASSERT_FALSE(status["subscriptions"].empty());
  EXPECT_EQ(status["subscriptions"][0]["view"], kView);
  EXPECT_EQ(status["subscriptions"][0]["state"], "streaming") << status.dump();

  // Raw records stay refused under the view's contract.
  auto stub = FederationClient(files_["amersfoort"], groningen->port("federation_port"));
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    auto reader = stub->Subscribe(&ctx, Subscribe("gr-am-view-1"));
    fv1::SubscribeResponse m;
    while (reader->Read(&m)) {
    }
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("allows aggregates only"));
  }
  EXPECT_EQ(amersfoort->Signal(SIGTERM), 0) << "a clean drain";

  // A changed definition (another grace) is not what the contract signed.
  EXPECT_EQ(groningen->Signal(SIGTERM), 0) << "a clean drain, the view job committing";
  federation_yaml_.clear();
  peer_ = "groningen";
  auto changed = StartGroningen(absl::StrCat("  max_batch_records: 200\n", ViewsYaml("1m")));
  auto again = FederationClient(files_["amersfoort"], changed->port("federation_port"));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  fv1::SubscribeRequest req = Subscribe("gr-am-view-1");
  req.set_view_id(kView);
  auto reader = again->Subscribe(&ctx, req);
  fv1::SubscribeResponse m;
  while (reader->Read(&m)) {
  }
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("a new contract must be signed"));
  // The view job itself refuses the changed definition of a view its changelog knows.
  json views = Statusz(*changed)["views"];
  for (absl::Time until = absl::Now() + absl::Seconds(30);
       views[0]["error"].get<std::string>().empty() && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(500));
    views = Statusz(*changed)["views"];
  }
  EXPECT_THAT(views[0]["error"].get<std::string>(), ::testing::HasSubstr("changed"));
}

// PERSONAL_DATA_PSEUDONYMISED data (shuttle telemetry): a view counts distinct shuttles, not
// records; a mode seen by fewer than k = 5 shuttles is protected (THRESHOLD); the published
// count is the cell-key value the node's own key gives (checked against a recomputation from
// the key file, as an auditor with the key could).
TEST_F(ViewsE2eTest, AShuttleViewCountsDistinctShuttlesAndProtectsSmallGroups) {
  extra_datasets_ =
      "  - {id: mobility.shuttle-telemetry, subject: "
      "polder.datasets.mobility.v1.ShuttleTelemetry, partitions: 1, replication_factor: 1}\n";
  auto groningen = StartGroningen(
      "  max_batch_records: 200\n"
      "views:\n  - dataset: mobility.shuttle-telemetry\n    grace: 0s\n    idle_timeout: 1h\n"
      "    views:\n      - id: quarter-mode\n        window: 15m\n        group_by: [mode]\n"
      "        measures: [count]\n");
  const absl::Time now = absl::Now();
  const absl::Time quarter = absl::FromUnixSeconds(absl::ToUnixSeconds(now) / 900 * 900);
  const absl::Time earlier = quarter - absl::Minutes(15);
  // Seven autonomous shuttles reporting three times each, two manual ones once; then a record
  // in this quarter moves the watermark past the earlier one.
  auto stub = Ingest(groningen->grpc_port(), false);
  auto publish = [&](const std::string& shuttle, absl::Time at, const std::string& mode,
                     const std::string& tag) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    nv1::PublishRequest req;
    req.set_dataset("mobility.shuttle-telemetry");
    req.set_idempotency_key(tag);
    auto* r = req.add_records();
    r->set_json(absl::StrCat(R"({"shuttleId":")", shuttle, R"(","eventTime":")",
                             absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", at, absl::UTCTimeZone()),
                             R"(","location":{"latitude":51.97,"longitude":5.66,)",
                             R"("municipalityCode":"GM0228"},"mode":")", mode, R"("})"));
    r->set_ce_id(tag);
    nv1::PublishResponse resp;
    grpc::Status s = stub->Publish(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  };
  std::vector<std::string> autonomous;
  for (int i = 0; i < 7; ++i) {
    autonomous.push_back(absl::StrCat("ede-shuttle-", i));
    for (int j = 0; j < 3; ++j) {
      publish(autonomous.back(), earlier + absl::Minutes(1 + 4 * j), "MODE_AUTONOMOUS",
              absl::StrCat("a", i, "-", j));
    }
  }
  publish("ede-shuttle-8", earlier + absl::Minutes(2), "MODE_MANUAL", "m8");
  publish("ede-shuttle-9", earlier + absl::Minutes(3), "MODE_MANUAL", "m9");
  publish("ede-shuttle-0", now, "MODE_AUTONOMOUS", "now");

  const std::string topic =
      views::ViewTopic("groningen", "mobility.shuttle-telemetry", "quarter-mode");
  std::map<std::string, vv1::AggregateCell> cells;  // by group key
  for (absl::Time until = absl::Now() + absl::Seconds(60);
       cells.size() < 2 && absl::Now() < until;) {
    absl::SleepFor(absl::Seconds(1));
    cells.clear();
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    kafka::RdKafkaClientFactory clients;
    (void)kafka::ReadToEnd(clients, o, topic, 0, 0, absl::Seconds(10),
                           [&](const kafka::ConsumedRecord& r) -> absl::Status {
                             absl::StatusOr<vv1::AggregateCell> decoded = DecodeCell(r.value);
                             if (!decoded.ok()) return decoded.status();
                             const vv1::AggregateCell& c = *decoded;
                             if (c.has_window_close()) return absl::OkStatus();
                             EXPECT_EQ(cells.count(c.group_key()), 0u)
                                 << "emitted twice: " << c.group_key();
                             cells[c.group_key()] = c;
                             return absl::OkStatus();
                           });
  }
  ASSERT_EQ(cells.size(), 2u) << groningen->Log();
  const vv1::AggregateCell& manual = cells.at("mode=MODE_MANUAL");
  EXPECT_EQ(manual.window_start().seconds(), absl::ToUnixSeconds(earlier));
  EXPECT_FALSE(manual.measures(0).has_value()) << "two shuttles are below k";
  EXPECT_EQ(manual.measures(0).protection(), vv1::PROTECTION_SUPPRESSED);

  // Seven distinct shuttles (21 records): the published count is the p-table's value for 7 at
  // the cell key — the sum of the shuttles' record keys under the node's view key.
  const vv1::AggregateCell& auto_cell = cells.at("mode=MODE_AUTONOMOUS");
  ASSERT_TRUE(auto_cell.measures(0).has_value());
  EXPECT_TRUE(auto_cell.measures(0).perturbed());
  absl::StatusOr<views::ViewKey> key = views::ViewKey::Load(
      absl::StrCat(dir_, "/state-groningen/views/mobility.shuttle-telemetry.key"));
  ASSERT_OK(key.status());
  uint64_t cell_key = 0;
  for (const std::string& s : autonomous) {
    cell_key += key->RecordKey("mobility.shuttle-telemetry", s);
  }
  absl::StatusOr<views::PTable> table = views::PTable::Build(views::PTableParams{});
  ASSERT_OK(table.status());
  EXPECT_EQ(auto_cell.measures(0).value(), table->Perturb(7, cell_key))
      << "7 distinct shuttles, not 21 records (which would give " << table->Perturb(21, cell_key)
      << ")";
}

}  // namespace
}  // namespace polder
