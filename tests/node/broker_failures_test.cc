// Broker failures on production-shaped clusters (ADR 0020 §2-3), modelled on Kafka's own
// replication_test (kill the leader or the controller under acks=all load, then consume what was
// acknowledged) and transactions_test (a transactional copier through broker kills: nothing lost,
// nothing twice). Groningen's node runs on a three-broker cluster (RF 3, min ISR 2, the
// transaction state log and offsets topic alike), Amersfoort's node mirrors its bike counts into
// a three-broker cluster of its own. A writer publishes keyed batches through Groningen's ingest
// all along, retrying each batch with its idempotency key until it is acknowledged, as a gateway
// does. In turn, on Groningen's cluster (during ingest and mirroring) and then on Amersfoort's
// (during mirroring):
//   kill -9 of the partition leader, of the transaction coordinator of the node's transactional
//   id (ingest; mirror), of the active controller — each restarted once writes went on;
//   two brokers down — ingest answers UNAVAILABLE within 3× its configured bound (publish_timeout
//   + its 2 s margin) and acknowledges nothing; mirroring stops within 3× the delivery timeout;
//   both resume when the brokers return.
// Then the checker (tests/kafka/checker.h) reads source and mirror: every acknowledged record
// exactly once in each, per-key order kept; the mirror equals the source; both audit trails
// verify. The checker's counts are printed per cluster.
#include <signal.h>

#include <atomic>
#include <thread>

#include "common/kafka/rdkafka_consumer.h"
#include "tests/kafka/checker.h"
#include "tests/node/federation_fixture.h"
#include "tools/kafka/kafka_cluster.h"

namespace polder {
namespace {

using namespace node_testing;  // NOLINT
using kafka_testing::KafkaCluster;

constexpr int kPerBatch = 20;

// Publishes keyed batches through the node's ingest until stopped; each batch is retried with
// its key until acknowledged. Records what was acknowledged (in order) and what was not yet.
class Writer {
 public:
  explicit Writer(std::unique_ptr<nv1::IngestService::Stub> stub) : stub_(std::move(stub)) {}
  ~Writer() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int64_t acknowledged() const { return acked_batches_; }
  // Batches acknowledged whose request was sent at or after `t`.
  int64_t AcknowledgedSentSince(absl::Time t) const {
    absl::MutexLock lock(&mu_);
    int64_t n = 0;
    for (absl::Time sent : ack_sent_) n += sent >= t ? 1 : 0;
    return n;
  }
  // Waits until `n` more batches than now are acknowledged; false after `timeout`.
  bool Progress(int64_t n, absl::Duration timeout) const {
    const int64_t target = acked_batches_ + n;
    const absl::Time until = absl::Now() + timeout;
    while (acked_batches_ < target && absl::Now() < until) absl::SleepFor(absl::Milliseconds(50));
    return acked_batches_ >= target;
  }
  void Feed(checker::Checker* c) const {
    absl::MutexLock lock(&mu_);
    for (const std::string& id : acked_ids_) c->Acknowledged(id, "");
    for (const std::string& id : unacked_ids_) c->Unacknowledged(id);
  }
  int64_t failures() const { return failures_; }
  // A record sent by someone else whose outcome is unknown: present at most once.
  void Unacknowledged(const std::string& id) {
    absl::MutexLock lock(&mu_);
    unacked_ids_.insert(id);
  }

 private:
  void Run() {
    for (int64_t b = 0; !stop_; ++b) {
      nv1::PublishRequest req;
      req.set_dataset(kBikes);
      req.set_idempotency_key(absl::StrCat("batch-", b));
      std::vector<std::string> ids;
      for (int i = 0; i < kPerBatch; ++i) {
        auto* r = req.add_records();
        r->set_json(BikeJson(absl::StrCat("gn-counter-", i % 9), static_cast<int>(b)));
        ids.push_back(absl::StrCat("b", b, "-", i));
        r->set_ce_id(ids.back());
      }
      while (true) {
        const absl::Time sent = absl::Now();
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(sent + absl::Seconds(60)));
        nv1::PublishResponse resp;
        const grpc::Status s = stub_->Publish(&ctx, req, &resp);
        absl::MutexLock lock(&mu_);
        if (s.ok()) {
          for (const std::string& id : ids) {
            acked_ids_.push_back(id);
            unacked_ids_.erase(id);
          }
          ack_sent_.push_back(sent);
          ++acked_batches_;
          break;
        }
        ++failures_;
        for (const std::string& id : ids) unacked_ids_.insert(id);
        if (stop_) return;
        mu_.Unlock();
        absl::SleepFor(absl::Milliseconds(300));
        mu_.Lock();
      }
    }
  }

