// Fan-out end to end (ADR 0020 §4): one Groningen provider node serves 52 streams of its bike
// counts at once — 50 from a load client holding 50 peer identities, each connecting from its
// own loopback source address and acknowledging as a subscriber does, and two real subscriber
// nodes (Amersfoort and Ede, each with a broker of its own). The streams start from the
// beginning while a backlog waits and live records keep arriving: at most
// fanout_max_catchup_readers of them read on their own at any time, the rest share the tail.
// Each load stream's delivered (partition, offset, value hash) sequence equals the source's; the
// two mirrors equal each other and the source; the provider's audit trail verifies per stream;
// the provider's memory stays within its limit.
#include <filesystem>
#include <set>

#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "tests/node/fanout_load.h"
#include "tests/node/federation_fixture.h"

namespace polder {
namespace {

using namespace node_testing;  // NOLINT

constexpr int kLoadPeers = 50;
constexpr int kMaxCatchupReaders = 3;

class FanOutE2eTest : public FederationFixture {
 protected:
  // A subscriber node of Groningen's bike counts on a broker of its own.
  std::unique_ptr<ServiceProcess> StartSubscriber(const std::string& city,
                                                  kafka_testing::KafkaBroker& kafka, int port,
                                                  const std::string& contract) {
    peer_ = city;
    node_identity_ = city;
    bootstrap_ = kafka.bootstrap_servers();
    federation_yaml_ = FederationYaml(
        absl::StrCat("  subscriptions:\n    - {provider: groningen, endpoint: \"localhost:", port,
                     "\", dataset: mobility.bike-counts, contract: ", contract,
                     ", partitions: 3, replication_factor: 1}\n"));
    auto node = std::make_unique<ServiceProcess>(RunfilesPath("services/node/polder-node"),
                                                 "node-" + city, WriteNodeConfig());
    node->Start();
    return node;
  }

  // Partition → (offset, value hash) of every committed record of `topic`, as the load client
  // records them.
  std::map<int32_t, std::vector<std::pair<int64_t, size_t>>> SourceSequence(size_t expected) {
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    std::map<int32_t, std::vector<std::pair<int64_t, size_t>>> out;
    auto c = kafka::KafkaConsumer::Create(o);
    EXPECT_OK(c.status());
    if (!c.ok()) return out;
    std::vector<kafka::TopicPartitionOffset> all;
    for (int p = 0; p < kPartitions; ++p) all.push_back({kTopic, p, kafka::kOffsetBeginning});
    EXPECT_OK((*c)->Assign(all));
    size_t n = 0;
    const absl::Time until = absl::Now() + absl::Seconds(30);
    while (n < expected && absl::Now() < until) {
      auto batch = (*c)->Poll(absl::Milliseconds(300), 10000);
      if (!batch.ok()) break;
      for (const auto& r : *batch) {
        out[r.partition].push_back({r.offset, std::hash<std::string>()(r.value)});
        ++n;
      }
    }
    return out;
  }

