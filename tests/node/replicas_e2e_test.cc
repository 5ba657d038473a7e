// Node replicas (ADR 0021 §2): two replicas of Groningen's node on a three-broker cluster share
// ingest through the key partitions the group gives each, forwarding over the internal port.
// The exactly-once checker (tests/kafka/checker.h) counts per failure:
//   - 1,000 rounds of one key sent concurrently to both replicas, one replica killed (-9) mid-run
//     and restarted: every acknowledged record exactly once, at most one fresh commit per key;
//   - the zombie: a replica stopped (SIGSTOP) past its session, ingest going on through the
//     other, then resumed (SIGCONT): it gives up its partitions as lost, writes nothing, rejoins;
//   - kill -9 of a replica inside unkeyed transactions: a read_committed reader sees a later
//     record within 3× the failover bound (15 s), not after the transaction timeout (60 s here);
//   - the provider side from any replica: Amersfoort (its own broker) subscribes through a load
//     balancer that sends its first stream to r0 and every later connection to r1, whose
//     connections end after 3 s: receipts for r0's live stream reach r1 and are forwarded over
//     the internal port, so the mirror never stalls longer than 3× the receipt interval; the next
//     stream is r1's, resuming r0's (audit verify finds no gap), each record mirrored once;
//   - per-peer limits across replicas: 8 streams of one peer over both, the ninth refused.
#include <signal.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/kafka/rdkafka_consumer.h"
#include "tests/fault/fault_proxy.h"
#include "tests/fault/netns.h"
#include "tests/kafka/broker_chaos.h"
#include "tests/kafka/checker.h"
#include "tests/node/federation_fixture.h"
#include "tools/kafka/kafka_cluster.h"

namespace polder {
namespace {

using namespace node_testing;  // NOLINT
using kafka_testing::KafkaCluster;

constexpr int kRounds = 1000;
constexpr int kPerRound = 2;
constexpr int kLanes = 4;  // rounds in flight at once
// The failover bound ADR 0021 §3 sets: session timeout + rebalance + InitTransactions.
constexpr absl::Duration kFailoverBound = absl::Seconds(15);

std::ostream& Say() {
  static const absl::Time start = absl::Now();
  return std::cerr << "[replicas "
                   << absl::StrFormat("%6.1f", absl::ToDoubleSeconds(absl::Now() - start))
                   << " s] ";
}

class ReplicasTest : public FederationFixture {
 protected:
  // The brokers listen on the host end of a test-made veth pair, so a replica started inside
  // its namespace reaches them until the partition (phase 6).
  void StartCluster() {
    ASSERT_OK(fault::Netns::CleanUpLeftovers());
    auto net = fault::Netns::Create("rep", 77);
    ASSERT_OK(net.status()) << "partition tests need root and iproute2";
    net_ = *std::move(net);
    kafka_testing::KafkaClusterOptions o = chaos::FailureClusterOptions("groningen");
    o.node.bind_address = net_->host_ip();
    auto c = KafkaCluster::StartAll({o});
    ASSERT_OK(c.status());
    cluster_ = std::move((*c)[0]);
    replication_ = 3;
    min_insync_replicas_ = 2;
    peer_ = "groningen";
    node_identity_ = "groningen";
    bootstrap_ = cluster_->bootstrap_servers();
    transaction_timeout_ = "60s";
    keys_partitions_ = 12;
  }

  std::unique_ptr<ServiceProcess> StartReplica(const std::string& id) {
    instance_ = "-" + id;
    replicas_yaml_ = absl::StrCat("replicas:\n  id: ", id,
                                  "\n  internal_address: 127.0.0.1:0\n  session_timeout: 6s\n"
                                  "  heartbeat_interval: 1s\n");
    return StartNode();
  }

  json Status(const ServiceProcess& node) { return ReplicaStatus(node); }
  size_t Held(const ServiceProcess& node) {
    return Status(node).value("key_partitions_held", json::array()).size();
  }

