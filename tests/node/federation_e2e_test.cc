// Federation end to end (ARCHITECTURE §8): Groningen and Amersfoort, each with its own Kafka
// broker and polder-node process, over mutual TLS with certificates made at test time. Groningen
// shares its bike counts under a contract both signed; Amersfoort's node mirrors them into its
// own Kafka. Each test is its own cc_test target (its own suite broker), selected by filter.
//
//   ExactlyOnceThroughKillsAndFaults: ≥100,000 records over 3 partitions; Amersfoort's node
//     kills itself between producing a batch and committing it (test hook), then is killed -9 at
//     5 random moments; Groningen's node is killed -9 and restarted; the link is cut and slowed
//     through the in-repo fault proxy. The mirror equals the source by (ce_id, order per
//     partition); a read_uncommitted reader sees aborted data that read_committed never does;
//     both audit trails verify and hold the other's receipts; revoking the contract ends the
//     stream and purges the mirror.
//   StalledSubscriberRotationAndGap: Amersfoort's node is stopped (SIGSTOP) for 30 s while the
//     source grows by ~65 MB: Groningen's unacknowledged bytes stay within the window and its RSS
//     grows by far less than the source did; certificates of both nodes are rotated on disk while
//     streaming (same PIDs, the stream goes on); records deleted at the source below
//     Amersfoort's cursor are reported as a gap (refused, metric, audit entry), not skipped.
//   BrokersAndRegistryFailDuringAShare: the fault suite — provider and subscriber brokers killed -9
//     and restarted, a broker stopped for 10 s, the registry down, while records are published
//     and mirrored; every acknowledged record once in the source, mirror = source, audit trails
//     verify, node memory bounded.
//   ThreeCitiesAuditVerifiesBetweenEachPairWithoutFalseFindings: Ede → Groningen → Amersfoort;
//     audit verify between each pair, both ways and through the federation service, is clean.
//   RefusalsAndCertificatesDuringLiveStreams: every refusal with its status and reason; a peer
//     certificate that expires, or is revoked, during a live stream ends it within the bound.
#include <signal.h>
#include <sys/wait.h>

#include "common/kafka/rdkafka_admin.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/kafka/rdkafka_producer.h"
#include "tests/node/federation_fixture.h"

