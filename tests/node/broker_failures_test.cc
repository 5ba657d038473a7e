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

#include "tests/node/cities_fixture.h"

namespace polder {
namespace {

using namespace node_testing;  // NOLINT

class BrokerFailuresTest : public CitiesFixture {
 protected:
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

  // Declared after clusters_: destroyed before them.
  std::unique_ptr<ServiceProcess> groningen_, amersfoort_;
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
