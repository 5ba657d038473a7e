// The polder-node end-to-end fixture: on top of the registry fixture (broker, federation PKI,
// signed directory, registry process), a city ingest CA with a gateway certificate and a token
// identity, the standard datasets bootstrapped, node configs per test (their own peer id, so
// topics do not collide within a suite) and clients (gRPC with certificate or token, curl).
#ifndef POLDER_TESTS_NODE_NODE_FIXTURE_H_
#define POLDER_TESTS_NODE_NODE_FIXTURE_H_

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "proto/polder/node/v1/ingest.grpc.pb.h"
#include "tests/registry/registry_fixture.h"

namespace polder {
namespace node_testing {

using namespace registry_testing;  // NOLINT: the registry fixture and its helpers
namespace nv1 = ::polder::node::v1;

inline constexpr char kToken[] = "parking-vendor-token-7f3a9c2e51";
inline constexpr char kBikes[] = "mobility.bike-counts";

inline std::string Now() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
}

inline std::string BikeJson(const std::string& counter, int count) {
  return absl::StrCat(R"({"counterId":")", counter, R"(","eventTime":")", Now(), R"(","count":")",
                      count, R"(","location":{"latitude":53.2194,"longitude":6.5665}})");
}

class NodeE2eTest : public RegistryE2eTest {
 protected:
  void SetUp() override {
    RegistryE2eTest::SetUp();
    static int counter = 0;
    peer_ = absl::StrCat("gn", ++counter);
    ingest_ca_ = std::make_unique<tls::TestFederation>(dir_ + "/ingest-ca", "groningen-ingest");
    gateway_ = ingest_ca_->WriteIdentity("gateway-north", ingest_ca_->Issue("gateway-north"));
    stranger_ = ingest_ca_->WriteIdentity("stranger", ingest_ca_->Issue("stranger"));
    // The gateway verifies the node's server certificate against the federation's bundle.
    gateway_.trust_bundle_path = fed_->bundle_path();
    stranger_.trust_bundle_path = fed_->bundle_path();
    // The peers' signing key (the directory lists it for every listed peer): signs receipts.
    signing_key_file_ = dir_ + "/signing.key";
    if (!std::filesystem::exists(signing_key_file_)) {
      ASSERT_OK(signing_key_->WriteFile(signing_key_file_));
    }
    token_file_ = dir_ + "/parking.token";
    std::ofstream(token_file_) << kToken << "\n";
    std::filesystem::permissions(
        token_file_, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    registry_ = Start("reg-a");
    json bootstrap = Bootstrap(*registry_);
    ASSERT_TRUE(bootstrap.is_object()) << bootstrap;
  }

  std::string Topic(const std::string& dataset = kBikes) const {
    return absl::StrCat(peer_, ".", dataset);
  }

  std::string WriteNodeConfig() {
    const tls::TlsFiles& f = files_[node_identity_];
    std::string path = absl::StrCat(dir_, "/node-", peer_, instance_, ".yaml");
    std::ofstream(path) << absl::StrCat(
        "node:\n  peer_id: ", peer_, "\n  federation: ", tls::kTestFederation,
        "\n  state_dir: ", dir_, "/state-", peer_, instance_, "\n  grpc_address: ", bind_host_,
        ":0\n  http_address: ", bind_host_, ":0\n  schema_address: ", bind_host_,
        ":0\n  ops_address: ", bind_host_, ":0\n  drain_timeout: 10s\n",
        "kafka:\n  bootstrap_servers: ",
        bootstrap_.empty() ? broker().bootstrap_servers() : bootstrap_,
        chart_topic_names_ ? ""
                           : absl::StrCat("\n  keys_topic: _polder.ingest-keys-", peer_,
                                          "\n  replicas_topic: _polder.replicas-", peer_),
        "\n  keys_partitions: ", keys_partitions_,
        "\n  internal_replication_factor: ", replication_,
        "\n  feed_quality_interval: 1s\n  delivery_timeout: 5s\n"
        "  transaction_timeout: ",
        transaction_timeout_,
        "\n"
        "  request_timeout: 3s\n  production_replication_factor: ",
        replication_, "\n  production_min_insync_replicas: ", min_insync_replicas_,
        "\n"
        "  properties:\n    log_level: \"3\"\n",
        kafka_properties_,
        replicas_yaml_.empty() ? std::string("replicas:\n  internal_address: 127.0.0.1:0\n")
                               : replicas_yaml_,
        "registry:\n  address: localhost:",
        registry_port_ != 0 ? registry_port_ : registry_->grpc_port(), "\n  refresh_interval: 2s\n",
        "tls:\n  cert_file: ", f.cert_path, "\n  key_file: ", f.key_path,
        "\n  trust_bundle_file: ", f.trust_bundle_path, "\n  crl_dir: ", fed_->crl_dir(), "\n",
        "trust:\n  federation: ", tls::kTestFederation, "\n  directory_file: ", dir_,
        "/directory.json\n  directory_state: ", dir_, "/node-", peer_, "-directory.json\n",
        "  operator_keys:\n    - public_key_file: ", dir_, "/operator.pub\n",
        "ingest:\n  trust_domain: groningen-ingest\n  client_ca_file: ", ingest_ca_->bundle_path(),
        "\n  crl_dir: ", ingest_ca_->crl_dir(), "\n", ingest_limits_,
        "  identities:\n    - {id: gateway-north, datasets: [mobility.bike-counts]}\n"
        "    - {id: parking-vendor, datasets: [\"*\"], token_file: ",
        token_file_, "}\n",
        "datasets:\n  - {id: mobility.bike-counts, subject: polder.datasets.mobility.v1.BikeCount, "
        "partitions: 3, replication_factor: ",
        replication_,
        "}\n"
        "  - {id: parking.occupancy, subject: polder.datasets.parking.v1.ParkingOccupancy, "
        "partitions: 1, replication_factor: ",
        replication_, "}\n", extra_datasets_, federation_yaml_);
    return path;
  }

  // polder-node, or with `node_env_` set the test-hooks build with that environment.
  std::unique_ptr<ServiceProcess> StartNode() {
    auto node = std::make_unique<ServiceProcess>(
        RunfilesPath(node_env_.empty() ? "services/node/polder-node"
                                       : "services/node/polder-node-test-hooks"),
        "node-" + peer_ + instance_, WriteNodeConfig());
    for (const auto& [k, v] : node_env_) node->SetEnv(k, v);
    node->SetCommandPrefix(command_prefix_);
    node->SetPrefixRunsImage(prefix_runs_image_);
    node->Start();
    return node;
  }

  // A gRPC ingest stub presenting the gateway's certificate (or none, with `token`), to the node
  // whose certificate names `server`.
  std::unique_ptr<nv1::IngestService::Stub> Ingest(int port, bool certificate = true,
                                                   const std::string& server = "groningen") {
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (certificate) {
      auto c = tls::MakeChannelCredentials(gateway_, fed_->Checker(), server);
      EXPECT_OK(c.status());
      creds = *c;
    } else {
      grpc::SslCredentialsOptions o;
      std::ifstream in(fed_->bundle_path());
      std::stringstream pem;
      pem << in.rdbuf();
      o.pem_root_certs = pem.str();
      creds = grpc::SslCredentials(o);
    }
    return nv1::IngestService::NewStub(
        grpc::CreateChannel(absl::StrCat("localhost:", port), creds));
  }

  // curl against the node's HTTPS ingest; returns (HTTP status, body).
  std::pair<int, json> Curl(const ServiceProcess& node, const std::string& dataset,
                            const std::string& type, const std::string& body_file,
                            const std::string& auth) {
    std::string cmd = absl::StrCat("curl -sS --cacert ", fed_->bundle_path(), " ", auth,
                                   " -H 'Content-Type: ", type, "' --data-binary @", body_file,
                                   " -w '\\n%{http_code}' https://localhost:", node.http_port(),
                                   "/v1/datasets/", dataset, "/records");
    std::string out;
    testing::RunCommand(cmd, &out);
    size_t nl = out.rfind('\n');
    int status = nl == std::string::npos ? -1 : std::atoi(out.substr(nl + 1).c_str());
    return {status, json::parse(out.substr(0, nl == std::string::npos ? 0 : nl), nullptr, false)};
  }

  std::string CertAuth(const tls::TlsFiles& f) const {
    return absl::StrCat("--cert ", f.cert_path, " --key ", f.key_path);
  }
  static std::string TokenAuth(const std::string& token) {
    return absl::StrCat("-H 'Authorization: Bearer ", token, "'");
  }
  // The `replica` object of a node's /statusz (empty when it does not answer).
  static json ReplicaStatus(const ServiceProcess& node) {
    std::string out;
    testing::RunCommand(
        absl::StrCat("curl -sS -m 5 http://127.0.0.1:", node.port("ops_port"), "/statusz"), &out);
    json j = json::parse(out, nullptr, false);
    if (!j.is_object() || !j.contains("replica") || !j["replica"].is_object()) {
      return json::object();
    }
    return j["replica"];
  }
  std::string WriteBody(const std::string& name, const std::string& content) {
    std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  // ce_id → number of times it is in `topic` (read_committed), reading until `expected`
  // distinct records arrived or the timeout.
  std::map<std::string, int> CeIdsInTopic(const std::string& topic, int partitions,
                                          size_t expected) {
    std::map<std::string, int> ids;
    for (const kafka::ConsumedRecord& r :
         ReadRecords(topic, partitions, expected, absl::Seconds(30))) {
      for (const kafka::Header& h : r.headers) {
        if (h.key == "ce_id") ++ids[h.value];
      }
    }
    return ids;
  }

  std::string peer_;
  // Whose federation certificate the node presents, which Kafka it uses (default: the suite's
  // broker), and an optional `federation:` section.
  std::string node_identity_ = "groningen";
  // Replication of the node's topics (3 and 2 on a three-broker cluster).
  int replication_ = 1;
  int min_insync_replicas_ = 1;
  std::string bootstrap_;
  std::string federation_yaml_;
  // The ingest section's limits (tests keep them small to reach them).
  std::string ingest_limits_ =
      "  max_record_bytes: 4KiB\n  max_batch_bytes: 256KiB\n  max_inflight_bytes: 512KiB\n  "
      "max_event_age: 24h\n"
      "  publish_timeout: 6s\n";
  std::unique_ptr<tls::TestFederation> ingest_ca_;
  tls::TlsFiles gateway_, stranger_;
  std::string token_file_;
  std::string extra_datasets_;  // more entries of the node's `datasets:` list
  // The node's `replicas:` section; "" for an internal port on 127.0.0.1:0.
  std::string replicas_yaml_;
  std::map<std::string, std::string> node_env_;  // test hooks (StartNode)
  // Where the node's listeners bind, and the registry port it dials on localhost (0: the
  // registry's own) — for a node in a test-made network namespace.
  std::string bind_host_ = "127.0.0.1";
  int registry_port_ = 0;
  std::vector<std::string> command_prefix_;  // StartNode runs the node under it
  bool prefix_runs_image_ = false;           // ... as a container image (run_image.sh)
  // More kafka.properties lines ("    key: value\n"), e.g. TLS to the brokers.
  std::string kafka_properties_;
  // The internal topics under their default names, as the charts' KafkaTopics create them
  // (default: per-peer names, so suites sharing a broker keep apart).
  bool chart_topic_names_ = false;
  // Tells replicas of one peer apart: their config file, state folder and process name.
  std::string instance_;
  std::string transaction_timeout_ = "20s";
  // The keys topic's partitions: 4 for a single node (each is a transactional producer the node
  // initialises at start); the replica suites use the default 12.
  int keys_partitions_ = 4;
  std::string signing_key_file_;
  std::unique_ptr<RegistryProcess> registry_;
};

}  // namespace node_testing
}  // namespace polder

#endif  // POLDER_TESTS_NODE_NODE_FIXTURE_H_
