// Failover benchmark (ADR 0021 §7): what a city's replicas buy when a process dies or is
// restarted, against the same node run as one replica.
//
//   bazel run -c opt //bench:failover_bench -- --runs=3
//
// Groningen and Amersfoort each run two node replicas (default replica settings: 8 s session
// timeout, 2 s heartbeat) on their own broker; Amersfoort mirrors Groningen's bike counts
// through a load balancer in front of Groningen's replicas. A ticker publishes a one-record
// unkeyed batch to Groningen every --tick_ms (at the other replica after a failure); a
// read_committed reader tails the mirror in Amersfoort's Kafka. Per run:
//   - mirroring failover, subscriber side: kill -9 of the Amersfoort replica holding the
//     subscription; provider side: kill -9 of the Groningen replica serving the stream. The
//     figure is the time from the kill until the first record acknowledged after it is readable
//     in the mirror (target ≤ 15 s). Baseline: the same node as one replica, killed and started
//     again at once (the best a supervisor does).
//   - ingest during a rolling restart of Groningen's replicas (SIGTERM, start, back in the group,
//     the next): --clients clients send keyed batches of 10 records, each to its replica first
//     and, after a failure, with the same key to the other after 200 ms (services/node/
//     README.md, "Replicas"). Reported: batches acknowledged / sent, the share acknowledged at
//     the first attempt, p99 and longest batch latency including retries. Baseline: one replica
//     restarted the same way, its clients retrying at the same address.
// Medians of the runs.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "bench/bench_main.h"
#include "bench/bench_stats.h"
#include "common/kafka/rdkafka_consumer.h"
#include "tests/fault/fault_proxy.h"
#include "tests/node/federation_fixture.h"

ABSL_FLAG(int, runs, 3, "Runs per scenario (medians reported).");
ABSL_FLAG(int, clients, 4, "Ingest clients during a failover.");
ABSL_FLAG(int, tick_ms, 50, "How often progress is sampled (ms).");
ABSL_FLAG(int, rolling_settle_s, 5, "Seconds between the pods of a rolling restart.");

namespace polder {
namespace {

using namespace node_testing;  // NOLINT
using bench::Median;
using bench::PeakRssMiB;
using bench::Percentile;

struct Flags {
  int runs = 3, clients = 4, tick_ms = 50, rolling_settle_s = 5;
} g_flags;

constexpr char kRole[] = "sub/groningen/mobility.bike-counts";

// Ingest figures of one restart window.
struct IngestFigures {
  int64_t sent = 0, acknowledged = 0, first_attempt = 0;
  double p99_ms = 0, max_ms = 0;
};

class FailoverBench : public FederationFixture {
 protected:
  // A replica of `city` with id `id` on that city's broker (default replica settings).
  std::unique_ptr<ServiceProcess> StartReplica(const std::string& city, const std::string& id) {
    peer_ = city;
    node_identity_ = city;
    instance_ = "-" + id;
    replicas_yaml_ = absl::StrCat("replicas:\n  id: ", id, "\n  internal_address: 127.0.0.1:0\n");
    if (city == "groningen") {
      replication_ = 1;
      min_insync_replicas_ = 1;
      bootstrap_.clear();
      federation_yaml_ = FederationYaml("  max_batch_records: 200\n");
    } else {
      bootstrap_ = amersfoort_kafka_->bootstrap_servers();
      federation_yaml_ = FederationYaml(absl::StrCat(
          "  subscriptions:\n    - {provider: groningen, endpoint: \"localhost:", balancer_->port(),
          "\", dataset: mobility.bike-counts, contract: gr-am-bikes-1, partitions: 3, "
          "replication_factor: 1}\n"));
    }
    return StartNode();
  }

  void UpdateBalancer() {
    std::vector<int> ports;
    for (const auto& g : gr_) {
      if (g != nullptr) ports.push_back(g->port("federation_port"));
    }
    if (!ports.empty()) balancer_->Alternate(ports);
  }

