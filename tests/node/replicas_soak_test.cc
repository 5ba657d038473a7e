// The replicas soak (ADR 0021 §6): Groningen and Amersfoort each run two node replicas on their
// own three-broker cluster, Amersfoort mirroring Groningen's bike counts through a load balancer
// in front of Groningen's replicas, while a writer publishes keyed batches to either Groningen
// replica (the other after a failure, as a gateway with two addresses does). Each city's second
// replica runs in a test-made network namespace that reaches its cluster over a veth pair (the
// clusters listen on the host ends; the registry, the balancer and the test reach into the
// namespaces through proxies on its loopback). In turn:
//   1. a rolling restart of all four replicas (SIGTERM, start again, back in the group);
//   2. kill -9 of a random replica of each city in turn at ten random moments (seeded and
//      printed), each restarted after a random time down;
//   3. the partition matrix: each city's namespaced replica cut off from its Kafka by a route
//      deletion inside its namespace, shorter than its session timeout (it keeps what it holds)
//      and past it (its other replica takes everything over and it rejoins once restored).
// After each, ingest and mirroring must go on; at the end the checker reads source and mirror:
// every acknowledged record exactly once in each, per phase and for the whole run, the mirror
// equal to the source, both audit trails verified.
#include <signal.h>

#include <array>
#include <random>

#include "tests/fault/fault_proxy.h"
#include "tests/fault/netns.h"
#include "tests/node/cities_fixture.h"

namespace polder {
namespace {

using namespace node_testing;  // NOLINT

constexpr int kKills = 10;
constexpr absl::Duration kSession = absl::Seconds(6);
// Session timeout + rebalance + InitTransactions, as configured here (ADR 0021 §2).
constexpr absl::Duration kFailoverBound = absl::Seconds(15);

// One replica: its process, and for one inside a namespace the proxies that reach into it.
struct Replica {
  std::string city, id;
  fault::Netns* net = nullptr;  // null: on the host
  std::unique_ptr<ServiceProcess> process;
  std::map<std::string, std::unique_ptr<fault::FaultProxy>> into;  // by port name
  std::atomic<int> grpc_port{0};  // where the writer reaches its ingest
};

class ReplicasSoakTest : public CitiesFixture {
 protected:
  void TearDown() override {
    for (Replica& r : replicas_) r.process.reset();
    CitiesFixture::TearDown();
  }

  void StartAll() {
    ASSERT_OK(fault::Netns::CleanUpLeftovers());
    for (int i = 0; i < 2; ++i) {
      auto n = fault::Netns::Create(i == 0 ? "gn" : "am", 78 + i);
      ASSERT_OK(n.status()) << "partition tests need root and iproute2";
      nets_[i] = *std::move(n);
    }
    Say() << "starting Groningen's and Amersfoort's three-broker clusters\n";
    clusters_ = StartClusters({nets_[0]->host_ip(), nets_[1]->host_ip()});
    ASSERT_EQ(clusters_.size(), 2u);
    WriteContract("gr-am-bikes-1");
    replication_ = 3;
    min_insync_replicas_ = 2;
    keys_partitions_ = 12;
    balancer_ = std::make_unique<fault::FaultProxy>("127.0.0.1", 1);  // Alternate() sets targets
    ASSERT_OK(balancer_->Start());
    // Inside each namespace, the registry on its own port; inside Amersfoort's, the balancer too.
    Bridge(*nets_[0], registry_->grpc_port());
    Bridge(*nets_[1], registry_->grpc_port());
    Bridge(*nets_[1], balancer_->port());
    replicas_[0].city = replicas_[1].city = "groningen";
    replicas_[2].city = replicas_[3].city = "amersfoort";
    for (int i = 0; i < 4; ++i) {
      replicas_[i].id = i % 2 == 0 ? "r0" : "r1";
      replicas_[i].net = i % 2 == 0 ? nullptr : nets_[i / 2].get();
      Start(replicas_[i]);
      ASSERT_FALSE(HasFatalFailure());
    }
    for (int c = 0; c < 2; ++c) {
      ASSERT_TRUE(Balanced(c, absl::Seconds(60))) << Replicas(c).dump();
    }
    Say() << "four replicas serving\n";
  }

