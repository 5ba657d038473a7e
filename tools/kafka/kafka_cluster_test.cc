// The three-node launcher against the real Kafka runtime (ADR 0020 §1): every node registered,
// topics replicated 3 ways with min ISR 2; acknowledged records survive kill -9 of the partition
// leader (a new leader, writes go on); with two nodes down nothing is acknowledged, and writes
// resume when they return; the active controller and a transaction coordinator are found, and
// a new controller is elected when the active one is killed.
#include "tools/kafka/kafka_cluster.h"

#include <librdkafka/rdkafka.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace kafka_testing {
namespace {

using ::testing::ElementsAre;

constexpr char kTopic[] = "fail-over";

rd_kafka_t* Client(rd_kafka_type_t type, const std::string& bootstrap,
                   const std::map<std::string, std::string>& extra = {}) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::map<std::string, std::string> p = {{"bootstrap.servers", bootstrap}, {"log_level", "0"}};
  for (const auto& [k, v] : extra) p[k] = v;
  for (const auto& [k, v] : p) {
    EXPECT_EQ(rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err), RD_KAFKA_CONF_OK)
        << k << ": " << err;
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  EXPECT_NE(rk, nullptr) << err;
  return rk;
}

// Produces `values` (acks=all, idempotent) and returns each one's delivery error.
std::vector<rd_kafka_resp_err_t> Produce(const std::string& bootstrap,
                                         const std::vector<std::string>& values,
                                         const std::string& timeout_ms = "30000") {
  static std::vector<rd_kafka_resp_err_t>* results = nullptr;
  std::vector<rd_kafka_resp_err_t> out(values.size(), RD_KAFKA_RESP_ERR__FAIL);
  results = &out;
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[256];
  for (const auto& [k, v] :
       std::map<std::string, std::string>{{"bootstrap.servers", bootstrap},
                                          {"log_level", "0"},
                                          {"acks", "all"},
                                          {"enable.idempotence", "true"},
                                          {"message.timeout.ms", timeout_ms}}) {
    rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err);
  }
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    (*results)[reinterpret_cast<size_t>(m->_private)] = m->err;
  });
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  EXPECT_NE(rk, nullptr) << err;
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(kTopic), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_VALUE(const_cast<char*>(values[i].data()), values[i].size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(i)), RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  rd_kafka_flush(rk, 120000);
  rd_kafka_destroy(rk);
  results = nullptr;
  return out;
}

