// polder-aggregator: the national operator's figures from the cities' mirrored views (ADR 0018).
//
//   polder-aggregator --config aggregator.yaml [--ready_file ports.json]
//
// Reads the cities' view topics that the national node mirrors into the national Kafka, writes
// national figures (with revisions for late cities) exactly once to national.<dataset>.view.<view>,
// and serves them on a read-only HTTPS API. Logs one JSON object per line. SIGINT/SIGTERM stop it
// (the job commits what it has pending). Assembled in services/aggregator/aggregator_server.h.
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/log/log.h"
#include "common/server/process.h"
#include "services/aggregator/aggregator_config.h"
#include "services/aggregator/aggregator_server.h"

ABSL_FLAG(std::string, config, "", "Path of the YAML configuration (required).");
ABSL_FLAG(bool, check_config, false,
          "Read and check the configuration (as at start), print `ok` and exit; 2 with the "
          "error, naming the key, otherwise.");
ABSL_FLAG(std::string, ready_file, "",
          "Written with the listening ports once the aggregator serves.");
ABSL_FLAG(std::string, api_address, "",
          "Overrides aggregator.api_address (host:port; port 0 picks one).");
ABSL_FLAG(std::string, ops_address, "",
          "Overrides aggregator.ops_address (host:port; port 0 picks one).");

namespace polder {
namespace aggregator {
namespace {

AggregatorServer::BeforeCommit TestHook() {
#ifdef POLDER_AGGREGATOR_TEST_HOOKS
  // Only in //services/aggregator:polder-aggregator-test-hooks (testonly), never in
  // polder-aggregator: with POLDER_TEST_CRASH_AGGREGATOR_COMMIT=n the aggregator kills itself on
  // its n-th commit that writes figures, after they reached the broker and before the
  // transaction commits.
  if (const char* crash = std::getenv("POLDER_TEST_CRASH_AGGREGATOR_COMMIT"); crash != nullptr) {
    const int64_t at = std::atoll(crash);
    log::Warning("test hook armed: this aggregator kills itself before committing figures",
                 {{"commit", at}});
    return [at](int64_t commit) {
      if (commit != at) return;
      log::Error("test hook: killing this process between producing figures and committing them",
                 {{"commit", commit}});
      std::raise(SIGKILL);
    };
  }
#endif
  return nullptr;
}

void Override(std::string* value, const absl::Flag<std::string>& flag) {
  if (std::string v = absl::GetFlag(flag); !v.empty()) *value = std::move(v);
}

int Main(AggregatorConfig config, server::TerminationSignals& signals) {
  log::SetComponent("polder-aggregator");
  server::InstallProtobufLogBridge();
  // The one place the aggregator names an implementation: every Kafka client comes from here.
  kafka::RdKafkaClientFactory kafka_clients;
  absl::StatusOr<std::unique_ptr<AggregatorServer>> server =
      AggregatorServer::Start(std::move(config), kafka_clients, TestHook());
  if (!server.ok()) {
    log::Error("polder-aggregator failed", {{"error", std::string(server.status().message())}});
    return 1;
  }
  if (const std::string ready = absl::GetFlag(FLAGS_ready_file); !ready.empty()) {
    if (absl::Status s = server::WriteReadyFile(ready, (*server)->ports().ToJson()); !s.ok())
      log::Error("ready file", {{"error", std::string(s.message())}});
  }
  const int sig = signals.Wait();
  log::Info("polder-aggregator stopping", {{"signal", sig}});
  (*server)->Stop();
  server->reset();
  log::Info("polder-aggregator stopped");
  return 0;
}

}  // namespace
}  // namespace aggregator
}  // namespace polder

int main(int argc, char** argv) {
  polder::server::TerminationSignals signals;  // before any thread starts
  absl::SetProgramUsageMessage(
      "polder-aggregator --config <aggregator.yaml>: national figures from the cities' views");
  absl::ParseCommandLine(argc, argv);
  const std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) {
    std::fprintf(stderr, "polder-aggregator: --config is required (see --help)\n");
    return 2;
  }
  absl::StatusOr<polder::aggregator::AggregatorConfig> config =
      polder::aggregator::LoadAggregatorConfig(path);
  if (!config.ok()) {
    std::fprintf(stderr, "polder-aggregator: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  polder::aggregator::Override(&config->api_address, FLAGS_api_address);
  polder::aggregator::Override(&config->ops_address, FLAGS_ops_address);
  if (absl::GetFlag(FLAGS_check_config)) {
    std::printf("ok\n");
    return 0;
  }
  return polder::aggregator::Main(*std::move(config), signals);
}
