#include "tools/polderctl/commands/tail_command.h"

#include <atomic>
#include <csignal>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/kafka/consumer.h"
#include "common/status/status_macros.h"
#include "tools/polderctl/commands/kafka_tail_consumer.h"
#include "tools/polderctl/commands/schema_source.h"
#include "tools/polderctl/commands/tail.h"

namespace polder {
namespace polderctl {

namespace {

std::atomic<bool> g_interrupted{false};
void OnInterrupt(int) { g_interrupted = true; }

}  // namespace

std::vector<cli::FlagSpec> TailFlags() {
  return {
      {"bootstrap", "the city's Kafka bootstrap servers", true},
      {"topic", "the dataset or mirror topic, e.g. groningen.mobility.bike-counts", true},
      {"from", "beginning or end", false, false, false, "beginning"},
      {"max", "stop after this many records"},
      {"follow", "keep reading new records until interrupted (Ctrl-C)", false, false, true},
      {"kafka-property", "librdkafka property k=v, e.g. security.protocol=ssl (paths only)", false,
       true},
      {"schema-url", "https://host:port of the node's schema endpoint or the registry's REST API",
       true},
      {"ca-file", "CA bundle verifying the schema endpoint's certificate (default: the system's)"},
      {"cert", "client certificate for a schema registry with mutual TLS"},
      {"key", "the client certificate's key"},
      {"federation", "refuse records whose ce_dataschema names another federation"},
  };
}

absl::Status RunTailCommand(const cli::Args& args, std::ostream& out, std::ostream& err) {
  TailOptions options;
  options.topic = args.Get("topic");
  options.follow = args.Bool("follow");
  options.federation = args.Get("federation");
  const std::string from = args.Get("from");
  if (from != "beginning" && from != "end") {
    return absl::InvalidArgumentError(absl::StrCat("--from '", from, "': use beginning or end"));
  }
  options.from_end = from == "end";
  if (args.Has("max") &&
      (!absl::SimpleAtoi(args.Get("max"), &options.max_records) || options.max_records < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max '", args.Get("max"), "' is not a positive number"));
  }
  // The schema endpoint first: a bad URL or certificate is reported before Kafka is contacted.
  HttpsOptions https;
  https.url = args.Get("schema-url");
  https.ca_file = args.Get("ca-file");
  https.cert_file = args.Get("cert");
  https.key_file = args.Get("key");
  ASSIGN_OR_RETURN(std::unique_ptr<HttpGetter> http, NewHttpsGetter(https));
  ConfluentSchemaSource schemas(std::move(http));
  kafka::ConsumerOptions consumer_options;
  consumer_options.client.bootstrap_servers = args.Get("bootstrap");
  consumer_options.client.client_id = "polderctl-tail";
  for (const std::string& kv : args.GetAll("kafka-property")) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--kafka-property '", kv, "': use k=v"));
    }
    const std::string name = kv.substr(0, eq);
    if (name == "isolation.level") {
      return absl::InvalidArgumentError(
          "--kafka-property isolation.level: tail always reads read_committed");
    }
    consumer_options.client.properties[name] = kv.substr(eq + 1);
  }
  consumer_options.client.properties.emplace("log_level", "3");
  consumer_options.read_committed = true;
  ASSIGN_OR_RETURN(std::unique_ptr<KafkaTailConsumer> consumer,
                   KafkaTailConsumer::Create(consumer_options));
  g_interrupted = false;
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  absl::StatusOr<TailStats> stats =
      RunTail(consumer.get(), &schemas, options, out, err, &g_interrupted);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  RETURN_IF_ERROR(stats.status());
  err << "polderctl tail: " << stats->printed << " record(s) printed, " << stats->skipped
      << " skipped\n";
  return absl::OkStatus();
}

}  // namespace polderctl
}  // namespace polder