// Every value in the topic, from the start to its end.
std::vector<std::string> ReadAll(const std::string& bootstrap) {
  rd_kafka_t* rk = Client(RD_KAFKA_CONSUMER, bootstrap,
                          {{"group.id", "checker"}, {"enable.auto.commit", "false"}});
  int64_t low = 0, high = 0;
  EXPECT_EQ(rd_kafka_query_watermark_offsets(rk, kTopic, 0, &low, &high, 20000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, kTopic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  std::vector<std::string> values;
  for (absl::Time until = absl::Now() + absl::Seconds(60);
       absl::Now() < until && static_cast<int64_t>(values.size()) < high - low;) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      values.emplace_back(static_cast<const char*>(m->payload), m->len);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return values;
}

std::vector<std::string> Numbered(const std::string& prefix, int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(absl::StrCat(prefix, "-", i));
  return v;
}

bool AllDelivered(const std::vector<rd_kafka_resp_err_t>& errors) {
  for (rd_kafka_resp_err_t e : errors) {
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  }
  return true;
}

// Polls `f` until it returns true (at most `timeout`).
template <typename F>
bool Eventually(F f, absl::Duration timeout = absl::Seconds(60)) {
  for (absl::Time until = absl::Now() + timeout; absl::Now() < until;) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return f();
}

TEST(KafkaClusterTest, ThreeNodesKeepAcknowledgedRecordsThroughFailures) {
  absl::StatusOr<std::unique_ptr<KafkaCluster>> started = KafkaCluster::Start({});
  ASSERT_OK(started.status());
  KafkaCluster& cluster = **started;
  ASSERT_EQ(cluster.size(), 3);
  EXPECT_EQ(cluster.replication_factor(), 3);
  EXPECT_EQ(cluster.min_insync_replicas(), 2);
  absl::StatusOr<std::vector<int>> brokers = cluster.Brokers();
  ASSERT_OK(brokers.status());
  EXPECT_THAT(*brokers, ElementsAre(1, 2, 3));

  // A topic with the cluster's defaults: three replicas, all in sync.
  {
    rd_kafka_t* admin = Client(RD_KAFKA_PRODUCER, cluster.bootstrap_servers());
    char err[256];
    rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(kTopic, 1, -1, err, sizeof err);
    rd_kafka_queue_t* q = rd_kafka_queue_new(admin);
    rd_kafka_CreateTopics(admin, &topic, 1, nullptr, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
    ASSERT_NE(ev, nullptr);
    size_t n = 0;
    const rd_kafka_topic_result_t** r =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(rd_kafka_topic_result_error(r[0]), RD_KAFKA_RESP_ERR_NO_ERROR)
        << rd_kafka_topic_result_error_string(r[0]);
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(topic);
    rd_kafka_destroy(admin);
  }
  EXPECT_TRUE(Eventually([&] {
    auto isr = cluster.InSyncReplicas(kTopic, 0);
    return isr.ok() && isr->size() == 3;
  }));

  ASSERT_TRUE(AllDelivered(Produce(cluster.bootstrap_servers(), Numbered("before", 100))));

  // kill -9 of the partition leader: another node leads, writes go on.
  absl::StatusOr<int> leader = cluster.LeaderOf(kTopic, 0);
  ASSERT_OK(leader.status());
  ASSERT_OK(cluster.node(*leader).Kill());
  EXPECT_TRUE(Eventually([&] {
    auto now = cluster.LeaderOf(kTopic, 0);
    return now.ok() && *now != *leader;
  })) << "no new leader after node "
      << *leader << " was killed";
  ASSERT_TRUE(AllDelivered(Produce(cluster.bootstrap_servers(), Numbered("after-kill", 100))));
  ASSERT_OK(cluster.node(*leader).Restart());
  EXPECT_TRUE(Eventually([&] {
    auto isr = cluster.InSyncReplicas(kTopic, 0);
    return isr.ok() && isr->size() == 3;
  })) << "the restarted node did not rejoin the in-sync replicas";

  // Two nodes down: below min ISR, nothing is acknowledged; back up, writes resume.
  std::vector<int> down;
  for (int id = 1; id <= 3 && down.size() < 2; ++id) {
    ASSERT_OK(cluster.node(id).Kill());
    down.push_back(id);
  }
  std::vector<rd_kafka_resp_err_t> refused =
      Produce(cluster.bootstrap_servers(), Numbered("two-down", 3), "8000");
  for (rd_kafka_resp_err_t e : refused) {
    EXPECT_NE(e, RD_KAFKA_RESP_ERR_NO_ERROR) << "acknowledged with two of three nodes down";
  }
  for (int id : down) ASSERT_OK(cluster.node(id).Restart());
  ASSERT_TRUE(AllDelivered(Produce(cluster.bootstrap_servers(), Numbered("recovered", 10))));

  // The checker: every acknowledged record exactly once, in acknowledgement order.
  std::vector<std::string> values = ReadAll(cluster.bootstrap_servers());
  std::map<std::string, int> seen;
  std::vector<std::string> acked;
  for (const char* prefix : {"before", "after-kill", "recovered"}) {
    for (const std::string& v : Numbered(prefix, std::string(prefix) == "recovered" ? 10 : 100)) {
      acked.push_back(v);
    }
  }
  std::vector<std::string> in_order;
  for (const std::string& v : values) {
    ++seen[v];
    if (v.rfind("two-down", 0) != 0) in_order.push_back(v);
  }
  int lost = 0, duplicated = 0;
  for (const std::string& v : acked) {
    lost += seen.count(v) == 0 ? 1 : 0;
    duplicated += seen.count(v) != 0 && seen[v] > 1 ? 1 : 0;
  }
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicated, 0);
  EXPECT_EQ(in_order, acked) << "acknowledged records out of order";

  // The active controller is found, and another is elected when it dies.
  absl::StatusOr<int> controller = cluster.ActiveController();
  ASSERT_OK(controller.status());
  EXPECT_GE(*controller, 1);
  EXPECT_LE(*controller, 3);
  ASSERT_OK(cluster.node(*controller).Kill());
  EXPECT_TRUE(Eventually([&] {
    auto now = cluster.ActiveController();
    return now.ok() && *now != *controller;
  })) << "no new active controller after node "
      << *controller << " was killed";
  ASSERT_OK(cluster.node(*controller).Restart());

  // A transaction coordinator where Kafka's own tool says it is.
  {
    rd_kafka_t* tx = Client(RD_KAFKA_PRODUCER, cluster.bootstrap_servers(),
                            {{"transactional.id", "polder-cluster-test"}});
    rd_kafka_error_t* e = rd_kafka_init_transactions(tx, 60000);
    ASSERT_EQ(e, nullptr) << rd_kafka_error_string(e);
    rd_kafka_destroy(tx);
  }
  absl::StatusOr<int> coordinator = cluster.TransactionCoordinatorOf("polder-cluster-test");
  ASSERT_OK(coordinator.status());
  absl::StatusOr<std::string> described =
      RunKafkaTool(DefaultKafkaHome(), "java", "org.apache.kafka.tools.TransactionsCommand",
                   {"--bootstrap-server", cluster.bootstrap_servers(), "describe",
                    "--transactional-id", "polder-cluster-test"},
                   cluster.node(1).work_dir());
  ASSERT_OK(described.status());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*described, m, std::regex(R"((\d+)\s+polder-cluster-test)")))
      << *described;
  EXPECT_EQ(std::stoi(m[1].str()), *coordinator) << *described;
}

