// The two-city federation fixture (tests/node/federation_e2e_test.cc, bench/federation_bench.cc):
// on top of the node fixture, Groningen's node on the suite's broker, Amersfoort's node on a
// broker of its own subscribed to Groningen's bike counts, contracts signed by both, and readers
// of topics, metrics, RSS and audit trails.
#ifndef POLDER_TESTS_NODE_FEDERATION_FIXTURE_H_
#define POLDER_TESTS_NODE_FEDERATION_FIXTURE_H_

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/audit/audit_chain.h"
#include "common/kafka/admin.h"
#include "common/kafka/producer.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/tls/grpc_tls.h"
#include "common/trust/contract.h"
#include "common/wire/confluent_frame.h"
#include "proto/polder/federation/v1/federation.grpc.pb.h"
#include "tests/fault/fault_proxy.h"
#include "tests/node/node_fixture.h"
#include "tools/kafka/kafka_broker.h"

namespace polder {
namespace node_testing {

namespace fv1 = ::polder::federation::v1;

inline constexpr char kTopic[] = "groningen.mobility.bike-counts";
inline constexpr int kPartitions = 3;

class FederationFixture : public NodeE2eTest {
 protected:
  void SetUp() override {
    NodeE2eTest::SetUp();
    std::filesystem::create_directories(dir_ + "/contracts");
    std::filesystem::create_directories(dir_ + "/revocations");
  }

  trust::SignedContract WriteContract(const std::string& id,
                                      const std::function<void(trust::Contract&)>& change = {}) {
    trust::SignedContract c;
    c.contract.id = id;
    c.contract.federation = tls::kTestFederation;
    c.contract.provider = "groningen";
    c.contract.consumer = "amersfoort";
    c.contract.dataset = kBikes;
    c.contract.schema_versions = {1};
    c.contract.purpose = "regional cycling dashboard";
    c.contract.mirror_retention = absl::Hours(24 * 7);
    c.contract.valid_from = absl::Now() - absl::Minutes(30);
    c.contract.valid_until = absl::Now() + absl::Hours(2);
    if (change) change(c.contract);
    // Signed by both parties (Groningen and Amersfoort unless `change` names others).
    EXPECT_OK(trust::SignContract(&c, c.contract.provider, *signing_key_, absl::Now()));
    EXPECT_OK(trust::SignContract(&c, c.contract.consumer, *signing_key_, absl::Now()));
    std::ofstream(absl::StrCat(dir_, "/contracts/", id, ".json")) << c.ToFileText();
    return c;
  }

  std::string FederationYaml(const std::string& extra) const {
    return absl::StrCat(
        "federation:\n  address: 127.0.0.1:0\n  contracts_dir: ", dir_,
        "/contracts\n  revocations_dir: ", dir_,
        "/revocations\n  signing_key_file: ", signing_key_file_,
        "\n  recheck_interval: 2s\n  heartbeat_interval: 1s\n  receipt_interval: 2s\n", extra);
  }

  // Groningen: the suite's broker.
  std::unique_ptr<ServiceProcess> StartGroningen(
      const std::string& extra = "  max_batch_records: 200\n") {
    peer_ = "groningen";
    node_identity_ = "groningen";
    bootstrap_.clear();
    federation_yaml_ = FederationYaml(extra);
    return StartNode();
  }

  // Added inside Amersfoort's subscription entry (e.g. ", start: latest").
  std::string subscription_extra_;

  // Amersfoort: its own broker, subscribed to Groningen's bike counts at `endpoint_port`.
  std::unique_ptr<ServiceProcess> StartAmersfoort(
      int endpoint_port, const std::string& contract = "gr-am-bikes-1",
      const std::map<std::string, std::string>& env = {}, bool purge = false) {
    if (amersfoort_kafka_ == nullptr) {
      kafka_testing::KafkaBrokerOptions bo;
      bo.name = "amersfoort";
      auto b = kafka_testing::KafkaBroker::Start(bo);
      EXPECT_OK(b.status());
      amersfoort_kafka_ = *std::move(b);
    }
    peer_ = "amersfoort";
    node_identity_ = "amersfoort";
    bootstrap_ = amersfoort_kafka_->bootstrap_servers();
    federation_yaml_ = FederationYaml(absl::StrCat(
        "  subscriptions:\n    - {provider: groningen, endpoint: \"localhost:", endpoint_port,
        "\", dataset: mobility.bike-counts, contract: ", contract,
        ", partitions: 3, replication_factor: 1", purge ? ", purge_on_revocation: true" : "",
        subscription_extra_, "}\n"));
    // Test hooks (POLDER_TEST_CRASH_BEFORE_COMMIT) exist only in the test-hooks build.
    const char* binary =
        env.empty() ? "services/node/polder-node" : "services/node/polder-node-test-hooks";
    auto node =
        std::make_unique<ServiceProcess>(RunfilesPath(binary), "node-" + peer_, WriteNodeConfig());
    for (const auto& [k, v] : env) node->SetEnv(k, v);
    node->Start();
    return node;
  }

