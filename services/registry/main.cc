// polder-registry: the federation's common schema registry.
//
//   polder-registry --config registry.yaml [--replica_id reg-b] [--ready_file ports.json]
//
// Serves gRPC (polder.registry.v1.SchemaRegistryService) and the Confluent REST subset, both
// over mutual TLS (plaintext only with registry.development_mode), with its state in the
// Kafka topic `_polder.schemas`. Logs one JSON object per line. SIGINT/SIGTERM stop it.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/cleanup/cleanup.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/http/https_server.h"
#include "common/log/log.h"
#include "common/memory/trim.h"
#include "common/status/status_macros.h"
#include "common/tls/grpc_tls.h"
#include "common/tls/identity.h"
#include "common/trust/trust_config.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "services/registry/access.h"
#include "services/registry/grpc_service.h"
#include "services/registry/kafka_store.h"
#include "services/registry/registry.h"
#include "services/registry/registry_config.h"
#include "services/registry/rest_api.h"

ABSL_FLAG(std::string, config, "", "Path of the YAML configuration (required).");
ABSL_FLAG(std::string, replica_id, "", "Overrides registry.replica_id.");
ABSL_FLAG(std::string, grpc_address, "", "Overrides registry.grpc_address (host:port; port 0 picks one).");
ABSL_FLAG(std::string, http_address, "", "Overrides registry.http_address (host:port; port 0 picks one).");
ABSL_FLAG(std::string, ready_file, "", "Written with the listening ports once the registry serves.");

namespace polder {
namespace registry {
namespace {

// libprotobuf's own warnings (e.g. a schema without `syntax`) as JSON log lines.
// Protobuf reports what it refused in client input (invalid UTF-8 in a string field, ...):
// logged at most 10 times a second, the rest counted, so input cannot flood the log.
void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
  static log::RateLimit limit(10);
  int64_t suppressed = 0;
  if (!limit.Allow(&suppressed)) return;
  log::Write(level >= google::protobuf::LOGLEVEL_ERROR ? log::Severity::kError : log::Severity::kWarning, message,
             {{"source", "libprotobuf"}, {"file", file}, {"line", line}, {"suppressed_before", suppressed}});
}

absl::Status Run(RegistryConfig config) {
  log::SetComponent("polder-registry");
  google::protobuf::SetLogHandler(&ProtobufLog);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Trust: the directory and who may connect.
  std::unique_ptr<trust::DirectoryStore> directory;
  std::shared_ptr<tls::IdentityChecker> checker;
  if (!config.development_mode) {
    ASSIGN_OR_RETURN(directory, trust::OpenDirectoryStore(config.trust), _.Prepend("trust: "));
    tls::IdentityChecker::Options io;
    io.federation = config.federation;
    io.source = config.peer_identity == "subject_serial_number" ? tls::IdentitySource::kSubjectSerialNumber
                                                                 : tls::IdentitySource::kSpiffeUri;
    io.trust_bundle_path = config.trust_bundle_file;
    io.crl_dir = config.crl_dir;
    trust::DirectoryStore* dir = directory.get();
    io.directory = [dir] { return dir->current(); };
    ASSIGN_OR_RETURN(auto c, tls::IdentityChecker::Create(io), _.Prepend("tls: "));
    checker = std::move(c);
  } else {
    log::Warning("DEVELOPMENT MODE: plaintext gRPC and HTTP, no identities, every caller is an operator");
  }

  // State: Kafka.
  KafkaSchemaStore::Options so;
  so.client.bootstrap_servers = config.bootstrap_servers;
  so.client.client_id = absl::StrCat("polder-registry-", config.replica_id);
  so.client.properties = config.kafka_properties;
  so.client.request_timeout = std::min(config.kafka_timeout, absl::Seconds(10));
  so.topic = config.topic;
  so.replication_factor = config.replication_factor;
  so.replica_id = config.replica_id;
  so.federation = config.federation;
  so.initial_primary = config.primary;
  so.timeout = config.kafka_timeout;
  RegistryOptions ro;
  ro.max_schema_bytes = static_cast<size_t>(config.max_schema_bytes);
  ASSIGN_OR_RETURN(std::unique_ptr<KafkaSchemaStore> store, KafkaSchemaStore::Create(so));
  auto registry = std::make_unique<Registry>(store.get(), ro);
  store->Attach(registry.get());
  // The store's threads use the registry: whatever path leaves this function, the store goes
  // first.
  absl::Cleanup stop_store = [&store] { store.reset(); };
  RETURN_IF_ERROR(store->Start());

  AccessPolicy policy;
  policy.operator_peers = {config.operator_peers.begin(), config.operator_peers.end()};
  policy.city_subject_prefix = config.city_subject_prefix;
  policy.development = config.development_mode;
  // Schemas registered before the namespace rules existed: reported, not removed (deleting a
  // schema records may still reference is the operator's decision).
  for (const std::string& offender :
       registry->NamespaceOffenders([&policy](const std::string& s) { return policy.NamespaceOfSubject(s); })) {
    log::Error("registered schema breaks its writer's namespace rules; review and delete it", {{"schema", offender}});
  }

  // gRPC.
  RegistryGrpcService service(registry.get(), store.get(), policy);
  std::shared_ptr<grpc::ServerCredentials> creds;
  tls::TlsFiles files{config.cert_file, config.key_file, config.trust_bundle_file, config.tls_refresh};
  if (config.development_mode) {
    creds = grpc::InsecureServerCredentials();  // loopback development mode only (registry_config)
  } else {
    ASSIGN_OR_RETURN(creds, tls::MakeServerCredentials(files, checker));
  }
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(config.grpc_address, creds, &grpc_port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_schema_bytes) + 64 * 1024);
  tls::ApplyServerLimits(&builder, "registry", tls::GrpcServerLimits{});
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr || grpc_port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", config.grpc_address));
  }

