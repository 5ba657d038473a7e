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

#include "absl/strings/str_format.h"
#include "common/kafka/rdkafka_consumer.h"
#include "tests/kafka/broker_chaos.h"
#include "tests/kafka/checker.h"
#include "tests/node/federation_fixture.h"
#include "tools/kafka/kafka_cluster.h"

namespace polder {
namespace {

using namespace node_testing;  // NOLINT
using kafka_testing::KafkaCluster;

constexpr int kPerBatch = 20;

// Progress lines, with the seconds since the test began (where a slow run spent its time).
std::ostream& Say() {
  static const absl::Time start = absl::Now();
  return std::cerr << "[broker-failures "
                   << absl::StrFormat("%6.1f", absl::ToDoubleSeconds(absl::Now() - start))
                   << " s] ";
}

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
  // Batches acknowledged from now on count for `phase` (the failure under way).
  void set_phase(int phase) { phase_ = phase; }
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
  // Every record acknowledged (in order) and every one sent without an acknowledgement; with a
  // `phase`, only the records acknowledged during it.
  void Feed(checker::Checker* c, int phase = -1) const {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, p] : acked_ids_) {
      if (phase < 0 || p == phase) c->Acknowledged(id, "");
    }
    if (phase < 0) {
      for (const std::string& id : unacked_ids_) c->Unacknowledged(id);
    }
  }
  // The phase a record was acknowledged in; -1 if it was not.
  std::map<std::string, int> Phases() const {
    absl::MutexLock lock(&mu_);
    std::map<std::string, int> out;
    for (const auto& [id, p] : acked_ids_) out[id] = p;
    return out;
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
            acked_ids_.emplace_back(id, phase_.load());
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
  std::atomic<int> phase_{0};
  mutable absl::Mutex mu_;
  std::vector<std::pair<std::string, int>> acked_ids_ ABSL_GUARDED_BY(mu_);  // (ce_id, phase)
  std::set<std::string> unacked_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> ack_sent_ ABSL_GUARDED_BY(mu_);
};

class BrokerFailuresTest : public FederationFixture {
 protected:
  void SetUp() override {
    Say() << "setting up the registry\n";
    FederationFixture::SetUp();
  }
  void TearDown() override {
    Say() << "tearing down\n";
    FederationFixture::TearDown();
  }
  // Groningen's and Amersfoort's clusters, started at once (a silent node fenced after 4 s).
  static std::vector<std::unique_ptr<KafkaCluster>> StartClusters() {
    std::vector<kafka_testing::KafkaClusterOptions> all;
    for (const char* name : {"groningen", "amersfoort"}) {
      all.push_back(chaos::FailureClusterOptions(name));
    }
    auto c = KafkaCluster::StartAll(std::move(all));
    EXPECT_OK(c.status());
    return c.ok() ? *std::move(c) : std::vector<std::unique_ptr<KafkaCluster>>();
  }

  struct ReadRecord {
    int32_t partition;
    std::string id, key;
  };

  // Every record of the bike counts topic at `bootstrap` (read_committed), in offset order per
  // partition, until `expected` were read or nothing came for 10 s.
  std::vector<ReadRecord> ReadAll(const std::string& bootstrap, size_t expected) {
    std::vector<ReadRecord> out;
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = bootstrap;
    auto consumer = kafka::KafkaConsumer::Create(o);
    EXPECT_OK(consumer.status());
    if (!consumer.ok()) return out;
    std::vector<kafka::TopicPartitionOffset> all;
    for (int p = 0; p < kPartitions; ++p) all.push_back({kTopic, p, kafka::kOffsetBeginning});
    EXPECT_OK((*consumer)->Assign(all));
    absl::Time quiet_until = absl::Now() + absl::Seconds(10);
    while (out.size() < expected && absl::Now() < quiet_until) {
      auto batch = (*consumer)->Poll(absl::Milliseconds(300), 10000);
      EXPECT_OK(batch.status());
      if (!batch.ok()) break;
      if (!batch->empty()) quiet_until = absl::Now() + absl::Seconds(10);
      for (const auto& r : *batch) {
        std::string id;
        for (const auto& h : r.headers) {
          if (h.key == "ce_id") id = h.value;
        }
        out.push_back({r.partition, id, r.key.value_or("")});
      }
    }
    return out;
  }

