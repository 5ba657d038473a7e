// Federation benchmark: Polder mirroring a dataset from Groningen's broker into Amersfoort's
// (two polder-node processes, mutual TLS, exactly once: records + cursor + audit entry per
// transaction, provider audit before sending) against Apache Kafka MirrorMaker 2 in dedicated
// mode (org.apache.kafka.connect.mirror.MirrorMaker, exactly.once.source.support=enabled,
// IdentityReplicationPolicy, source consumer read_committed) copying the same topic from the
// same source broker into a fresh target broker.
//
//   bench/mm2/fetch.sh            # MirrorMaker 2 jars into /var/cache/polder/mm2-<version>
//   bazel run -c opt //bench:federation_bench -- --runs=3 --records=200000 --live=6000
//
// Profiling: --mm2=0 runs Polder alone; --dump=1 writes each live record's production time,
// partition and latency to <tmp>/latency-<system>-<run>.tsv.
//
// Per run and system: a fresh target broker; the whole source topic is copied (backlog), the
// rate is taken between the 10 % and 90 % arrival marks (read_committed reader on the target),
// with the CPU seconds of the mirroring processes over the same interval (Polder: both nodes;
// MM2: its JVM). Once the backlog is copied, live records are produced into the source at a
// fixed rate and the end-to-end latency (source record timestamp → readable in the target,
// read_committed) is measured per record. Medians of the runs.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/bench_main.h"
#include "bench/bench_stats.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/kafka/rdkafka_producer.h"
#include "tests/node/federation_fixture.h"

ABSL_FLAG(int, runs, 3, "Runs per system (medians reported).");
ABSL_FLAG(int, records, 200000, "Records of the catch-up phase.");
ABSL_FLAG(int, live, 10000, "Records of the live phase.");
ABSL_FLAG(int, live_rate, 2000, "Records per second in the live phase.");
ABSL_FLAG(int, mm2, 1, "0: Polder only, no MirrorMaker 2 baseline (for profiling).");
ABSL_FLAG(int, dump, 0, "1: write each live record's latency to <tmp>/latency-<system>-<run>.tsv.");

