// Ingest benchmark: polder-node (mTLS, gateway certificate, validation against the registered
// schema, transactional commit with idempotency keys) against Kafka's own
// org.apache.kafka.tools.ProducerPerformance writing the same bytes per record (key and headers
// included) to the same broker with the same guarantees (acks=all, idempotence, transactions
// committed as often as the node commits).
//
//   bazel run -c opt //bench:ingest_bench -- --runs=3 --seconds=20 --streams=4 --batch=100
//
// Everything runs on this machine: one real broker, the registry and the node as processes,
// the clients in this process. Each run measures Polder (gRPC client streaming, then unary calls
// for per-batch latency) and then the baseline; the table reports medians of the runs.
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/bench_main.h"
#include "common/kafka/admin.h"
#include "common/kafka/rdkafka_admin.h"
#include "google/protobuf/util/json_util.h"
#include "proto/polder/datasets/mobility/v1/bike_count.pb.h"
#include "services/node/ingest/validator.h"
#include "tests/node/node_fixture.h"
#include "tools/generator/generator.h"

ABSL_FLAG(int, runs, 3, "Runs per system (medians reported).");
ABSL_FLAG(int, seconds, 20, "Seconds per run.");
ABSL_FLAG(int, streams, 4, "Concurrent ingest streams.");
ABSL_FLAG(int, batch, 100, "Records per batch.");
ABSL_FLAG(int, latency_threads, 4, "Clients measuring single-batch latency.");

namespace polder {
namespace {

using namespace node_testing;  // NOLINT

struct Flags {
  int runs = 3, seconds = 20, streams = 4, batch = 100, latency_threads = 4;
} g_flags;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(in, line);
  std::vector<std::string> f = absl::StrSplit(line.substr(line.rfind(')') + 2), ' ');
  return (std::stod(f[11]) + std::stod(f[12])) / sysconf(_SC_CLK_TCK);  // utime + stime
}

double Metric(const ServiceProcess& node, const std::string& prefix) {
  std::string out;
  testing::RunCommand(absl::StrCat("curl -s http://127.0.0.1:", node.port("ops_port"), "/metrics"),
                      &out);
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, prefix))
      sum += std::stod(std::string(line.substr(line.rfind(' ') + 1)));
  }
  return sum;
}

struct Measured {
  double records_per_s = 0, mb_per_s = 0, cpu_s_per_m = 0, p50_ms = 0, p99_ms = 0,
         txn_interval_ms = 0, records_per_txn = 0;
  int64_t records = 0;
};

