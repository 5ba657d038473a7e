// The polder-node image against a real broker (ADR 0022 §3 and §5): the image built from the
// Bazel binary (tools/images/build_image.py), run by tools/images/run_image.sh under podman +
// runc (or unshare + chroot) as UID 65532 with a read-only root, against a broker with a
// mutual-TLS listener and the KRaft StandardAuthorizer, holding exactly the topics and ACLs the
// polder-kafka chart renders for this node (tests/k8s/chart_kafka.py creates them, as Strimzi's
// operators would). Checked: the runtime used, the process's user and capabilities, a write to
// the root refused, /readyz, and records published over gRPC read back from the broker.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/tls/ca.h"
#include "tests/node/node_fixture.h"
#include "tools/kafka/kafka_broker.h"

namespace polder {
namespace {

using namespace node_testing;  // NOLINT: the fixture and its helpers
namespace fs = std::filesystem;

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback : v;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& content, fs::perms mode) {
  std::ofstream(path) << content;
  fs::permissions(path, mode);
}

// The pid of the process whose command line carries `marker` and whose executable is
// `exe_name` (the node inside its container, seen from the host).
pid_t FindProcess(const std::string& marker, const std::string& exe_name) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    int pid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &pid)) continue;
    std::string cmdline = ReadFile(e.path().string() + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (!absl::StrContains(cmdline, marker)) continue;
    std::error_code ec;
    fs::path exe = fs::read_symlink(e.path() / "exe", ec);
    if (!ec && exe.filename() == exe_name) return pid;
  }
  return -1;
}

std::string StatusField(pid_t pid, const std::string& field) {
  for (absl::string_view line :
       absl::StrSplit(ReadFile(absl::StrCat("/proc/", pid, "/status")), '\n')) {
    if (absl::ConsumePrefix(&line, field + ":"))
      return std::string(absl::StripAsciiWhitespace(line));
  }
  return "";
}

