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
#include <netinet/tcp.h>
#include <openssl/ssl.h>
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
#include "bench/bench_stats.h"
#include "common/http/test_sockets.h"
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

using bench::CpuSeconds;
using bench::Median;
using bench::PeakRssMiB;
using bench::Percentile;
using bench::SelfCpuSeconds;

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
  // CPU-seconds per million records of the load clients (this process for Polder's phases; the
  // JVM is its own client) and of the broker over the same interval; peak RSS of the process
  // under test (the node, the ProducerPerformance JVM) in MiB.
  double client_cpu_s_per_m = 0, broker_cpu_s_per_m = 0, peak_rss_mib = 0;
  double cpu_s = 0;  // the baseline JVM's whole CPU-seconds, start-up included
  int64_t records = 0;
};

// A keep-alive HTTPS/1.1 connection to the node's ingest listener with the gateway's
// certificate, as an IoT gateway would hold one.
class HttpsClient {
 public:
  HttpsClient(int port, const tls::TlsFiles& id) : port_(port) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, id.trust_bundle_path.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_use_certificate_chain_file(ctx_, id.cert_path.c_str());
    SSL_CTX_use_PrivateKey_file(ctx_, id.key_path.c_str(), SSL_FILETYPE_PEM);
  }
  ~HttpsClient() {
    Close();
    SSL_CTX_free(ctx_);
  }
  // POSTs `body` (a JSON array); the HTTP status, or -1 when the connection failed.
  int Post(const std::string& path, const std::string& key, const std::string& body) {
    if (ssl_ == nullptr && !Open()) return -1;
    const std::string req = absl::StrCat(
        "POST ", path, " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n",
        "Idempotency-Key: ", key, "\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
    if (SSL_write(ssl_, req.data(), static_cast<int>(req.size())) <= 0) return Fail();
    std::string in;
    char buf[16384];
    size_t head_end = std::string::npos;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) return Fail();
      in.append(buf, n);
    }
    const std::string head = absl::AsciiStrToLower(in.substr(0, head_end));
    size_t length = 0;
    const size_t cl = head.find("content-length:");
    if (cl != std::string::npos) length = std::strtoul(head.c_str() + cl + 15, nullptr, 10);
    while (in.size() < head_end + 4 + length) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) return Fail();
      in.append(buf, n);
    }
    const int status = std::atoi(head.c_str() + head.find(' ') + 1);
    if (absl::StrContains(head, "connection: close")) Close();
    return status;
  }

 private:
  bool Open() {
    fd_ = http::Connect(port_);
    if (fd_ < 0) return false;
    // As curl and HTTP client libraries do: no Nagle delay on a request of several segments.
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    SSL_set1_host(ssl_, "localhost");
    if (SSL_connect(ssl_) != 1) {
      Close();
      return false;
    }
    return true;
  }
  int Fail() {
    Close();
    return -1;
  }
  void Close() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) close(fd_);
    ssl_ = nullptr;
    fd_ = -1;
  }
  int port_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
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
        std::string json;
        EXPECT_TRUE(google::protobuf::util::MessageToJsonString(b, &json).ok());
        json_payloads_.push_back(json);
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

  // CPU counters at the start of a phase; Finish turns them into the phase's figures.
  struct PhaseStart {
    double node_cpu, self_cpu, broker_cpu;
    absl::Time at;
  };
  PhaseStart Start(const ServiceProcess& node) {
    return {CpuSeconds(node.pid()), SelfCpuSeconds(), CpuSeconds(broker().pid()), absl::Now()};
  }
  // Fills `r`'s throughput and CPU-per-record figures for `records` sent since `s`; returns the
  // phase's seconds.
  double Finish(const ServiceProcess& node, const PhaseStart& s, int64_t records,
                int64_t record_bytes, Measured* r) {
    const double secs = absl::ToDoubleSeconds(absl::Now() - s.at);
    const double millions = records / 1e6;
    r->records = records;
    r->records_per_s = records / secs;
    r->mb_per_s = records * record_bytes / secs / 1e6;
    r->cpu_s_per_m = (CpuSeconds(node.pid()) - s.node_cpu) / millions;
    r->client_cpu_s_per_m = (SelfCpuSeconds() - s.self_cpu) / millions;
    r->broker_cpu_s_per_m = (CpuSeconds(broker().pid()) - s.broker_cpu) / millions;
    return secs;
  }

  Measured Polder(const ServiceProcess& node, int run, int64_t record_bytes) {
    Measured result;
    std::atomic<int64_t> records{0};
    std::atomic<bool> stop{false};
    const double txn0 = Metric(node, "polder_kafka_transactions_total{outcome=\"committed\"}");
    const PhaseStart start = Start(node);
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
    const double secs = Finish(node, start, records.load(), record_bytes, &result);
    const double txns =
        Metric(node, "polder_kafka_transactions_total{outcome=\"committed\"}") - txn0;
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
    result.peak_rss_mib = PeakRssMiB(node.pid());
    return result;
  }

  // The HTTPS JSON path: `streams` keep-alive connections, each POSTing one batch (a JSON array
  // of `batch` records, an Idempotency-Key each) and waiting for the committed answer. Latency
  // is that of each POST.
  Measured Https(const ServiceProcess& node, int run, int64_t record_bytes) {
    Measured result;
    std::string body = "[";
    for (int i = 0; i < g_flags.batch; ++i) {
      absl::StrAppend(&body, i == 0 ? "" : ",", json_payloads_[i % json_payloads_.size()]);
    }
    body += "]";
    const std::string path = absl::StrCat("/v1/datasets/", kBikes, "/records");
    std::atomic<int64_t> records{0}, failed{0};
    std::atomic<bool> stop{false};
    std::vector<std::vector<double>> lat(g_flags.streams);
    const PhaseStart start = Start(node);
    std::vector<std::thread> threads;
    for (int t = 0; t < g_flags.streams; ++t) {
      threads.emplace_back([&, t] {
        HttpsClient client(node.http_port(), gateway_);
        for (int i = 0; !stop; ++i) {
          const absl::Time a = absl::Now();
          const int status = client.Post(path, absl::StrCat("h-r", run, "-t", t, "-", i), body);
          if (status == 200) {
            records += g_flags.batch;
            lat[t].push_back(absl::ToDoubleMilliseconds(absl::Now() - a));
          } else {
            ++failed;
          }
        }
      });
    }
    absl::SleepFor(absl::Seconds(g_flags.seconds));
    stop = true;
    for (auto& th : threads) th.join();
    EXPECT_EQ(failed.load(), 0) << "HTTPS posts that did not answer 200";
    Finish(node, start, records.load(), record_bytes, &result);
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    result.p50_ms = Percentile(all, 0.5);
    result.p99_ms = Percentile(all, 0.99);
    result.peak_rss_mib = PeakRssMiB(node.pid());
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
    const double broker0 = CpuSeconds(broker().pid());
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
    const double broker_cpu = CpuSeconds(broker().pid()) - broker0;
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
    result.cpu_s = cpu;
    result.cpu_s_per_m = cpu / (result.records / 1e6);
    result.client_cpu_s_per_m = 0;  // the JVM is its own client
    result.broker_cpu_s_per_m = broker_cpu / (result.records / 1e6);
    result.peak_rss_mib = usage.ru_maxrss / 1024.0;
    return result;
  }

  std::vector<std::string> payloads_, json_payloads_;
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
  // The JVM's start-up and shutdown, measured once with a single record and taken off each
  // baseline run's CPU, so only the sending is compared with the node's interval.
  const double jvm_startup_cpu = Baseline(1000, 1, record_bytes, 1000).cpu_s;
  std::printf("ProducerPerformance start-up + shutdown: %.2f CPU-s (taken off each run)\n",
              jvm_startup_cpu);
  std::vector<Measured> grpc, https, theirs;
  for (int run = 0; run < g_flags.runs; ++run) {
    grpc.push_back(Polder(*node, run, record_bytes));
    https.push_back(Https(*node, run, record_bytes));
    theirs.push_back(Baseline(run, grpc.back().records, record_bytes, grpc.back().txn_interval_ms));
    Measured& b = theirs.back();
    b.cpu_s_per_m = std::max(0.0, b.cpu_s - jvm_startup_cpu) / (b.records / 1e6);
    std::printf(
        "run %d: gRPC %.0f rec/s (%.1f node CPU-s/M, p50 %.1f ms, p99 %.1f ms, %.0f rec/txn every "
        "%.1f ms); HTTPS JSON %.0f rec/s (%.1f node CPU-s/M); ProducerPerformance %.0f rec/s "
        "(%.1f CPU-s/M, p50 %.0f ms, p99 %.0f ms)\n",
        run + 1, grpc.back().records_per_s, grpc.back().cpu_s_per_m, grpc.back().p50_ms,
        grpc.back().p99_ms, grpc.back().records_per_txn, grpc.back().txn_interval_ms,
        https.back().records_per_s, https.back().cpu_s_per_m, b.records_per_s, b.cpu_s_per_m,
        b.p50_ms, b.p99_ms);
  }
  auto med = [](const std::vector<Measured>& v, double Measured::*f) {
    std::vector<double> x;
    for (const Measured& r : v) x.push_back(r.*f);
    return Median(x);
  };
  std::printf(
      "\nmedians of %d runs, %lld bytes per record (key + headers + value), %d streams or "
      "connections x %d-record batches\n\n",
      g_flags.runs, static_cast<long long>(record_bytes), g_flags.streams, g_flags.batch);
  std::printf(
      "| | records/s | MB/s | CPU-s/M: process | CPU-s/M: load client | CPU-s/M: broker | "
      "p50 ms | p99 ms | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  auto row = [&](const char* name, const std::vector<Measured>& v) {
    std::printf("| %s | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f |\n", name,
                med(v, &Measured::records_per_s), med(v, &Measured::mb_per_s),
                med(v, &Measured::cpu_s_per_m), med(v, &Measured::client_cpu_s_per_m),
                med(v, &Measured::broker_cpu_s_per_m), med(v, &Measured::p50_ms),
                med(v, &Measured::p99_ms), med(v, &Measured::peak_rss_mib));
  };
  row("polder-node, gRPC PublishStream (mTLS, validation, txn + keys)", grpc);
  row("polder-node, HTTPS JSON POST (mTLS, validation, txn + keys)", https);
  row("ProducerPerformance (acks=all, idempotent, transactional; JVM start-up excluded)", theirs);
  const double base_rate = med(theirs, &Measured::records_per_s),
               base_cpu = med(theirs, &Measured::cpu_s_per_m);
  std::printf("| **gRPC / ProducerPerformance** | **%.2fx** | | **%.2fx** | | | | | |\n",
              med(grpc, &Measured::records_per_s) / base_rate,
              med(grpc, &Measured::cpu_s_per_m) / base_cpu);
  std::printf("| **HTTPS JSON / ProducerPerformance** | **%.2fx** | | **%.2fx** | | | | | |\n",
              med(https, &Measured::records_per_s) / base_rate,
              med(https, &Measured::cpu_s_per_m) / base_cpu);
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
