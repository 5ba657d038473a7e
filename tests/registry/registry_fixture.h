// The polder-registry end-to-end fixture: a real Kafka broker (one per suite), polder-registry
// processes with configs written per test, a test federation (CA, certificates made at test
// time, a signed directory) and mTLS REST and gRPC clients for its identities: the operator
// "national", the cities "groningen", "amersfoort" and "ede", the server "registry", and
// "enschede", whom the directory does not list.
#ifndef POLDER_TESTS_REGISTRY_REGISTRY_FIXTURE_H_
#define POLDER_TESTS_REGISTRY_REGISTRY_FIXTURE_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/schema/schema.h"
#include "common/status/status_macros.h"
#include "common/status/status_matchers.h"
#include "common/testing/commands.h"
#include "common/testing/kafka_fixture.h"
#include "common/tls/ca.h"
#include "common/tls/certificate.h"
#include "common/tls/grpc_tls.h"
#include "common/tls/test_federation.h"
#include "common/trust/directory.h"
#include "common/trust/keys.h"
#include "common/wire/confluent_frame.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "proto/polder/registry/v1/registry.grpc.pb.h"

namespace polder {
namespace registry_testing {

namespace fs = std::filesystem;
using nlohmann::json;
namespace v1 = ::polder::registry::v1;

inline std::string Tmp() { return std::getenv("TEST_TMPDIR"); }

inline std::string Binary() {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"),
                      "/services/registry/polder-registry");
}

// A Polder service process (polder-registry, polder-node) started with --config and
// --ready_file; the ready file holds its listening ports as JSON.
class ServiceProcess {
 public:
  ServiceProcess(std::string binary, std::string name, std::string config)
      : binary_(std::move(binary)), name_(std::move(name)), config_(std::move(config)) {}
  ~ServiceProcess() { Kill(); }

  void Start() {
    ready_ = absl::StrCat(Tmp(), "/", name_, ".ready");
    log_ = absl::StrCat(Tmp(), "/", name_, ".log");
    fs::remove(ready_);
    // The log is appended to across starts (a restart keeps the earlier lines); a failure to
    // start shows only this start's lines.
    std::error_code size_error;
    const std::uintmax_t log_size = fs::file_size(log_, size_error);
    start_offset_ = size_error ? 0 : log_size;
    std::string cfg = "--config=" + config_;
    std::string rf = "--ready_file=" + ready_;
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      for (const auto& [k, v] : env_) setenv(k.c_str(), v.c_str(), 1);
      if (prefix_.empty()) {
        execl(binary_.c_str(), binary_.c_str(), cfg.c_str(), rf.c_str(),
              static_cast<char*>(nullptr));
      } else {
        std::vector<char*> argv;
        for (std::string& a : prefix_) argv.push_back(a.data());
        if (!prefix_runs_image_) argv.push_back(binary_.data());
        argv.push_back(cfg.data());
        argv.push_back(rf.data());
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
      }
      _exit(127);
    }
    absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (!fs::exists(ready_) && absl::Now() < deadline) {
      int st = 0;
      ASSERT_EQ(waitpid(pid_, &st, WNOHANG), 0)
          << name_ << " " << ExitDescription(st) << " before it was ready; its log:\n"
          << LogSinceStart();
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_TRUE(fs::exists(ready_)) << name_ << " not ready; its log:\n" << LogSinceStart();
    ports_ = json::parse(std::ifstream(ready_));
  }

  void Kill() { Signal(SIGKILL); }
  // Sends `sig` without waiting (SIGSTOP, SIGCONT).
  void Send(int sig) { kill(pid_, sig); }

  // Environment variables for the next Start (test hooks).
  void SetEnv(const std::string& key, const std::string& value) { env_[key] = value; }
  // A command the binary runs under (e.g. `ip netns exec <name>`), for the next Start.
  void SetCommandPrefix(std::vector<std::string> prefix) { prefix_ = std::move(prefix); }
  // The prefix runs a container image whose entrypoint is the service (tools/images/
  // run_image.sh): it gets the arguments, not the binary's path.
  void SetPrefixRunsImage(bool image) { prefix_runs_image_ = image; }
  // Where a port is reached from the test (e.g. through a proxy into a namespace).
  void OverridePort(const std::string& which, int port) { ports_[which] = port; }
  void ClearEnv() { env_.clear(); }

  // Waits up to `timeout` for the process to end by itself; its wait status, or -1 if it is
  // still running (it is then left running).
  int WaitForExit(absl::Duration timeout) {
    if (pid_ <= 0) return -1;
    const absl::Time until = absl::Now() + timeout;
    while (absl::Now() < until) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return st;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return -1;
  }

  // Sends `sig` and waits for the process; returns its wait status (-1 if not running).
  int Signal(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return st;
  }

  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // The lines this process wrote since its last Start().
  std::string LogSinceStart() const {
    std::string log = Log();
    return start_offset_ <= log.size() ? log.substr(start_offset_) : log;
  }