  std::unique_ptr<nv1::IngestService::Stub> stub_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acked_batches_{0};
  std::atomic<int64_t> failures_{0};
  mutable absl::Mutex mu_;
  std::vector<std::string> acked_ids_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> unacked_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> ack_sent_ ABSL_GUARDED_BY(mu_);
};

class BrokerFailuresTest : public FederationFixture {
 protected:
  static std::unique_ptr<KafkaCluster> StartCluster(const std::string& name) {
    kafka_testing::KafkaClusterOptions o;
    o.node.name = name;
    auto c = KafkaCluster::Start(o);
    EXPECT_OK(c.status());
    return c.ok() ? *std::move(c) : nullptr;
  }

  // Every record of the bike counts topic at `bootstrap` (read_committed) into `c`, by ce_id.
  void ReadInto(const std::string& bootstrap, checker::Checker* c, size_t expected) {
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = bootstrap;
    auto consumer = kafka::KafkaConsumer::Create(o);
    ASSERT_OK(consumer.status());
    std::vector<kafka::TopicPartitionOffset> all;
    for (int p = 0; p < kPartitions; ++p) all.push_back({kTopic, p, kafka::kOffsetBeginning});
    ASSERT_OK((*consumer)->Assign(all));
    size_t n = 0;
    absl::Time quiet_until = absl::Now() + absl::Seconds(10);
    while (n < expected && absl::Now() < quiet_until) {
      auto batch = (*consumer)->Poll(absl::Milliseconds(300), 10000);
      ASSERT_OK(batch.status());
      if (!batch->empty()) quiet_until = absl::Now() + absl::Seconds(10);
      for (const auto& r : *batch) {
        std::string id;
        for (const auto& h : r.headers) {
          if (h.key == "ce_id") id = h.value;
        }
        c->Read(r.partition, id, r.key.value_or(""));
        ++n;
      }
    }
  }

  static std::string MirroredSeries() {
    return R"(polder_federation_subscription_records_total{dataset="mobility.bike-counts",provider="groningen"})";
  }