class IngestBench : public NodeE2eTest {
 protected:
  // Groningen's bicycle counts from the sample data generator (tools/generator), as binary
  // BikeCount messages padded to ~200 bytes with the location description.
  void MakePayloads() {
    const absl::Time now = absl::Now();
    for (int step = 0; payloads_.size() < 1000; ++step) {
      auto records = generator::Generate("groningen", "mobility.bike-counts",
                                         now - absl::Minutes(15) * step, 7);
      ASSERT_OK(records.status());
      for (const generator::GeneratedRecord& r : *records) {
        datasets::mobility::v1::BikeCount b;
        ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.json, &b).ok());
        b.mutable_location()->clear_description();
        const size_t size = b.ByteSizeLong();
        b.mutable_location()->set_description(
            std::string(size + 3 < 200 ? 200 - size - 3 : 1, 'x'));
        payloads_.push_back(b.SerializeAsString());
      }
    }
  }

  nv1::PublishRequest Batch(const std::string& key, int n) {
    nv1::PublishRequest r;
    r.set_dataset(kBikes);
    r.set_idempotency_key(key);
    for (int i = 0; i < n; ++i) r.add_records()->set_binary(payloads_[i % payloads_.size()]);
    return r;
  }

  Measured Polder(const ServiceProcess& node, int run, int64_t record_bytes) {
    Measured result;
    std::atomic<int64_t> records{0};
    std::atomic<bool> stop{false};
    const double cpu0 = CpuSeconds(node.pid());
    const double txn0 = Metric(node, "polder_kafka_transactions_total{outcome=\"committed\"}");
    const absl::Time start = absl::Now();
    std::vector<std::thread> threads;
    for (int t = 0; t < g_flags.streams; ++t) {
      threads.emplace_back([&, t] {
        auto stub = Ingest(node.grpc_port());
        for (int s = 0; !stop; ++s) {
          grpc::ClientContext ctx;
          nv1::PublishStreamResponse resp;
          auto writer = stub->PublishStream(&ctx, &resp);
          for (int b = 0; b < 20 && !stop; ++b)
            writer->Write(Batch(absl::StrCat("r", run, "-t", t, "-s", s, "-b", b), g_flags.batch));
          writer->WritesDone();
          if (writer->Finish().ok()) records += resp.records();
        }
      });
    }
    absl::SleepFor(absl::Seconds(g_flags.seconds));
    stop = true;
    for (auto& th : threads) th.join();
    const double secs = absl::ToDoubleSeconds(absl::Now() - start);
    const double txns =
        Metric(node, "polder_kafka_transactions_total{outcome=\"committed\"}") - txn0;
    result.records = records.load();
    result.records_per_s = records / secs;
    result.mb_per_s = records * record_bytes / secs / 1e6;
    result.cpu_s_per_m = (CpuSeconds(node.pid()) - cpu0) / (records / 1e6);
    result.txn_interval_ms = txns > 0 ? secs * 1000 / txns : 0;
    result.records_per_txn = txns > 0 ? records / txns : 0;
    // Per-batch latency: unary Publish of one batch (request → committed answer), same concurrency.
    std::vector<std::vector<double>> lat(g_flags.latency_threads);
    stop = false;
    threads.clear();
    for (int t = 0; t < g_flags.latency_threads; ++t) {
      threads.emplace_back([&, t] {
        auto stub = Ingest(node.grpc_port());
        for (int i = 0; !stop; ++i) {
          grpc::ClientContext ctx;
          nv1::PublishResponse resp;
          const absl::Time a = absl::Now();
          if (stub->Publish(&ctx, Batch(absl::StrCat("lat-r", run, "-t", t, "-", i), g_flags.batch),
                            &resp)
                  .ok()) {
            lat[t].push_back(absl::ToDoubleMilliseconds(absl::Now() - a));
          }
        }
      });
    }
    absl::SleepFor(absl::Seconds(std::max(5, g_flags.seconds / 2)));
    stop = true;
    for (auto& th : threads) th.join();
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    result.p50_ms = Percentile(all, 0.5);
    result.p99_ms = Percentile(all, 0.99);
    return result;
  }

  Measured Baseline(int run, int64_t records, int64_t record_bytes, double txn_interval_ms) {
    Measured result;
    const std::string topic = absl::StrCat("bench-baseline-", peer_, "-", run);
    auto admin = kafka::KafkaAdmin::Create(ClientOptions());
    EXPECT_OK(admin.status());
    EXPECT_OK((*admin)->CreateTopic(
        {topic, 3, 1, {{"max.message.bytes", std::to_string((1 << 20) + 1024)}}},
        absl::Seconds(10)));
    const std::string out = absl::StrCat(dir_, "/perf-", run, ".txt");
    std::vector<std::string> args = {
        "java",
        "-Xmx512m",
        "-cp",
        absl::StrCat(bench::KafkaHome(), "/libs/*"),
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        std::to_string(records),
        "--record-size",
        std::to_string(record_bytes),
        "--throughput",
        "-1",
        "--transactional-id",
        absl::StrCat("perf-", peer_, "-", run),
        "--transaction-duration-ms",
        std::to_string(std::max<int64_t>(1, static_cast<int64_t>(txn_interval_ms))),
        "--producer-props",
        absl::StrCat("bootstrap.servers=", broker().bootstrap_servers()),
        "acks=all",
        "enable.idempotence=true",
        "linger.ms=5",
        "batch.size=1048576",
        "max.request.size=1114112"};
    const absl::Time start = absl::Now();
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("java", argv.data());
      _exit(127);
    }
    int status = 0;
    struct rusage usage {};
    wait4(pid, &status, 0, &usage);
    const double secs = absl::ToDoubleSeconds(absl::Now() - start);
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    // "N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency, P50 ms 50th,
    // ..."
    std::smatch m;
    std::string t = text.str();
    std::regex re(
        R"((\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th)");
    std::string last;
    for (auto it = std::sregex_iterator(t.begin(), t.end(), re); it != std::sregex_iterator(); ++it)
      last = it->str();
    EXPECT_FALSE(last.empty()) << t;
    if (!std::regex_search(last, m, re)) return result;
    result.records = std::stoll(m[1]);
    result.records_per_s = std::stod(m[2]);
    result.mb_per_s = result.records_per_s * record_bytes / 1e6;
    result.p50_ms = std::stod(m[6]);
    result.p99_ms = std::stod(m[8]);
    const double cpu = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 +
                       usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
    result.cpu_s_per_m = cpu / (result.records / 1e6);
    (void)secs;
    return result;
  }

  std::vector<std::string> payloads_;
};