  // Listens on `port` on the namespace's loopback and forwards to the same port on the host's.
  void Bridge(const fault::Netns& net, int port) {
    auto p = std::make_unique<fault::FaultProxy>("127.0.0.1", port);
    p->set_listen_netns(net.path());
    p->set_listen_port(port);
    ASSERT_OK(p->Start());
    bridges_.push_back(std::move(p));
  }

  // Starts (or restarts) `r`: its internal port where its other replica reaches it (a host
  // replica on the host end of its city's veth pair, a namespaced one on the inner end).
  void Start(Replica& r) {
    const int c = r.city == "groningen" ? 0 : 1;
    peer_ = r.city;
    node_identity_ = r.city;
    bootstrap_ = clusters_[c]->bootstrap_servers();
    federation_yaml_ =
        c == 0 ? FederationYaml("  max_batch_records: 200\n")
               : FederationYaml(absl::StrCat(
                     "  subscriptions:\n    - {provider: groningen, endpoint: \"localhost:",
                     balancer_->port(),
                     "\", dataset: mobility.bike-counts, contract: gr-am-bikes-1, partitions: 3, "
                     "replication_factor: 3}\n"));
    instance_ = "-" + r.id;
    replicas_yaml_ = absl::StrCat(
        "replicas:\n  id: ", r.id,
        "\n  internal_address: ", r.net != nullptr ? r.net->inner_ip() : nets_[c]->host_ip(),
        ":0\n  session_timeout: ", absl::ToInt64Seconds(kSession), "s\n  heartbeat_interval: 1s\n");
    command_prefix_ = r.net != nullptr ? r.net->ExecPrefix() : std::vector<std::string>{};
    r.process = StartNode();
    command_prefix_.clear();
    if (r.net != nullptr) {
      for (const char* name : {"ops_port", "grpc_port", "federation_port"}) {
        std::unique_ptr<fault::FaultProxy>& p = r.into[name];
        if (p == nullptr) {
          p = std::make_unique<fault::FaultProxy>("127.0.0.1", r.process->port(name));
          p->set_connect_netns(r.net->path());
          ASSERT_OK(p->Start());
        } else {
          p->Retarget(r.process->port(name));
        }
        r.process->OverridePort(name, p->port());
      }
    }
    r.grpc_port = r.process->grpc_port();
    balancer_->Alternate(
        {replicas_[0].process ? replicas_[0].process->port("federation_port") : 1,
         replicas_[1].process ? replicas_[1].process->port("federation_port") : 1});
  }

  json Statusz(const Replica& r) { return ReplicaStatus(*r.process); }
  json Replicas(int city) {
    return json::array({Statusz(replicas_[2 * city]), Statusz(replicas_[2 * city + 1])});
  }
  size_t Held(const Replica& r) {
    return Statusz(r).value("key_partitions_held", json::array()).size();
  }
  // Both replicas of the city hold key partitions, together all 12, within `timeout`.
  bool Balanced(int city, absl::Duration timeout) {
    return Eventually(
        [&] {
          const size_t a = Held(replicas_[2 * city]), b = Held(replicas_[2 * city + 1]);
          return a > 0 && b > 0 && a + b == 12;
        },
        timeout);
  }

  // Records mirrored so far as each of Amersfoort's replicas counts them.
  std::vector<double> MirrorCounts() {
    return {Metric(*replicas_[2].process, MirroredSeries()),
            Metric(*replicas_[3].process, MirroredSeries())};
  }
  // Either of Amersfoort's replicas mirrors more within `timeout`.
  bool MirrorGoesOn(absl::Duration timeout) {
    const std::vector<double> before = MirrorCounts();
    return Eventually(
        [&] {
          const std::vector<double> now = MirrorCounts();
          return now[0] > before[0] || now[1] > before[1];
        },
        timeout);
  }