namespace polder {
namespace {

using namespace node_testing;  // NOLINT

struct Flags {
  int runs = 3, records = 200000, live = 10000, live_rate = 2000, mm2 = 1, dump = 0;
} g_flags;

using bench::CpuSeconds;
using bench::Median;
using bench::Percentile;

struct Result {
  double rate = 0, mb_s = 0, cpu_per_m = 0, p50 = 0, p99 = 0, rss_mib = 0;
};

class FederationBench : public FederationFixture {
 protected:
  // Reads the target topic (read_committed) until `total` records; calls `at_mark` when the
  // count crosses 10 % and 90 % of `backlog` (1, 2), and collects latencies of live records.
  struct Arrivals {
    absl::Time t10, t90;
    size_t count = 0;
    std::vector<double> latency_ms;
    std::vector<std::string> latency_rows;  // produced at (ms since epoch), partition, latency
    int64_t bytes = 0;
  };
  Arrivals Read(const std::string& bootstrap, size_t backlog, size_t total,
                const std::string& live_tag, absl::Duration timeout,
                const std::function<void(int)>& at_mark, const std::function<void()>& tick) {
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = bootstrap;
    Arrivals a;
    auto c = kafka::KafkaConsumer::Create(o);
    if (!c.ok()) return a;
    std::vector<kafka::TopicPartitionOffset> all;
    for (int p = 0; p < kPartitions; ++p) all.push_back({kTopic, p, kafka::kOffsetBeginning});
    const absl::Time until = absl::Now() + timeout;
    bool assigned = false;
    absl::Time next_tick = absl::Now();
    while (a.count < total && absl::Now() < until) {
      if (absl::Now() >= next_tick) {
        tick();
        next_tick = absl::Now() + absl::Milliseconds(500);
      }
      if (!assigned) {
        assigned = (*c)->Assign(all).ok();
        if (!assigned) {
          absl::SleepFor(absl::Milliseconds(200));
          continue;
        }
      }
      auto batch = (*c)->Poll(absl::Milliseconds(100), 10000);
      if (!batch.ok()) {
        absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
      const absl::Time now = absl::Now();
      for (const auto& r : *batch) {
        ++a.count;
        a.bytes += static_cast<int64_t>(r.value.size() + (r.key ? r.key->size() : 0));
        for (const auto& h : r.headers) {
          a.bytes += static_cast<int64_t>(h.key.size() + h.value.size());
          // This run's live records only (earlier runs' are part of the backlog now).
          if (h.key == "ce_id" && absl::StartsWith(h.value, live_tag)) {
            a.latency_ms.push_back(
                absl::ToDoubleMilliseconds(now - absl::FromUnixMillis(r.timestamp_ms)));
            if (g_flags.dump) {
              a.latency_rows.push_back(
                  absl::StrCat(r.timestamp_ms, "\t", r.partition, "\t", a.latency_ms.back()));
            }
          }
        }
        if (a.count == backlog / 10) {
          a.t10 = now;
          at_mark(1);
        }
        if (a.count == backlog * 9 / 10) {
          a.t90 = now;
          at_mark(2);
        }
        if (a.count == backlog) at_mark(3);  // caught up: the live phase starts
      }
    }
    return a;
  }

  // Throughput between the 10 % and 90 % marks of the backlog, CPU per million records over the
  // same interval, latency percentiles of the live records.
  static Result Summarize(const Arrivals& arr, size_t backlog, double cpu_seconds) {
    Result r;
    r.rate = 0.8 * backlog / absl::ToDoubleSeconds(arr.t90 - arr.t10);
    r.mb_s = r.rate * (static_cast<double>(arr.bytes) / arr.count) / 1e6;
    r.cpu_per_m = cpu_seconds / (0.8 * backlog / 1e6);
    r.p50 = Percentile(arr.latency_ms, 0.5);
    r.p99 = Percentile(arr.latency_ms, 0.99);
    return r;
  }

  // Ten bike counts through Groningen's ingest (validated, framed, CloudEvents headers), each
  // value ~200 bytes: the location description pads the binary BikeCount, as in the ingest
  // benchmark. Copies of the first are the benchmark's records.
  void PublishSeed(int grpc_port) {
    auto stub = Ingest(grpc_port);
    nv1::PublishRequest req;
    req.set_dataset(kBikes);
    req.set_idempotency_key("seed");
    for (int i = 0; i < 10; ++i) {
      auto* r = req.add_records();
      r->set_json(absl::StrCat(
          R"({"counterId":"gn-herestraat-01","eventTime":")", Now(), R"(","count":")", 40 + i,
          R"(","location":{"latitude":53.2194,"longitude":6.5665,"description":")",
          std::string(144, 'x'), R"("}})"));
      r->set_ce_id(absl::StrCat("seed-", i));
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    nv1::PublishResponse resp;
    grpc::Status s = stub->Publish(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // What Read() calls at its marks: the CPU seconds at the 10 % (1) and 90 % (2) marks, and at
  // the end of the backlog (3) the live phase, copies of `sample` tagged `tag`, on `live`.
  std::function<void(int)> AtMark(std::function<double()> cpu, double* cpu10, double* cpu90,
                                  std::thread* live, const kafka::ConsumedRecord& sample,
                                  std::string tag) {
    return [=](int mark) {
      if (mark == 1) *cpu10 = cpu();
      if (mark == 2) *cpu90 = cpu();
      if (mark == 3) *live = std::thread([=] { Produce(sample, g_flags.live, tag, true); });
    };
  }

  // With --dump=1: each live record's production time, partition and latency, for plotting.
  void Dump(const Arrivals& arr, const std::string& name) {
    if (!g_flags.dump) return;
    const std::string path = absl::StrCat(Tmp(), "/latency-", name, ".tsv");
    std::ofstream out(path);
    out << "produced_ms\tpartition\tlatency_ms\n";
    for (const std::string& row : arr.latency_rows) out << row << "\n";
    std::printf("latencies of %s: %s\n", name.c_str(), path.c_str());
  }

  // Produces `n` copies of `sample` into the source (each its own ce_id, ~200-byte payloads);
  // `live`: paced at the live rate with a bench_live header and the current time.
  void Produce(const kafka::ConsumedRecord& sample, int n, const std::string& tag, bool live) {
    kafka::ProducerOptions po;
    po.client = ClientOptions();
    po.batch_bytes = 65536;
    po.max_request_bytes = 200000;
    auto producer = kafka::IdempotentProducer::Create(po);
    ASSERT_OK(producer.status());
    const absl::Time start = absl::Now();
    for (int i = 0; i < n; ++i) {
      kafka::ProducerRecord r;
      r.topic = kTopic;
      r.partition = i % kPartitions;
      r.key = sample.key;
      r.value = sample.value;
      r.headers = sample.headers;
      for (auto& h : r.headers) {
        if (h.key == "ce_id") h.value = absl::StrCat(tag, "-", i);
      }
      if (live) {
        r.headers.push_back({"bench_live", "1"});
        r.timestamp_ms = absl::ToUnixMillis(absl::Now());
        const absl::Time due = start + absl::Seconds(static_cast<double>(i) / g_flags.live_rate);
        if (absl::Now() < due) absl::SleepFor(due - absl::Now());
      }
      (*producer)->Send(r, [](absl::StatusOr<kafka::RecordMetadata>) {});
      if (!live && i % 10000 == 9999) {
        ASSERT_OK((*producer)->Flush(absl::Seconds(60)));
      }
    }
    ASSERT_OK((*producer)->Flush(absl::Seconds(60)));
  }

  std::unique_ptr<kafka_testing::KafkaBroker> FreshBroker(const std::string& name) {
    kafka_testing::KafkaBrokerOptions bo;
    bo.name = name;
    auto b = kafka_testing::KafkaBroker::Start(bo);
    EXPECT_OK(b.status());
    return b.ok() ? *std::move(b) : nullptr;
  }

  pid_t StartMirrorMaker(const std::string& target_bootstrap, int run) {
    const std::string mm2 = bench::Mm2Home();
    const std::string props = absl::StrCat(dir_, "/mm2-", run, ".properties");
    std::ofstream(props)
        << "clusters = a, b\n"
        << "a.bootstrap.servers = " << broker().bootstrap_servers() << "\n"
        << "b.bootstrap.servers = " << target_bootstrap << "\n"
        << "a->b.enabled = true\nb->a.enabled = false\n"
        << "a->b.topics = groningen\\\\.mobility\\\\.bike-counts\n"
        << "replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n"
        << "b.exactly.once.source.support = enabled\n"
        << "a.consumer.isolation.level = read_committed\n"
        << "offset-syncs.topic.location = target\n"
        << "replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n"
        << "heartbeats.topic.replication.factor = 1\noffset-syncs.topic.replication.factor = 1\n"
        << "offset.storage.replication.factor = 1\nstatus.storage.replication.factor = 1\n"
        << "config.storage.replication.factor = 1\n"
        << "emit.checkpoints.enabled = false\nemit.heartbeats.enabled = false\n"
        << "sync.topic.acls.enabled = false\nrefresh.topics.interval.seconds = 2\n"
        << "tasks.max = 1\n";
    const std::string log = absl::StrCat(dir_, "/mm2-", run, ".log");
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      const std::string cp = mm2 + "/libs/*";
      execlp("java", "java", "-Xmx512m", "-cp", cp.c_str(),
             "org.apache.kafka.connect.mirror.MirrorMaker", props.c_str(), "--clusters", "b",
             static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid;
  }
};

TEST_F(FederationBench, PolderAgainstMirrorMaker2) {
  WriteContract("gr-am-bikes-1");
  auto groningen = StartGroningen("  max_batch_records: 1000\n  max_batch_bytes: 1MiB\n");
  PublishSeed(groningen->grpc_port());
  const std::vector<kafka::ConsumedRecord> seed =
      ReadRecords(kTopic, kPartitions, 1, absl::Seconds(10));
  ASSERT_FALSE(seed.empty());
  std::printf("record: %zu-byte value (Confluent frame + binary BikeCount), %zu headers\n",
              seed[0].value.size(), seed[0].headers.size());
  Produce(seed[0], g_flags.records, "backlog", false);
  size_t source_total = 10 + g_flags.records;
  std::vector<Result> polder, mm2;
  std::vector<double> polder_rss;
  for (int run = 0; run < g_flags.runs; ++run) {
    // Polder: a fresh Amersfoort broker and node.
    {
      amersfoort_kafka_.reset();
      auto amersfoort = StartAmersfoort(groningen->port("federation_port"));
      const pid_t a = amersfoort->pid(), g = groningen->pid();
      double cpu10 = 0, cpu90 = 0;
      int64_t rss = 0;
      std::thread live;
      const size_t backlog = source_total;
      Arrivals arr = Read(amersfoort_kafka_->bootstrap_servers(), backlog, backlog + g_flags.live,
                          absl::StrCat("live-p", run, "-"), absl::Minutes(3),
                          AtMark([&] { return CpuSeconds(a) + CpuSeconds(g); }, &cpu10, &cpu90,
                                 &live, seed[0], absl::StrCat("live-p", run)),
                          [&] { rss = std::max(rss, std::max(RssKiB(a), RssKiB(g))); });
      if (live.joinable()) live.join();
      source_total += g_flags.live;
      if (arr.count != backlog + g_flags.live) {
        std::string m = Metrics(*amersfoort), gm = Metrics(*groningen);
        std::string out;
        for (absl::string_view l : absl::StrSplit(m + gm, '\n')) {
          if (absl::StrContains(l, "polder_federation") && !absl::StartsWith(l, "#"))
            absl::StrAppend(&out, l, "\n");
        }
        std::string tail;
        testing::RunCommand(absl::StrCat("grep -v 'federation directory' ", Tmp(),
                                         "/node-amersfoort.log | tail -20"),
                            &tail);
        FAIL() << "mirrored " << arr.count << " of " << backlog + g_flags.live << "\n"
               << out << tail;
      }
      Dump(arr, absl::StrCat("polder-", run));
      Result r = Summarize(arr, backlog, cpu90 - cpu10);
      r.rss_mib = rss / 1024.0;
      std::printf(
          "run %d polder: %.0f rec/s, %.1f MB/s, %.1f CPU-s/M, latency p50 %.0f ms p99 %.0f ms, "
          "RSS %.0f MiB, "
          "%.0f bytes/record\n",
          run, r.rate, r.mb_s, r.cpu_per_m, r.p50, r.p99, r.rss_mib,
          static_cast<double>(arr.bytes) / arr.count);
      polder.push_back(r);
      amersfoort->Signal(SIGTERM);
    }
    // MirrorMaker 2: a fresh target broker.
    if (g_flags.mm2) {
      auto target = FreshBroker(absl::StrCat("mm2-target-", run));
      ASSERT_NE(target, nullptr);
      const pid_t m = StartMirrorMaker(target->bootstrap_servers(), run);
      double cpu10 = 0, cpu90 = 0;
      std::thread live;
      const size_t backlog = source_total;
      Arrivals arr = Read(target->bootstrap_servers(), backlog, backlog + g_flags.live,
                          absl::StrCat("live-m", run, "-"), absl::Minutes(3),
                          AtMark([&] { return CpuSeconds(m); }, &cpu10, &cpu90, &live, seed[0],
                                 absl::StrCat("live-m", run)),
                          [] {});
      if (live.joinable()) live.join();
      source_total += g_flags.live;
      kill(m, SIGTERM);
      int st = 0;
      waitpid(m, &st, 0);
      std::string log;
      testing::RunCommand(absl::StrCat("tail -20 ", dir_, "/mm2-", run, ".log"), &log);
      ASSERT_EQ(arr.count, backlog + g_flags.live) << log;
      Dump(arr, absl::StrCat("mm2-", run));
      Result r = Summarize(arr, backlog, cpu90 - cpu10);
      std::printf(
          "run %d mm2:    %.0f rec/s, %.1f MB/s, %.1f CPU-s/M, latency p50 %.0f ms p99 %.0f ms\n",
          run, r.rate, r.mb_s, r.cpu_per_m, r.p50, r.p99);
      mm2.push_back(r);
    }
  }
  auto med = [](const std::vector<Result>& v, double Result::*f) {
    std::vector<double> x;
    for (const Result& r : v) x.push_back(r.*f);
    return Median(x);
  };
  std::printf(
      "\n| system | records/s | MB/s | CPU-s per million records | latency p50 ms | latency p99 ms "
      "|\n");
  std::printf("|---|---|---|---|---|---|\n");
  std::printf(
      "| Polder (2 nodes, mTLS, exactly once, audit) | %.0f | %.1f | %.1f | %.0f | %.0f |\n",
      med(polder, &Result::rate), med(polder, &Result::mb_s), med(polder, &Result::cpu_per_m),
      med(polder, &Result::p50), med(polder, &Result::p99));
  std::printf(
      "| MirrorMaker 2 (dedicated, exactly-once source) | %.0f | %.1f | %.1f | %.0f | %.0f |\n",
      med(mm2, &Result::rate), med(mm2, &Result::mb_s), med(mm2, &Result::cpu_per_m),
      med(mm2, &Result::p50), med(mm2, &Result::p99));
  std::printf(
      "\nratio (Polder / MM2): throughput %.2fx, p99 latency %.2fx; Polder node peak RSS %.0f MiB "
      "(median)\n",
      med(polder, &Result::rate) / med(mm2, &Result::rate),
      med(polder, &Result::p99) / med(mm2, &Result::p99), med(polder, &Result::rss_mib));
}

}  // namespace
}  // namespace polder

int main(int argc, char** argv) {
  return polder::bench::RunBenchmarks(
      argc, argv, "federation_bench: mirroring vs MirrorMaker 2, exactly once (docs/BENCHMARKS.md)",
      [] {
        polder::g_flags.runs = absl::GetFlag(FLAGS_runs);
        polder::g_flags.records = absl::GetFlag(FLAGS_records);
        polder::g_flags.live = absl::GetFlag(FLAGS_live);
        polder::g_flags.live_rate = absl::GetFlag(FLAGS_live_rate);
        polder::g_flags.mm2 = absl::GetFlag(FLAGS_mm2);
        polder::g_flags.dump = absl::GetFlag(FLAGS_dump);
      });
}
