// Two cities, two brokers, two polder-node processes over mutual TLS: Groningen publishes bike
// counts and shares them under a contract both signed; Amersfoort's node mirrors them into its
// own Kafka. Amersfoort's node is killed -9 mid-stream and restarted; the mirror ends up equal
// to the source — every ce_id once, in source order per partition.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/trust/contract.h"
#include "tests/node/node_fixture.h"
#include "tools/kafka/kafka_broker.h"

namespace polder {
namespace {

using namespace node_testing;  // NOLINT

class FederationE2eTest : public NodeE2eTest {
 protected:
  // Partition → ce_ids in order, read_committed, from `bootstrap`.
  std::map<int32_t, std::vector<std::string>> CeIds(const std::string& bootstrap, const std::string& topic,
                                                    size_t expected) {
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = bootstrap;
    std::map<int32_t, std::vector<std::string>> out;
    auto c = kafka::KafkaConsumer::Create(o);
    if (!c.ok()) return out;
    std::vector<kafka::TopicPartitionOffset> all;
    for (int p = 0; p < 3; ++p) all.push_back({topic, p, kafka::kOffsetBeginning});
    if (!(*c)->Assign(all).ok()) return out;
    size_t n = 0;
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while (n < expected && absl::Now() < until) {
      auto batch = (*c)->Poll(absl::Milliseconds(300), 5000);
      if (!batch.ok()) break;
      for (const auto& r : *batch) {
        for (const auto& h : r.headers) {
          if (h.key == "ce_id") out[r.partition].push_back(h.value);
        }
        ++n;
      }
    }
    return out;
  }

  void Publish(const ServiceProcess& node, int batches, int per_batch, const std::string& tag) {
    auto stub = Ingest(node.grpc_port());
    for (int b = 0; b < batches; ++b) {
      nv1::PublishRequest req;
      req.set_dataset(kBikes);
      req.set_idempotency_key(absl::StrCat(tag, "-", b));
      for (int i = 0; i < per_batch; ++i) {
        auto* r = req.add_records();
        r->set_json(BikeJson(absl::StrCat("gn-counter-", i % 9), b));
        r->set_ce_id(absl::StrCat(tag, "-", b, "-", i));
      }
      grpc::ClientContext ctx;
      nv1::PublishResponse resp;
      grpc::Status s = stub->Publish(&ctx, req, &resp);
      ASSERT_TRUE(s.ok()) << s.error_message();
    }
  }
};

TEST_F(FederationE2eTest, AmersfoortMirrorsGroningenExactlyOnceAcrossAKillNine) {
  // The contract, signed by both (the directory lists one signing key for every peer here).
  trust::SignedContract contract;
  contract.contract.id = "gr-am-bikes-1";
  contract.contract.federation = tls::kTestFederation;
  contract.contract.provider = "groningen";
  contract.contract.consumer = "amersfoort";
  contract.contract.dataset = kBikes;
  contract.contract.schema_versions = {1};
  contract.contract.purpose = "regional cycling dashboard";
  contract.contract.valid_from = absl::Now() - absl::Minutes(30);
  contract.contract.valid_until = absl::Now() + absl::Hours(2);
  ASSERT_OK(trust::SignContract(&contract, "groningen", *signing_key_, absl::Now()));
  ASSERT_OK(trust::SignContract(&contract, "amersfoort", *signing_key_, absl::Now()));
  std::filesystem::create_directories(dir_ + "/contracts");
  std::ofstream(dir_ + "/contracts/gr-am-bikes-1.json") << contract.ToFileText();

  // Groningen: the suite's broker.
  peer_ = "groningen";
  node_identity_ = "groningen";
  federation_yaml_ = absl::StrCat("federation:\n  address: 127.0.0.1:0\n  contracts_dir: ", dir_,
                                  "/contracts\n  max_batch_records: 50\n  recheck_interval: 2s\n");
  auto groningen = StartNode();
  Publish(*groningen, 20, 15, "first");

  // Amersfoort: its own broker and node, subscribed to Groningen's bike counts.
  kafka_testing::KafkaBrokerOptions bo;
  bo.name = "amersfoort";
  ASSERT_OK_AND_ASSIGN(auto amersfoort_kafka, kafka_testing::KafkaBroker::Start(bo));
  peer_ = "amersfoort";
  node_identity_ = "amersfoort";
  bootstrap_ = amersfoort_kafka->bootstrap_servers();
  federation_yaml_ = absl::StrCat("federation:\n  address: 127.0.0.1:0\n  contracts_dir: ", dir_,
                                  "/contracts\n  subscriptions:\n    - {provider: groningen, endpoint: \"localhost:",
                                  groningen->port("federation_port"), "\", dataset: mobility.bike-counts, contract: ",
                                  "gr-am-bikes-1, partitions: 3, replication_factor: 1}\n");
  auto amersfoort = StartNode();
  const std::string topic = "groningen.mobility.bike-counts";
  auto count = [&](const std::string& bootstrap, size_t expected) {
    size_t n = 0;
    for (const auto& [p, v] : CeIds(bootstrap, topic, expected)) n += v.size();
    return n;
  };
  auto wait_for = [&](size_t expected) {
    const absl::Time until = absl::Now() + absl::Seconds(90);
    while (count(amersfoort_kafka->bootstrap_servers(), expected) < expected && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(500));
    }
    return count(amersfoort_kafka->bootstrap_servers(), expected);
  };
  EXPECT_EQ(wait_for(300), 300u) << amersfoort->Log();

  // More records, and Amersfoort's node killed -9 while they stream, then restarted.
  Publish(*groningen, 20, 15, "second");
  amersfoort->Kill();
  amersfoort = StartNode();
  EXPECT_EQ(wait_for(600), 600u) << amersfoort->Log();
  auto source = CeIds(broker().bootstrap_servers(), topic, 600);
  auto mirror = CeIds(amersfoort_kafka->bootstrap_servers(), topic, 600);
  EXPECT_EQ(mirror, source) << "the mirror holds every source record once, in source order per partition";
  std::string ready;
  testing::RunCommand(absl::StrCat("curl -sS http://127.0.0.1:", amersfoort->port("ops_port"), "/readyz"), &ready);
  EXPECT_THAT(ready, ::testing::HasSubstr("\"ready\":true"));
  // Subscription metrics, valid for promtool.
  std::string check;
  EXPECT_EQ(testing::RunCommand(absl::StrCat("curl -sS http://127.0.0.1:", amersfoort->port("ops_port"), "/metrics > ",
                                             dir_, "/ams-metrics.txt && promtool check metrics < ", dir_,
                                             "/ams-metrics.txt"),
                                &check),
            0)
      << check;
  std::string metrics;
  testing::RunCommand(absl::StrCat("cat ", dir_, "/ams-metrics.txt"), &metrics);
  EXPECT_THAT(metrics, ::testing::HasSubstr(
                           "polder_federation_subscription_up{dataset=\"mobility.bike-counts\",provider=\"groningen\"} 1"));
}

}  // namespace
}  // namespace polder