namespace polder {
namespace {

using namespace node_testing;  // NOLINT
using ::testing::HasSubstr;

class FederationE2eTest : public FederationFixture {};

TEST_F(FederationE2eTest, ExactlyOnceThroughKillsAndFaults) {
  WriteContract("gr-am-bikes-1");
  auto groningen = StartGroningen();
  Publish(groningen->grpc_port(), 100, 500, "first");  // 50,000 records

  fault::FaultProxy proxy("127.0.0.1", groningen->port("federation_port"));
  ASSERT_OK(proxy.Start());
  // Amersfoort's node kills itself on its 10th mirror write, between producing and committing.
  auto amersfoort =
      StartAmersfoort(proxy.port(), "gr-am-bikes-1", {{"POLDER_TEST_CRASH_BEFORE_COMMIT", "10"}});
  const int hook = amersfoort->WaitForExit(absl::Seconds(90));
  ASSERT_TRUE(WIFSIGNALED(hook) && WTERMSIG(hook) == SIGKILL) << "status " << hook << "\n"
                                                              << amersfoort->Log();
  EXPECT_THAT(amersfoort->Log(), HasSubstr("between producing a mirror batch and committing it"));
  amersfoort = StartAmersfoort(proxy.port());

  // At least 50,000 more records, published until Amersfoort's node has been killed -9 at 5
  // random moments, each while it streams (it has mirrored records in this life).
  std::atomic<bool> kills_done{false};
  std::thread publisher([&] {
    for (int b = 0; b < 100 || !kills_done; ++b)
      Publish(groningen->grpc_port(), 1, 500, absl::StrCat("second-", b));
  });
  const unsigned seed = static_cast<unsigned>(absl::ToUnixMicros(absl::Now()));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay_ms(200, 1500);
  const std::string records_series =
      "polder_federation_subscription_records_total{dataset=\"mobility.bike-counts\",provider="
      "\"groningen\"}";
  std::vector<double> mirrored_before_kill;
  for (int k = 0; k < 5; ++k) {
    const absl::Time until = absl::Now() + absl::Seconds(60);
    while (Metric(*amersfoort, records_series) <= 0 && absl::Now() < until)
      absl::SleepFor(absl::Milliseconds(100));
    absl::SleepFor(absl::Milliseconds(delay_ms(rng)));
    mirrored_before_kill.push_back(Metric(*amersfoort, records_series));
    amersfoort->Kill();
    amersfoort = StartAmersfoort(proxy.port());
  }
  kills_done = true;
  publisher.join();
  std::cout << "seed " << seed << "; records mirrored by each killed Amersfoort process:";
  for (double n : mirrored_before_kill) {
    std::cout << " " << n;
    EXPECT_GT(n, 0) << "killed while streaming";
  }
  std::cout << std::endl;

  // Groningen's node killed -9 and restarted (on new ports: the proxy follows).
  groningen->Kill();
  groningen = StartGroningen();
  proxy.Retarget(groningen->port("federation_port"));
  Publish(groningen->grpc_port(), 20, 500, "third");  // 10,000 more
  // A cut link, then a slow one.
  absl::SleepFor(absl::Seconds(1));
  proxy.Cut();
  absl::SleepFor(absl::Seconds(3));
  proxy.Restore();
  proxy.Slow(256 * 1024, absl::Milliseconds(20));
  absl::SleepFor(absl::Seconds(5));
  proxy.Restore();

  const size_t kTotal = Total(CeIds(broker().bootstrap_servers(), 1000000));
  ASSERT_GE(kTotal, 110000u);
  ASSERT_EQ(WaitForMirror(kTotal, absl::Minutes(4)), kTotal) << amersfoort->Log();
  absl::SleepFor(absl::Seconds(3));  // nothing more arrives
  auto source = CeIds(broker().bootstrap_servers(), kTotal);
  auto mirror = CeIds(amersfoort_kafka_->bootstrap_servers(), kTotal + 1);
  ASSERT_EQ(Total(source), kTotal);
  EXPECT_EQ(mirror, source)
      << "the mirror holds every source record once, in source order per partition";
  for (int p = 0; p < kPartitions; ++p) EXPECT_GT(mirror[p].size(), 10000u) << "partition " << p;
  // The aborted batch (and any cut off by the kills) is in the mirror's log, visible only to
  // read_uncommitted readers.
  const size_t uncommitted =
      Total(CeIds(amersfoort_kafka_->bootstrap_servers(), kTotal * 2, false));
  EXPECT_GT(uncommitted, kTotal) << "the test hook left an aborted transaction in the mirror's log";
  std::cout << "mirror: " << Total(mirror) << " committed records; read_uncommitted sees "
            << uncommitted << std::endl;

  // Both audit trails: every chain verifies; the subscriber's received counts add up to the
  // mirror; each side keeps the other's receipts.
  absl::SleepFor(absl::Seconds(3));
  AuditTopic provider = ReadAudit(broker().bootstrap_servers());
  AuditTopic subscriber = ReadAudit(amersfoort_kafka_->bootstrap_servers());
  int64_t received = 0;
  for (const auto& [stream, links] : subscriber.chains) {
    EXPECT_OK(audit::VerifyChain(stream, links));
    for (const auto& l : links) received += audit::ParseEntry(l.canonical_json)->records;
  }
  EXPECT_EQ(received, static_cast<int64_t>(kTotal))
      << "received entries account for every mirrored record once";
  for (const auto& [stream, links] : provider.chains) EXPECT_OK(audit::VerifyChain(stream, links));
  EXPECT_GE(provider.chains.size(), 7u)
      << "one chain per stream; the streams restarted with every kill";
  EXPECT_FALSE(provider.receipts.empty()) << "Groningen keeps Amersfoort's receipts";
  EXPECT_FALSE(subscriber.receipts.empty()) << "Amersfoort keeps Groningen's receipts";
  for (const audit::Receipt& r : subscriber.receipts) {
    ASSERT_EQ(r.peer, "groningen");
    auto chain = provider.chains.find(r.stream_id);
    ASSERT_NE(chain, provider.chains.end()) << r.stream_id;
    EXPECT_OK(audit::CheckReceipt(chain->second, r, signing_key_->public_key()));
  }
  for (const audit::Receipt& r : provider.receipts) {
    ASSERT_EQ(r.peer, "amersfoort");
    auto chain = subscriber.chains.find(r.stream_id);
    ASSERT_NE(chain, subscriber.chains.end()) << r.stream_id;
    EXPECT_OK(audit::CheckReceipt(chain->second, r, signing_key_->public_key()));
  }
  std::cout << "audit: provider " << provider.chains.size() << " chains, "
            << provider.receipts.size() << " receipts kept; subscriber " << subscriber.chains.size()
            << " chains, " << subscriber.receipts.size() << " receipts kept" << std::endl;

  // The operator's tool agrees, and catches a forged entry appended to Amersfoort's trail.
  const std::string verify =
      absl::StrCat(RunfilesPath("tools/polderctl/polderctl"), " audit verify --bootstrap ",
                   amersfoort_kafka_->bootstrap_servers(), " --peer-bootstrap ",
                   broker().bootstrap_servers(), " --self amersfoort --peer groningen --directory ",
                   dir_, "/directory.json --operator-key ", dir_, "/operator.pub 2>&1");
  std::string verified;
  EXPECT_EQ(testing::RunCommand(verify, &verified), 0) << verified;
  EXPECT_THAT(verified, HasSubstr("audit trail verified"));
  // Without access to Groningen's Kafka: Groningen's entries of the streams Amersfoort received,
  // fetched from its federation service with Amersfoort's identity (GetAuditEntries).
  auto verify_endpoint = [&](const std::string& who) {
    const tls::TlsFiles& f = files_[who];
    return absl::StrCat(RunfilesPath("tools/polderctl/polderctl"), " audit verify --bootstrap ",
                        amersfoort_kafka_->bootstrap_servers(),
                        " --peer-endpoint 127.0.0.1:", groningen->port("federation_port"),
                        " --self amersfoort --peer groningen --cert ", f.cert_path, " --key ",
                        f.key_path, " --bundle ", f.trust_bundle_path, " --crl-dir ",
                        fed_->crl_dir(), " --directory ", dir_, "/directory.json --operator-key ",
                        dir_, "/operator.pub 2>&1");
  };
  std::string fetched;
  EXPECT_EQ(testing::RunCommand(verify_endpoint("amersfoort"), &fetched), 0) << fetched;
  EXPECT_THAT(fetched, HasSubstr("audit trail verified"));
  EXPECT_THAT(fetched, HasSubstr("via GetAuditEntries"));
  std::cout << "audit verify --peer-endpoint: " << fetched;
  // Another listed peer's identity is not served Amersfoort's streams.
  std::string refused;
  EXPECT_NE(testing::RunCommand(verify_endpoint("national"), &refused), 0) << refused;
  EXPECT_THAT(refused, HasSubstr("is not a stream of 'national'"));
  std::string incomplete;
  EXPECT_NE(
      testing::RunCommand(
          absl::StrCat(RunfilesPath("tools/polderctl/polderctl"), " audit verify --bootstrap ",
                       amersfoort_kafka_->bootstrap_servers(), " --peer-endpoint 127.0.0.1:1",
                       " --self amersfoort --peer groningen --directory ", dir_,
                       "/directory.json --operator-key ", dir_, "/operator.pub 2>&1"),
          &incomplete),
      0);
  EXPECT_THAT(incomplete, HasSubstr("--peer-endpoint needs --cert"));
  std::string listed;
  EXPECT_EQ(testing::RunCommand(
                absl::StrCat(RunfilesPath("tools/polderctl/polderctl"), " audit query --bootstrap ",
                             amersfoort_kafka_->bootstrap_servers(),
                             " --peer groningen --dataset mobility.bike-counts -o json"),
                &listed),
            0)
      << listed;
  EXPECT_THAT(listed, HasSubstr("\"direction\": \"received\""));
  {
    const auto& [stream, links] = *subscriber.chains.begin();
    audit::AuditEntry forged = *audit::ParseEntry(links.front().canonical_json);
    forged.records += 1;
    audit::AuditLink link = links.front();
    link.canonical_json = *audit::CanonicalJson(forged);
    kafka::ProducerOptions po;
    po.client = ClientOptions();
    po.client.bootstrap_servers = amersfoort_kafka_->bootstrap_servers();
    ASSERT_OK_AND_ASSIGN(auto forger, kafka::IdempotentProducer::Create(po));
    kafka::ProducerRecord r;
    r.topic = "_polder.audit";
    r.partition = 0;
    r.key = audit::AuditRecordKey(stream, link.sequence);
    r.value = audit::EncodeAuditRecord(link);
    ASSERT_OK(kafka::SendAndWait(*forger, std::move(r)).status());
  }
  std::string caught;
  EXPECT_EQ(testing::RunCommand(verify, &caught) != 0, true) << caught;
  EXPECT_THAT(caught, HasSubstr("inserted at link"));
  std::string caught_endpoint;
  EXPECT_NE(testing::RunCommand(verify_endpoint("amersfoort"), &caught_endpoint), 0)
      << caught_endpoint;
  EXPECT_THAT(caught_endpoint, HasSubstr("inserted at link"));

  // Metrics on both sides pass promtool and say what happened.
  ExpectPromtoolPasses(*groningen, "groningen");
  ExpectPromtoolPasses(*amersfoort, "amersfoort");
  EXPECT_EQ(Metric(*amersfoort,
                   "polder_federation_subscription_up{dataset=\"mobility.bike-counts\",provider="
                   "\"groningen\"}"),
            1);
  EXPECT_EQ(
      Metric(
          *groningen,
          "polder_federation_streams_open{dataset=\"mobility.bike-counts\",peer=\"amersfoort\"}"),
      1);
  EXPECT_GT(
      Metric(
          *groningen,
          "polder_federation_expiry_timestamp_seconds{kind=\"contract\",name=\"gr-am-bikes-1\"}"),
      absl::ToUnixSeconds(absl::Now()));
  EXPECT_GT(
      Metric(
          *amersfoort,
          "polder_federation_expiry_timestamp_seconds{kind=\"certificate\",name=\"amersfoort\"}"),
      absl::ToUnixSeconds(absl::Now()));

  // Groningen revokes the contract: the stream ends within the re-check bound, Amersfoort's
  // subscription is refused and (purge_on_revocation) its mirror purged.
  amersfoort->Signal(SIGTERM);
  amersfoort = StartAmersfoort(proxy.port(), "gr-am-bikes-1", {}, /*purge=*/true);
  absl::SleepFor(absl::Seconds(2));
  trust::SignedContract contract =
      *trust::SignedContract::ReadFile(dir_ + "/contracts/gr-am-bikes-1.json");
  auto revocation = trust::RevokeContract(contract.contract, "groningen", *signing_key_,
                                          "pilot ended", absl::Now());
  ASSERT_OK(revocation.status());
  std::ofstream(dir_ + "/revocations/gr-am-bikes-1.json") << revocation->ToFileText();
  kafka::ConsumerOptions co;
  co.client = ClientOptions();
  co.client.bootstrap_servers = amersfoort_kafka_->bootstrap_servers();
  auto probe = kafka::KafkaConsumer::Create(co);
  ASSERT_OK(probe.status());
  auto purged = [&] {
    for (int p = 0; p < kPartitions; ++p) {
      auto marks = (*probe)->QueryWatermarks(kTopic, p, absl::Seconds(5));
      if (!marks.ok() || marks->first != marks->second) return false;
    }
    return true;
  };
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (!purged() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(500));
  EXPECT_TRUE(purged()) << amersfoort->Log();
  EXPECT_EQ(Total(CeIds(amersfoort_kafka_->bootstrap_servers(), 1)), 0u);
  // The revocation is the subscription's state, on /statusz; the node itself stays ready.
  std::string status, ready;
  testing::RunCommand(
      absl::StrCat("curl -sS http://127.0.0.1:", amersfoort->port("ops_port"), "/statusz"),
      &status);
  EXPECT_THAT(status, HasSubstr("was revoked by 'groningen'"));
  testing::RunCommand(
      absl::StrCat("curl -sS http://127.0.0.1:", amersfoort->port("ops_port"), "/readyz"), &ready);
  EXPECT_THAT(ready, HasSubstr("\"ready\":true"));
}

TEST_F(FederationE2eTest, StalledSubscriberRotationAndGap) {
  WriteContract("gr-am-bikes-1");
  // The provider holds at most the window, a batch, the source prefetch and the dataset's
  // shared tail (ADR 0020), whatever the stalled stream does.
  auto groningen = StartGroningen(
      "  max_batch_records: 500\n  max_batch_bytes: 256KiB\n  max_unacknowledged_bytes: 1MiB\n"
      "  source_prefetch_bytes: 1MiB\n  fanout_tail_bytes: 8MiB\n");
  Publish(groningen->grpc_port(), 4, 500, "warm");
  auto amersfoort = StartAmersfoort(groningen->port("federation_port"));
  ASSERT_EQ(WaitForMirror(2000, absl::Seconds(90)), 2000u) << amersfoort->Log();
  const pid_t groningen_pid = groningen->pid(), amersfoort_pid = amersfoort->pid();

  // Certificates rotated on disk while streaming (renewals of the same keys): new handshakes
  // present the new certificates, the running stream goes on, no process restarts.
  auto serial_served = [&] {
    std::string out;
    testing::RunCommand(
        absl::StrCat("openssl s_client -connect 127.0.0.1:", groningen->port("federation_port"),
                     " </dev/null 2>/dev/null | openssl x509 -noout -serial"),
        &out);
    return out;
  };
  const std::string serial_before = serial_served();
  ASSERT_THAT(serial_before, HasSubstr("serial="));
  for (const char* who : {"groningen", "amersfoort"}) {
    tls::PeerCertOptions o;
    o.key_pem = Listed(who).key_pem;
    tls::KeyAndCert renewed = fed_->Issue(who, o);
    // The same files (key, then certificate with its chain), replaced in place.
    EXPECT_EQ(fed_->WriteIdentity(who, renewed).cert_path, files_[who].cert_path);
  }
  const std::string reconnects_series =
      "polder_federation_subscription_reconnects_total{dataset=\"mobility.bike-counts\",provider="
      "\"groningen\"}";
  const double reconnects_before = Metric(*amersfoort, reconnects_series);
  Publish(groningen->grpc_port(), 4, 500, "rotated");
  ASSERT_EQ(WaitForMirror(4000, absl::Seconds(90)), 4000u) << amersfoort->Log();
  std::string serial_after;
  for (int i = 0; i < 50 && (serial_after = serial_served()) == serial_before; ++i)
    absl::SleepFor(absl::Milliseconds(200));
  EXPECT_NE(serial_after, serial_before) << "new handshakes present the renewed certificate";
  EXPECT_EQ(groningen->pid(), groningen_pid);
  EXPECT_EQ(amersfoort->pid(), amersfoort_pid);
  EXPECT_EQ(Metric(*amersfoort, reconnects_series), reconnects_before)
      << "the stream went on over the old connection";

  // Amersfoort's node stops reading for 30 s while ~65 MB are added to the source.
  const std::vector<kafka::ConsumedRecord> sample =
      ReadRecords(kTopic, kPartitions, 1, absl::Seconds(10));
  ASSERT_FALSE(sample.empty());
  const int64_t rss_before = RssKiB(groningen_pid);
  ASSERT_EQ(kill(amersfoort_pid, SIGSTOP), 0);
  kafka::ProducerOptions po;
  po.client = ClientOptions();
  po.batch_bytes = 65536;  // below the topic's max.message.bytes
  po.max_request_bytes = 200000;
  ASSERT_OK_AND_ASSIGN(auto producer, kafka::IdempotentProducer::Create(po));
  constexpr int kStalled = 150000;
  std::atomic<int> failed{0};
  absl::Status first_error;
  const std::string padding(180, 'x');  // ~430 bytes per record with key and headers
  for (int i = 0; i < kStalled; ++i) {
    kafka::ProducerRecord r;
    r.topic = kTopic;
    r.partition = i % kPartitions;
    r.key = sample[0].key;
    r.value = sample[0].value;
    r.headers = sample[0].headers;
    for (auto& h : r.headers) {
      if (h.key == "ce_id") h.value = absl::StrCat("stalled-", i);
    }
    r.headers.push_back({"padding", padding});
    producer->Send(r, [&failed, &first_error](absl::StatusOr<kafka::RecordMetadata> m) {
      if (!m.ok() && failed++ == 0) first_error = m.status();
    });
    if (i % 10000 == 9999) {
      ASSERT_OK(producer->Flush(absl::Seconds(60)));
    }
  }
  ASSERT_OK(producer->Flush(absl::Seconds(60)));
  ASSERT_EQ(failed.load(), 0) << first_error;
  int64_t rss_peak = rss_before;
  double unacknowledged_peak = 0;
  const std::string unacked_series =
      "polder_federation_unacknowledged_bytes{dataset=\"mobility.bike-counts\",peer="
      "\"amersfoort\"}";
  for (int s = 0; s < 30; ++s) {
    absl::SleepFor(absl::Seconds(1));
    rss_peak = std::max(rss_peak, RssKiB(groningen_pid));
    unacknowledged_peak = std::max(unacknowledged_peak, Metric(*groningen, unacked_series));
  }
  ASSERT_EQ(kill(amersfoort_pid, SIGCONT), 0);
  std::cout << "stall: provider RSS " << rss_before << " KiB before, peak " << rss_peak
            << " KiB; unacknowledged bytes peak " << unacknowledged_peak
            << " (window 1 MiB); source grew by " << kStalled << " records" << std::endl;
  EXPECT_LE(unacknowledged_peak, 1 << 20) << "the provider never runs ahead of the window";
  // The source grew by ~65 MB; the provider holds at most the window, one batch, its bounded
  // consumer queues (~2.5 MiB) and the dataset's tail, which keeps reading while the stream is
  // stalled (8 MiB counted; ~1.5x that in the heap), plus fetch buffers and allocator slack
  // (measured before the tail: ~16 MiB). An unbounded provider would hold what the source grew
  // by.
  EXPECT_LT(rss_peak - rss_before, 40 * 1024) << "provider RSS grew with the stalled stream";
  ASSERT_EQ(WaitForMirror(4000 + kStalled, absl::Minutes(3)), 4000u + kStalled)
      << amersfoort->Log();
  auto source = CeIds(broker().bootstrap_servers(), 4000 + kStalled);
  EXPECT_EQ(CeIds(amersfoort_kafka_->bootstrap_servers(), 4000 + kStalled + 1), source);

  // A gap: Amersfoort's node is stopped, more records arrive, then the source deletes every
  // record (as retention would) before Amersfoort comes back. The gap is reported, not skipped.
  ASSERT_EQ(amersfoort->Signal(SIGTERM), 0);
  Publish(groningen->grpc_port(), 2, 500, "lost");
  kafka::ClientOptions admin_options = ClientOptions();
  ASSERT_OK_AND_ASSIGN(auto admin, kafka::KafkaAdmin::Create(admin_options));
  ASSERT_OK(admin->DeleteRecords(kTopic, {{0, -1}, {1, -1}, {2, -1}}, absl::Seconds(10)));
  amersfoort = StartAmersfoort(groningen->port("federation_port"));
  const std::string gaps_series =
      "polder_federation_subscription_gaps_total{dataset=\"mobility.bike-counts\",provider="
      "\"groningen\"}";
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (Metric(*amersfoort, gaps_series) < 1 && absl::Now() < until)
    absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(Metric(*amersfoort, gaps_series), 1);
  EXPECT_EQ(Metric(*amersfoort,
                   "polder_federation_subscription_state{dataset=\"mobility.bike-counts\",provider="
                   "\"groningen\",state=\"refused\"}"),
            1);
  // A peer's gap is the subscription's business (/statusz, metrics), never this node's
  // readiness: an unready pod would take the city's own ingest out of its Service.
  std::string status, ready;
  testing::RunCommand(
      absl::StrCat("curl -sS http://127.0.0.1:", amersfoort->port("ops_port"), "/statusz"),
      &status);
  EXPECT_THAT(status, HasSubstr("\"state\":\"refused\""));
  EXPECT_THAT(status, HasSubstr("partition"));
  testing::RunCommand(
      absl::StrCat("curl -sS http://127.0.0.1:", amersfoort->port("ops_port"), "/readyz"), &ready);
  EXPECT_THAT(ready, HasSubstr("\"ready\":true"));
  EXPECT_EQ(Total(CeIds(amersfoort_kafka_->bootstrap_servers(), 4000 + kStalled + 1)),
            4000u + kStalled)
      << "nothing was skipped into the mirror";
  AuditTopic subscriber = ReadAudit(amersfoort_kafka_->bootstrap_servers());
  int gaps = 0;
  for (const auto& [stream, links] : subscriber.chains) {
    for (const auto& l : links) {
      auto e = audit::ParseEntry(l.canonical_json);
      if (e->direction == "gap") {
        ++gaps;
        EXPECT_THAT(e->detail, HasSubstr("partition"));
      }
    }
  }
  EXPECT_EQ(gaps, 1) << "the gap is in Amersfoort's audit trail once";
  // Nothing is left unsigned (finding 9): every chain Amersfoort wrote — each stream's tail after
  // its last exchange (the stream ended with the node's stop), and the gap entry — is receipted
  // by Groningen at its full length, the gap countersigned once the subscription retried.
  auto unsigned_chains = [&](std::string* which) {
    AuditTopic mine = ReadAudit(amersfoort_kafka_->bootstrap_servers());
    AuditTopic theirs = ReadAudit(broker().bootstrap_servers());
    int missing = 0;
    for (const auto& [stream, links] : mine.chains) {
      bool held = false, countersigned = absl::StartsWith(stream, "gap-") ? false : true;
      for (const audit::Receipt& r : theirs.receipts) {
        held |= r.stream_id == stream && r.peer == "amersfoort" && r.sequence == links.size() &&
                r.hash == links.back().hash;
      }
      for (const audit::Receipt& r : mine.receipts) {
        countersigned |=
            r.stream_id == stream && r.peer == "groningen" && r.hash == links.back().hash;
      }
      if (!held || !countersigned) {
        ++missing;
        absl::StrAppend(which, " ", stream, held ? "" : " (not receipted by groningen)",
                        countersigned ? "" : " (not countersigned)");
      }
    }
    return missing;
  };
  std::string which;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(60);
       unsigned_chains(&which) > 0 && absl::Now() < deadline; which.clear()) {
    absl::SleepFor(absl::Seconds(1));
  }
  EXPECT_EQ(unsigned_chains(&which), 0) << which << "\n" << amersfoort->Log();
  ExpectPromtoolPasses(*amersfoort, "amersfoort-gap");
}

// The cross-cutting fault suite: while Groningen publishes continuously and Amersfoort mirrors,
// Groningen's broker is killed -9 and restarted, then Amersfoort's, then Groningen's broker is
// stopped (SIGSTOP) for 10 s, then the registry goes down for good. Every acknowledged record is
// in the source once and the mirror equals the source; both audit trails verify; the nodes'
// memory stays bounded — all by counting.
TEST_F(FederationE2eTest, BrokersAndRegistryFailDuringAShare) {
  WriteContract("gr-am-bikes-1");
  auto groningen = StartGroningen();
  auto amersfoort = StartAmersfoort(groningen->port("federation_port"));
  const int ingest_port = groningen->grpc_port();
  std::atomic<bool> stop{false};
  std::atomic<int> phase{0};
  absl::Mutex mu;
  std::map<int, std::set<std::string>> acked;  // phase → acknowledged ce_ids
  int64_t failed_attempts = 0;
  std::thread publisher([&] {
    auto stub = Ingest(ingest_port);
    for (int b = 0; !stop; ++b) {
      nv1::PublishRequest req;
      req.set_dataset(kBikes);
      req.set_idempotency_key(absl::StrCat("fault-", b));
      for (int i = 0; i < 200; ++i) {
        auto* r = req.add_records();
        r->set_json(BikeJson(absl::StrCat("gn-counter-", i % 9), b));
        r->set_ce_id(absl::StrCat("fault-", b, "-", i));
      }
      for (int attempt = 0; attempt < 120;
           ++attempt) {  // retried with the same key until acknowledged
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(15)));
        nv1::PublishResponse resp;
        if (stub->Publish(&ctx, req, &resp).ok()) {
          absl::MutexLock lock(&mu);
          for (const auto& r : req.records()) acked[phase].insert(r.ce_id());
          break;
        }
        {
          absl::MutexLock lock(&mu);
          ++failed_attempts;
        }
        absl::SleepFor(absl::Milliseconds(500));
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
  int64_t rss_peak_groningen = 0, rss_peak_amersfoort = 0;
  auto step = [&](absl::Duration d) {
    for (absl::Time until = absl::Now() + d; absl::Now() < until;) {
      absl::SleepFor(absl::Milliseconds(500));
      rss_peak_groningen = std::max(rss_peak_groningen, RssKiB(groningen->pid()));
      rss_peak_amersfoort = std::max(rss_peak_amersfoort, RssKiB(amersfoort->pid()));
    }
    ++phase;
  };
  step(absl::Seconds(5));
  ASSERT_OK(broker().Kill());  // Groningen's (provider's) broker crashes during the share
  step(absl::Seconds(5));
  ASSERT_OK(broker().Restart());
  step(absl::Seconds(8));
  ASSERT_OK(amersfoort_kafka_->Kill());  // then Amersfoort's (subscriber's)
  step(absl::Seconds(5));
  ASSERT_OK(amersfoort_kafka_->Restart());
  step(absl::Seconds(8));
  ASSERT_OK(broker().Pause());  // Groningen's broker stops answering (SIGSTOP)
  step(absl::Seconds(10));
  ASSERT_OK(broker().Resume());
  step(absl::Seconds(8));
  registry_->Kill();  // the registry goes down: nodes publish and share from their schema caches
  step(absl::Seconds(15));
  stop = true;
  publisher.join();

  std::set<std::string> all_acked;
  {
    absl::MutexLock lock(&mu);
    // Acknowledgements are counted in the phase they arrived in (a publish blocked by a fault
    // is acknowledged once the broker is back).
    const char* names[] = {
        "up",        "provider broker killed",  "restarted", "subscriber broker killed",
        "restarted", "provider broker stopped", "resumed",   "registry down"};
    std::cout << "faults: acknowledged records per phase:";
    for (const auto& [p, ids] : acked) {
      std::cout << " " << names[p] << "=" << ids.size();
      all_acked.insert(ids.begin(), ids.end());
    }
    std::cout << "; failed attempts retried: " << failed_attempts << std::endl;
    EXPECT_GT(acked[7].size(), 0u) << "publishing went on with the registry down";
  }
  // The source holds every acknowledged record exactly once, the mirror equals the source.
  auto source = CeIds(broker().bootstrap_servers(), all_acked.size());
  std::map<std::string, int> in_source;
  for (const auto& [p, ids] : source) {
    for (const auto& id : ids) ++in_source[id];
  }
  for (const std::string& id : all_acked) {
    ASSERT_EQ(in_source[id], 1) << id << " acknowledged but " << in_source[id]
                                << " times in the source";
  }
  const size_t total = Total(source);
  ASSERT_EQ(WaitForMirror(total, absl::Minutes(3)), total) << amersfoort->Log();
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(CeIds(amersfoort_kafka_->bootstrap_servers(), total + 1), source);
  std::cout << "faults: " << all_acked.size() << " acknowledged, " << total << " in the source, "
            << total << " in the mirror; node RSS peaks: groningen " << rss_peak_groningen
            << " KiB, amersfoort " << rss_peak_amersfoort << " KiB" << std::endl;
  // Memory stays bounded through the faults (both nodes start at ~40 MiB).
  EXPECT_LT(rss_peak_groningen, 256 * 1024);
  EXPECT_LT(rss_peak_amersfoort, 256 * 1024);
  // Both audit trails verify, against each other.
  std::string verified;
  EXPECT_EQ(testing::RunCommand(
                absl::StrCat(RunfilesPath("tools/polderctl/polderctl"),
                             " audit verify --bootstrap ", amersfoort_kafka_->bootstrap_servers(),
                             " --peer-bootstrap ", broker().bootstrap_servers(),
                             " --self amersfoort --peer groningen --directory ", dir_,
                             "/directory.json --operator-key ", dir_, "/operator.pub 2>&1"),
                &verified),
            0)
      << verified;
  EXPECT_THAT(verified, HasSubstr("audit trail verified"));
  std::cout << "faults: " << verified;
}

TEST_F(FederationE2eTest, RefusalsAndCertificatesDuringLiveStreams) {
  WriteContract("gr-am-bikes-1");
  WriteContract("gr-am-expired", [](trust::Contract& c) {
    c.valid_from = absl::Now() - absl::Hours(48);
    c.valid_until = absl::Now() - absl::Hours(24);
  });
  trust::SignedContract revoked = WriteContract("gr-am-revoked");
  auto revocation = trust::RevokeContract(revoked.contract, "amersfoort", *signing_key_,
                                          "no longer needed", absl::Now());
  ASSERT_OK(revocation.status());
  std::ofstream(dir_ + "/revocations/gr-am-revoked.json") << revocation->ToFileText();
  WriteContract("gr-am-v2-only", [](trust::Contract& c) { c.schema_versions = {2}; });
  WriteContract("gr-am-aggregates",
                [](trust::Contract& c) { c.access = trust::Access::kAggregateOnly; });
  auto groningen = StartGroningen();
  Publish(groningen->grpc_port(), 2, 100, "some");
  const int port = groningen->port("federation_port");

  // Reads a stream to its end; its status and how long it lasted.
  auto run = [&](const tls::TlsFiles& who, const fv1::SubscribeRequest& req,
                 absl::Duration deadline, absl::Duration* lasted = nullptr) {
    auto stub = FederationClient(who, port);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    const absl::Time start = absl::Now();
    auto reader = stub->Subscribe(&ctx, req);
    fv1::SubscribeResponse msg;
    while (reader->Read(&msg)) {
    }
    grpc::Status s = reader->Finish();
    if (lasted != nullptr) *lasted = absl::Now() - start;
    return s;
  };
  struct Case {
    std::string name;
    fv1::SubscribeRequest request;
    grpc::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no contract", Subscribe("gr-am-none"), grpc::StatusCode::PERMISSION_DENIED,
       "no contract 'gr-am-none'"},
      {"expired", Subscribe("gr-am-expired"), grpc::StatusCode::PERMISSION_DENIED, "gr-am-expired"},
      {"revoked", Subscribe("gr-am-revoked"), grpc::StatusCode::PERMISSION_DENIED,
       "was revoked by 'amersfoort'"},
      {"wrong dataset", Subscribe("gr-am-bikes-1", "parking.occupancy"),
       grpc::StatusCode::PERMISSION_DENIED, "parking.occupancy"},
      {"unknown dataset", Subscribe("gr-am-bikes-1", "air.quality"), grpc::StatusCode::NOT_FOUND,
       "'air.quality' is not shared by groningen"},
      {"disallowed schema version", Subscribe("gr-am-v2-only"),
       grpc::StatusCode::FAILED_PRECONDITION,
       "schema version 1 of mobility.bike-counts is not allowed by contract gr-am-v2-only"},
      {"aggregate-only", Subscribe("gr-am-aggregates"), grpc::StatusCode::PERMISSION_DENIED,
       "aggregate"},
  };
  for (const Case& c : cases) {
    grpc::Status s = run(files_["amersfoort"], c.request, absl::Seconds(30));
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message)) << c.name;
  }
  // A peer the directory does not list is refused before any contract is looked at.
  grpc::Status stranger = run(files_["enschede"], Subscribe("gr-am-bikes-1"), absl::Seconds(30));
  EXPECT_NE(stranger.error_code(), grpc::StatusCode::OK);
  EXPECT_NE(stranger.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << stranger.error_message();

  // A certificate that expires during a live stream ends it within the re-check bound
  // (recheck_interval 2 s; bound 3× that after expiry).
  const absl::Duration recheck = absl::Seconds(2);
  tls::PeerCertOptions short_lived;
  short_lived.key_pem = Listed("amersfoort").key_pem;
  short_lived.backdate = absl::ZeroDuration();
  short_lived.validity = absl::Seconds(8);
  tls::KeyAndCert expiring = fed_->Issue("amersfoort", short_lived);
  const absl::Time not_after = tls::ParseCertificate(expiring.cert_pem)->not_after;
  tls::TlsFiles expiring_files = fed_->WriteIdentity("amersfoort-short", expiring);
  expiring_files.trust_bundle_path = files_["amersfoort"].trust_bundle_path;
  absl::Duration lasted;
  grpc::Status s = run(expiring_files, Subscribe("gr-am-bikes-1"), absl::Seconds(60), &lasted);
  const absl::Time ended = absl::Now();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_GE(ended, not_after - absl::Seconds(1)) << "the stream ran until the certificate expired";
  EXPECT_LE(ended, not_after + 3 * recheck)
      << "and ended within the bound after: " << s.error_message();

  // A certificate revoked (CRL) during a live stream ends it within the same bound.
  auto stub = FederationClient(files_["amersfoort"], port);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto reader = stub->Subscribe(&ctx, Subscribe("gr-am-bikes-1"));
  fv1::SubscribeResponse msg;
  int batches = 0;
  while (batches == 0 && reader->Read(&msg)) batches += msg.has_batch() ? 1 : 0;
  ASSERT_EQ(batches, 1) << "the stream is live";
  const absl::Time revoked_at = absl::Now();
  fed_->Revoke(Listed("amersfoort"));
  while (reader->Read(&msg)) {
  }
  s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("revoked"));
  EXPECT_LE(absl::Now() - revoked_at, 3 * recheck) << "ended within the bound";
  ExpectPromtoolPasses(*groningen, "groningen-refusals");
  EXPECT_GE(
      Metric(
          *groningen,
          "polder_federation_streams_ended_total{code=\"PERMISSION_DENIED\",peer=\"amersfoort\"}"),
      6);
}