  template <typename F>
  static bool Eventually(F f, absl::Duration timeout = absl::Seconds(60)) {
    for (const absl::Time until = absl::Now() + timeout; absl::Now() < until;) {
      if (f()) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return f();
  }

  // One keyed batch of `n` records; ce_ids "<key>-<i>".
  static nv1::PublishRequest Batch(const std::string& key, int n) {
    nv1::PublishRequest req;
    req.set_dataset(kBikes);
    req.set_idempotency_key(key);
    for (int i = 0; i < n; ++i) {
      auto* r = req.add_records();
      r->set_json(BikeJson(absl::StrCat("gn-counter-", (i + key.size()) % 9), i));
      r->set_ce_id(absl::StrCat(key.empty() ? "u" : key, "-", i));
    }
    return req;
  }

  // Publishes `req` (retrying on failure, first to `first` then alternating with `other`) until
  // acknowledged or `timeout`; the response, or nullopt.
  std::optional<nv1::PublishResponse> PublishRetrying(const nv1::PublishRequest& req,
                                                      std::atomic<int>* first,
                                                      std::atomic<int>* other,
                                                      absl::Duration timeout, int* failures) {
    const absl::Time until = absl::Now() + timeout;
    for (int attempt = 0; absl::Now() < until; ++attempt) {
      const int port = (attempt / 2) % 2 == 0 ? first->load() : other->load();
      std::shared_ptr<nv1::IngestService::Stub> stub = StubFor(port);
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
      nv1::PublishResponse resp;
      const absl::Time sent = absl::Now();
      const grpc::Status st = stub->Publish(&ctx, req, &resp);
      if (st.ok()) return resp;
      ++*failures;
      if (*failures <= 20 || *failures % 50 == 0) {
        Say() << req.idempotency_key() << " to port " << port << " failed after "
              << absl::FormatDuration(absl::Now() - sent) << ": " << st.error_code() << " "
              << st.error_message() << "\n";
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return std::nullopt;
  }

  // One channel per port, kept (a handshake per round would be most of a round's time); a
  // restarted replica listens on another port.
  std::shared_ptr<nv1::IngestService::Stub> StubFor(int port) {
    absl::MutexLock lock(&stubs_mu_);
    std::shared_ptr<nv1::IngestService::Stub>& stub = stubs_[port];
    if (stub == nullptr) stub = Ingest(port);
    return stub;
  }

  // ce_id → how often it is in the bike counts topic on the cluster (read_committed).
  std::map<std::string, int> InCluster(size_t expected) {
    std::map<std::string, int> out;
    for (const auto& [p, ids] : CeIds(cluster_->bootstrap_servers(), expected)) {
      for (const std::string& id : ids) ++out[id];
    }
    return out;
  }

  absl::Mutex stubs_mu_;
  std::map<int, std::shared_ptr<nv1::IngestService::Stub>> stubs_ ABSL_GUARDED_BY(stubs_mu_);
  std::unique_ptr<fault::Netns> net_;  // destroyed after the cluster and the processes below
  std::unique_ptr<KafkaCluster> cluster_;
};

TEST_F(ReplicasTest, KeysOnceAcrossReplicasThroughAKillAZombieAndAnUnkeyedKill) {
  Say() << "starting Groningen's three-broker cluster\n";
  StartCluster();
  ASSERT_FALSE(HasFatalFailure());
  // Groningen shares its bike counts (phase 4) with a small window, so a receipt that does not
  // reach the replica serving the stream stalls it; connections end after 3 s (10 s grace: a
  // stream whose receipts were not forwarded would stall ~9 s, over the 6 s allowed).
  WriteContract("gr-am-bikes-1");
  federation_yaml_ = FederationYaml(
      "  max_batch_records: 50\n  max_batch_bytes: 32768\n  max_unacknowledged_bytes: 65536\n");
  const std::string groningen_federation = federation_yaml_;
  node_env_ = {{"POLDER_TEST_MAX_CONNECTION_AGE", "3s"},
               {"POLDER_TEST_MAX_CONNECTION_AGE_GRACE", "10s"}};
  auto r0 = StartReplica("r0");
  auto r1 = StartReplica("r1");
  ASSERT_TRUE(Eventually([&] { return Held(*r0) + Held(*r1) == 12 && Held(*r1) > 0; }))
      << Status(*r0).dump() << Status(*r1).dump();
  Say() << "two replicas: r0 holds " << Held(*r0) << " key partitions, r1 " << Held(*r1) << "\n";
  std::atomic<int> p0{r0->grpc_port()}, p1{r1->grpc_port()};

  // 1. One key per round, sent to both replicas at once; r1 killed at round 300, back at 600.
  checker::Checker once;
  std::atomic<int> progress{0};
  std::vector<std::atomic<int>> fresh(kRounds);
  std::atomic<int> failures{0};
  // Both senders send the same bytes per round (a key's retry with other content is refused).
  std::vector<nv1::PublishRequest> rounds;
  for (int round = 0; round < kRounds; ++round) {
    rounds.push_back(Batch(absl::StrCat("round-", round), kPerRound));
  }
  // Each round's key goes to both replicas at once; kLanes rounds (keys in different key
  // partitions, mostly) are in flight together, so the 1,000 rounds take a third of the time.
  auto sender = [&](int lane, std::atomic<int>* mine, std::atomic<int>* other) {
    int fails = 0;
    for (int round = lane; round < kRounds; round += kLanes) {
      const nv1::PublishRequest& req = rounds[round];
      auto resp = PublishRetrying(req, mine, other, absl::Minutes(2), &fails);
      ASSERT_TRUE(resp.has_value()) << "round " << round << " never acknowledged";
      if (!resp->duplicate()) ++fresh[round];
      if (mine == &p0) ++progress;
    }
    failures += fails;
  };
  std::vector<std::thread> senders;
  for (int lane = 0; lane < kLanes; ++lane) {
    senders.emplace_back(sender, lane, &p0, &p1);
    senders.emplace_back(sender, lane, &p1, &p0);
  }
  ASSERT_TRUE(Eventually([&] { return progress.load() >= 300; }, absl::Minutes(3)));
  const absl::Time killed = absl::Now();
  r1->Kill();
  Say() << "r1 killed after " << progress.load() << " rounds\n";
  ASSERT_TRUE(Eventually([&] { return Held(*r0) == 12; }, 3 * kFailoverBound))
      << Status(*r0).dump();
  Say() << "r0 holds every key partition " << absl::FormatDuration(absl::Now() - killed)
        << " after the kill\n";
  ASSERT_TRUE(Eventually([&] { return progress.load() >= 600; }, absl::Minutes(3)));
  r1 = StartReplica("r1");
  p1 = r1->grpc_port();
  Say() << "r1 restarted after " << progress.load() << " rounds\n";
  for (std::thread& t : senders) t.join();
  int fresh_twice = 0;
  for (int round = 0; round < kRounds; ++round) fresh_twice += fresh[round] > 1 ? 1 : 0;
  EXPECT_EQ(fresh_twice, 0) << "a key committed fresh twice";
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kPerRound; ++i) {
      const std::string id = absl::StrCat("round-", round, "-", i);
      once.Acknowledged(id, id);  // each record its own key: order is not what this checks
    }
  }
  std::map<std::string, int> in_topic = InCluster(kRounds * kPerRound);
  for (const auto& [id, n] : in_topic) {
    for (int k = 0; k < n; ++k) once.Read(0, id, id);
  }
  const checker::CheckerReport report = once.Report();
  Say() << "1,000 rounds of one key to two replicas, r1 killed and restarted: " << report.Summary()
        << "; client retries " << failures.load() << "\n";
  EXPECT_TRUE(report.ok()) << report.Summary();
  ASSERT_TRUE(Eventually([&] { return Held(*r1) > 0 && Held(*r0) + Held(*r1) == 12; }));

  // 2. The zombie: r1 stopped past its session while r0 keeps ingesting, then resumed.
  checker::Checker zombie;
  std::atomic<bool> stop{false};
  std::atomic<int> zombie_acked{0};
  std::thread writer([&] {
    int fails = 0;
    for (int b = 0; !stop; ++b) {
      const std::string key = absl::StrCat("zombie-", b);
      const nv1::PublishRequest req = Batch(key, 3);  // retried with the same bytes
      auto resp = PublishRetrying(req, &p0, &p0, absl::Minutes(1), &fails);
      if (!resp.has_value()) break;
      for (int i = 0; i < 3; ++i) {
        const std::string id = absl::StrCat(key, "-", i);
        zombie.Acknowledged(id, id);
      }
      ++zombie_acked;
    }
  });
  r1->Send(SIGSTOP);
  const absl::Time stopped = absl::Now();
  ASSERT_TRUE(Eventually([&] { return Held(*r0) == 12; }, 3 * kFailoverBound));
  Say() << "r1 stopped: r0 took every key partition after "
        << absl::FormatDuration(absl::Now() - stopped) << "\n";
  const int before = zombie_acked.load();
  ASSERT_TRUE(Eventually([&] { return zombie_acked.load() >= before + 20; }));
  r1->Send(SIGCONT);
  ASSERT_TRUE(Eventually([&] { return Held(*r1) > 0 && Held(*r0) + Held(*r1) == 12; }))
      << Status(*r1).dump();
  stop = true;
  writer.join();
  EXPECT_THAT(r1->Log(), ::testing::HasSubstr("\"lost\":true"))
      << "the resumed replica gave up its partitions as lost";
  const std::map<std::string, int> zombie_read =
      InCluster(kRounds * kPerRound + zombie_acked.load() * 3);
  for (const auto& [id, n] : zombie_read) {
    if (!absl::StartsWith(id, "zombie-")) continue;
    for (int k = 0; k < n; ++k) zombie.Read(0, id, id);
  }
  const checker::CheckerReport zr = zombie.Report();
  Say() << "zombie (SIGSTOP past the session, SIGCONT): " << zr.Summary() << "\n";
  EXPECT_TRUE(zr.ok()) << zr.Summary();

  // 3. kill -9 of r1 inside unkeyed transactions: the open ones are aborted by the next holder
  // of r1's partitions, so a reader sees later records within the failover bound.
  // Four writers at once keep r1's transactions (one per key partition it holds) open nearly
  // all the time.
  std::atomic<bool> unkeyed_stop{false};
  std::atomic<int> unkeyed_acked{0};
  std::vector<std::thread> unkeyed;
  for (int w = 0; w < 4; ++w) {
    unkeyed.emplace_back([&, w] {
      auto stub = Ingest(p1.load());
      for (int b = 0; !unkeyed_stop; ++b) {
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
        nv1::PublishResponse resp;
        nv1::PublishRequest req = Batch("", 200);
        for (auto& r : *req.mutable_records()) {
          r.set_ce_id(absl::StrCat("unkeyed-", w, "-", b, "-", r.ce_id()));
        }
        if (stub->Publish(&ctx, req, &resp).ok()) ++unkeyed_acked;
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return unkeyed_acked.load() >= 20; }));
  r1->Kill();
  const absl::Time unkeyed_kill = absl::Now();
  unkeyed_stop = true;
  for (std::thread& t : unkeyed) t.join();
  Say() << "r1 killed after " << unkeyed_acked.load() << " unkeyed batches\n";
  int probe_fails = 0;
  nv1::PublishRequest probe = Batch("", 3);
  for (auto& r : *probe.mutable_records()) r.set_ce_id(absl::StrCat("probe-", r.ce_id()));
  ASSERT_TRUE(PublishRetrying(probe, &p0, &p0, absl::Minutes(1), &probe_fails).has_value());
  bool seen = false;
  absl::Duration visible_after;
  kafka::ConsumerOptions co;
  co.client = ClientOptions();
  co.client.bootstrap_servers = cluster_->bootstrap_servers();
  auto consumer = kafka::KafkaConsumer::Create(co);
  ASSERT_OK(consumer.status());
  std::vector<kafka::TopicPartitionOffset> all;
  for (int p = 0; p < 3; ++p) all.push_back({Topic(), p, kafka::kOffsetBeginning});
  ASSERT_OK((*consumer)->Assign(all));
  while (!seen && absl::Now() < unkeyed_kill + 3 * kFailoverBound + absl::Seconds(30)) {
    auto batch = (*consumer)->Poll(absl::Milliseconds(200), 10000);
    ASSERT_OK(batch.status());
    for (const auto& r : *batch) {
      for (const auto& h : r.headers) {
        if (h.key == "ce_id" && absl::StartsWith(h.value, "probe-")) seen = true;
      }
    }
    if (seen) visible_after = absl::Now() - unkeyed_kill;
  }
  ASSERT_TRUE(seen) << "the probe never became visible to a read_committed reader";
  Say() << "kill -9 inside unkeyed transactions: a later record visible "
        << absl::FormatDuration(visible_after) << " after the kill (bound "
        << absl::FormatDuration(3 * kFailoverBound) << ", transaction timeout 60s)\n";
  EXPECT_LE(visible_after, 3 * kFailoverBound);

  // 4. The provider side from any replica (ADR 0021 §4): Amersfoort subscribes through a load
  // balancer that sends its first connection to r0 and every later one to r1. Connections end
  // after 3 s, so the subscriber's receipts for a live stream reach the other replica, which
  // forwards them to the one serving the stream; the stream itself ends after the 10 s grace and
  // resumes from its cursor on r1. Ingest goes on meanwhile; the mirror must never stall longer
  // than 3x the receipt interval (2 s), and holds each record once.
  r1 = StartReplica("r1");
  p1 = r1->grpc_port();
  // The balancer sends the first stream to r0, then every new connection to r1: the receipts
  // for r0's stream arrive at r1 once the connection ends, and the next stream is r1's.
  fault::FaultProxy balancer("127.0.0.1", r0->port("federation_port"));
  ASSERT_OK(balancer.Start());
  replicas_yaml_.clear();
  instance_.clear();
  node_env_.clear();
  replication_ = 1;  // Amersfoort: its own single broker
  min_insync_replicas_ = 1;
  subscription_extra_ = ", start: latest";
  auto amersfoort = StartAmersfoort(balancer.port());
  auto mirrored = [&]() -> int64_t {
    std::string out;
    testing::RunCommand(
        absl::StrCat("curl -sS -m 5 http://127.0.0.1:", amersfoort->port("ops_port"), "/statusz"),
        &out);
    json j = json::parse(out, nullptr, false);
    if (!j.is_object() || !j.contains("subscriptions") || j["subscriptions"].empty()) return -1;
    if (j["subscriptions"][0].value("state", "") != "streaming") return -1;
    return j["subscriptions"][0].value("records", int64_t{0});
  };
  ASSERT_TRUE(Eventually([&] { return mirrored() >= 0; })) << amersfoort->Log();
  balancer.Retarget(r1->port("federation_port"));
  std::atomic<bool> lb_stop{false};
  std::atomic<int> lb_acked{0};
  std::thread lb_writer([&] {
    int fails = 0;
    for (int b = 0; !lb_stop; ++b) {
      nv1::PublishRequest req = Batch(absl::StrCat("lb-", b), 20);
      auto resp = PublishRetrying(req, &p0, &p1, absl::Seconds(30), &fails);
      if (resp.has_value()) ++lb_acked;
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
  absl::Duration longest_stall;
  int64_t last = -1;
  absl::Time last_change = absl::Now();
  const absl::Time phase_end = absl::Now() + absl::Seconds(18);  // one stream cut (~13 s)
  while (absl::Now() < phase_end) {
    const int64_t n = mirrored();
    if (n > last) {
      if (last >= 0) longest_stall = std::max(longest_stall, absl::Now() - last_change);
      last = n;
      last_change = absl::Now();
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  longest_stall = std::max(longest_stall, absl::Now() - last_change);
  lb_stop = true;
  lb_writer.join();
  const int64_t forwarded = Status(*r0).value("receipts_forwarded", int64_t{0}) +
                            Status(*r1).value("receipts_forwarded", int64_t{0});
  // Every acknowledged record reaches the mirror once.
  std::map<std::string, int> in_mirror;
  for (const auto& [p, ids] : CeIds(amersfoort_kafka_->bootstrap_servers(), lb_acked.load() * 20)) {
    for (const std::string& id : ids) {
      if (absl::StartsWith(id, "lb-")) ++in_mirror[id];
    }
  }
  int twice = 0;
  for (const auto& [id, n] : in_mirror) twice += n > 1 ? 1 : 0;
  Say() << "receipts across a replica switch: " << lb_acked.load() * 20 << " records acknowledged, "
        << in_mirror.size() << " mirrored (" << twice << " twice), "
        << balancer.connections_accepted() << " connections through the balancer, " << forwarded
        << " receipts forwarded, longest stall " << absl::FormatDuration(longest_stall) << "\n";
  EXPECT_EQ(in_mirror.size(), static_cast<size_t>(lb_acked.load() * 20));
  EXPECT_EQ(twice, 0);
  EXPECT_GT(forwarded, 0) << "no receipt was forwarded: the test did not switch replicas";
  EXPECT_LE(longest_stall, absl::Seconds(6)) << "3x the receipt interval";

  // 5. Per-peer limits across replicas (ADR 0021 §3): Amersfoort may hold 8 streams in all
  // (federation.max_streams_per_peer), whichever replicas serve them — not 8 per replica.
  EXPECT_EQ(amersfoort->Signal(SIGTERM), 0);  // its own stream would come and go

  // The streams: at least one served by each replica, each after the first resuming the one
  // before it (its first entry names it).
  {
    std::string out;
    ASSERT_EQ(
        testing::RunCommand(
            absl::StrCat(RunfilesPath("tools/polderctl/polderctl"), " audit query --bootstrap ",
                         amersfoort_kafka_->bootstrap_servers(), " --peer groningen -o json 2>&1"),
            &out),
        0)
        << out;
    const json q = json::parse(out.substr(std::min(out.find('{'), out.size())), nullptr, false);
    std::set<std::string> streams, resumed, served_by;
    for (const json& e : q.value("exchanges", json::array())) {
      const std::string id = e.value("stream", "");
      streams.insert(id);
      if (e.contains("resumes")) resumed.insert(e.value("resumes", ""));
      for (const char* r : {"stream-r0-", "stream-r1-"}) {
        if (absl::StartsWith(id, r)) served_by.insert(r);
      }
    }
    EXPECT_GE(streams.size(), 2u) << out;
    EXPECT_EQ(served_by.size(), 2u) << "the stream moved from r0 to r1: " << out;
    EXPECT_EQ(resumed.size(), streams.size() - 1)
        << "every stream but the first resumes one: " << out;
    for (const std::string& r : resumed) EXPECT_EQ(streams.count(r), 1u) << r;
  }

  // The audit across the replica switch (ADR 0021 §4): each new stream's first entry names the
  // stream it resumes and its cursor; polderctl finds no gap and no false finding, against
  // Groningen's Kafka and through its federation service (any replica answers).
  const tls::TlsFiles& af = files_["amersfoort"];
  const std::string polderctl = RunfilesPath("tools/polderctl/polderctl");
  const std::string trust_flags =
      absl::StrCat(" --self amersfoort --peer groningen --directory ", dir_,
                   "/directory.json --operator-key ", dir_, "/operator.pub -o json 2>&1");
  for (const std::string& against :
       {absl::StrCat(" --peer-bootstrap ", cluster_->bootstrap_servers()),
        absl::StrCat(" --peer-endpoint 127.0.0.1:", balancer.port(), " --cert ", af.cert_path,
                     " --key ", af.key_path, " --bundle ", af.trust_bundle_path, " --crl-dir ",
                     fed_->crl_dir())}) {
    std::string out;
    EXPECT_EQ(testing::RunCommand(
                  absl::StrCat(polderctl, " audit verify --bootstrap ",
                               amersfoort_kafka_->bootstrap_servers(), against, trust_flags),
                  &out),
              0)
        << out;
    const json verified =
        json::parse(out.substr(std::min(out.find('{'), out.size())), nullptr, false);
    EXPECT_TRUE(verified.is_object() && verified.value("findings", json::array()).empty()) << out;
    EXPECT_GE(verified.value("streams", 0), 2) << "a stream resumed another: " << out;
    Say() << "audit verify" << against.substr(0, against.find(' ', 2)) << ": "
          << verified.value("streams", 0) << " streams, " << verified.value("links", 0)
          << " links, no finding\n";
  }
  struct Open {
    std::unique_ptr<fv1::FederationService::Stub> stub;
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<fv1::SubscribeResponse>> reader;
  };
  std::vector<Open> open;
  auto try_open = [&](int port) {
    Open o;
    o.stub = FederationClient(files_["amersfoort"], port);
    o.ctx = std::make_unique<grpc::ClientContext>();
    o.ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    fv1::SubscribeRequest req = Subscribe("gr-am-bikes-1");
    req.set_start_position("latest");
    o.reader = o.stub->Subscribe(o.ctx.get(), req);
    fv1::SubscribeResponse msg;
    if (o.reader->Read(&msg) && msg.has_opened()) {
      open.push_back(std::move(o));
      return grpc::StatusCode::OK;
    }
    return o.reader->Finish().error_code();
  };
  const int f0 = r0->port("federation_port"), f1 = r1->port("federation_port");
  // The node's stream is released once its end reaches the holder of Amersfoort's partition.
  ASSERT_TRUE(Eventually([&] {
    const grpc::StatusCode c = try_open(f0);
    if (c != grpc::StatusCode::OK) return false;
    open.back().ctx->TryCancel();
    (void)open.back().reader->Finish();
    open.pop_back();
    return true;
  }));
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(Eventually([&] { return try_open(i % 2 == 0 ? f0 : f1) == grpc::StatusCode::OK; },
                           absl::Seconds(20)))
        << "stream " << i << " within the limit";
  }
  EXPECT_EQ(try_open(f0), grpc::StatusCode::RESOURCE_EXHAUSTED) << "a ninth stream, at r0";
  EXPECT_EQ(try_open(f1), grpc::StatusCode::RESOURCE_EXHAUSTED) << "a ninth stream, at r1";
  // One ended at r1 frees a slot for r0.
  open[1].ctx->TryCancel();
  (void)open[1].reader->Finish();
  open.erase(open.begin() + 1);
  const absl::Time released = absl::Now();
  EXPECT_TRUE(Eventually([&] { return try_open(f0) == grpc::StatusCode::OK; }, absl::Seconds(20)));
  Say() << "per-peer limit across replicas: 8 streams over r0 and r1, the ninth refused at both; "
        << "a slot freed at r1 was usable at r0 " << absl::FormatDuration(absl::Now() - released)
        << " later\n";
  for (Open& o : open) {
    o.ctx->TryCancel();
    (void)o.reader->Finish();
  }

  // 6. A network partition between r1 and its Kafka (ADR 0021 §6): r1 runs in a test-made
  // network namespace, reaching the brokers over a veth pair (the registry and its ops port
  // through proxies on the namespace's loopback, which the partition leaves alone). The route
  // to the brokers is deleted inside the namespace: r1's Kafka calls time out (it reports Kafka
  // unreachable) while r0's succeed (ingest goes on, r0 takes every key partition within the
  // failover bound); restored, r1 gives its partitions up as lost, rejoins, writes nothing stale.
  EXPECT_EQ(r1->Signal(SIGTERM), 0);
  fault::FaultProxy registry_in_ns("127.0.0.1", registry_->grpc_port());
  registry_in_ns.set_listen_netns(net_->path());
  registry_in_ns.set_listen_port(registry_->grpc_port());
  ASSERT_OK(registry_in_ns.Start());
  peer_ = "groningen";
  node_identity_ = "groningen";
  bootstrap_ = cluster_->bootstrap_servers();
  federation_yaml_ = groningen_federation;
  replication_ = 3;
  min_insync_replicas_ = 2;
  command_prefix_ = net_->ExecPrefix();
  instance_ = "-r1";
  replicas_yaml_ = absl::StrCat("replicas:\n  id: r1\n  internal_address: ", net_->inner_ip(),
                                ":0\n  session_timeout: 6s\n  heartbeat_interval: 1s\n");
  r1 = StartNode();
  command_prefix_.clear();
  fault::FaultProxy r1_ops("127.0.0.1", r1->port("ops_port"));
  r1_ops.set_connect_netns(net_->path());
  ASSERT_OK(r1_ops.Start());
  r1->OverridePort("ops_port", r1_ops.port());
  ASSERT_TRUE(Eventually([&] { return Held(*r1) > 0 && Held(*r0) + Held(*r1) == 12; }))
      << Status(*r1).dump() << r1->Log();
  Say() << "r1 inside its namespace holds " << Held(*r1) << " key partitions\n";
  checker::Checker parted;
  std::atomic<bool> part_stop{false};
  std::atomic<int> part_acked{0};
  std::thread part_writer([&] {
    int fails = 0;
    for (int b = 0; !part_stop; ++b) {
      const std::string key = absl::StrCat("part-", b);
      auto resp = PublishRetrying(Batch(key, 3), &p0, &p0, absl::Minutes(1), &fails);
      if (!resp.has_value()) break;
      for (int i = 0; i < 3; ++i) {
        const std::string id = absl::StrCat(key, "-", i);
        parted.Acknowledged(id, id);
      }
      ++part_acked;
    }
  });
  ASSERT_TRUE(Eventually([&] { return part_acked.load() >= 10; }));
  ASSERT_OK(net_->Cut());
  const absl::Time cut = absl::Now();
  ASSERT_TRUE(Eventually([&] { return Held(*r0) == 12; }, 3 * kFailoverBound))
      << Status(*r0).dump();
  const absl::Duration took_over = absl::Now() - cut;
  // Proved: r1 finds Kafka unreachable (its readiness says so) while r0 keeps acknowledging.
  auto readyz = [&](const ServiceProcess& node) {
    std::string out;
    testing::RunCommand(
        absl::StrCat("curl -sS -m 5 http://127.0.0.1:", node.port("ops_port"), "/readyz"), &out);
    return out;
  };
  ASSERT_TRUE(
      Eventually([&] { return absl::StrContains(readyz(*r1), "the cluster does not answer"); },
                 3 * kFailoverBound))
      << "r1 does not report Kafka unreachable: " << readyz(*r1);
  const int acked_at_cut = part_acked.load();
  ASSERT_TRUE(Eventually([&] { return part_acked.load() >= acked_at_cut + 20; }))
      << "r0's ingest stopped during r1's partition";
  Say() << "partition: r0 held every key partition " << absl::FormatDuration(took_over)
        << " after the cut; r1 reports: " << readyz(*r1).substr(0, 160) << "\n";
  ASSERT_OK(net_->Restore());
  ASSERT_TRUE(
      Eventually([&] { return Held(*r1) > 0 && Held(*r0) + Held(*r1) == 12; }, 3 * kFailoverBound))
      << Status(*r1).dump();
  part_stop = true;
  part_writer.join();
  EXPECT_THAT(r1->Log(), ::testing::HasSubstr("\"lost\":true"))
      << "the cut-off replica gave up its partitions as lost";
  for (const auto& [id, n] : InCluster(size_t{1} << 30)) {  // all of it (5 s without more)
    if (!absl::StartsWith(id, "part-")) continue;
    for (int k = 0; k < n; ++k) parted.Read(0, id, id);
  }
  const checker::CheckerReport pr = parted.Report();
  Say() << "partition between r1 and Kafka, then restored: " << pr.Summary() << "\n";
  EXPECT_TRUE(pr.ok()) << pr.Summary();
}

}  // namespace
}  // namespace polder