  static std::string ExitDescription(int wait_status) {
    if (WIFEXITED(wait_status)) return absl::StrCat("exited with ", WEXITSTATUS(wait_status));
    if (WIFSIGNALED(wait_status)) {
      return absl::StrCat("was killed by signal ", WTERMSIG(wait_status), " (",
                          strsignal(WTERMSIG(wait_status)), ")");
    }
    return absl::StrCat("ended (wait status ", wait_status, ")");
  }

  int port(const std::string& which) const { return ports_.value(which, 0); }
  pid_t pid() const { return pid_; }
  int http_port() const { return port("http_port"); }
  int grpc_port() const { return port("grpc_port"); }

 private:
  std::string binary_, name_, config_, ready_, log_;
  std::map<std::string, std::string> env_;
  std::vector<std::string> prefix_;
  bool prefix_runs_image_ = false;
  pid_t pid_ = -1;
  size_t start_offset_ = 0;
  json ports_;
};

// A polder-registry process.
class RegistryProcess : public ServiceProcess {
 public:
  RegistryProcess(std::string name, std::string config)
      : ServiceProcess(Binary(), std::move(name), std::move(config)) {}
};

// Runs a binary of this workspace (runfiles path, e.g. "tools/polderctl/polderctl").
inline std::string RunfilesPath(const std::string& path) {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"), "/", path);
}

class RegistryE2eTest : public testing::KafkaBrokerTest {
 protected:
  void SetUp() override {
    testing::KafkaBrokerTest::SetUp();
    signal(SIGPIPE, SIG_IGN);  // Requests to a killed registry must fail, not kill the test.
    dir_ =
        absl::StrCat(Tmp(), "/", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fed_ = std::make_unique<tls::TestFederation>(dir_);
    // Identities: the national operator, a city, a registry server, and a peer the directory
    // does not list.
    for (const char* who : {"national", "groningen", "registry", "amersfoort", "ede"}) {
      tls::KeyAndCert kc = fed_->Issue(who);
      files_[who] = fed_->WriteIdentity(who, kc);
      fed_->Admit(who, kc);  // what the test clients check the server against
      listed_.push_back({who, kc});
    }
    files_["enschede"] = fed_->WriteIdentity("enschede", fed_->Issue("enschede"));
    // A signed directory the registry loads from a file, with the pinned operator key.
    operator_key_ = std::make_unique<trust::PrivateKey>(*trust::PrivateKey::Generate());
    ASSERT_OK(trust::WriteFileAtomically(dir_ + "/operator.pub", operator_key_->public_key().Pem(),
                                         0644));
    signing_key_ = std::make_unique<trust::PrivateKey>(*trust::PrivateKey::Generate());
    WriteDirectory();
    topic_ = UniqueTopic("_polder.schemas");
  }

  // Signs and writes the directory of every listed peer, with the next serial.
  void WriteDirectory() {
    trust::SignedDirectory d;
    d.directory.federation = tls::kTestFederation;
    d.directory.serial = ++directory_serial_;
    d.directory.issued_at = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
    d.directory.valid_from = d.directory.issued_at - absl::Hours(1);
    d.directory.valid_until = d.directory.issued_at + absl::Hours(24);
    const trust::PrivateKey& signing = *signing_key_;
    for (const auto& [who, kc] : listed_) {
      d.directory.peers.push_back(
          {who,
           std::string(who) + ".example:8443",
           {*tls::KeyThumbprint(kc.cert_pem)},
           {{signing.public_key().kid(), signing.public_key().RawBase64Url(),
             d.directory.valid_from, d.directory.valid_until}}});
    }
    ASSERT_OK(trust::SignDirectory(&d, *operator_key_, absl::Now()));
    ASSERT_OK(trust::WriteFileAtomically(dir_ + "/directory.json", d.ToFileText(), 0644));
  }

  // Issues identities for more peers, lists them (same signing key) and writes the directory
  // again; processes started afterwards admit them.
  void ListPeers(const std::vector<std::string>& names) {
    for (const std::string& who : names) {
      tls::KeyAndCert kc = fed_->Issue(who);
      files_[who] = fed_->WriteIdentity(who, kc);
      fed_->Admit(who, kc);
      listed_.push_back({who, kc});
    }
    WriteDirectory();
  }

  std::string WriteConfig(const std::string& replica, const std::string& primary,
                          const std::string& bootstrap, const std::string& topic,
                          bool development = false) {
    const tls::TlsFiles& f = files_["registry"];
    std::string path = absl::StrCat(dir_, "/", replica, ".yaml");
    if (development) {
      std::ofstream(path) << absl::StrCat(
          "registry:\n  replica_id: ", replica, "\n  primary: ", primary,
          "\n  federation: ", tls::kTestFederation,
          "\n  grpc_address: 127.0.0.1:0\n  http_address: 127.0.0.1:0\n  ops_address: "
          "127.0.0.1:0\n  development_mode: true\n",
          "kafka:\n  bootstrap_servers: ", bootstrap, "\n  topic: ", topic,
          "\n  replication_factor: 1\n");
      return path;
    }
    std::ofstream(path) << absl::StrCat(
        "registry:\n  replica_id: ", replica, "\n  primary: ", primary,
        "\n  federation: ", tls::kTestFederation,
        "\n  grpc_address: 127.0.0.1:0\n  http_address: 127.0.0.1:0\n  ops_address: 127.0.0.1:0\n  "
        "max_schema_bytes: 16KiB\n",
        "  operator_peers: [national]\n", "kafka:\n  bootstrap_servers: ", bootstrap,
        "\n  topic: ", topic, "\n  replication_factor: ", registry_replication_, "\n",
        "  properties:\n    log_level: \"3\"\n", "tls:\n  cert_file: ", f.cert_path,
        "\n  key_file: ", f.key_path, "\n  trust_bundle_file: ", f.trust_bundle_path,
        "\n  crl_dir: ", fed_->crl_dir(), "\n", "trust:\n  federation: ", tls::kTestFederation,
        "\n  directory_file: ", dir_, "/directory.json\n", "  directory_state: ", dir_, "/",
        replica, "-directory-state.json\n", "  operator_keys:\n    - public_key_file: ", dir_,
        "/operator.pub\n");
    return path;
  }

  std::unique_ptr<RegistryProcess> Start(const std::string& replica,
                                         const std::string& primary = "reg-a",
                                         std::string bootstrap = "", std::string topic = "",
                                         bool development = false) {
    auto p = std::make_unique<RegistryProcess>(
        replica,
        WriteConfig(replica, primary, bootstrap.empty() ? broker().bootstrap_servers() : bootstrap,
                    topic.empty() ? topic_ : topic, development));
    p->Start();
    return p;
  }

  // A REST client presenting `who`'s certificate chain.
  std::unique_ptr<httplib::SSLClient> Rest(const RegistryProcess& r, const std::string& who) {
    const tls::TlsFiles& f = files_[who];
    auto c =
        std::make_unique<httplib::SSLClient>("127.0.0.1", r.http_port(), f.cert_path, f.key_path);
    SSL_CTX_use_certificate_chain_file(c->ssl_context(), f.cert_path.c_str());
    c->set_ca_cert_path(fed_->bundle_path().c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(std::chrono::seconds(10));
    c->set_read_timeout(std::chrono::seconds(30));
    return c;
  }

  std::unique_ptr<v1::SchemaRegistryService::Stub> Grpc(const RegistryProcess& r,
                                                        const std::string& who) {
    auto creds = tls::MakeChannelCredentials(files_[who], fed_->Checker(), "registry");
    EXPECT_OK(creds.status());
    return v1::SchemaRegistryService::NewStub(
        grpc::CreateChannel(absl::StrCat("localhost:", r.grpc_port()), *creds));
  }

  static json Post(httplib::SSLClient& c, const std::string& path, const json& body, int* status) {
    auto r = c.Post(path.c_str(), body.dump(), "application/vnd.schemaregistry.v1+json");
    *status = r ? r->status : -1;
    return r ? json::parse(r->body, nullptr, false) : json();
  }
  static json Get(httplib::SSLClient& c, const std::string& path, int* status) {
    auto r = c.Get(path.c_str());
    *status = r ? r->status : -1;
    return r ? json::parse(r->body, nullptr, false) : json();
  }

  static std::string Msg(const json& r) {
    return r.is_object() && r.contains("message") && r["message"].is_string()
               ? r["message"].get<std::string>()
               : r.dump();
  }
  static json Proto(const std::string& text) {
    return json{{"schemaType", "PROTOBUF"}, {"schema", text}};
  }

  // Runs `polderctl federation bootstrap -o json` as the operator; returns its JSON output.
  json Bootstrap(const RegistryProcess& reg, const std::string& extra = "") {
    const tls::TlsFiles& op = files_["national"];
    std::string cmd = absl::StrCat(
        RunfilesPath("tools/polderctl/polderctl"),
        " federation bootstrap --address localhost:", reg.grpc_port(), " --cert ", op.cert_path,
        " --key ", op.key_path, " --bundle ", op.trust_bundle_path, " --directory ", dir_,
        "/directory.json --operator-key ", dir_, "/operator.pub -o json ", extra);
    std::string output;
    int code = testing::RunCommand(cmd, &output);
    EXPECT_EQ(code, 0) << cmd << "\n" << output << "\n" << reg.Log();
    return json::parse(output.substr(std::min(output.find('{'), output.size())), nullptr, false);
  }

  std::string dir_;
  std::string topic_;
  // The replication factor of the registry's topic (3 on a three-broker cluster).
  int registry_replication_ = 1;
  std::unique_ptr<tls::TestFederation> fed_;
  std::map<std::string, tls::TlsFiles> files_;
  std::vector<std::pair<std::string, tls::KeyAndCert>> listed_;
  int64_t directory_serial_ = 0;
  std::unique_ptr<trust::PrivateKey> operator_key_;
  // The signing key the directory lists for every listed peer (contracts in tests).
  std::unique_ptr<trust::PrivateKey> signing_key_;
};

}  // namespace registry_testing
}  // namespace polder

#endif  // POLDER_TESTS_REGISTRY_REGISTRY_FIXTURE_H_