TEST(KafkaClusterTest, JavaHashCodeMatchesJava) {
  // Values of "".hashCode(), "a".hashCode(), "ab".hashCode(), "hello".hashCode() in Java.
  EXPECT_EQ(KafkaCluster::JavaHashCode(""), 0);
  EXPECT_EQ(KafkaCluster::JavaHashCode("a"), 97);
  EXPECT_EQ(KafkaCluster::JavaHashCode("ab"), 97 * 31 + 98);
  EXPECT_EQ(KafkaCluster::JavaHashCode("hello"), 99162322);
  // Overflow wraps as Java's int does.
  EXPECT_EQ(KafkaCluster::JavaHashCode("polder-transactional-id-overflowing"), [] {
    int32_t h = 0;
    for (char c : std::string("polder-transactional-id-overflowing")) {
      h = static_cast<int32_t>(static_cast<uint32_t>(h) * 31u + static_cast<uint32_t>(c));
    }
    return h;
  }());
}

// polder-kafka's binary, from the test's runfiles.
std::string PolderKafka() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "polder",
                      "/tools/kafka/polder-kafka");
}

// Runs polder-kafka with `args` to its end; its exit code, its output in `out`.
int RunPolderKafka(const std::string& args, std::string* out) {
  const std::string cmd = absl::StrCat(PolderKafka(), " ", args, " 2>&1");
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  const int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(KafkaClusterTest, PolderKafkaRefusesANodeCountOutOfRangeAndAWildcardAddress) {
  for (const std::string& nodes : {"0", "10", "-1"}) {
    std::string out;
    EXPECT_EQ(RunPolderKafka("--nodes=" + nodes, &out), 2) << out;
    EXPECT_THAT(out, ::testing::HasSubstr("--nodes=" + nodes + ": from 1 to 9"));
  }
  for (const std::string& address : {"0.0.0.0", "::", ""}) {
    std::string out;
    EXPECT_EQ(RunPolderKafka("--bind_address=" + address, &out), 2) << out;
    EXPECT_THAT(out, ::testing::HasSubstr("give a concrete address of this host"));
  }
}

// polder-kafka --nodes=3 on another loopback address (127.0.0.2): every node listens and
// advertises there, the metadata lists three brokers, and SIGTERM stops them all cleanly.
TEST(KafkaClusterTest, PolderKafkaRunsThreeNodesOnTheGivenAddress) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/polder-kafka-3");
  const std::string ready = dir + ".ready";
  const std::string binary = PolderKafka();
  pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    execl(binary.c_str(), binary.c_str(), "--name=three", "--nodes=3", "--heap=256m",
          "--bind_address=127.0.0.2", ("--work_dir=" + dir).c_str(),
          ("--ready_file=" + ready).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  absl::Time deadline = absl::Now() + absl::Seconds(180);
  while (!std::filesystem::exists(ready) && absl::Now() < deadline) {
    int st = 0;
    ASSERT_EQ(waitpid(launcher, &st, WNOHANG), 0) << "polder-kafka exited early: " << st;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(std::filesystem::exists(ready)) << "polder-kafka did not become ready";
  std::string bootstrap;
  std::ifstream(ready) >> bootstrap;
  const std::vector<std::string> addresses = absl::StrSplit(bootstrap, ',');
  ASSERT_EQ(addresses.size(), 3u) << bootstrap;
  for (const std::string& a : addresses) EXPECT_TRUE(absl::StartsWith(a, "127.0.0.2:")) << a;

  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err),
            RD_KAFKA_CONF_OK);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  ASSERT_NE(rk, nullptr) << err;
  const rd_kafka_metadata_t* md = nullptr;
  ASSERT_EQ(rd_kafka_metadata(rk, 0, nullptr, &md, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(md->broker_cnt, 3);
  for (int i = 0; i < md->broker_cnt; ++i) EXPECT_STREQ(md->brokers[i].host, "127.0.0.2");
  rd_kafka_metadata_destroy(md);
  rd_kafka_destroy(rk);

  ASSERT_EQ(kill(launcher, SIGTERM), 0);
  int st = 0;
  ASSERT_EQ(waitpid(launcher, &st, 0), launcher);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st;
  for (int id = 1; id <= 3; ++id) {
    EXPECT_TRUE(std::filesystem::exists(absl::StrCat(dir, "/node-", id, "/data")))
        << "node " << id << "'s data kept in its folder";
  }
}

}  // namespace
}  // namespace kafka_testing
}  // namespace polder
