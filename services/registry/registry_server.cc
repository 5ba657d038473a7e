#include "services/registry/registry_server.h"

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/memory/trim.h"
#include "common/server/grpc_reflection.h"
#include "common/server/grpc_security.h"
#include "common/server/host_port.h"
#include "common/status/status_macros.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"
#include "services/registry/grpc_metrics.h"
#include "services/registry/rest_api.h"

namespace polder {
namespace registry {

nlohmann::json RegistryServer::Ports::ToJson() const {
  return {{"grpc_port", grpc}, {"http_port", http}, {"ops_port", ops}};
}

absl::StatusOr<std::unique_ptr<RegistryServer>> RegistryServer::Start(RegistryConfig config,
                                                                      kafka::ClientFactory& kafka) {
  std::unique_ptr<RegistryServer> server(new RegistryServer(std::move(config)));
  RETURN_IF_ERROR(server->Build(kafka));
  return server;
}

absl::Status RegistryServer::Build(kafka::ClientFactory& kafka) {
  // Trust: the directory and who may connect.
  if (!config_.development_mode) {
    ASSIGN_OR_RETURN(directory_, trust::OpenDirectoryStore(config_.trust), _.Prepend("trust: "));
    tls::IdentityChecker::Options io;
    io.federation = config_.federation;
    io.source = config_.peer_identity == "subject_serial_number"
                    ? tls::IdentitySource::kSubjectSerialNumber
                    : tls::IdentitySource::kSpiffeUri;
    io.trust_bundle_path = config_.trust_bundle_file;
    io.crl_dir = config_.crl_dir;
    trust::DirectoryStore* dir = directory_.get();
    io.directory = [dir] { return dir->current(); };
    ASSIGN_OR_RETURN(checker_, tls::IdentityChecker::Create(io), _.Prepend("tls: "));
  } else {
    log::Warning(
        "DEVELOPMENT MODE: plaintext gRPC and HTTP, no identities, every caller is an operator");
  }

  // State: Kafka.
  KafkaSchemaStore::Options so;
  so.client.bootstrap_servers = config_.bootstrap_servers;
  so.client.client_id = absl::StrCat("polder-registry-", config_.replica_id);
  so.client.properties = config_.kafka_properties;
  so.client.request_timeout = std::min(config_.kafka_timeout, absl::Seconds(10));
  so.topic = config_.topic;
  so.replication_factor = config_.replication_factor;
  so.replica_id = config_.replica_id;
  so.federation = config_.federation;
  so.initial_primary = config_.primary;
  so.timeout = config_.kafka_timeout;
  RegistryOptions ro;
  ro.max_schema_bytes = static_cast<size_t>(config_.max_schema_bytes);
  ASSIGN_OR_RETURN(store_, KafkaSchemaStore::Create(so, kafka));
  registry_ = std::make_unique<Registry>(store_.get(), ro);
  store_->Attach(registry_.get());
  RETURN_IF_ERROR(store_->Start());

  policy_.operator_peers = {config_.operator_peers.begin(), config_.operator_peers.end()};
  policy_.city_subject_prefix = config_.city_subject_prefix;
  policy_.development = config_.development_mode;
  // Schemas registered before the namespace rules existed: reported, not removed (deleting a
  // schema records may still reference is the operator's decision).
  for (const std::string& offender : registry_->NamespaceOffenders(
           [this](const std::string& s) { return policy_.NamespaceOfSubject(s); })) {
    log::Error("registered schema breaks its writer's namespace rules; review and delete it",
               {{"schema", offender}});
  }

  // gRPC (and the standard health service, behind the same authentication).
  grpc::EnableDefaultHealthCheckService(true);
  service_ = std::make_unique<RegistryGrpcService>(registry_.get(), store_.get(), policy_);
  server::ServerSecurity security;
  security.development_mode = config_.development_mode;
  security.files = tls::TlsFiles{config_.cert_file, config_.key_file, config_.trust_bundle_file,
                                 config_.tls_refresh};
  security.checker = checker_;
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> creds,
                   server::GrpcServerCredentials(security));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.grpc_address, creds, &grpc_port_);
  builder.RegisterService(service_.get());
  server::AddReflection(&builder);  // behind the same mTLS as every call
  builder.SetMaxReceiveMessageSize(static_cast<int>(config_.max_schema_bytes) + 64 * 1024);
  tls::ApplyServerLimits(&builder, "registry", tls::GrpcServerLimits{});
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(NewGrpcMetricsInterceptor(&metrics_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  grpc_ = builder.BuildAndStart();
  if (grpc_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", config_.grpc_address));
  }

  // REST.
  ASSIGN_OR_RETURN(server::HostPort address,
                   server::ParseHostPort(config_.http_address, "registry.http_address"));
  http::HttpsOptions ho;
  ho.files = security.files;
  ho.bind_address = address.host;
  ho.port = address.port;
  ho.max_body_bytes = static_cast<size_t>(config_.max_schema_bytes) * 2 + 64 * 1024;
  ho.plaintext_development = config_.development_mode;
  ho.refusal_formatter = &ConfluentRefusal;
  ho.per_source_limits = config_.http_per_source_limits;
  ho.listener = "registry-rest";
  ho.on_response = [this](const http::HttpExchange& e) { metrics_.RecordHttp(e); };
  ASSIGN_OR_RETURN(http_, http::HttpsServer::Create(ho, checker_));
  RegisterRestRoutes(http_.get(), registry_.get(), policy_);
  RETURN_IF_ERROR(http_->Start());

  RETURN_IF_ERROR(StartOps());
  grpc_->GetHealthCheckService()->SetServingStatus(readiness_.Ready());
  log::Info("polder-registry serving", {{"replica", config_.replica_id},
                                        {"primary", store_->primary_replica()},
                                        {"grpc_port", grpc_port_},
                                        {"http_port", http_->port()},
                                        {"ops_port", ops_->port()},
                                        {"tls", !config_.development_mode}});

  // Upkeep: gRPC health follows readiness each second, what a burst of connections freed goes
  // back to the system, the certificate and directory files are read again every 30 s.
  upkeep_.Add("health", absl::Seconds(1),
              [this] { grpc_->GetHealthCheckService()->SetServingStatus(readiness_.Ready()); });
  upkeep_.Add("memory", absl::Seconds(2), [] { memory::ReturnFreeMemory(); });
  upkeep_.Add("trust files", absl::Seconds(30), [this] {
    if (certificate_ != nullptr) certificate_->Refresh();
    if (directory_ != nullptr) trust::RefreshDirectory(*directory_, config_.trust);
  });
  upkeep_.Start();
  return absl::OkStatus();
}

KafkaSchemaStore::Status RegistryServer::StoreStatus() {
  absl::MutexLock lock(&store_status_mu_);
  if (absl::Now() - store_status_at_ >= absl::Seconds(1)) {
    store_status_ = store_->status(absl::Seconds(2));
    store_status_at_ = absl::Now();
  }
  return store_status_;
}

absl::Status RegistryServer::StartOps() {
  readiness_.AddCheck("kafka", [this]() -> absl::Status {
    KafkaSchemaStore::Status st = StoreStatus();
    if (st.end_offset < 0) {
      return absl::UnavailableError(absl::StrCat("the cluster does not answer: ", st.kafka_error));
    }
    return absl::OkStatus();
  });
  if (!config_.development_mode) {
    certificate_ = std::make_unique<server::CertificateExpiry>(config_.cert_file);
    readiness_.AddCheck("certificate", [this] { return certificate_->Check(absl::Now()); });
  }
  ASSIGN_OR_RETURN(ops_, server::OpsServer::Listen(
                             config_.ops_address, "registry.ops_address", &readiness_,
                             [this] { return StatusPage(); }, [this] { return MetricsText(); }));
  return absl::OkStatus();
}

nlohmann::json RegistryServer::StatusPage() {
  KafkaSchemaStore::Status st = StoreStatus();
  Registry::RegistrationCounts rc = registry_->registrations();
  return {{"service", "polder-registry"},
          {"replica", config_.replica_id},
          {"role", st.primary ? "primary" : "replica"},
          {"primary", st.primary_replica},
          {"epoch", st.epoch},
          {"log",
           {{"topic", config_.topic},
            {"position", st.position},
            {"end_offset", st.end_offset},
            {"lag", st.lag()},
            {"caught_up", st.end_offset >= 0 && st.lag() == 0},
            {"last_read_ok",
             absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", st.last_read_ok, absl::UTCTimeZone())},
            {"kafka_error", st.kafka_error}}},
          {"schemas", registry_->next_id() - 1},
          {"subjects", registry_->ListSubjects(false).size()},
          {"registrations",
           {{"created", rc.created},
            {"existing", rc.existing},
            {"refused", rc.refused},
            {"commits", rc.commits}}}};
}

std::string RegistryServer::MetricsText() {
  metrics_.SetStore(StoreStatus());
  metrics_.SetRegistrations(registry_->registrations());
  metrics_.SetState(registry_->next_id() - 1,
                    static_cast<int64_t>(registry_->ListSubjects(false).size()));
  metrics_.SetHttpListener("registry", http_->stats());
  metrics_.SetHttpListener("ops", ops_->stats());
  return metrics_.Serialize();
}

RegistryServer::Ports RegistryServer::ports() const {
  return Ports{grpc_port_, http_->port(), ops_->port()};
}

void RegistryServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  upkeep_.Stop();
  if (grpc_ != nullptr) grpc_->GetHealthCheckService()->SetServingStatus(false);
  if (ops_ != nullptr) ops_->Stop();
  if (http_ != nullptr) http_->Stop();
  if (grpc_ != nullptr) grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  store_.reset();
}

RegistryServer::~RegistryServer() { Stop(); }

}  // namespace registry
}  // namespace polder
