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
    std::vector<std::string> values;  // raw record values, in order
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
              absl::StatusOr<wire::Frame> f = wire::Decode(r.value);
              if (!f.ok()) return f.status();
              vv1::AggregateCell c;
              if (!c.ParseFromArray(f->payload.data(), static_cast<int>(f->payload.size()))) {
                return absl::DataLossError("not an AggregateCell");
              }
              const auto key = std::make_pair(c.window_start().seconds(), c.group_key());
              ++out.count[key];
              out.cells[key] = c;
              out.values.push_back(r.value);
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

}  // namespace
}  // namespace polder