// Three cities: Ede provides its bike counts to Groningen, Groningen provides its own
// to Amersfoort. Verifying Amersfoort's trail against Groningen's — with Groningen's Kafka
// (either way round) or through its federation service — looks only at the streams between the
// two: Groningen's stream from Ede is no finding. And Groningen against Ede verifies too.
TEST_F(FederationE2eTest, ThreeCitiesAuditVerifiesBetweenEachPairWithoutFalseFindings) {
  kafka_testing::KafkaBrokerOptions bo;
  bo.name = "ede";
  ASSERT_OK_AND_ASSIGN(auto ede_kafka, kafka_testing::KafkaBroker::Start(bo));
  peer_ = "ede";
  node_identity_ = "ede";
  bootstrap_ = ede_kafka->bootstrap_servers();
  federation_yaml_ = FederationYaml("  max_batch_records: 50\n");
  auto ede = StartNode();
  Publish(ede->grpc_port(), 2, 50, "ede", "ede");
  WriteContract("ede-gr-bikes-1", [](trust::Contract& c) {
    c.provider = "ede";
    c.consumer = "groningen";
  });
  WriteContract("gr-am-bikes-1");
  auto groningen = StartGroningen(absl::StrCat(
      "  max_batch_records: 50\n  subscriptions:\n    - {provider: ede, endpoint: \"localhost:",
      ede->port("federation_port"),
      "\", dataset: mobility.bike-counts, contract: ede-gr-bikes-1, partitions: 3, "
      "replication_factor: 1}\n"));
  auto amersfoort = StartAmersfoort(groningen->port("federation_port"));
  Publish(groningen->grpc_port(), 2, 50, "gr");
  ASSERT_EQ(WaitForMirror(100, absl::Minutes(2)), 100u) << amersfoort->Log();
  // Groningen mirrored Ede's 100 records (its received entries count them).
  auto received_from = [&](const std::string& bootstrap, const std::string& provider) {
    int64_t records = 0;
    for (const auto& [stream, links] : ReadAudit(bootstrap).chains) {
      for (const auto& l : links) {
        auto e = audit::ParseEntry(l.canonical_json);
        if (e.ok() && e->direction == "received" && e->source == provider) records += e->records;
      }
    }
    return records;
  };
  for (absl::Time until = absl::Now() + absl::Minutes(2);
       received_from(broker().bootstrap_servers(), "ede") < 100 && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(500));
  }
  ASSERT_EQ(received_from(broker().bootstrap_servers(), "ede"), 100) << groningen->Log();
  absl::SleepFor(absl::Seconds(3));  // the last receipts are exchanged

  const std::string polderctl = RunfilesPath("tools/polderctl/polderctl");
  const std::string trust_flags = absl::StrCat(
      " --directory ", dir_, "/directory.json --operator-key ", dir_, "/operator.pub 2>&1");
  auto both_kafkas = [&](const std::string& self, const std::string& self_kafka,
                         const std::string& peer, const std::string& peer_kafka) {
    return absl::StrCat(polderctl, " audit verify --bootstrap ", self_kafka, " --peer-bootstrap ",
                        peer_kafka, " --self ", self, " --peer ", peer, trust_flags);
  };
  const tls::TlsFiles& f = files_["amersfoort"];
  const std::string through_endpoint = absl::StrCat(
      polderctl, " audit verify --bootstrap ", amersfoort_kafka_->bootstrap_servers(),
      " --peer-endpoint 127.0.0.1:", groningen->port("federation_port"),
      " --self amersfoort --peer groningen --cert ", f.cert_path, " --key ", f.key_path,
      " --bundle ", f.trust_bundle_path, " --crl-dir ", fed_->crl_dir(), trust_flags);
  for (const std::string& cmd : {both_kafkas("amersfoort", amersfoort_kafka_->bootstrap_servers(),
                                             "groningen", broker().bootstrap_servers()),
                                 both_kafkas("groningen", broker().bootstrap_servers(),
                                             "amersfoort", amersfoort_kafka_->bootstrap_servers()),
                                 both_kafkas("groningen", broker().bootstrap_servers(), "ede",
                                             ede_kafka->bootstrap_servers()),
                                 both_kafkas("ede", ede_kafka->bootstrap_servers(), "groningen",
                                             broker().bootstrap_servers()),
                                 through_endpoint}) {
    SCOPED_TRACE(cmd);
    std::string output;
    EXPECT_EQ(testing::RunCommand(cmd, &output), 0) << output;
    EXPECT_THAT(output, HasSubstr("audit trail verified"));
    EXPECT_THAT(output, ::testing::Not(HasSubstr("dropped")));
    std::cout << output;
  }
  // A real difference between the pair is still found: Groningen's trail checked against a
  // Kafka that holds none of it (Ede's) names Amersfoort's stream from Groningen as dropped.
  std::string output;
  EXPECT_NE(testing::RunCommand(both_kafkas("amersfoort", amersfoort_kafka_->bootstrap_servers(),
                                            "groningen", ede_kafka->bootstrap_servers()),
                                &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("dropped"));
}

}  // namespace
}  // namespace polder
