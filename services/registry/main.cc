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

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/http/https_server.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/log/log.h"
#include "common/memory/trim.h"
#include "common/server/grpc_reflection.h"
#include "common/server/ops_server.h"
#include "common/status/status_macros.h"
#include "common/tls/grpc_tls.h"
#include "common/tls/identity.h"
#include "common/tls/pki.h"
#include "common/trust/keys.h"
#include "common/trust/trust_config.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/server_interceptor.h"
#include "nlohmann/json.hpp"
#include "services/registry/access.h"
#include "services/registry/grpc_service.h"
#include "services/registry/kafka_store.h"
#include "services/registry/registry.h"
#include "services/registry/registry_config.h"
#include "services/registry/registry_metrics.h"
#include "services/registry/rest_api.h"

ABSL_FLAG(std::string, config, "", "Path of the YAML configuration (required).");
ABSL_FLAG(std::string, replica_id, "", "Overrides registry.replica_id.");
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

// libprotobuf's own warnings (e.g. a schema without `syntax`) as JSON log lines.
// Protobuf reports what it refused in client input (invalid UTF-8 in a string field, ...):
// logged at most 10 times a second, the rest counted, so input cannot flood the log.
void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  static log::RateLimit limit(10);
  int64_t suppressed = 0;
  if (!limit.Allow(&suppressed)) return;
  log::Write(
      level >= google::protobuf::LOGLEVEL_ERROR ? log::Severity::kError : log::Severity::kWarning,
      message,
      {{"source", "libprotobuf"},
       {"file", file},
       {"line", line},
       {"suppressed_before", suppressed}});
}