// The test's folder, bind-mounted into the container at the same path, must be reachable by UID
// 65532 there: Bazel's TEST_TMPDIR lies under /root, which the image (Debian's base-files) keeps
// 0700. So the whole test (its broker, registry and node) works under /tmp instead; the folder is
// removed at the end.
class TmpUnderSlashTmp : public ::testing::Environment {
 public:
  TmpUnderSlashTmp() {
    dir_ = absl::StrCat("/tmp/polder-node-image-", getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    setenv("TEST_TMPDIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

 private:
  std::string dir_;
};
::testing::Environment* const kTmp = ::testing::AddGlobalTestEnvironment(new TmpUnderSlashTmp);

class NodeImageTest : public NodeE2eTest {
 protected:
  void TearDown() override {
    if (!container_.empty()) {
      std::string out;
      testing::RunCommand(absl::StrCat("bash ", RunfilesPath("tools/images/run_image.sh"),
                                       " --cleanup --name ", container_, " 2>&1"),
                          &out);
    }
    NodeE2eTest::TearDown();
  }
  std::string container_;
};

TEST_F(NodeImageTest, TheImageServesAndIngestsAsNonRootOnAReadOnlyRootWithTheChartsAcls) {
  const std::string kdir = dir_ + "/kafka-tls";
  fs::create_directories(kdir);
  // 1. The brokers' and the node's Kafka certificates (as Strimzi's cluster and clients CAs).
  tls::CaOptions ca_options;
  ca_options.common_name = "polder test Kafka CA";
  ASSERT_OK_AND_ASSIGN(tls::KeyAndCert ca, tls::CreateRootCa(ca_options));
  tls::PeerCertOptions server;
  server.federation = "kafka.test";
  server.peer_id = "broker";
  server.dns_names = {"localhost"};
  server.ip_addresses = {"127.0.0.1"};
  ASSERT_OK_AND_ASSIGN(tls::KeyAndCert broker_cert, tls::IssuePeerCertificate(ca, server));
  tls::PeerCertOptions user;
  user.federation = "kafka.test";
  user.peer_id = peer_ + "-node";  // CN=<peer>-node: the chart's KafkaUser
  ASSERT_OK_AND_ASSIGN(tls::KeyAndCert node_cert, tls::IssuePeerCertificate(ca, user));
  user.peer_id = "stranger";
  ASSERT_OK_AND_ASSIGN(tls::KeyAndCert stranger_cert, tls::IssuePeerCertificate(ca, user));
  const fs::perms kPrivate = fs::perms::owner_read | fs::perms::owner_write;
  const fs::perms kPublic = kPrivate | fs::perms::group_read | fs::perms::others_read;
  WriteFile(kdir + "/keystore.pem", broker_cert.key_pem + broker_cert.cert_pem, kPrivate);
  WriteFile(kdir + "/ca.crt", ca.cert_pem, kPublic);
  WriteFile(kdir + "/user.crt", node_cert.cert_pem, kPublic);
  WriteFile(kdir + "/user.key", node_cert.key_pem, kPrivate);
  WriteFile(kdir + "/stranger.crt", stranger_cert.cert_pem, kPublic);
  WriteFile(kdir + "/stranger.key", stranger_cert.key_pem, kPrivate);

  // 2. A broker with an mTLS listener and the StandardAuthorizer.
  kafka_testing::KafkaBrokerOptions bo;
  bo.name = "kafka-authorizer";
  bo.tls_listener =
      kafka_testing::KafkaBrokerOptions::TlsListener{kdir + "/keystore.pem", kdir + "/ca.crt"};
  bo.authorizer = true;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<kafka_testing::KafkaBroker> secured,
                       kafka_testing::KafkaBroker::Start(bo));

  // 3. Exactly the chart's topics and ACLs for this node (its values as the node's config).
  const std::string values = dir_ + "/polder-kafka.yaml";
  std::ofstream(values) << "cluster: {name: test-kafka}\n"
                        << "node:\n  peerId: " << peer_ << "\n  internalReplicationFactor: 1\n"
                        << "  keysPartitions: " << keys_partitions_ << "\n"
                        << "  maxBatchBytes: 262144\n  federation: false\n"
                        << "  datasets:\n"
                        << "    - {id: mobility.bike-counts, partitions: 3, replicationFactor: 1}\n"
                        << "    - {id: parking.occupancy, partitions: 1, replicationFactor: 1}\n";
  std::string applied;
  const int rc = testing::RunCommand(
      absl::StrCat(Env("POLDER_PIP_HOME"), "/bin/python ", RunfilesPath("tests/k8s/chart_kafka.py"),
                   " --helm ", Env("POLDER_GO_TOOLS"), "/helm --chart ",
                   RunfilesPath("k8s/charts/polder-kafka"), " --values ", values, " --admin ",
                   secured->bootstrap_servers(), " --tls ", secured->tls_bootstrap_servers(),
                   " --ca ", kdir, "/ca.crt --cert ", kdir, "/stranger.crt --key ", kdir,
                   "/stranger.key 2>&1"),
      &applied);
  ASSERT_EQ(rc, 0) << applied;
  json chart = json::parse(applied.substr(applied.find('{')), nullptr, false);
  ASSERT_TRUE(chart.is_object()) << applied;
  EXPECT_GE(chart["topics"].get<int>(), 6) << applied;
  EXPECT_GE(chart["acls"].get<int>(), 20) << applied;
  std::cout << "chart applied: " << chart["topics"] << " topics, " << chart["acls"]
            << " ACLs; a client without ACLs: " << chart["denied"] << "\n";

  // 4. The image, built from the binary this test runs against.
  const std::string image = dir_ + "/image";
  std::string built;
  ASSERT_EQ(testing::RunCommand(
                absl::StrCat("python3 ", RunfilesPath("tools/images/build_image.py"), " --binary ",
                             RunfilesPath("services/node/polder-node"), " --name polder-node",
                             " --debs ", Env("POLDER_DEBS_HOME", "/var/cache/polder/debs"),
                             " --out ", image, " --tag dev 2>&1"),
                &built),
            0)
      << built;

  // 5. The node as the image's UID 65532: every file it reads is its own (mode 0600 keys stay
  // private), its folders writable by it; the test (root) still reads everything. The config
  // file is written first, so StartNode's rewrite keeps its owner.
  bootstrap_ = secured->tls_bootstrap_servers();
  kafka_properties_ = absl::StrCat("    security.protocol: ssl\n    ssl.ca.location: ", kdir,
                                   "/ca.crt\n    ssl.certificate.location: ", kdir,
                                   "/user.crt\n    ssl.key.location: ", kdir, "/user.key\n");
  chart_topic_names_ = true;
  WriteNodeConfig();
  std::string chowned;
  ASSERT_EQ(testing::RunCommand(absl::StrCat("chown -R 65532:65532 ", Tmp(), " 2>&1"), &chowned), 0)
      << chowned;
  container_ = absl::StrCat("polder-node-image-", getpid());
  command_prefix_ = {"/bin/bash", RunfilesPath("tools/images/run_image.sh"),
                     "--layout",  image,
                     "--name",    container_,
                     "--bind",    Tmp(),
                     "--"};
  prefix_runs_image_ = true;
  auto node = StartNode();

  // The runtime that ran it.
  const std::string log = node->Log();
  const size_t at = log.find("run_image: runtime ");
  ASSERT_NE(at, std::string::npos) << log;
  const std::string runtime = log.substr(at + 19, log.find('\n', at) - at - 19);
  std::cout << "runtime: " << runtime << "\n";
  RecordProperty("runtime", runtime);

  // Non-root, no capabilities, and the root file system refuses a write.
  const pid_t pid = FindProcess(absl::StrCat(Tmp(), "/node-", peer_), "polder-node");
  ASSERT_GT(pid, 0) << "the node's process was not found";
  EXPECT_EQ(StatusField(pid, "Uid"), "65532\t65532\t65532\t65532");
  EXPECT_EQ(StatusField(pid, "Gid"), "65532\t65532\t65532\t65532");
  EXPECT_EQ(StatusField(pid, "CapEff"), "0000000000000000");
  EXPECT_EQ(StatusField(pid, "NoNewPrivs"), "1");
  const std::string probe = absl::StrCat("/proc/", pid, "/root/etc/polder-write-probe");
  const int fd = open(probe.c_str(), O_WRONLY | O_CREAT, 0644);
  const int err = errno;
  if (fd >= 0) close(fd);
  EXPECT_LT(fd, 0) << "a file was created on the image's root";
  EXPECT_EQ(err, EROFS) << std::strerror(err);
  EXPECT_FALSE(fs::exists(absl::StrCat("/proc/", pid, "/root/bin/sh"))) << "a shell in the image";

  // /readyz answers from inside the container.
  std::string ready;
  testing::RunCommand(
      absl::StrCat("curl -sS -m 5 http://127.0.0.1:", node->port("ops_port"), "/readyz"), &ready);
  EXPECT_THAT(ready, ::testing::HasSubstr("\"ready\":true")) << node->Log();

  // Ingest: records published over gRPC with the gateway's certificate are in the topic.
  auto stub = Ingest(node->grpc_port());
  nv1::PublishRequest req;
  req.set_dataset(kBikes);
  req.set_idempotency_key("image-1");
  for (int i = 0; i < 10; ++i)
    req.add_records()->set_json(BikeJson(absl::StrCat("gn-counter-", i), i));
  grpc::ClientContext ctx;
  nv1::PublishResponse resp;
  grpc::Status s = stub->Publish(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << node->Log();
  EXPECT_EQ(resp.records(), 10);
  std::set<std::string> acknowledged(resp.ce_ids().begin(), resp.ce_ids().end());
  kafka::ConsumerOptions co;
  co.client.bootstrap_servers = secured->bootstrap_servers();  // PLAINTEXT: the test's admin
  co.read_committed = true;
  ASSERT_OK_AND_ASSIGN(auto consumer, kafka::KafkaConsumer::Create(co));
  std::vector<kafka::TopicPartitionOffset> assignment;
  for (int p = 0; p < 3; ++p) assignment.push_back({Topic(), p, kafka::kOffsetBeginning});
  ASSERT_OK(consumer->Assign(assignment));
  std::set<std::string> read;
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (read.size() < acknowledged.size() && absl::Now() < until) {
    ASSERT_OK_AND_ASSIGN(auto batch, consumer->Poll(absl::Milliseconds(500), 1000));
    for (const kafka::ConsumedRecord& r : batch) {
      for (const kafka::Header& h : r.headers) {
        if (h.key == "ce_id") read.insert(h.value);
      }
    }
  }
  EXPECT_EQ(read, acknowledged) << "acknowledged " << acknowledged.size() << ", read "
                                << read.size();
  std::cout << "ingest through the image: " << acknowledged.size() << " acknowledged, "
            << read.size() << " read back from " << Topic() << "\n";
  node->Signal(SIGTERM);
}

}  // namespace
}  // namespace polder