  // The checker over everything `read` from `where`, then per phase over the records
  // acknowledged during it: every one exactly once, per-key order kept.
  static void Check(const std::string& where, const Writer& writer,
                    const std::vector<ReadRecord>& read, const std::vector<std::string>& phases) {
    checker::Checker all;
    writer.Feed(&all);
    for (const ReadRecord& r : read) all.Read(r.partition, r.id, r.key);
    const checker::CheckerReport total = all.Report();
    Say() << where << ", whole run: " << total.Summary() << "\n";
    EXPECT_TRUE(total.ok()) << where << ": " << total.Summary();
    EXPECT_GT(total.acknowledged, 0);
    const std::map<std::string, int> phase_of = writer.Phases();
    for (int k = 0; k < static_cast<int>(phases.size()); ++k) {
      checker::Checker c;
      writer.Feed(&c, k);
      for (const ReadRecord& r : read) {
        auto it = phase_of.find(r.id);
        if (it != phase_of.end() && it->second == k) c.Read(r.partition, r.id, r.key);
      }
      const checker::CheckerReport in_phase = c.Report();
      Say() << where << ", " << phases[k] << ": " << in_phase.Summary() << "\n";
      EXPECT_TRUE(in_phase.ok()) << where << ", " << phases[k] << ": " << in_phase.Summary();
      EXPECT_GT(in_phase.acknowledged, 0) << "nothing acknowledged during " << phases[k];
    }
  }

  // Groningen's node on its cluster, Amersfoort's node on its own, mirroring the bike counts.
  void StartCities() {
    Say() << "starting Groningen's and Amersfoort's three-broker clusters\n";
    clusters_ = StartClusters();
    ASSERT_EQ(clusters_.size(), 2u);
    Say() << "both clusters serving\n";
    WriteContract("gr-am-bikes-1");
    replication_ = 3;
    min_insync_replicas_ = 2;
    peer_ = "groningen";
    node_identity_ = "groningen";
    bootstrap_ = clusters_[0]->bootstrap_servers();
    federation_yaml_ = FederationYaml("  max_batch_records: 200\n");
    groningen_ = StartNode();
    const int fed_port = groningen_->port("federation_port");
    peer_ = "amersfoort";
    node_identity_ = "amersfoort";
    bootstrap_ = clusters_[1]->bootstrap_servers();
    federation_yaml_ = FederationYaml(absl::StrCat(
        "  subscriptions:\n    - {provider: groningen, endpoint: \"localhost:", fed_port,
        "\", dataset: mobility.bike-counts, contract: gr-am-bikes-1, partitions: 3, "
        "replication_factor: 3}\n"));
    amersfoort_ = StartNode();
    Say() << "both nodes serving\n";
  }

  // Reads source and mirror once the mirror holds every acknowledged record, and checks them:
  // the checker for the whole run and per phase, the mirror equal to the source per partition,
  // both audit trails verified.
  void CheckSourceAndMirror(const Writer& writer, const std::vector<std::string>& phases) {
    const std::string gn = clusters_[0]->bootstrap_servers();
    const std::string am = clusters_[1]->bootstrap_servers();
    const size_t acknowledged = static_cast<size_t>(writer.acknowledged()) * kPerBatch;
    const std::vector<ReadRecord> in_source = ReadAll(gn, acknowledged);
    const absl::Time until = absl::Now() + absl::Minutes(2);
    while (Total(CeIds(am, acknowledged)) < acknowledged && absl::Now() < until) {
      absl::SleepFor(absl::Seconds(1));
    }
    const std::vector<ReadRecord> in_mirror = ReadAll(am, acknowledged);
    Say() << "source and mirror read; ingest retries: " << writer.failures() << "\n";
    Check("source", writer, in_source, phases);
    Check("mirror", writer, in_mirror, phases);
    // Exactly what the source holds, in the same order per partition.
    EXPECT_EQ(CeIds(am, acknowledged), CeIds(gn, acknowledged));
    for (const std::string& bootstrap : {gn, am}) {
      const AuditTopic audit = ReadAudit(bootstrap);
      EXPECT_FALSE(audit.chains.empty());
      for (const auto& [stream, links] : audit.chains) {
        EXPECT_OK(audit::VerifyChain(stream, links)) << stream;
      }
    }
    Say() << "both audit trails verified\n";
  }