  // Distinct remote addresses of established connections to `port`.
  static std::set<std::string> SourcesOf(int port, std::string* raw) {
    std::string& out = *raw;
    const int code = testing::RunCommand(
        absl::StrCat("ss -Htn state established '( sport = :", port, " )' 2>&1"), &out);
    EXPECT_EQ(code, 0) << out;
    std::set<std::string> sources;
    for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (f.size() < 4) continue;
      // 127.0.0.10:40000, or [::ffff:127.0.0.10]:40000 on a dual-stack listener.
      absl::string_view peer = f.back();
      peer = peer.substr(0, peer.rfind(':'));
      absl::ConsumePrefix(&peer, "[");
      absl::ConsumeSuffix(&peer, "]");
      absl::ConsumePrefix(&peer, "::ffff:");
      sources.insert(std::string(peer));
    }
    return sources;
  }
};

TEST_F(FanOutE2eTest, OneProviderServesFiftyTwoStreamsOfOneDatasetExactly) {
  std::vector<std::string> load_peers;
  for (int i = 0; i < kLoadPeers; ++i) load_peers.push_back(absl::StrFormat("load-%02d", i));
  ListPeers(load_peers);
  for (const std::string& p : load_peers) {
    WriteContract("gr-" + p, [&](trust::Contract& c) { c.consumer = p; });
  }
  WriteContract("gr-am-bikes-1");
  WriteContract("gr-ede-bikes-1", [](trust::Contract& c) { c.consumer = "ede"; });

  // Small budgets, so that the bounds are met by far more streams than readers.
  auto groningen = StartGroningen(absl::StrCat(
      "  max_batch_records: 100\n  source_prefetch_bytes: 1MiB\n  fanout_tail_bytes: 4MiB\n"
      "  fanout_max_catchup_readers: ",
      kMaxCatchupReaders, "\n  max_unacknowledged_bytes: 1MiB\n"));
  const int federation_port = groningen->port("federation_port");
  Publish(groningen->grpc_port(), 30, 100, "backlog");  // 3,000 records waiting
  const int64_t rss_before = RssKiB(groningen->pid());

  // Each load peer connects from its own source address, 127.0.0.10 … 127.0.0.59.
  std::vector<std::unique_ptr<fault::FaultProxy>> proxies;
  std::vector<FanOutLoad::Peer> peers;
  for (int i = 0; i < kLoadPeers; ++i) {
    auto proxy = std::make_unique<fault::FaultProxy>("127.0.0.1", federation_port);
    proxy->set_source_address(absl::StrCat("127.0.0.", 10 + i));
    ASSERT_OK(proxy->Start());
    peers.push_back({load_peers[i], files_[load_peers[i]], "gr-" + load_peers[i], proxy->port()});
    proxies.push_back(std::move(proxy));
  }
  FanOutLoad::Options lo;
  lo.dataset = kBikes;
  // Small batches: each stream's catch-up takes long enough for the others to queue behind it.
  lo.max_batch_records = 10;
  FanOutLoad load(peers, lo, *signing_key_, fed_->Checker());
  load.Start();
  auto amersfoort = StartAmersfoort(federation_port);
  kafka_testing::KafkaBrokerOptions bo;
  bo.name = "ede";
  ASSERT_OK_AND_ASSIGN(auto ede_kafka, kafka_testing::KafkaBroker::Start(bo));
  auto ede = StartSubscriber("ede", *ede_kafka, federation_port, "gr-ede-bikes-1");

  // While the streams catch up and live records arrive: never more readers than the pool.
  std::atomic<bool> sampling{true};
  double most_catching_up = 0, most_waiting = 0;
  std::thread sampler([&] {
    while (sampling) {
      most_catching_up =
          std::max(most_catching_up,
                   Metric(*groningen, R"(polder_federation_fanout_streams{mode="catching_up"})"));
      most_waiting = std::max(
          most_waiting, Metric(*groningen, R"(polder_federation_fanout_streams{mode="waiting"})"));
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
  Publish(groningen->grpc_port(), 10, 100, "live");  // 1,000 more while streaming
  const bool all = load.WaitEach(4000, absl::Minutes(3));
  const size_t mirrored_am = WaitForMirror(4000, absl::Minutes(2));
  const size_t mirrored_ede = Total(CeIds(ede_kafka->bootstrap_servers(), 4000));
  sampling = false;
  sampler.join();
  ASSERT_TRUE(all) << "the slowest load stream has " << load.Fewest() << " of 4,000 records";
  EXPECT_EQ(mirrored_am, 4000u);
  EXPECT_EQ(mirrored_ede, 4000u);

  // Every stream came from its own address; all were admitted at once.
  std::string raw;
  const std::set<std::string> sources = SourcesOf(federation_port, &raw);
  int load_sources = 0;
  for (int i = 0; i < kLoadPeers; ++i)
    load_sources += sources.count(absl::StrCat("127.0.0.", 10 + i));
  EXPECT_EQ(load_sources, kLoadPeers) << raw;

  // The pool's bound held, and the streams ended up sharing the tail.
  EXPECT_LE(most_catching_up, kMaxCatchupReaders);
  // Whether a stream queued, counted where it queues (a sampled gauge can miss a short wait).
  EXPECT_GT(Metric(*groningen, "polder_federation_fanout_waited_total"), 0)
      << "52 streams behind the tail, 3 readers: some must have waited";
  EXPECT_EQ(Metric(*groningen, "polder_federation_fanout_tails"), 1);
  EXPECT_EQ(Metric(*groningen, R"(polder_federation_fanout_streams{mode="live"})"), 52);
  EXPECT_EQ(Metric(*groningen, R"(polder_federation_fanout_streams{mode="catching_up"})"), 0);

  // Each load stream delivered exactly the source's sequence: nothing lost, nothing twice, in
  // order per partition.
  const auto source = SourceSequence(4000);
  size_t source_total = 0;
  for (const auto& [p, rs] : source) source_total += rs.size();
  ASSERT_EQ(source_total, 4000u);
  const int64_t rss_after = RssKiB(groningen->pid());
  load.Stop();
  int exact = 0;
  int64_t reconnects = 0;
  for (const FanOutLoad::Stream& s : load.Streams()) {
    reconnects += s.reconnects;
    EXPECT_EQ(s.ended, "") << s.peer;
    EXPECT_EQ(s.receipt_failures, 0) << s.peer;
    EXPECT_GT(s.receipts, 0) << s.peer;
    if (s.records == source) {
      ++exact;
    } else {
      size_t n = 0;
      for (const auto& [p, rs] : s.records) n += rs.size();
      ADD_FAILURE() << s.peer << " (stream " << s.stream_id << ") delivered " << n
                    << " records, not the source's sequence";
    }
  }
  EXPECT_EQ(exact, kLoadPeers);

  // The two real mirrors equal each other and the source (ce_ids in order per partition).
  const auto source_ids = CeIds(broker().bootstrap_servers(), 4000);
  EXPECT_EQ(CeIds(amersfoort_kafka_->bootstrap_servers(), 4000), source_ids);
  EXPECT_EQ(CeIds(ede_kafka->bootstrap_servers(), 4000), source_ids);

  // The provider's trail verifies for every stream it offered on.
  const AuditTopic audit = ReadAudit(broker().bootstrap_servers());
  int verified = 0;
  for (const auto& [stream, links] : audit.chains) {
    EXPECT_OK(audit::VerifyChain(stream, links)) << stream;
    ++verified;
  }
  EXPECT_GE(verified, kLoadPeers + 2);

  // Memory: the tail, the pool's readers and the streams' windows — not a prefetch per stream.
  // Bound: the configured budgets (tail 4 MiB, 4 consumers × 1 MiB prefetch, 52 windows × 1 MiB)
  // three times over for allocator and librdkafka overhead, plus 52 gRPC streams at 1 MiB.
  const int64_t grown_kib = rss_after - rss_before;
  const int64_t bound_kib = 3 * (4 + 4 * 1 + 52 * 1) * 1024 + 52 * 1024;
  EXPECT_LT(grown_kib, bound_kib) << "RSS before " << rss_before << " KiB, after " << rss_after;
  std::cerr << "fan-out: RSS " << rss_before << " → " << rss_after << " KiB; most catching up "
            << most_catching_up << ", most waiting " << most_waiting << "; load streams resumed "
            << reconnects << " times\n";
}

}  // namespace
}  // namespace polder