// Counts every gRPC call a handler answered (method, status code, duration). Calls the auth
// filter refused never reach a handler and are not counted here.
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(grpc::experimental::ServerRpcInfo* info, RegistryMetrics* metrics)
      : method_(info->method() != nullptr ? info->method() : "unknown"), metrics_(metrics) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_->RecordGrpc(method_, static_cast<int>(methods->GetSendStatus().error_code()),
                           absl::Now() - start_);
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  const absl::Time start_ = absl::Now();
  RegistryMetrics* const metrics_;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(RegistryMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(info, metrics_);
  }

 private:
  RegistryMetrics* const metrics_;
};

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
    io.source = config.peer_identity == "subject_serial_number"
                    ? tls::IdentitySource::kSubjectSerialNumber
                    : tls::IdentitySource::kSpiffeUri;
    io.trust_bundle_path = config.trust_bundle_file;
    io.crl_dir = config.crl_dir;
    trust::DirectoryStore* dir = directory.get();
    io.directory = [dir] { return dir->current(); };
    ASSIGN_OR_RETURN(auto c, tls::IdentityChecker::Create(io), _.Prepend("tls: "));
    checker = std::move(c);
  } else {
    log::Warning(
        "DEVELOPMENT MODE: plaintext gRPC and HTTP, no identities, every caller is an operator");
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
  // The one place the registry names an implementation: every Kafka client comes from here.
  kafka::RdKafkaClientFactory kafka_clients;
  ASSIGN_OR_RETURN(std::unique_ptr<KafkaSchemaStore> store,
                   KafkaSchemaStore::Create(so, kafka_clients));
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
  for (const std::string& offender : registry->NamespaceOffenders(
           [&policy](const std::string& s) { return policy.NamespaceOfSubject(s); })) {
    log::Error("registered schema breaks its writer's namespace rules; review and delete it",
               {{"schema", offender}});
  }

  RegistryMetrics metrics;

  // gRPC (and the standard health service, behind the same authentication).
  grpc::EnableDefaultHealthCheckService(true);
  RegistryGrpcService service(registry.get(), store.get(), policy);
  std::shared_ptr<grpc::ServerCredentials> creds;
  tls::TlsFiles files{config.cert_file, config.key_file, config.trust_bundle_file,
                      config.tls_refresh};
  if (config.development_mode) {
    creds = grpc::InsecureServerCredentials();  // loopback development mode only (registry_config)
  } else {
    ASSIGN_OR_RETURN(creds, tls::MakeServerCredentials(files, checker));
  }
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(config.grpc_address, creds, &grpc_port);
  builder.RegisterService(&service);
  server::AddReflection(&builder);  // behind the same mTLS as every call
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_schema_bytes) + 64 * 1024);
  tls::ApplyServerLimits(&builder, "registry", tls::GrpcServerLimits{});
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<MetricsInterceptorFactory>(&metrics));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
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
  ho.on_response = [&metrics](const http::HttpExchange& e) { metrics.RecordHttp(e); };
  ASSIGN_OR_RETURN(std::unique_ptr<http::HttpsServer> http_server,
                   http::HttpsServer::Create(ho, checker));
  RegisterRestRoutes(http_server.get(), registry.get(), policy);
  RETURN_IF_ERROR(http_server->Start());

  // Ops: liveness, readiness, status, metrics (common/server). Ready means this replica gives
  // correct answers: it reads its Kafka topic and its certificate is valid. Being a replica
  // rather than the primary is not unreadiness (replicas serve reads and name the primary).
  std::atomic<int64_t> certificate_not_after{0};
  auto read_certificate_expiry = [&] {
    if (absl::StatusOr<std::string> pem = trust::ReadFileToString(config.cert_file); pem.ok()) {
      if (absl::StatusOr<tls::CertificateInfo> info = tls::ParseCertificate(*pem); info.ok()) {
        certificate_not_after = absl::ToUnixSeconds(info->not_after);
      }
    }
  };
  if (!config.development_mode) read_certificate_expiry();
  // The store's status is queried at most once a second (a watermark round trip to Kafka).
  absl::Mutex store_status_mu;
  KafkaSchemaStore::Status store_status;
  absl::Time store_status_at;
  auto current_store_status = [&]() -> KafkaSchemaStore::Status {
    absl::MutexLock lock(&store_status_mu);
    if (absl::Now() - store_status_at >= absl::Seconds(1)) {
      store_status = store->status(absl::Seconds(2));
      store_status_at = absl::Now();
    }
    return store_status;
  };
  server::Readiness readiness;
  readiness.AddCheck("kafka", [&]() -> absl::Status {
    KafkaSchemaStore::Status st = current_store_status();
    if (st.end_offset < 0) {
      return absl::UnavailableError(absl::StrCat("the cluster does not answer: ", st.kafka_error));
    }
    return absl::OkStatus();
  });
  if (!config.development_mode) {
    readiness.AddCheck("certificate", [&]() -> absl::Status {
      if (certificate_not_after <= absl::ToUnixSeconds(absl::Now())) {
        return absl::FailedPreconditionError(
            absl::StrCat(config.cert_file, " is unreadable or expired"));
      }
      return absl::OkStatus();
    });
  }
  auto status_page = [&]() -> nlohmann::json {
    KafkaSchemaStore::Status st = current_store_status();
    Registry::RegistrationCounts rc = registry->registrations();
    return {{"service", "polder-registry"},
            {"replica", config.replica_id},
            {"role", st.primary ? "primary" : "replica"},
            {"primary", st.primary_replica},
            {"epoch", st.epoch},
            {"log",
             {{"topic", config.topic},
              {"position", st.position},
              {"end_offset", st.end_offset},
              {"lag", st.lag()},
              {"caught_up", st.end_offset >= 0 && st.lag() == 0},
              {"last_read_ok",
               absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", st.last_read_ok, absl::UTCTimeZone())},
              {"kafka_error", st.kafka_error}}},
            {"schemas", registry->next_id() - 1},
            {"subjects", registry->ListSubjects(false).size()},
            {"registrations",
             {{"created", rc.created}, {"existing", rc.existing}, {"refused", rc.refused}}}};
  };
  std::unique_ptr<server::OpsServer> ops;
  auto metrics_text = [&]() -> std::string {
    metrics.SetStore(current_store_status());
    metrics.SetRegistrations(registry->registrations());
    metrics.SetState(registry->next_id() - 1,
                     static_cast<int64_t>(registry->ListSubjects(false).size()));
    metrics.SetHttpListener("registry", http_server->stats());
    metrics.SetHttpListener("ops", ops->stats());
    return metrics.Serialize();
  };
  ASSIGN_OR_RETURN(auto ops_addr, SplitAddress(config.ops_address, "registry.ops_address"));
  server::OpsOptions oo;
  oo.bind_address = ops_addr.first;
  oo.port = ops_addr.second;
  ASSIGN_OR_RETURN(ops, server::OpsServer::Create(oo, &readiness, status_page, metrics_text));
  RETURN_IF_ERROR(ops->Start());
  grpc_server->GetHealthCheckService()->SetServingStatus(readiness.Ready());

  log::Info("polder-registry serving", {{"replica", config.replica_id},
                                        {"primary", store->primary_replica()},
                                        {"grpc_port", grpc_port},
                                        {"http_port", http_server->port()},
                                        {"ops_port", ops->port()},
                                        {"tls", !config.development_mode}});
  const std::string ready = absl::GetFlag(FLAGS_ready_file);
  if (!ready.empty()) {
    std::string tmp = ready + ".tmp";
    std::ofstream(tmp) << nlohmann::json{{"grpc_port", grpc_port},
                                         {"http_port", http_server->port()},
                                         {"ops_port", ops->port()}}
                              .dump()
                       << "\n";
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
        // gRPC health follows readiness (each second).
        if (i % 10 == 0) grpc_server->GetHealthCheckService()->SetServingStatus(readiness.Ready());
      }
      if (!config.development_mode) read_certificate_expiry();
      if (stop || directory == nullptr) continue;
      trust::RefreshDirectory(*directory, config.trust);
    }
  });

  int sig = 0;
  sigwait(&signals, &sig);
  log::Info("polder-registry stopping", {{"signal", sig}});
  stop = true;
  directory_watch.join();
  grpc_server->GetHealthCheckService()->SetServingStatus(false);
  ops->Stop();
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
  if (!absl::GetFlag(FLAGS_replica_id).empty())
    config->replica_id = absl::GetFlag(FLAGS_replica_id);
  if (!absl::GetFlag(FLAGS_grpc_address).empty())
    config->grpc_address = absl::GetFlag(FLAGS_grpc_address);
  if (!absl::GetFlag(FLAGS_http_address).empty())
    config->http_address = absl::GetFlag(FLAGS_http_address);
  if (!absl::GetFlag(FLAGS_ops_address).empty())
    config->ops_address = absl::GetFlag(FLAGS_ops_address);
  absl::Status s = polder::registry::Run(*std::move(config));
  if (!s.ok()) {
    polder::log::Error("polder-registry failed", {{"error", std::string(s.message())}});
    return 1;
  }
  return 0;
}