  // Declared before the nodes: destroyed after them.
  std::vector<std::unique_ptr<KafkaCluster>> clusters_;
  std::unique_ptr<ServiceProcess> groningen_, amersfoort_;

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
  StartCities();
  ASSERT_FALSE(HasFatalFailure());
  KafkaCluster* gn = clusters_[0].get();
  KafkaCluster* am = clusters_[1].get();
  ServiceProcess* groningen = groningen_.get();
  ServiceProcess* amersfoort = amersfoort_.get();

  // The phases the checker reports on: records acknowledged during each failure and its
  // recovery, until the next failure.
  std::vector<std::string> phases = {"before any failure"};
  Writer writer(Ingest(groningen->grpc_port(), true, "groningen"));
  writer.Start();
  ASSERT_TRUE(writer.Progress(5, absl::Seconds(60))) << groningen->Log();
  WaitStreaming(*amersfoort);
  Say() << "writing and mirroring\n";

  // Each round kills one node of each cluster at once — on Groningen's during ingest (and
  // mirroring), on Amersfoort's during mirroring — checks that writes and mirroring go on,
  // restarts both and waits until they caught up (every partition's replicas in sync again).
  // Ingest commits under one transactional id per key partition (ADR 0021 §2), whose
  // coordinators spread over the brokers: the round kills partition 0's.
  const std::string ingest_id = "polder-ingest-groningen-k0";
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
    Say() << "kill -9 of the " << round.what << ": Groningen's node " << in_gn << " (ingest "
          << ingest_id << "), Amersfoort's node " << in_am << " (mirror " << mirror_id << ")\n";
    const double mirrored_before = Metric(*amersfoort, MirroredSeries());
    phases.push_back(absl::StrCat(round.what, " killed"));
    writer.set_phase(static_cast<int>(phases.size()) - 1);
    ASSERT_OK(gn->node(in_gn).Kill());
    ASSERT_OK(am->node(in_am).Kill());
    EXPECT_TRUE(writer.Progress(3, absl::Seconds(60)))
        << "ingest did not go on after the " << round.what << " was killed";
    EXPECT_TRUE(Eventually([&] { return Metric(*amersfoort, MirroredSeries()) > mirrored_before; }))
        << "mirroring did not go on after the " << round.what << " was killed";
    Say() << "ingest and mirroring went on\n";
    ASSERT_OK(gn->Relaunch({in_gn}));
    ASSERT_OK(am->Relaunch({in_am}));
    ASSERT_OK(gn->AwaitServing({in_gn}));
    ASSERT_OK(am->AwaitServing({in_am}));
    ASSERT_OK(gn->AwaitInSync());
    ASSERT_OK(am->AwaitInSync());
    Say() << "restarted and in sync\n";
  }

  // Two of Groningen's three down: nothing can be stored, so nothing is acknowledged, and a
  // publish is answered UNAVAILABLE within 3× its bound (publish_timeout 6 s + 2 s).
  phases.push_back("two of Groningen's brokers down");
  writer.set_phase(static_cast<int>(phases.size()) - 1);
  Say() << "two of Groningen's brokers down\n";
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
    Say() << "ingest with two brokers down: " << s.error_code() << " after " << took << ": "
          << s.error_message() << "\n";
  }
  EXPECT_EQ(writer.AcknowledgedSentSince(down_since + absl::Seconds(1)), 0)
      << "batches were acknowledged with two of three brokers down";
  ASSERT_OK(gn->Relaunch({1, 2}));
  ASSERT_OK(gn->AwaitServing({1, 2}));
  Say() << "Groningen's brokers back\n";
  EXPECT_TRUE(writer.Progress(3, absl::Seconds(90))) << "ingest did not resume";
  WaitStreaming(*amersfoort);
  ASSERT_OK(gn->AwaitInSync());
  Say() << "ingest and mirroring resumed, in sync\n";

  // Two of Amersfoort's three down: the mirror cannot commit; the subscription leaves
  // "streaming" within 3× the delivery timeout (5 s), and resumes when they return.
  phases.push_back("two of Amersfoort's brokers down");
  writer.set_phase(static_cast<int>(phases.size()) - 1);
  const double mirrored_before = Metric(*amersfoort, MirroredSeries());
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
  Say() << "mirroring with two brokers down: '" << state << "' after " << stopped_after << "\n";
  ASSERT_OK(am->Relaunch({1, 2}));
  ASSERT_OK(am->AwaitServing({1, 2}));
  Say() << "Amersfoort's brokers back\n";
  ASSERT_TRUE(writer.Progress(3, absl::Seconds(60)));
  EXPECT_TRUE(Eventually([&] { return Metric(*amersfoort, MirroredSeries()) > mirrored_before; }))
      << "mirroring did not resume";
  writer.Stop();
  Say() << "writer stopped\n";

  // The checker, on the source and on the mirror, for the whole run and per phase.
  CheckSourceAndMirror(writer, phases);
}