  // REST.
  ASSIGN_OR_RETURN(auto http_addr, SplitAddress(config.http_address, "registry.http_address"));
  http::HttpsOptions ho;
  ho.files = files;
  ho.bind_address = http_addr.first;
  ho.port = http_addr.second;
  ho.max_body_bytes = static_cast<size_t>(config.max_schema_bytes) * 2 + 64 * 1024;
  ho.plaintext_development = config.development_mode;
  ho.refusal_formatter = &ConfluentRefusal;
  ASSIGN_OR_RETURN(std::unique_ptr<http::HttpsServer> http_server, http::HttpsServer::Create(ho, checker));
  RegisterRestRoutes(http_server.get(), registry.get(), policy);
  RETURN_IF_ERROR(http_server->Start());

  log::Info("polder-registry serving", {{"replica", config.replica_id},
                                        {"primary", store->primary_replica()},
                                        {"grpc_port", grpc_port},
                                        {"http_port", http_server->port()},
                                        {"tls", !config.development_mode}});
  const std::string ready = absl::GetFlag(FLAGS_ready_file);
  if (!ready.empty()) {
    std::string tmp = ready + ".tmp";
    std::ofstream(tmp) << nlohmann::json{{"grpc_port", grpc_port}, {"http_port", http_server->port()}}.dump() << "\n";
    std::rename(tmp.c_str(), ready.c_str());
  }

  // Directory updates are picked up from the configured file.
  std::atomic<bool> stop{false};
  std::thread directory_watch([&] {
    while (!stop) {
      for (int i = 0; i < 300 && !stop; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        // What a burst of connections freed goes back to the system.
        if (i % 20 == 0) memory::ReturnFreeMemory();
      }
      if (stop || directory == nullptr) continue;
      trust::RefreshDirectory(*directory, config.trust);
    }
  });

  int sig = 0;
  sigwait(&signals, &sig);
  log::Info("polder-registry stopping", {{"signal", sig}});
  stop = true;
  directory_watch.join();
  http_server->Stop();
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  store.reset();
  return absl::OkStatus();
}

}  // namespace
}  // namespace registry
}  // namespace polder

int main(int argc, char** argv) {
  // A client that disconnects mid-response must not kill the server (TLS writes raise SIGPIPE).
  signal(SIGPIPE, SIG_IGN);
  absl::SetProgramUsageMessage("polder-registry --config <registry.yaml>: the federation's common schema registry");
  absl::ParseCommandLine(argc, argv);
  const std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) {
    std::fprintf(stderr, "polder-registry: --config is required (see --help)\n");
    return 2;
  }
  absl::StatusOr<polder::registry::RegistryConfig> config = polder::registry::LoadRegistryConfig(path);
  if (!config.ok()) {
    std::fprintf(stderr, "polder-registry: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  if (!absl::GetFlag(FLAGS_replica_id).empty()) config->replica_id = absl::GetFlag(FLAGS_replica_id);
  if (!absl::GetFlag(FLAGS_grpc_address).empty()) config->grpc_address = absl::GetFlag(FLAGS_grpc_address);
  if (!absl::GetFlag(FLAGS_http_address).empty()) config->http_address = absl::GetFlag(FLAGS_http_address);
  absl::Status s = polder::registry::Run(*std::move(config));
  if (!s.ok()) {
    polder::log::Error("polder-registry failed", {{"error", std::string(s.message())}});
    return 1;
  }
  return 0;
}