  template <typename F>
  static bool Eventually(F f, absl::Duration timeout = absl::Seconds(60)) {
    for (const absl::Time until = absl::Now() + timeout; absl::Now() < until;) {
      if (f()) return true;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return f();
  }

  // Until the subscription streams again (it reconnects after a failed commit).
  void WaitStreaming(const ServiceProcess& node) {
    EXPECT_TRUE(Eventually([&] { return SubscriptionState(node) == "streaming"; }))
        << SubscriptionState(node);
  }

  // The subscription's state on the subscriber's /statusz ("streaming", "reconnecting", ...).
  std::string SubscriptionState(const ServiceProcess& node) {
    std::string out;
    testing::RunCommand(
        absl::StrCat("curl -sS http://127.0.0.1:", node.port("ops_port"), "/statusz"), &out);
    json j = json::parse(out, nullptr, false);
    if (!j.is_object()) return "";
    for (const auto& s : j.value("subscriptions", json::array())) {
      return s.value("state", "");
    }
    return "";
  }
};

TEST_F(BrokerFailuresTest, AcknowledgedRecordsSurviveLeaderCoordinatorControllerAndTwoDown) {
  std::unique_ptr<KafkaCluster> gn = StartCluster("groningen");
  std::unique_ptr<KafkaCluster> am = StartCluster("amersfoort");
  ASSERT_NE(gn, nullptr);
  ASSERT_NE(am, nullptr);
  WriteContract("gr-am-bikes-1");
  replication_ = 3;
  min_insync_replicas_ = 2;

  peer_ = "groningen";
  node_identity_ = "groningen";
  bootstrap_ = gn->bootstrap_servers();
  federation_yaml_ = FederationYaml("  max_batch_records: 200\n");
  auto groningen = StartNode();
  const int fed_port = groningen->port("federation_port");
  peer_ = "amersfoort";
  node_identity_ = "amersfoort";
  bootstrap_ = am->bootstrap_servers();
  federation_yaml_ = FederationYaml(
      absl::StrCat("  subscriptions:\n    - {provider: groningen, endpoint: \"localhost:", fed_port,
                   "\", dataset: mobility.bike-counts, contract: gr-am-bikes-1, partitions: 3, "
                   "replication_factor: 3}\n"));
  auto amersfoort = StartNode();

  Writer writer(Ingest(groningen->grpc_port(), true, "groningen"));
  writer.Start();
  ASSERT_TRUE(writer.Progress(5, absl::Seconds(60))) << groningen->Log();
  WaitStreaming(*amersfoort);

  // Each round kills one node of each cluster at once — on Groningen's during ingest (and
  // mirroring), on Amersfoort's during mirroring — checks that writes go on, and restarts both.
  const std::string ingest_id = "polder-node-groningen-ingest";
  const std::string mirror_id = "polder-mirror-amersfoort-groningen-mobility.bike-counts";
  struct Round {
    std::string what;
    std::function<absl::StatusOr<int>(KafkaCluster&, const std::string&)> whom;
  };
  const std::vector<Round> rounds = {
      {"partition leader",
       [](KafkaCluster& c, const std::string&) { return c.LeaderOf(kTopic, 0); }},
      {"transaction coordinator",
       [](KafkaCluster& c, const std::string& id) { return c.TransactionCoordinatorOf(id); }},
      {"active controller",
       [](KafkaCluster& c, const std::string&) { return c.ActiveController(); }},
  };
  for (const Round& round : rounds) {
    ASSERT_OK_AND_ASSIGN(int in_gn, round.whom(*gn, ingest_id));
    ASSERT_OK_AND_ASSIGN(int in_am, round.whom(*am, mirror_id));
    std::cerr << "[broker-failures] kill -9 of the " << round.what << ": Groningen's node " << in_gn
              << " (ingest " << ingest_id << "), Amersfoort's node " << in_am << " (mirror "
              << mirror_id << ")\n";
    const double mirrored_before = Metric(*amersfoort, MirroredSeries());
    ASSERT_OK(gn->node(in_gn).Kill());
    ASSERT_OK(am->node(in_am).Kill());
    EXPECT_TRUE(writer.Progress(3, absl::Seconds(60)))
        << "ingest did not go on after the " << round.what << " was killed";
    EXPECT_TRUE(Eventually([&] { return Metric(*amersfoort, MirroredSeries()) > mirrored_before; }))
        << "mirroring did not go on after the " << round.what << " was killed";
    ASSERT_OK(gn->Relaunch({in_gn}));
    ASSERT_OK(am->Relaunch({in_am}));
    ASSERT_OK(gn->AwaitServing({in_gn}));
    ASSERT_OK(am->AwaitServing({in_am}));
  }

  // Two of Groningen's three down: nothing can be stored, so nothing is acknowledged, and a
  // publish is answered UNAVAILABLE within 3× its bound (publish_timeout 6 s + 2 s).
  std::cerr << "[broker-failures] two of Groningen's brokers down\n";
  ASSERT_OK(gn->node(1).Kill());
  ASSERT_OK(gn->node(2).Kill());
  const absl::Time down_since = absl::Now();
  {
    auto stub = Ingest(groningen->grpc_port(), true, "groningen");
    nv1::PublishRequest req;
    req.set_dataset(kBikes);
    req.set_idempotency_key("probe-two-down");
    auto* r = req.add_records();
    r->set_json(BikeJson("gn-counter-0", 1));
    r->set_ce_id("probe-two-down");
    writer.Unacknowledged("probe-two-down");  // whatever the answer, it may be stored once
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
    nv1::PublishResponse resp;
    const absl::Time sent = absl::Now();
    const grpc::Status s = stub->Publish(&ctx, req, &resp);
    const absl::Duration took = absl::Now() - sent;
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
    EXPECT_LE(took, 3 * absl::Seconds(6 + 2)) << s.error_message();
    std::cerr << "[broker-failures] ingest with two brokers down: " << s.error_code() << " after "
              << took << ": " << s.error_message() << "\n";
  }
  EXPECT_EQ(writer.AcknowledgedSentSince(down_since + absl::Seconds(1)), 0)
      << "batches were acknowledged with two of three brokers down";
  ASSERT_OK(gn->Relaunch({1, 2}));
  ASSERT_OK(gn->AwaitServing({1, 2}));
  EXPECT_TRUE(writer.Progress(3, absl::Seconds(90))) << "ingest did not resume";
  WaitStreaming(*amersfoort);

  // Two of Amersfoort's three down: the mirror cannot commit; the subscription leaves
  // "streaming" within 3× the delivery timeout (5 s), and resumes when they return.
  const absl::Time am_down = absl::Now();
  ASSERT_OK(am->node(1).Kill());
  ASSERT_OK(am->node(2).Kill());
  std::string state;
  while ((state = SubscriptionState(*amersfoort)) == "streaming" &&
         absl::Now() - am_down < absl::Seconds(60)) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  const absl::Duration stopped_after = absl::Now() - am_down;
  EXPECT_NE(state, "streaming");
  EXPECT_LE(stopped_after, 3 * absl::Seconds(5) + absl::Seconds(2));
  std::cerr << "[broker-failures] mirroring with two brokers down: '" << state << "' after "
            << stopped_after << "\n";
  ASSERT_OK(am->Relaunch({1, 2}));
  ASSERT_OK(am->AwaitServing({1, 2}));
  ASSERT_TRUE(writer.Progress(3, absl::Seconds(60)));
  WaitStreaming(*amersfoort);
  writer.Stop();

  // The checker, on the source and on the mirror.
  checker::Checker source, mirror;
  writer.Feed(&source);
  writer.Feed(&mirror);
  const size_t acknowledged = static_cast<size_t>(writer.acknowledged()) * kPerBatch;
  ReadInto(gn->bootstrap_servers(), &source, acknowledged);
  const absl::Time until = absl::Now() + absl::Minutes(2);
  size_t mirrored = 0;
  while ((mirrored = Total(CeIds(am->bootstrap_servers(), acknowledged))) < acknowledged &&
         absl::Now() < until) {
    absl::SleepFor(absl::Seconds(1));
  }
  ReadInto(am->bootstrap_servers(), &mirror, acknowledged);
  const checker::CheckerReport in_source = source.Report();
  const checker::CheckerReport in_mirror = mirror.Report();
  std::cerr << "[broker-failures] source: " << in_source.Summary()
            << "\n[broker-failures] mirror: " << in_mirror.Summary()
            << "\n[broker-failures] ingest retries: " << writer.failures() << "\n";
  EXPECT_TRUE(in_source.ok()) << in_source.Summary();
  EXPECT_TRUE(in_mirror.ok()) << in_mirror.Summary();
  EXPECT_GT(in_source.acknowledged, 0);
  // Exactly what the source holds, in the same order per partition.
  EXPECT_EQ(CeIds(am->bootstrap_servers(), acknowledged),
            CeIds(gn->bootstrap_servers(), acknowledged));

  // Both audit trails verify.
  for (const std::string& bootstrap : {gn->bootstrap_servers(), am->bootstrap_servers()}) {
    const AuditTopic audit = ReadAudit(bootstrap);
    EXPECT_FALSE(audit.chains.empty());
    for (const auto& [stream, links] : audit.chains) {
      EXPECT_OK(audit::VerifyChain(stream, links)) << stream;
    }
  }
}

}  // namespace
}  // namespace polder
