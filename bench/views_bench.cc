// Views benchmark: a Polder view set (the node's ViewJob: read_committed source, windowed
// aggregation, guard and publication gate, outputs + changelog + input offsets in one Kafka
// transaction) against the same windowed aggregation in Kafka Streams with exactly_once_v2
// (bench/streams/ViewsStreamsBench.java), on the same broker and the same source records.
//
//   bazel run -c opt //bench:views_bench -- --runs=3 --records=1000000 --sensors=2000
//   (--streams_fetch_mb=8 gives Kafka Streams' consumer the view job's 8 MiB partition fetch;
//   --sparse=N puts N sensors two by two in small municipalities, so the gate has work)
//
// Each run produces `records` bicycle counts (polder.datasets.mobility.v1.BikeCount in Polder's
// wire format, keyed by municipality; `sensors` counters in 40 municipalities reporting every
// quarter hour, ending an hour ago) to a fresh source topic of 4 partitions, then measures
// Polder (in this process, from ViewJob::Start until every record is committed: records/s and
// this process's CPU-s per million records) and then Kafka Streams on the same topic (from
// KafkaStreams.start() until its committed offsets reach the end: records/s and the JVM's CPU).
// Both compute per municipality the sum of counts in 15-minute and 1-hour windows, 5 minutes'
// grace, final results only, state in memory with a changelog. The table reports medians.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/bench_main.h"
#include "bench/bench_stats.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/status/status_matchers.h"
#include "common/views/names.h"
#include "common/wire/confluent_frame.h"
#include "common/wire/record_headers.h"
#include "nlohmann/json.hpp"
#include "proto/polder/datasets/mobility/v1/bike_count.pb.h"
#include "services/node/views/view_job.h"
#include "tools/kafka/kafka_broker.h"

ABSL_FLAG(int, runs, 3, "Runs per system (medians reported).");
ABSL_FLAG(int, records, 1000000, "Records in the dataset.");
ABSL_FLAG(int, sensors, 2000, "Counting sensors (entities).");
ABSL_FLAG(int, partitions, 4, "Partitions of the dataset's topic.");
ABSL_FLAG(int, streams_fetch_mb, 0,
          "Kafka Streams' consumer max.partition.fetch.bytes in MiB; 0: Kafka's default (1 MiB).");
ABSL_FLAG(int, sparse, 0,
          "Of the sensors, how many stand two by two in municipalities of their own and count 0-2 "
          "bicycles a quarter: small and dominated cells, so the publication gate has work.");

namespace polder {
namespace {

namespace mobility = ::polder::datasets::mobility::v1;

struct Flags {
  int runs = 3, records = 1000000, sensors = 2000, partitions = 4, streams_fetch_mb = 0, sparse = 0;
} g_flags;

constexpr int32_t kSchemaId = 7;
constexpr int32_t kCellSchemaId = 8;

using bench::Median;

std::string Quote(const std::string& s) { return absl::StrCat("'", s, "'"); }

std::string StreamsLibs() { return absl::StrCat(bench::StreamsHome(), "/libs"); }

class ViewsBench : public ::testing::Test {
 protected:
  // Each run has a broker of its own: the view set's changelog is named after the dataset, so
  // a fresh set needs a fresh cluster.
  void StartBroker(int run) {
    broker_.reset();
    kafka_testing::KafkaBrokerOptions options;
    absl::StatusOr<std::unique_ptr<kafka_testing::KafkaBroker>> b =
        kafka_testing::KafkaBroker::Start(options);
    ASSERT_OK(b.status());
    broker_ = *std::move(b);
  }
  kafka_testing::KafkaBroker& broker() { return *broker_; }
  kafka::ClientOptions ClientOptions() {
    kafka::ClientOptions o;
    o.bootstrap_servers = broker_->bootstrap_servers();
    o.client_id = "views-bench";
    o.properties["log_level"] = "3";
    return o;
  }
  std::unique_ptr<kafka_testing::KafkaBroker> broker_;

