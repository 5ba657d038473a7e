// polder-registry: the federation's common schema registry.
//
//   polder-registry --config registry.yaml [--replica_id reg-b] [--ready_file ports.json]
//
// Serves gRPC (polder.registry.v1.SchemaRegistryService) and the Confluent REST subset, both
// over mutual TLS (plaintext only with registry.development_mode), with its state in the
// Kafka topic `_polder.schemas`. Logs one JSON object per line. SIGINT/SIGTERM stop it. The
// registry is assembled in services/registry/registry_server.h.
#include <unistd.h>

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/log/log.h"
#include "common/server/process.h"
#include "common/trust/document.h"
#include "services/registry/registry_config.h"
#include "services/registry/registry_server.h"

ABSL_FLAG(std::string, config, "", "Path of the YAML configuration (required).");
ABSL_FLAG(std::string, replica_id, "",
          "Overrides registry.replica_id (default: the host name, a StatefulSet pod's name).");
ABSL_FLAG(bool, check_config, false,
          "Read and check the configuration (as at start), print `ok` and exit; 2 with the "
          "error, naming the key, otherwise.");
ABSL_FLAG(std::string, grpc_address, "",
          "Overrides registry.grpc_address (host:port; port 0 picks one).");
ABSL_FLAG(std::string, http_address, "",
          "Overrides registry.http_address (host:port; port 0 picks one).");
ABSL_FLAG(std::string, ops_address, "",
          "Overrides registry.ops_address (host:port; port 0 picks one).");
ABSL_FLAG(std::string, ready_file, "",
          "Written with the listening ports once the registry serves.");

namespace polder {
namespace registry {
namespace {

void Override(std::string* value, const absl::Flag<std::string>& flag) {
  if (std::string v = absl::GetFlag(flag); !v.empty()) *value = std::move(v);
}

int Main(RegistryConfig config, server::TerminationSignals& signals) {
  log::SetComponent("polder-registry");
  server::InstallProtobufLogBridge();
  // The one place the registry names an implementation: every Kafka client comes from here.
  kafka::RdKafkaClientFactory kafka_clients;
  absl::StatusOr<std::unique_ptr<RegistryServer>> registry =
      RegistryServer::Start(std::move(config), kafka_clients);
  if (!registry.ok()) {
    log::Error("polder-registry failed", {{"error", std::string(registry.status().message())}});
    return 1;
  }
  if (const std::string ready = absl::GetFlag(FLAGS_ready_file); !ready.empty()) {
    if (absl::Status s = server::WriteReadyFile(ready, (*registry)->ports().ToJson()); !s.ok())
      log::Error("ready file", {{"error", std::string(s.message())}});
  }
  const int sig = signals.Wait();
  log::Info("polder-registry stopping", {{"signal", sig}});
  (*registry)->Stop();
  return 0;
}

}  // namespace
}  // namespace registry
}  // namespace polder

int main(int argc, char** argv) {
  polder::server::TerminationSignals signals;  // before any thread starts
  absl::SetProgramUsageMessage(
      "polder-registry --config <registry.yaml>: the federation's common schema registry");
  absl::ParseCommandLine(argc, argv);
  const std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) {
    std::fprintf(stderr, "polder-registry: --config is required (see --help)\n");
    return 2;
  }
  absl::StatusOr<polder::registry::RegistryConfig> config =
      polder::registry::LoadRegistryConfig(path);
  if (!config.ok()) {
    std::fprintf(stderr, "polder-registry: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  polder::registry::Override(&config->replica_id, FLAGS_replica_id);
  polder::registry::Override(&config->grpc_address, FLAGS_grpc_address);
  polder::registry::Override(&config->http_address, FLAGS_http_address);
  polder::registry::Override(&config->ops_address, FLAGS_ops_address);
  if (config->replica_id.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    config->replica_id = host;
  }
  if (!polder::trust::IsValidPeerId(config->replica_id)) {
    std::fprintf(stderr,
                 "polder-registry: replica id '%s' (registry.replica_id, --replica_id or the host "
                 "name) must be a lowercase name such as reg-a\n",
                 config->replica_id.c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_check_config)) {
    std::printf("ok\n");
    return 0;
  }
  return polder::registry::Main(*std::move(config), signals);
}