  std::unique_ptr<fault::Netns> nets_[2];  // declared first: removed after everything else
  std::unique_ptr<fault::FaultProxy> balancer_;
  std::vector<std::unique_ptr<fault::FaultProxy>> bridges_;
  // Groningen r0, r1 (namespaced), Amersfoort r0, r1 (namespaced).
  std::array<Replica, 4> replicas_;
};

TEST_F(ReplicasSoakTest, RollingRestartsRandomKillsAndPartitions) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  const uint32_t seed = static_cast<uint32_t>(absl::ToUnixMicros(absl::Now()));
  Say() << "random kills seeded with " << seed << "\n";
  std::mt19937 random(seed);

  std::vector<std::string> phases = {"before any failure"};
  Writer writer(std::vector<Writer::Target>{
      [this] { return Ingest(replicas_[0].grpc_port.load(), true, "groningen"); },
      [this] { return Ingest(replicas_[1].grpc_port.load(), true, "groningen"); }});
  writer.Start();
  ASSERT_TRUE(writer.Progress(5, absl::Seconds(60)));
  ASSERT_TRUE(MirrorGoesOn(absl::Seconds(90))) << "Amersfoort does not mirror";
  auto begin = [&](const std::string& what) {
    phases.push_back(what);
    writer.set_phase(static_cast<int>(phases.size()) - 1);
    Say() << what << "\n";
  };
  // Ingest and mirroring go on; both replicas of the city hold key partitions again.
  auto goes_on = [&](int city) {
    EXPECT_TRUE(Balanced(city, 3 * kFailoverBound)) << phases.back() << Replicas(city).dump();
    EXPECT_TRUE(writer.Progress(3, absl::Seconds(90))) << "ingest stopped: " << phases.back();
    EXPECT_TRUE(MirrorGoesOn(absl::Seconds(90))) << "mirroring stopped: " << phases.back();
  };

  // 1. A rolling restart of every replica of both cities.
  for (int i = 0; i < 4; ++i) {
    Replica& r = replicas_[i];
    begin(absl::StrCat("rolling restart: ", r.city, " ", r.id));
    const int status = r.process->Signal(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << r.city << " " << r.id << " did not stop cleanly: " << status;
    Start(r);
    ASSERT_FALSE(HasFatalFailure());
    goes_on(i / 2);
  }

  // 2. kill -9 of a random replica at random moments, each back after a random time down.
  for (int k = 0; k < kKills; ++k) {
    const int i = 2 * (k % 2) + static_cast<int>(random() % 2);  // the cities in turn
    Replica& r = replicas_[i];
    const absl::Duration wait = absl::Milliseconds(random() % 5000);
    const absl::Duration down = absl::Milliseconds(random() % 10000);
    begin(absl::StrCat("kill ", k + 1, ": ", r.city, " ", r.id, " after ",
                       absl::FormatDuration(wait), ", down ", absl::FormatDuration(down)));
    absl::SleepFor(wait);
    r.process->Kill();
    absl::SleepFor(down);
    Start(r);
    ASSERT_FALSE(HasFatalFailure());
    goes_on(i / 2);
  }

  // 3. The partition matrix: each city's namespaced replica cut off from its Kafka, shorter
  // than the session timeout and past it.
  for (int c = 0; c < 2; ++c) {
    for (const absl::Duration cut : {kSession / 2, kSession + kFailoverBound}) {
      Replica& r = replicas_[2 * c + 1];
      begin(absl::StrCat("partition of ", r.city, " ", r.id, " from its Kafka for ",
                         absl::FormatDuration(cut)));
      ASSERT_OK(nets_[c]->Cut());
      const absl::Time at = absl::Now();
      if (cut > kSession) {
        // Past the session: the other replica holds every key partition while this one is cut
        // off, and ingest goes on through it.
        EXPECT_TRUE(Eventually([&] { return Held(replicas_[2 * c]) == 12; }, cut))
            << Replicas(c).dump();
        Say() << "  " << replicas_[2 * c].city << " r0 held every key partition "
              << absl::FormatDuration(absl::Now() - at) << " after the cut\n";
        EXPECT_TRUE(writer.Progress(3, absl::Seconds(60))) << "ingest stopped during the cut";
      }
      absl::SleepFor(cut - (absl::Now() - at));
      ASSERT_OK(nets_[c]->Restore());
      goes_on(c);
    }
  }
  writer.Stop();
  CheckSourceAndMirror(writer, phases);
}

}  // namespace
}  // namespace polder