  // One run's source: every sensor's count for every quarter hour, in event-time order.
  std::string ProduceSource(int run) {
    const std::string topic = "bench.mobility.bike-counts";
    kafka::RdKafkaClientFactory clients;
    auto admin = clients.NewAdmin(ClientOptions());
    EXPECT_OK(admin.status());
    EXPECT_OK((*admin)->CreateTopic({topic, g_flags.partitions, 1, {}}, absl::Seconds(30)));
    kafka::ProducerOptions po;
    po.client = ClientOptions();
    auto producer = clients.NewProducer(po);
    EXPECT_OK(producer.status());
    std::mt19937_64 rng(run);
    const int quarters = std::max(1, g_flags.records / g_flags.sensors);
    const absl::Time end =
        absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) / 900 * 900) - absl::Hours(1);
    const absl::Time start = end - absl::Minutes(15) * quarters;
    std::atomic<int64_t> failed{0};
    int64_t sent = 0;
    for (int q = 0; q < quarters && sent < g_flags.records; ++q) {
      for (int s = 0; s < g_flags.sensors && sent < g_flags.records; ++s, ++sent) {
        mobility::BikeCount b;
        b.set_counter_id(absl::StrCat("counter-", s));
        b.mutable_event_time()->set_seconds(
            absl::ToUnixSeconds(start + absl::Minutes(15) * (q + 1)));
        const bool sparse = s < g_flags.sparse;
        const std::string municipality = sparse ? absl::StrFormat("GM%04d", 1000 + s / 2)
                                                : absl::StrFormat("GM%04d", 14 + s % 40);
        b.mutable_location()->set_municipality_code(municipality);
        b.set_count(static_cast<int64_t>(rng() % (sparse ? 3 : 50)));
        kafka::ProducerRecord r;
        r.topic = topic;
        // By municipality, as Kafka Streams' groupByKey needs (each key's records in one task).
        r.partition = static_cast<int32_t>(std::hash<std::string>()(municipality) %
                                           static_cast<size_t>(g_flags.partitions));
        r.key = municipality;
        r.value = wire::Encode(kSchemaId, {0}, b.SerializeAsString());
        r.headers = {{wire::kContentTypeHeader, wire::kConfluentProtobufContentType},
                     {wire::kDataSchemaHeader, wire::DataSchemaUrn("nl", kSchemaId)}};
        (*producer)->Send(std::move(r), [&failed](absl::StatusOr<kafka::RecordMetadata> m) {
          if (!m.ok()) ++failed;
        });
        // librdkafka's local queue holds 100,000 records: drain it now and then.
        if (sent % 50000 == 49999) {
          EXPECT_OK((*producer)->Flush(absl::Seconds(120)));
        }
      }
    }
    EXPECT_OK((*producer)->Flush(absl::Seconds(120)));
    EXPECT_EQ(failed.load(), 0);
    return topic;
  }

  struct Result {
    double seconds = 0, cpu_seconds = 0, peak_rss_mib = 0;
    int64_t cells = 0;
  };