  // One channel per port (a restarted replica listens on another).
  std::shared_ptr<nv1::IngestService::Stub> Stub(int port) {
    absl::MutexLock lock(&stubs_mu_);
    std::shared_ptr<nv1::IngestService::Stub>& s = stubs_[port];
    if (s == nullptr) s = Ingest(port);
    return s;
  }
  bool HoldsSubscription(const ServiceProcess& p) {
    for (const auto& r : ReplicaStatus(p).value("roles_held", json::array())) {
      if (r.is_object() && r.value("name", "") == kRole) return true;
    }
    return false;
  }
  size_t Held(const ServiceProcess& p) {
    return ReplicaStatus(p).value("key_partitions_held", json::array()).size();
  }
  // Every live replica of `reps` holds key partitions, together all 12.
  bool Balanced(const std::vector<std::unique_ptr<ServiceProcess>>& reps) {
    size_t total = 0;
    for (const auto& r : reps) {
      if (r == nullptr) continue;
      const size_t n = Held(*r);
      if (n == 0) return false;
      total += n;
    }
    return total == 12;
  }

  template <typename F>
  static bool Eventually(F f, absl::Duration timeout) {
    for (const absl::Time until = absl::Now() + timeout; absl::Now() < until;) {
      if (f()) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return f();
  }

  // One record per tick through Groningen's ingest, first to the replica that answered last,
  // the other after a failure; each record's acknowledgement time. Unkeyed, so a tick waits
  // for no key partition's failover (the receiving replica commits it under one it holds): the
  // figure is the mirroring's failover, not ingest's.
  void Tick() {
    int target = 0;
    for (int64_t n = 0; !stop_; ++n) {
      nv1::PublishRequest req;
      req.set_dataset(kBikes);
      auto* r = req.add_records();
      r->set_json(BikeJson(absl::StrCat("gn-counter-", n % 9), static_cast<int>(n)));
      r->set_ce_id(absl::StrCat("tick-", n));
      while (!stop_) {
        const int port = gr_ports_[target].load();
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
        nv1::PublishResponse resp;
        if (port != 0 && Stub(port)->Publish(&ctx, req, &resp).ok()) {
          absl::MutexLock lock(&mu_);
          acked_[r->ce_id()] = absl::Now();
          break;
        }
        target ^= 1;
        absl::SleepFor(absl::Milliseconds(100));
      }
      absl::SleepFor(absl::Milliseconds(g_flags.tick_ms));
    }
  }

  // Tails the mirror in Amersfoort's Kafka (read_committed): each record's first arrival.
  void Tail() {
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = amersfoort_kafka_->bootstrap_servers();
    auto c = kafka::KafkaConsumer::Create(o);
    if (!c.ok()) return;
    bool assigned = false;
    while (!stop_) {
      if (!assigned) {
        std::vector<kafka::TopicPartitionOffset> all;
        for (int p = 0; p < kPartitions; ++p) {
          all.push_back({"groningen." + std::string(kBikes), p, kafka::kOffsetBeginning});
        }
        assigned = (*c)->Assign(all).ok();
        if (!assigned) absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
      auto batch = (*c)->Poll(absl::Milliseconds(50), 10000);
      if (!batch.ok()) continue;
      const absl::Time now = absl::Now();
      absl::MutexLock lock(&mu_);
      for (const auto& rec : *batch) {
        for (const auto& h : rec.headers) {
          if (h.key == "ce_id") arrived_.emplace(h.value, now);
        }
      }
    }
  }

  // From `kill` until the first record acknowledged after it is in the mirror; -1 if none
  // within a minute.
  double MirroringAgainSeconds(absl::Time kill) {
    double best = -1;
    Eventually(
        [&] {
          absl::MutexLock lock(&mu_);
          for (const auto& [id, acked] : acked_) {
            if (acked < kill) continue;
            auto it = arrived_.find(id);
            if (it == arrived_.end()) continue;
            const double s = absl::ToDoubleSeconds(it->second - kill);
            if (best < 0 || s < best) best = s;
          }
          return best >= 0;
        },
        absl::Minutes(1));
    return best;
  }

  // Mirroring goes on: a record acknowledged from now is in the mirror within a minute.
  bool Steady() { return MirroringAgainSeconds(absl::Now()) >= 0; }

  // Clients sending keyed batches of 10 while `restart` runs, then --rolling_settle_s more.
  IngestFigures IngestDuring(const std::function<void()>& restart, bool two, int run) {
    std::atomic<bool> done{false};
    absl::Mutex mu;
    IngestFigures f;
    std::vector<double> latency_ms;
    std::vector<std::thread> clients;
    for (int c = 0; c < g_flags.clients; ++c) {
      clients.emplace_back([&, c] {
        for (int64_t b = 0; !done; ++b) {
          nv1::PublishRequest req;
          req.set_dataset(kBikes);
          req.set_idempotency_key(absl::StrCat("roll-", run, two ? "-r" : "-s", "-", c, "-", b));
          for (int i = 0; i < 10; ++i) {
            auto* r = req.add_records();
            r->set_json(BikeJson(absl::StrCat("gn-counter-", i), static_cast<int>(b)));
            r->set_ce_id(absl::StrCat(req.idempotency_key(), "-", i));
          }
          const absl::Time start = absl::Now();
          int target = two ? c % 2 : 0;
          bool ok = false, first = true;
          for (int attempt = 0; absl::Now() - start < absl::Minutes(2); ++attempt) {
            const int port = gr_ports_[target].load();
            grpc::ClientContext ctx;
            ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
            nv1::PublishResponse resp;
            if (port != 0 && Stub(port)->Publish(&ctx, req, &resp).ok()) {
              ok = true;
              first = attempt == 0;
              break;
            }
            if (two) target ^= 1;
            absl::SleepFor(absl::Milliseconds(200));
          }
          absl::MutexLock lock(&mu);
          ++f.sent;
          f.acknowledged += ok ? 1 : 0;
          f.first_attempt += ok && first ? 1 : 0;
          latency_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
        }
      });
    }
    absl::SleepFor(absl::Seconds(2));
    restart();
    absl::SleepFor(absl::Seconds(g_flags.rolling_settle_s));
    done = true;
    for (auto& t : clients) t.join();
    f.p99_ms = Percentile(latency_ms, 0.99);
    f.max_ms = latency_ms.empty() ? 0 : *std::max_element(latency_ms.begin(), latency_ms.end());
    return f;
  }

  std::unique_ptr<fault::FaultProxy> balancer_;
  std::vector<std::unique_ptr<ServiceProcess>> gr_{2}, am_{2};
  std::atomic<int> gr_ports_[2] = {{0}, {0}};
  std::atomic<bool> stop_{false};
  absl::Mutex stubs_mu_;
  std::map<int, std::shared_ptr<nv1::IngestService::Stub>> stubs_ ABSL_GUARDED_BY(stubs_mu_);
  absl::Mutex mu_;
  std::map<std::string, absl::Time> acked_ ABSL_GUARDED_BY(mu_), arrived_ ABSL_GUARDED_BY(mu_);
};

TEST_F(FailoverBench, ReplicasAgainstOneReplicaRestarted) {
  WriteContract("gr-am-bikes-1");
  keys_partitions_ = 12;  // the default, as a city runs it
  balancer_ = std::make_unique<fault::FaultProxy>("127.0.0.1", 1);
  ASSERT_OK(balancer_->Start());
  {
    kafka_testing::KafkaBrokerOptions bo;
    bo.name = "amersfoort";
    auto b = kafka_testing::KafkaBroker::Start(bo);
    ASSERT_OK(b.status());
    amersfoort_kafka_ = *std::move(b);
  }
  auto start = [&](const std::string& city, int i) {
    auto& slot = city == "groningen" ? gr_[i] : am_[i];
    slot = StartReplica(city, i == 0 ? "r0" : "r1");
    if (city == "groningen") {
      gr_ports_[i] = slot->grpc_port();
      UpdateBalancer();
    }
  };
  for (int i = 0; i < 2; ++i) start("groningen", i);
  for (int i = 0; i < 2; ++i) start("amersfoort", i);
  // The highest peak RSS of any node replica, read before each is killed or stopped.
  double peak_rss = 0;
  auto note_rss = [&] {
    for (const auto* reps : {&gr_, &am_}) {
      for (const auto& p : *reps) {
        if (p != nullptr) peak_rss = std::max(peak_rss, PeakRssMiB(p->pid()));
      }
    }
  };
  ASSERT_TRUE(Eventually([&] { return Balanced(gr_) && Balanced(am_); }, absl::Minutes(1)));
  std::vector<std::thread> background;
  background.emplace_back([&] { Tick(); });
  background.emplace_back([&] { Tail(); });
  // Stopped and joined however the test ends (a failed assertion returns early).
  auto joined = std::shared_ptr<void>(nullptr, [&](void*) {
    stop_ = true;
    for (std::thread& t : background) t.join();
  });
  ASSERT_TRUE(Steady()) << "Amersfoort does not mirror";

  std::vector<double> sub_kill, prov_kill, one_restart;
  std::vector<IngestFigures> rolling, single;
  for (int run = 0; run < g_flags.runs; ++run) {
    // Subscriber side: the holder of the subscription killed.
    int holder = -1;
    ASSERT_TRUE(Eventually(
        [&] {
          for (int i = 0; i < 2; ++i) {
            if (HoldsSubscription(*am_[i])) holder = i;
          }
          return holder >= 0;
        },
        absl::Minutes(1)));
    absl::Time kill = absl::Now();
    note_rss();
    am_[holder]->Kill();
    sub_kill.push_back(MirroringAgainSeconds(kill));
    start("amersfoort", holder);
    ASSERT_TRUE(Eventually([&] { return Balanced(am_); }, absl::Minutes(1)));
    ASSERT_TRUE(Steady());

    // Provider side: the Groningen replica serving the stream killed.
    const std::string open =
        R"(polder_federation_streams_open{dataset="mobility.bike-counts",peer="amersfoort"})";
    int serving = -1;
    ASSERT_TRUE(Eventually(
        [&] {
          for (int i = 0; i < 2; ++i) {
            if (Metric(*gr_[i], open) > 0) serving = i;
          }
          return serving >= 0;
        },
        absl::Minutes(1)));
    kill = absl::Now();
    note_rss();
    gr_[serving]->Kill();
    gr_ports_[serving] = 0;
    prov_kill.push_back(MirroringAgainSeconds(kill));
    start("groningen", serving);
    ASSERT_TRUE(Eventually([&] { return Balanced(gr_); }, absl::Minutes(1)));
    ASSERT_TRUE(Steady());

    // Ingest during a rolling restart of both Groningen replicas.
    rolling.push_back(IngestDuring(
        [&] {
          for (int i = 0; i < 2; ++i) {
            gr_[i]->Signal(SIGTERM);
            gr_ports_[i] = 0;
            note_rss();
            gr_[i].reset();
            UpdateBalancer();
            start("groningen", i);
            EXPECT_TRUE(Eventually([&] { return Balanced(gr_); }, absl::Minutes(1)));
          }
        },
        true, run));
    ASSERT_TRUE(Steady());

    // Baseline: each city as one replica (r1 stopped), killed or restarted at once.
    am_[1]->Signal(SIGTERM);
    note_rss();
    am_[1].reset();
    gr_[1]->Signal(SIGTERM);
    gr_ports_[1] = 0;
    gr_[1].reset();
    UpdateBalancer();
    ASSERT_TRUE(Eventually([&] { return Balanced(gr_) && Balanced(am_); }, absl::Minutes(1)));
    ASSERT_TRUE(Eventually([&] { return HoldsSubscription(*am_[0]); }, absl::Minutes(1)));
    ASSERT_TRUE(Steady());
    kill = absl::Now();
    note_rss();
    am_[0]->Kill();
    start("amersfoort", 0);
    one_restart.push_back(MirroringAgainSeconds(kill));
    ASSERT_TRUE(Steady());
    single.push_back(IngestDuring(
        [&] {
          gr_[0]->Signal(SIGTERM);
          gr_ports_[0] = 0;
          note_rss();
          gr_[0].reset();
          start("groningen", 0);
          EXPECT_TRUE(Eventually([&] { return Balanced(gr_); }, absl::Minutes(1)));
        },
        false, run));
    start("groningen", 1);
    start("amersfoort", 1);
    ASSERT_TRUE(Eventually([&] { return Balanced(gr_) && Balanced(am_); }, absl::Minutes(1)));
    ASSERT_TRUE(Steady());
    std::printf(
        "run %d: mirroring again after kill -9: subscriber side %.2f s, provider side %.2f s, one "
        "replica restarted %.2f s; rolling restart: %lld/%lld acknowledged (%lld at once), "
        "longest %.0f ms; one replica restarted: %lld/%lld (%lld at once), longest %.0f ms\n",
        run + 1, sub_kill.back(), prov_kill.back(), one_restart.back(),
        static_cast<long long>(rolling.back().acknowledged),
        static_cast<long long>(rolling.back().sent),
        static_cast<long long>(rolling.back().first_attempt), rolling.back().max_ms,
        static_cast<long long>(single.back().acknowledged),
        static_cast<long long>(single.back().sent),
        static_cast<long long>(single.back().first_attempt), single.back().max_ms);
    std::fflush(stdout);
  }
  note_rss();
  joined.reset();

  auto share = [](const std::vector<IngestFigures>& v, auto field) {
    std::vector<double> out;
    for (const IngestFigures& f : v) out.push_back(f.sent > 0 ? 100.0 * field(f) / f.sent : 0);
    return Median(out);
  };
  auto each = [](const std::vector<IngestFigures>& v, auto field) {
    std::vector<double> out;
    for (const IngestFigures& f : v) out.push_back(field(f));
    return Median(out);
  };
  auto acked = [](const IngestFigures& f) { return static_cast<double>(f.acknowledged); };
  auto at_once = [](const IngestFigures& f) { return static_cast<double>(f.first_attempt); };
  auto p99 = [](const IngestFigures& f) { return f.p99_ms; };
  auto longest = [](const IngestFigures& f) { return f.max_ms; };
  std::printf("\nmedians of %d runs (default replica settings: session 8 s, heartbeat 2 s)\n",
              g_flags.runs);
  std::printf("| kill -9 → mirroring again | two replicas | one replica restarted at once |\n");
  std::printf("|---|---|---|\n");
  std::printf("| subscriber's replica holding the subscription | %.2f s | %.2f s |\n",
              Median(sub_kill), Median(one_restart));
  std::printf("| provider's replica serving the stream | %.2f s | — |\n", Median(prov_kill));
  std::printf("\npeak RSS of any node replica over the runs: %.0f MiB\n", peak_rss);
  std::printf(
      "\n| ingest while restarting (%d clients) | rolling restart, two replicas | "
      "one replica restarted |\n",
      g_flags.clients);
  std::printf("|---|---|---|\n");
  std::printf("| batches acknowledged | %.1f %% | %.1f %% |\n", share(rolling, acked),
              share(single, acked));
  std::printf("| acknowledged at the first attempt | %.1f %% | %.1f %% |\n",
              share(rolling, at_once), share(single, at_once));
  std::printf("| batch latency p99 (with retries) | %.0f ms | %.0f ms |\n", each(rolling, p99),
              each(single, p99));
  std::printf("| longest batch (with retries) | %.0f ms | %.0f ms |\n", each(rolling, longest),
              each(single, longest));
}

}  // namespace
}  // namespace polder

int main(int argc, char** argv) {
  return polder::bench::RunBenchmarks(
      argc, argv,
      "failover_bench: kill -9 -> serving again, node and aggregator replicas (docs/BENCHMARKS.md)",
      [] {
        polder::g_flags.runs = absl::GetFlag(FLAGS_runs);
        polder::g_flags.clients = absl::GetFlag(FLAGS_clients);
        polder::g_flags.tick_ms = absl::GetFlag(FLAGS_tick_ms);
        polder::g_flags.rolling_settle_s = absl::GetFlag(FLAGS_rolling_settle_s);
      });
}