  // Bike counts of counters gn-counter-0 … 8 at event time `at` (the end of their counting
  // interval), published through Groningen's ingest in one keyed request (retried): counter i
  // counts count_of(i) in municipality_of(i).
  void PublishCountsAt(int grpc_port, absl::Time at, const std::string& tag,
                       const std::function<int(int)>& count_of,
                       const std::function<std::string(int)>& municipality_of) {
    auto stub = Ingest(grpc_port, true, "groningen");
    nv1::PublishRequest req;
    req.set_dataset(kBikes);
    req.set_idempotency_key(tag);
    for (int i = 0; i < 9; ++i) {
      auto* r = req.add_records();
      r->set_json(absl::StrCat(R"({"counterId":"gn-counter-)", i, R"(","eventTime":")",
                               absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", at, absl::UTCTimeZone()),
                               R"(","count":")", count_of(i),
                               R"(","location":{"latitude":53.2194,"longitude":6.5665,)",
                               R"("municipalityCode":")", municipality_of(i), R"("}})"));
      r->set_ce_id(absl::StrCat(tag, "-", i));
    }
    PublishRetried(*stub, req, 10);
  }

  // Sends one keyed request, retrying up to `attempts` times a second apart (a node that is
  // still starting, or restarting after a kill); fails the test if none succeeds.
  static void PublishRetried(nv1::IngestService::Stub& stub, const nv1::PublishRequest& req,
                             int attempts) {
    grpc::Status s;
    for (int attempt = 0; attempt < attempts; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
      nv1::PublishResponse resp;
      s = stub.Publish(&ctx, req, &resp);
      if (s.ok()) break;
      absl::SleepFor(absl::Seconds(1));
    }
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // Publishes `batches` × `per_batch` bike counts through a node's ingest (keyed, retried); the
  // node's certificate names `node` (Groningen's by default).
  void Publish(int grpc_port, int batches, int per_batch, const std::string& tag,
               const std::string& node = "groningen") {
    auto stub = Ingest(grpc_port, true, node);
    for (int b = 0; b < batches; ++b) {
      nv1::PublishRequest req;
      req.set_dataset(kBikes);
      req.set_idempotency_key(absl::StrCat(tag, "-", b));
      for (int i = 0; i < per_batch; ++i) {
        auto* r = req.add_records();
        r->set_json(BikeJson(absl::StrCat("gn-counter-", i % 9), b));
        r->set_ce_id(absl::StrCat(tag, "-", b, "-", i));
      }
      PublishRetried(*stub, req, 5);
    }
  }

  // Partition → ce_ids in order, from `bootstrap`, until `expected` records or 5 s without any.
  std::map<int32_t, std::vector<std::string>> CeIds(const std::string& bootstrap, size_t expected,
                                                    bool read_committed = true) {
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = bootstrap;
    o.read_committed = read_committed;
    std::map<int32_t, std::vector<std::string>> out;
    auto c = kafka::KafkaConsumer::Create(o);
    if (!c.ok()) return out;
    std::vector<kafka::TopicPartitionOffset> all;
    for (int p = 0; p < kPartitions; ++p) all.push_back({kTopic, p, kafka::kOffsetBeginning});
    if (!(*c)->Assign(all).ok()) return out;
    size_t n = 0;
    absl::Time quiet_until = absl::Now() + absl::Seconds(5);
    while (n < expected && absl::Now() < quiet_until) {
      auto batch = (*c)->Poll(absl::Milliseconds(300), 10000);
      if (!batch.ok()) break;
      if (!batch->empty()) quiet_until = absl::Now() + absl::Seconds(5);
      for (const auto& r : *batch) {
        for (const auto& h : r.headers) {
          if (h.key == "ce_id") out[r.partition].push_back(h.value);
        }
        ++n;
      }
    }
    return out;
  }

  static size_t Total(const std::map<int32_t, std::vector<std::string>>& ids) {
    size_t n = 0;
    for (const auto& [p, v] : ids) n += v.size();
    return n;
  }

  // Waits (up to `timeout`) until the mirror holds `expected` records; returns how many it holds.
  size_t WaitForMirror(size_t expected, absl::Duration timeout) {
    const absl::Time until = absl::Now() + timeout;
    size_t n = 0;
    while ((n = Total(CeIds(amersfoort_kafka_->bootstrap_servers(), expected))) < expected &&
           absl::Now() < until) {
      absl::SleepFor(absl::Seconds(2));
    }
    return n;
  }

  std::string Metrics(const ServiceProcess& node) {
    std::string out;
    testing::RunCommand(
        absl::StrCat("curl -sS http://127.0.0.1:", node.port("ops_port"), "/metrics"), &out);
    return out;
  }

  // The value of the series `name{labels}` (exactly as exposed), or -1.
  double Metric(const ServiceProcess& node, const std::string& series) {
    for (absl::string_view line : absl::StrSplit(Metrics(node), '\n')) {
      if (absl::StartsWith(line, series + " "))
        return std::atof(std::string(line.substr(series.size() + 1)).c_str());
    }
    return -1;
  }

  void ExpectPromtoolPasses(const ServiceProcess& node, const std::string& name) {
    const std::string file = absl::StrCat(dir_, "/", name, "-metrics.txt");
    std::ofstream(file) << Metrics(node);
    std::string check;
    EXPECT_EQ(testing::RunCommand(absl::StrCat("promtool check metrics < ", file), &check), 0)
        << check;
  }

  static int64_t RssKiB(pid_t pid) {
    std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StartsWith(line, "VmRSS:")) return std::atoll(line.substr(6).c_str());
    }
    return -1;
  }

