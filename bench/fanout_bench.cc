// Fan-out benchmark (ADR 0020 §4): one Groningen provider node serving 1, 10, 50 and 342
// streams of one dataset (342: the Netherlands' municipalities), each stream a distinct peer
// identity of the in-repo load client (tests/node/fanout_load.h: mTLS, a signed receipt with the
// committed cursor every 8 batches or second, as a subscriber node acknowledges).
//
//   bazel run -c opt //bench:fanout_bench -- --runs=3 --records=10000 --live_seconds=20
//   (--min_streams / --max_streams: only the stream counts between them)
//
// Per run and stream count, on a fresh provider node (its peak RSS is that count's):
//   deliveries  the streams open at the live edge and are all live on the dataset's tail; after
//               a warm-up burst (records / 5, not measured) the node is stopped (SIGSTOP),
//               `records` records are written into the source topic,
//               the node continues (SIGCONT): deliveries/s = streams × records / (last arrival −
//               continue), with the provider's and the load client's CPU-seconds per million
//               deliveries over the same interval.
//   live        then 50 records/s are published through the node's ingest for `live_seconds`:
//               p99 over every stream of (arrival at the load client − the record's timestamp).
// Medians of the runs. Targets at 342 streams: summed deliveries ≥ 0.8× the single stream's, live
// p99 < 1 s, provider peak RSS < 1 GiB.
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_format.h"
#include "bench/bench_main.h"
#include "bench/bench_stats.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/kafka/rdkafka_producer.h"
#include "tests/node/fanout_load.h"
#include "tests/node/federation_fixture.h"

ABSL_FLAG(int, runs, 3, "Runs per size (medians reported).");
ABSL_FLAG(int, records, 10000, "Records in the source before the streams start.");
ABSL_FLAG(int, live_seconds, 20, "Seconds of live records after catch-up.");
ABSL_FLAG(int, min_streams, 1, "Fewest subscriber streams.");
ABSL_FLAG(int, max_streams, 342, "Most subscriber streams.");

namespace polder {
namespace {

using namespace node_testing;  // NOLINT

struct Flags {
  int runs = 3, records = 10000, live_seconds = 20, min_streams = 1, max_streams = 342;
} g_flags;

using bench::CpuSeconds;
using bench::Median;
using bench::PeakRssMiB;
using bench::Percentile;
using bench::SelfCpuSeconds;

struct Result {
  double deliveries = 0, provider_cpu = 0, client_cpu = 0, p50 = 0, p99 = 0, rss = 0;
};

class FanOutBench : public FederationFixture {
 protected:
  // The records of one ingest request read back from the source: valid Polder records (frame,
  // schema id, CloudEvents headers) to copy into bursts.
  std::vector<kafka::ConsumedRecord> Template(int grpc_port) {
    Publish(grpc_port, 1, 100, "template");
    std::vector<kafka::ConsumedRecord> out;
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    auto c = kafka::KafkaConsumer::Create(o);
    EXPECT_OK(c.status());
    std::vector<kafka::TopicPartitionOffset> all;
    for (int p = 0; p < kPartitions; ++p) all.push_back({kTopic, p, kafka::kOffsetBeginning});
    EXPECT_OK((*c)->Assign(all));
    const absl::Time until = absl::Now() + absl::Seconds(20);
    while (out.size() < 100 && absl::Now() < until) {
      auto batch = (*c)->Poll(absl::Milliseconds(300), 1000);
      if (batch.ok()) out.insert(out.end(), batch->begin(), batch->end());
    }
    return out;
  }