  Result RunPolder(int run) {
    const std::string dataset = "mobility.bike-counts";
    kafka::RdKafkaClientFactory clients;
    auto admin = clients.NewAdmin(ClientOptions());
    EXPECT_OK(admin.status());
    EXPECT_OK((*admin)->CreateTopic(
        {views::ViewChangelogTopic(dataset), 1, 1, {{"cleanup.policy", "compact"}}},
        absl::Seconds(30)));
    node::ViewJob::Options o;
    o.peer = "bench";
    o.federation = "nl";
    o.spec.dataset = dataset;
    for (const auto& [id, size] : std::vector<std::pair<std::string, views::WindowSize>>{
             {"quarter", views::WindowSize::kQuarterHour}, {"hour", views::WindowSize::kHour}}) {
      views::ViewSpec v;
      v.id = id;
      v.window = size;
      v.group_by = {*views::ParseDimension("municipality")};
      v.measures = {*views::ParseMeasure("count")};
      o.spec.views.push_back(v);
      EXPECT_OK((*admin)->CreateTopic({views::ViewTopic("bench", dataset, id), 1, 1, {}},
                                      absl::Seconds(30)));
    }
    o.spec.max_event_age = absl::Hours(24 * 30);
    o.source_partitions = g_flags.partitions;
    o.key_path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/views-r", run, "/", dataset, ".key");
    o.output_schema_id = kCellSchemaId;
    o.producer.client = ClientOptions();
    o.consumer.client = ClientOptions();
    o.dataset_message = mobility::BikeCount::descriptor();
    o.descriptor_of = [](int32_t id) -> absl::StatusOr<const google::protobuf::Descriptor*> {
      if (id == kSchemaId) return mobility::BikeCount::descriptor();
      return absl::NotFoundError(absl::StrCat("schema ", id));
    };

    Result r;
    const double cpu0 = bench::SelfCpuSeconds();
    const absl::Time t0 = absl::Now();
    absl::StatusOr<std::unique_ptr<node::ViewJob>> job = node::ViewJob::Start(o, clients);
    EXPECT_OK(job.status());
    if (!job.ok()) return r;
    auto consumed = [&] {
      const node::ViewJob::Stats s = (*job)->stats();
      int64_t n = s.merged + s.late;
      for (const auto& [reason, count] : s.rejected) n += count;
      return n;
    };
    int64_t last = -1;
    absl::Time progress = absl::Now();
    while (consumed() < g_flags.records) {
      absl::Status s = (*job)->Step();
      EXPECT_OK(s);
      if (!s.ok()) return r;
      if (consumed() != last) {
        last = consumed();
        progress = absl::Now();
      } else if (absl::Now() - progress > absl::Seconds(60)) {
        const node::ViewJob::Stats st = (*job)->stats();
        ADD_FAILURE() << "the view job stopped at " << last << " of " << g_flags.records
                      << " records (merged " << st.merged << ", late " << st.late << ")";
        return r;
      }
    }
    EXPECT_OK((*job)->Commit());
    r.seconds = absl::ToDoubleSeconds(absl::Now() - t0);
    r.cpu_seconds = bench::SelfCpuSeconds() - cpu0;
    // The view job runs in this process: its peak resident set so far (over the runs).
    r.peak_rss_mib = bench::PeakRssMiB(getpid());
    const node::ViewJob::Stats s = (*job)->stats();
    r.cells = s.cells;
    EXPECT_EQ(s.late, 0);
    EXPECT_TRUE(s.rejected.empty());
    int64_t protected_cells = 0;
    for (const auto& [rule, n] : s.protected_cells) protected_cells += n;
    std::printf(
        "  polder: %lld cells (%lld protected), gate: %lld LPs, %lld moves, %lld relabelled, "
        "%lld secondary, %lld violations\n",
        static_cast<long long>(s.cells), static_cast<long long>(protected_cells),
        static_cast<long long>(s.gate.lps), static_cast<long long>(s.gate.moves),
        static_cast<long long>(s.gate.relabelled), static_cast<long long>(s.gate.secondary),
        static_cast<long long>(s.gate.c2_violations + s.gate.c3_violations));
    return r;
  }

  Result RunStreams(int run, const std::string& topic, const std::string& classes) {
    const std::string app = absl::StrCat("views-bench-streams-r", run);
    const std::string out = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", app, ".out");
    {
      // Its output topics (the broker does not create topics on use); its internal topics it
      // creates itself.
      kafka::RdKafkaClientFactory clients;
      auto admin = clients.NewAdmin(ClientOptions());
      EXPECT_OK(admin.status());
      for (const char* view : {"quarter", "hour"}) {
        EXPECT_OK(
            (*admin)->CreateTopic({absl::StrCat(app, "-", view), 1, 1, {}}, absl::Seconds(30)));
      }
    }
    const std::string command = absl::StrCat(
        "java -cp ", Quote(classes + ":" + StreamsLibs() + "/*"), " ViewsStreamsBench ",
        Quote(broker().bootstrap_servers()), " ", Quote(topic), " ", Quote(app), " ",
        Quote(absl::StrCat(std::getenv("TEST_TMPDIR"), "/", app, ".state")),
        g_flags.streams_fetch_mb > 0 ? absl::StrCat(" ", g_flags.streams_fetch_mb) : "", " >",
        Quote(out), " 2>", Quote(out + ".log"));
    Result r;
    std::fflush(stdout);
    const int rc = std::system(command.c_str());
    EXPECT_EQ(rc, 0) << "Kafka Streams failed; see " << out << ".log";
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    try {
      const nlohmann::json j = nlohmann::json::parse(text.str());
      EXPECT_EQ(j.at("records").get<int64_t>(), g_flags.records);
      r.seconds = j.at("seconds").get<double>();
      r.cpu_seconds = j.at("cpu_seconds").get<double>();
      r.peak_rss_mib = j.value("peak_rss_mib", 0.0);
      r.cells = j.at("cells").get<int64_t>();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "Kafka Streams printed no result (" << e.what() << "): " << text.str();
    }
    std::printf("  kafka streams: %lld cells\n", static_cast<long long>(r.cells));
    return r;
  }
};