// The soak: seeded random kills -9 on both clusters in turn — Groningen's source leader, its
// ingest's transaction coordinator, Amersfoort's mirror topic leader, the mirror's transaction
// coordinator, either cluster's active controller or any node — each restarted after a random
// time down and in sync before the next; the checker per round.
TEST_F(BrokerFailuresTest, RandomBrokerKillsOnBothClusters) {
  StartCities();
  ASSERT_FALSE(HasFatalFailure());
  KafkaCluster* gn = clusters_[0].get();
  KafkaCluster* am = clusters_[1].get();
  const uint32_t seed = static_cast<uint32_t>(absl::ToUnixMicros(absl::Now()));
  chaos::BrokerChaos in_gn(gn, seed);
  chaos::BrokerChaos in_am(am, seed + 1);
  const std::string mirror_topic = absl::StrCat("groningen.", kBikes);
  in_gn.Add("Groningen's source leader", [](KafkaCluster& c) { return c.LeaderOf(kTopic, 0); });
  in_gn.Add("Groningen's ingest coordinator", [](KafkaCluster& c) {
    return c.TransactionCoordinatorOf("polder-ingest-groningen-k0");
  });
  in_gn.AddController();
  in_gn.AddAnyNode();
  in_am.Add("Amersfoort's mirror leader",
            [&](KafkaCluster& c) { return c.LeaderOf(mirror_topic, 0); });
  in_am.Add("Amersfoort's mirror coordinator", [](KafkaCluster& c) {
    return c.TransactionCoordinatorOf("polder-mirror-amersfoort-groningen-mobility.bike-counts");
  });
  in_am.AddController();
  in_am.AddAnyNode();

  std::vector<std::string> phases = {"before any failure"};
  Writer writer(Ingest(groningen_->grpc_port(), true, "groningen"));
  writer.Start();
  ASSERT_TRUE(writer.Progress(5, absl::Seconds(60))) << groningen_->Log();
  WaitStreaming(*amersfoort_);
  constexpr int kRounds = 12;
  for (int round = 0; round < kRounds; ++round) {
    chaos::BrokerChaos& chaos = round % 2 == 0 ? in_gn : in_am;
    const double mirrored_before = Metric(*amersfoort_, MirroredSeries());
    phases.push_back(
        absl::StrCat("round ", round + 1, " (", round % 2 == 0 ? "Groningen" : "Amersfoort", ")"));
    writer.set_phase(static_cast<int>(phases.size()) - 1);
    ASSERT_OK_AND_ASSIGN(std::string what, chaos.Round());
    phases.back() += ": " + what;
    EXPECT_TRUE(writer.Progress(3, absl::Seconds(60))) << "ingest did not go on after " << what;
    EXPECT_TRUE(Eventually([&] {
      return Metric(*amersfoort_, MirroredSeries()) > mirrored_before;
    })) << "mirroring did not go on after "
        << what;
  }
  writer.Stop();
  CheckSourceAndMirror(writer, phases);
}

}  // namespace
}  // namespace polder