  void Burst(const std::vector<kafka::ConsumedRecord>& templ, int n) {
    kafka::ProducerOptions o;
    o.client = ClientOptions();
    o.linger = absl::Milliseconds(5);
    // Within the topic's max.message.bytes, which the node sets from its own batch limits.
    o.batch_bytes = 128 << 10;
    o.max_request_bytes = 128 << 10;
    auto producer = kafka::IdempotentProducer::Create(o);
    std::atomic<int> failed{0};
    absl::Status error;
    ASSERT_OK(producer.status());
    for (int i = 0; i < n; ++i) {
      const kafka::ConsumedRecord& t = templ[i % templ.size()];
      kafka::ProducerRecord r;
      r.topic = kTopic;
      r.partition = i % kPartitions;
      r.key = t.key;
      r.value = t.value;
      r.headers = t.headers;
      (*producer)->Send(std::move(r), [&failed, &error](absl::StatusOr<kafka::RecordMetadata> m) {
        if (!m.ok() && failed++ == 0) error = m.status();
      });
    }
    ASSERT_OK((*producer)->Flush(absl::Minutes(2)));
    ASSERT_EQ(failed.load(), 0) << error;
  }
};

TEST_F(FanOutBench, OneProviderManyStreams) {
  std::vector<int> sizes;
  for (int n : {1, 10, 50, 342}) {
    if (n >= g_flags.min_streams && n <= g_flags.max_streams) sizes.push_back(n);
  }
  ASSERT_FALSE(sizes.empty()) << "no stream count between --min_streams and --max_streams";
  const int most = sizes.back();
  std::vector<std::string> names;
  for (int i = 0; i < most; ++i) names.push_back(absl::StrFormat("city-%03d", i + 1));
  ListPeers(names);
  for (const std::string& p : names) {
    WriteContract("gr-" + p, [&](trust::Contract& c) { c.consumer = p; });
  }
  std::map<int, std::vector<Result>> results;
  std::vector<kafka::ConsumedRecord> templ;
  for (int run = 1; run <= g_flags.runs; ++run) {
    for (int n : sizes) {
      auto groningen = StartGroningen("  max_batch_records: 1000\n");
      const pid_t pid = groningen->pid();
      if (templ.empty()) templ = Template(groningen->grpc_port());
      ASSERT_FALSE(templ.empty());
      std::vector<FanOutLoad::Peer> peers;
      for (int i = 0; i < n; ++i) {
        peers.push_back(
            {names[i], files_[names[i]], "gr-" + names[i], groningen->port("federation_port")});
      }
      FanOutLoad::Options lo;
      lo.dataset = kBikes;
      lo.start_position = "latest";
      lo.keep_records = false;
      FanOutLoad load(peers, lo, *signing_key_, fed_->Checker());
      load.MeasureLatencyFrom(absl::InfiniteFuture());
      load.Start();
      const std::string live = R"(polder_federation_fanout_streams{mode="live"})";
      const absl::Time open_until = absl::Now() + absl::Minutes(3);
      while (Metric(*groningen, live) < n && absl::Now() < open_until) {
        absl::SleepFor(absl::Milliseconds(200));
      }
      ASSERT_EQ(Metric(*groningen, live), n) << groningen->Log();
      // A warm-up burst first (not measured): the broker's, the tail's and the streams' first
      // reads of a fresh node are slower.
      ASSERT_NO_FATAL_FAILURE(Burst(templ, g_flags.records / 5));
      const int64_t warm = int64_t{n} * (g_flags.records / 5);
      for (const absl::Time t = absl::Now() + absl::Minutes(5);
           load.Total() < warm && absl::Now() < t;) {
        absl::SleepFor(absl::Milliseconds(20));
      }
      ASSERT_EQ(load.Total(), warm);
      // The burst waits in the source while the node is stopped; then all streams read it.
      kill(pid, SIGSTOP);
      ASSERT_NO_FATAL_FAILURE(Burst(templ, g_flags.records));
      const double node0 = CpuSeconds(pid), self0 = SelfCpuSeconds();
      const absl::Time t0 = absl::Now();
      kill(pid, SIGCONT);
      const int64_t expected = warm + int64_t{n} * g_flags.records;
      const absl::Time until = absl::Now() + absl::Minutes(15);
      while (load.Total() < expected && absl::Now() < until) absl::SleepFor(absl::Milliseconds(20));
      ASSERT_EQ(load.Total(), expected) << groningen->Log();
      const double node1 = CpuSeconds(pid), self1 = SelfCpuSeconds();
      Result r;
      const double seconds = absl::ToDoubleSeconds(load.LastArrival() - t0);
      const double measured = static_cast<double>(expected - warm);
      r.deliveries = measured / seconds;
      r.provider_cpu = (node1 - node0) / (measured / 1e6);
      r.client_cpu = (self1 - self0) / (measured / 1e6);
      // Live: 50 records/s through ingest.
      load.MeasureLatencyFrom(absl::Now());
      auto stub = Ingest(groningen->grpc_port(), true, "groningen");
      const absl::Time live_start = absl::Now();
      int sent = 0;
      for (int tick = 0; tick < g_flags.live_seconds * 10; ++tick) {
        nv1::PublishRequest req;
        req.set_dataset(kBikes);
        req.set_idempotency_key(absl::StrCat("live-", run, "-", n, "-", tick));
        for (int i = 0; i < 5; ++i) {
          auto* rec = req.add_records();
          rec->set_json(BikeJson(absl::StrCat("gn-counter-", i), tick));
          rec->set_ce_id(absl::StrCat("live-", run, "-", n, "-", tick, "-", i));
        }
        PublishRetried(*stub, req, 5);
        sent += 5;
        absl::SleepFor(live_start + absl::Milliseconds(100) * (tick + 1) - absl::Now());
      }
      const int64_t each = g_flags.records / 5 + g_flags.records + sent;
      ASSERT_TRUE(load.WaitEach(each, absl::Minutes(2)))
          << "fewest " << load.Fewest() << " of " << each;
      const std::vector<double> lat = load.Latencies();
      ASSERT_EQ(lat.size(), static_cast<size_t>(n) * sent);
      r.p50 = Percentile(lat, 0.5);
      r.p99 = Percentile(lat, 0.99);
      r.rss = PeakRssMiB(pid);
      load.Stop();
      std::printf(
          "run %d, %d streams: %.0f deliveries/s, provider %.2f CPU-s/M, client %.2f CPU-s/M, "
          "live p50 %.0f ms p99 %.0f ms, provider peak RSS %.0f MiB\n",
          run, n, r.deliveries, r.provider_cpu, r.client_cpu, r.p50, r.p99, r.rss);
      std::fflush(stdout);
      results[n].push_back(r);
      groningen->Signal(SIGTERM);
      groningen->WaitForExit(absl::Seconds(30));
    }
  }
  auto med = [&](int n, double Result::*f) {
    std::vector<double> x;
    for (const Result& r : results[n]) x.push_back(r.*f);
    return Median(x);
  };
  // The single stream's rate, when it ran (--min_streams=1).
  const double single = results.count(1) > 0 ? med(1, &Result::deliveries) : 0;
  std::printf(
      "\n| streams | deliveries/s (summed) | × single stream | provider CPU-s per M deliveries "
      "| load client CPU-s per M | live p50 ms | live p99 ms | provider peak RSS MiB |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (int n : sizes) {
    std::printf(
        "| %d | %.0f | %s | %.2f | %.2f | %.0f | %.0f | %.0f |\n", n, med(n, &Result::deliveries),
        single > 0 ? absl::StrFormat("%.2f", med(n, &Result::deliveries) / single).c_str() : "-",
        med(n, &Result::provider_cpu), med(n, &Result::client_cpu), med(n, &Result::p50),
        med(n, &Result::p99), med(n, &Result::rss));
  }
}

}  // namespace
}  // namespace polder

int main(int argc, char** argv) {
  return polder::bench::RunBenchmarks(
      argc, argv, "fanout_bench: one dataset to many subscribers (docs/BENCHMARKS.md)", [] {
        polder::g_flags.runs = absl::GetFlag(FLAGS_runs);
        polder::g_flags.records = absl::GetFlag(FLAGS_records);
        polder::g_flags.live_seconds = absl::GetFlag(FLAGS_live_seconds);
        polder::g_flags.min_streams = absl::GetFlag(FLAGS_min_streams);
        polder::g_flags.max_streams = absl::GetFlag(FLAGS_max_streams);
      });
}