TEST_F(ViewsBench, PolderAgainstKafkaStreams) {
  const std::string classes = absl::StrCat(std::getenv("TEST_TMPDIR"), "/streams-classes");
  const std::string source =
      absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"),
                   "/bench/streams/ViewsStreamsBench.java");
  ASSERT_EQ(std::system(absl::StrCat("mkdir -p ", Quote(classes), " && javac -encoding UTF-8 -d ",
                                     Quote(classes), " -cp ", Quote(StreamsLibs() + "/*"), " ",
                                     Quote(source))
                            .c_str()),
            0)
      << "javac failed: is Kafka Streams in " << StreamsLibs() << "? run tools/setup/setup.sh";

  std::vector<double> polder_rate, polder_cpu, streams_rate, streams_cpu, polder_rss, streams_rss;
  for (int run = 1; run <= g_flags.runs; ++run) {
    std::printf("run %d: producing %d records\n", run, g_flags.records);
    StartBroker(run);
    if (broker_ == nullptr) return;
    const std::string topic = ProduceSource(run);
    const Result p = RunPolder(run);
    const Result s = RunStreams(run, topic, classes);
    if (p.seconds <= 0 || s.seconds <= 0) continue;
    polder_rate.push_back(g_flags.records / p.seconds);
    polder_cpu.push_back(p.cpu_seconds / (g_flags.records / 1e6));
    streams_rate.push_back(g_flags.records / s.seconds);
    streams_cpu.push_back(s.cpu_seconds / (g_flags.records / 1e6));
    polder_rss.push_back(p.peak_rss_mib);
    streams_rss.push_back(s.peak_rss_mib);
    std::printf(
        "  polder %.0f records/s (%.1f s, %.1f CPU-s); kafka streams %.0f records/s "
        "(%.1f s, %.1f CPU-s)\n",
        polder_rate.back(), p.seconds, p.cpu_seconds, streams_rate.back(), s.seconds,
        s.cpu_seconds);
  }
  ASSERT_FALSE(polder_rate.empty());
  const double pr = Median(polder_rate), sr = Median(streams_rate);
  const double pc = Median(polder_cpu), sc = Median(streams_cpu);
  std::printf(
      "\nmedians of %zu runs, %d records, %d sensors (%d sparse), %d partitions, 2 views:\n",
      polder_rate.size(), g_flags.records, g_flags.sensors, g_flags.sparse, g_flags.partitions);
  const double prss = Median(polder_rss), srss = Median(streams_rss);
  std::printf("| | records/s | CPU-s per million records | peak RSS MiB |\n|---|---|---|---|\n");
  std::printf("| Polder view job (in the benchmark process) | %.0f | %.1f | %.0f |\n", pr, pc,
              prss);
  std::printf("| Kafka Streams (exactly_once_v2, its JVM) | %.0f | %.1f | %.0f |\n", sr, sc, srss);
  std::printf("| ratio Polder / Kafka Streams | %.2f | %.2f | %.2f |\n", pr / sr, pc / sc,
              prss / srss);
}

}  // namespace
}  // namespace polder

int main(int argc, char** argv) {
  return polder::bench::RunBenchmarks(
      argc, argv,
      "views_bench: aggregate views vs Kafka Streams, exactly once (docs/BENCHMARKS.md)", [] {
        polder::g_flags.runs = absl::GetFlag(FLAGS_runs);
        polder::g_flags.records = absl::GetFlag(FLAGS_records);
        polder::g_flags.sensors = absl::GetFlag(FLAGS_sensors);
        polder::g_flags.partitions = absl::GetFlag(FLAGS_partitions);
        polder::g_flags.streams_fetch_mb = absl::GetFlag(FLAGS_streams_fetch_mb);
        polder::g_flags.sparse = absl::GetFlag(FLAGS_sparse);
      });
}
