// Tests of the broker launcher itself, against the real Kafka runtime.
#include "tools/kafka/kafka_broker.h"

#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace kafka_testing {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

// Asks `bootstrap` for metadata; returns the number of brokers listed, or -1 on error.
int BrokersListed(const std::string& bootstrap, int timeout_ms) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) return -1;
  const rd_kafka_metadata_t* md = nullptr;
  int n = -1;
  if (rd_kafka_metadata(rk, 0, nullptr, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    n = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_destroy(rk);
  return n;
}

bool ProcessExists(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

TEST(KafkaBrokerTest, TwoIndependentBrokersServeOnLoopbackAndStopCleanly) {
  KafkaBrokerOptions a_opts;
  a_opts.name = "city-a";
  KafkaBrokerOptions b_opts;
  b_opts.name = "city-b";
  ASSERT_OK_AND_ASSIGN(auto a, KafkaBroker::Start(a_opts));
  ASSERT_OK_AND_ASSIGN(auto b, KafkaBroker::Start(b_opts));
  EXPECT_NE(a->port(), b->port());
  EXPECT_NE(a->work_dir(), b->work_dir());
  EXPECT_THAT(a->bootstrap_servers(), HasSubstr("127.0.0.1:"));
  EXPECT_EQ(BrokersListed(a->bootstrap_servers(), 5000), 1);
  EXPECT_EQ(BrokersListed(b->bootstrap_servers(), 5000), 1);

  pid_t pid = a->pid();
  std::string dir = a->work_dir();
  ASSERT_TRUE(ProcessExists(pid));
  EXPECT_EQ(getpgid(pid), pid) << "the broker must lead its own process group";
  EXPECT_OK(a->Stop());
  EXPECT_FALSE(a->running());
  EXPECT_FALSE(ProcessExists(pid));
  EXPECT_THAT(a->LogTail(), HasSubstr("shut down completed"));
  a.reset();
  EXPECT_FALSE(std::filesystem::exists(dir)) << "a temp work dir is removed with the broker";
  EXPECT_EQ(BrokersListed(b->bootstrap_servers(), 5000), 1)
      << "stopping one broker leaves the other";
}

TEST(KafkaBrokerTest, KillPauseResumeAndRestartInPlace) {
  KafkaBrokerOptions opts;
  opts.name = "faulty";
  ASSERT_OK_AND_ASSIGN(auto broker, KafkaBroker::Start(opts));
  const int port = broker->port();
  const std::string data = broker->work_dir() + "/data";

  ASSERT_OK(broker->Pause());
  EXPECT_TRUE(broker->paused());
  EXPECT_EQ(BrokersListed(broker->bootstrap_servers(), 1500), -1)
      << "a paused broker does not answer";
  ASSERT_OK(broker->Resume());
  EXPECT_EQ(BrokersListed(broker->bootstrap_servers(), 10000), 1);

  pid_t old_pid = broker->pid();
  ASSERT_OK(broker->Kill());
  EXPECT_FALSE(ProcessExists(old_pid));
  EXPECT_EQ(BrokersListed(broker->bootstrap_servers(), 1000), -1);
  EXPECT_THAT(broker->Restart(), testing::IsOk());
  EXPECT_EQ(broker->port(), port);
  EXPECT_NE(broker->pid(), old_pid);
  EXPECT_TRUE(std::filesystem::exists(data));
  EXPECT_EQ(BrokersListed(broker->bootstrap_servers(), 5000), 1);
  EXPECT_THAT(broker->Restart(), StatusIs(absl::StatusCode::kFailedPrecondition));

  // A paused broker is still stopped cleanly.
  ASSERT_OK(broker->Pause());
  pid_t pid = broker->pid();
  EXPECT_OK(broker->Stop());
  EXPECT_FALSE(ProcessExists(pid));
}

TEST(KafkaBrokerTest, RetriesWithFreshPortsWhenAChosenPortWasTaken) {
  // Someone else binds a port between our pick and the broker's bind.
  int taken_fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(taken_fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(taken_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(taken_fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(taken_fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int taken = ntohs(addr.sin_port);

  int picks = 0;
  KafkaBrokerOptions opts;
  opts.name = "port-race";
  opts.port_picker = [&]() -> absl::StatusOr<int> {
    return ++picks == 1 ? absl::StatusOr<int>(taken) : PickFreePort();
  };
  ASSERT_OK_AND_ASSIGN(auto broker, KafkaBroker::Start(opts));
  EXPECT_NE(broker->port(), taken);
  EXPECT_GE(picks, 4) << "a second attempt picked new ports";
  EXPECT_EQ(BrokersListed(broker->bootstrap_servers(), 5000), 1);
  close(taken_fd);
}

// The broker must not outlive whoever started it, even when that process is SIGKILLed (as
// Bazel does to a test that times out): parent-death signal.
TEST(KafkaBrokerTest, BrokerDiesWithAKilledParent) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  ASSERT_NE(srcdir, nullptr);
  ASSERT_NE(workspace, nullptr);
  const std::string binary = absl::StrCat(srcdir, "/", workspace, "/tools/kafka/polder-kafka");
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/orphan");
  const std::string ready = dir + ".ready";
  pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    execl(binary.c_str(), binary.c_str(), "--name=orphan", ("--work_dir=" + dir).c_str(),
          ("--ready_file=" + ready).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  absl::Time deadline = absl::Now() + absl::Seconds(90);
  while (!std::filesystem::exists(ready) && absl::Now() < deadline) {
    ASSERT_EQ(waitpid(launcher, nullptr, WNOHANG), 0) << "polder-kafka exited early";
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(std::filesystem::exists(ready)) << "polder-kafka did not become ready";
  std::ifstream pid_file(dir + "/broker.pid");
  pid_t broker_pid = -1;
  pid_file >> broker_pid;
  ASSERT_GT(broker_pid, 0);
  ASSERT_TRUE(ProcessExists(broker_pid));

  ASSERT_EQ(kill(launcher, SIGKILL), 0);
  ASSERT_EQ(waitpid(launcher, nullptr, 0), launcher);
  deadline = absl::Now() + absl::Seconds(30);
  while (ProcessExists(broker_pid) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_FALSE(ProcessExists(broker_pid)) << "broker " << broker_pid << " outlived its parent";
  if (ProcessExists(broker_pid)) kill(broker_pid, SIGKILL);
}

TEST(KafkaBrokerTest, MissingRuntimeIsAFailedPreconditionNamingTheSetup) {
  KafkaBrokerOptions opts;
  opts.kafka_home = "/nonexistent/kafka";
  EXPECT_THAT(KafkaBroker::Start(opts),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("tools/setup/setup.sh")));
}

TEST(KafkaBrokerTest, BrokerThatCannotStartReportsItsLog) {
  KafkaBrokerOptions opts;
  opts.name = "broken";
  opts.start_timeout = absl::Seconds(60);
  opts.properties["process.roles"] = "no-such-role";
  auto broker = KafkaBroker::Start(opts);
  ASSERT_FALSE(broker.ok());
  EXPECT_THAT(broker.status().message(), HasSubstr("log tail"));
  EXPECT_THAT(broker.status().message(), HasSubstr("no-such-role"));
}

}  // namespace
}  // namespace kafka_testing
}  // namespace polder