TEST_F(IngestBench, PolderNodeAgainstProducerPerformance) {
  ingest_limits_ = "  publish_timeout: 15s\n  max_event_age: 24h\n";
  auto node = StartNode();
  MakePayloads();
  ASSERT_FALSE(payloads_.empty());
  std::printf("payload: %zu bytes of Protobuf per record\n", payloads_[0].size());
  // Bytes of one Kafka record as the node writes it: key, headers and framed value.
  auto stub = Ingest(node->grpc_port());
  {
    grpc::ClientContext ctx;
    nv1::PublishResponse resp;
    ASSERT_TRUE(stub->Publish(&ctx, Batch("probe", 1), &resp).ok());
  }
  auto sample = ReadRecords(Topic(), 3, 1, absl::Seconds(10));
  ASSERT_FALSE(sample.empty());
  int64_t record_bytes = static_cast<int64_t>(sample[0].value.size() + sample[0].key->size());
  for (const auto& h : sample[0].headers)
    record_bytes += static_cast<int64_t>(h.key.size() + h.value.size());
  std::vector<Measured> ours, theirs;
  for (int run = 0; run < g_flags.runs; ++run) {
    ours.push_back(Polder(*node, run, record_bytes));
    theirs.push_back(Baseline(run, ours.back().records, record_bytes, ours.back().txn_interval_ms));
    std::printf(
        "run %d: polder %.0f rec/s (p50 %.1f ms, p99 %.1f ms, %.0f rec/txn every %.1f ms); "
        "ProducerPerformance %.0f rec/s (p50 %.0f ms, p99 %.0f ms)\n",
        run + 1, ours.back().records_per_s, ours.back().p50_ms, ours.back().p99_ms,
        ours.back().records_per_txn, ours.back().txn_interval_ms, theirs.back().records_per_s,
        theirs.back().p50_ms, theirs.back().p99_ms);
  }
  auto med = [](const std::vector<Measured>& v, double Measured::*f) {
    std::vector<double> x;
    for (const Measured& r : v) x.push_back(r.*f);
    return Median(x);
  };
  std::printf(
      "\nmedians of %d runs, %lld bytes per record (key + headers + value), %d streams x %d-record "
      "batches\n",
      g_flags.runs, static_cast<long long>(record_bytes), g_flags.streams, g_flags.batch);
  std::printf(
      "| | records/s | MB/s | CPU-s per million records | p50 ms | p99 ms "
      "|\n|---|---|---|---|---|---|\n");
  std::printf(
      "| polder-node (gRPC stream, mTLS, validation, txn + keys) | %.0f | %.1f | %.1f | %.1f | "
      "%.1f |\n",
      med(ours, &Measured::records_per_s), med(ours, &Measured::mb_per_s),
      med(ours, &Measured::cpu_s_per_m), med(ours, &Measured::p50_ms),
      med(ours, &Measured::p99_ms));
  std::printf(
      "| ProducerPerformance (acks=all, idempotent, transactional) | %.0f | %.1f | %.1f | %.0f | "
      "%.0f |\n",
      med(theirs, &Measured::records_per_s), med(theirs, &Measured::mb_per_s),
      med(theirs, &Measured::cpu_s_per_m), med(theirs, &Measured::p50_ms),
      med(theirs, &Measured::p99_ms));
  std::printf("| ratio | %.2fx | | | | |\n",
              med(ours, &Measured::records_per_s) / med(theirs, &Measured::records_per_s));
}

}  // namespace
}  // namespace polder

int main(int argc, char** argv) {
  return polder::bench::RunBenchmarks(
      argc, argv,
      "ingest_bench: polder-node ingest vs Kafka's ProducerPerformance (docs/BENCHMARKS.md)", [] {
        polder::g_flags.runs = absl::GetFlag(FLAGS_runs);
        polder::g_flags.seconds = absl::GetFlag(FLAGS_seconds);
        polder::g_flags.streams = absl::GetFlag(FLAGS_streams);
        polder::g_flags.batch = absl::GetFlag(FLAGS_batch);
        polder::g_flags.latency_threads = absl::GetFlag(FLAGS_latency_threads);
      });
}