  // Every audit link and receipt of an audit topic: links by stream, receipts.
  struct AuditTopic {
    std::map<std::string, std::vector<audit::AuditLink>> chains;
    std::vector<audit::Receipt> receipts;
  };
  AuditTopic ReadAudit(const std::string& bootstrap) {
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = bootstrap;
    AuditTopic out;
    kafka::RdKafkaClientFactory clients;
    absl::Status s = kafka::ReadToEnd(clients, o, "_polder.audit", 0, 0, absl::Seconds(30),
                                      [&](const kafka::ConsumedRecord& r) -> absl::Status {
                                        if (r.key && absl::StartsWith(*r.key, "receipt/")) {
                                          auto rc = audit::DecodeReceipt(r.value);
                                          if (rc.ok()) out.receipts.push_back(*rc);
                                          return rc.status();
                                        }
                                        auto link = audit::DecodeAuditRecord(r.value);
                                        if (!link.ok()) return link.status();
                                        auto e = audit::ParseEntry(link->canonical_json);
                                        if (!e.ok()) return e.status();
                                        out.chains[e->transaction_id].push_back(*link);
                                        return absl::OkStatus();
                                      })
                         .status();
    EXPECT_OK(s);
    return out;
  }

  std::unique_ptr<fv1::FederationService::Stub> FederationClient(const tls::TlsFiles& files,
                                                                 int port) {
    auto creds = tls::MakeChannelCredentials(files, fed_->Checker(), "groningen");
    EXPECT_OK(creds.status());
    return fv1::FederationService::NewStub(
        grpc::CreateChannel(absl::StrCat("localhost:", port), *creds));
  }

  static fv1::SubscribeRequest Subscribe(const std::string& contract,
                                         const std::string& dataset = kBikes) {
    fv1::SubscribeRequest r;
    r.set_protocol_version(fv1::PROTOCOL_VERSION_1);
    r.set_dataset_id(dataset);
    r.set_contract_id(contract);
    return r;
  }

  const tls::KeyAndCert& Listed(const std::string& who) const {
    for (const auto& [name, kc] : listed_) {
      if (name == who) return kc;
    }
    static tls::KeyAndCert none;
    return none;
  }

  std::unique_ptr<kafka_testing::KafkaBroker> amersfoort_kafka_;
};

}  // namespace node_testing
}  // namespace polder

#endif  // POLDER_TESTS_NODE_FEDERATION_FIXTURE_H_
