// Two cities on production-shaped clusters for the failure suites (broker failures, ADR 0020;
// replicas, ADR 0021): Groningen's and Amersfoort's three-broker clusters (RF 3, min ISR 2, the
// transaction state log and offsets topic alike), a writer that publishes keyed batches through
// Groningen's ingest as a gateway does (each retried with its idempotency key until
// acknowledged, the next target on failure), and the check at the end: the exactly-once checker
// over source and mirror for the whole run and per phase, the mirror equal to the source per
// partition, both audit trails verified.
#ifndef POLDER_TESTS_NODE_CITIES_FIXTURE_H_
#define POLDER_TESTS_NODE_CITIES_FIXTURE_H_

#include <atomic>
#include <functional>
#include <thread>

#include "absl/strings/str_format.h"
#include "common/kafka/rdkafka_consumer.h"
#include "tests/kafka/broker_chaos.h"
#include "tests/kafka/checker.h"
#include "tests/node/federation_fixture.h"
#include "tools/kafka/kafka_cluster.h"

namespace polder {
namespace node_testing {

using kafka_testing::KafkaCluster;

constexpr int kPerBatch = 20;

// Progress lines, with the seconds since the test began (where a slow run spent its time).
std::ostream& Say() {
  static const absl::Time start = absl::Now();
  return std::cerr << "[cities "
                   << absl::StrFormat("%6.1f", absl::ToDoubleSeconds(absl::Now() - start))
                   << " s] ";
}

// Publishes keyed batches through a node's ingest until stopped; each batch is retried with its
// key until acknowledged, at the next target after a failure (the replicas of a node). Records
// what was acknowledged (in order) and what was not yet.
class Writer {
 public:
  // A target makes a stub for the ingest it stands for (called again after a failure: a
  // restarted replica listens on another port).
  using Target = std::function<std::shared_ptr<nv1::IngestService::Stub>()>;
  explicit Writer(std::unique_ptr<nv1::IngestService::Stub> stub) {
    std::shared_ptr<nv1::IngestService::Stub> shared = std::move(stub);
    targets_.push_back([shared] { return shared; });
  }
  explicit Writer(std::vector<Target> targets) : targets_(std::move(targets)) {}
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
        if (stub_ == nullptr) stub_ = targets_[next_++ % targets_.size()]();
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
        stub_.reset();  // the next target
        for (const std::string& id : ids) unacked_ids_.insert(id);
        if (stop_) return;
        mu_.Unlock();
        absl::SleepFor(absl::Milliseconds(300));
        mu_.Lock();
      }
    }
  }

  std::vector<Target> targets_;
  size_t next_ = 0;
  std::shared_ptr<nv1::IngestService::Stub> stub_;
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

class CitiesFixture : public FederationFixture {
 protected:
  void SetUp() override {
    Say() << "setting up the registry\n";
    FederationFixture::SetUp();
  }
  void TearDown() override {
    Say() << "tearing down\n";
    FederationFixture::TearDown();
  }
  // Groningen's and Amersfoort's clusters, started at once (a silent node fenced after 4 s),
  // listening on `bind_addresses` (default: both on 127.0.0.1).
  static std::vector<std::unique_ptr<KafkaCluster>> StartClusters(
      const std::vector<std::string>& bind_addresses = {}) {
    std::vector<kafka_testing::KafkaClusterOptions> all;
    for (const char* name : {"groningen", "amersfoort"}) {
      all.push_back(chaos::FailureClusterOptions(name));
      if (all.size() <= bind_addresses.size()) {
        all.back().node.bind_address = bind_addresses[all.size() - 1];
      }
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

  // Declared before the nodes of a test: destroyed after them.
  std::vector<std::unique_ptr<KafkaCluster>> clusters_;

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

}  // namespace node_testing
}  // namespace polder

#endif  // POLDER_TESTS_NODE_CITIES_FIXTURE_H_
