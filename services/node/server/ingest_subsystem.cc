#include "services/node/server/ingest_subsystem.h"

#include "absl/strings/str_cat.h"
#include "common/server/grpc_reflection.h"
#include "common/server/grpc_security.h"
#include "common/server/host_port.h"
#include "common/status/status_macros.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"
#include "services/node/server/startup.h"

namespace polder {
namespace node {

absl::StatusOr<std::unique_ptr<IngestSubsystem>> IngestSubsystem::Build(
    const NodeConfig& config, const NodeTrust& trust, kafka::ClientFactory& kafka,
    SchemaSubsystem* schemas, NodeMetrics* metrics, server::Readiness* readiness) {
  std::unique_ptr<IngestSubsystem> s(new IngestSubsystem());
  const SizeLimits limits = DeriveSizeLimits(config);
  Publisher::Options po;
  po.producer.client = NodeKafkaClient(config);
  po.producer.transactional_id = config.transactional_id;
  po.producer.delivery_timeout = config.delivery_timeout;
  po.producer.transaction_timeout = config.transaction_timeout;
  po.producer.transaction_spacing = config.transaction_spacing;
  po.producer.max_request_bytes = limits.producer_max_request_bytes;
  po.producer.batch_bytes = limits.producer_batch_bytes;
  po.keys_consumer.client = NodeKafkaClient(config);
  po.keys_consumer.max_partition_fetch_bytes = limits.consumer_max_partition_fetch_bytes;
  po.keys_topic = config.keys_topic;
  po.idempotency_window = config.idempotency_window;
  po.publish_timeout = config.publish_timeout;
  ASSIGN_OR_RETURN(s->publisher_, RetryWhileUnavailable("ingest producer", absl::Minutes(2), [&] {
                     return Publisher::Start(po, kafka);
                   }));
  ASSIGN_OR_RETURN(s->auth_,
                   IngestAuthenticator::Create(config.identities, config.development_mode));
  s->ingest_ = std::make_unique<Ingest>(config, schemas->cache(), s->publisher_.get(),
                                        s->auth_.get(), metrics);
  Publisher* publisher = s->publisher_.get();
  readiness->AddCheck("ingest", [publisher]() -> absl::Status {
    if (publisher->fenced())
      return absl::FailedPreconditionError("fenced: another instance took over ingest");
    if (!publisher->ready()) return absl::UnavailableError("the ingest producer is not ready");
    return absl::OkStatus();
  });

  // gRPC: ingest and health. A caller without a certificate is authenticated by its token in
  // gRPC's auth filter: an unauthenticated call (health included) never reaches a handler or
  // holds a thread.
  grpc::EnableDefaultHealthCheckService(true);
  s->grpc_service_ = std::make_unique<IngestGrpcService>(s->ingest_.get());
  server::ServerSecurity security;
  security.development_mode = config.development_mode;
  security.files =
      tls::TlsFiles{config.cert_file, config.key_file,
                    config.ingest_client_ca_file.empty() ? config.trust_bundle_file
                                                         : config.ingest_client_ca_file};
  security.checker = trust.ingest_checker;
  security.client_certificates = tls::ClientCertificates::kOptional;
  IngestAuthenticator* auth = s->auth_.get();
  security.token_check = [auth](const std::string& authorization) {
    return auth->Authenticate("", authorization).status();
  };
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> creds,
                   server::GrpcServerCredentials(security));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.grpc_address, creds, &s->grpc_port_);
  builder.RegisterService(s->grpc_service_.get());
  // Reflection on the ingest port only (not on the federation port), behind its authentication.
  server::AddReflection(&builder);
  builder.SetMaxReceiveMessageSize(static_cast<int>(limits.grpc_max_message_bytes));
  tls::ApplyServerLimits(&builder, "ingest", tls::GrpcServerLimits{});
  s->grpc_ = builder.BuildAndStart();
  if (s->grpc_ == nullptr || s->grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", config.grpc_address));
  }

  // HTTPS ingest.
  ASSIGN_OR_RETURN(server::HostPort address,
                   server::ParseHostPort(config.http_address, "node.http_address"));
  http::HttpsOptions ho;
  ho.files = security.files;
  ho.bind_address = address.host;
  ho.port = address.port;
  ho.max_body_bytes = static_cast<size_t>(limits.http_max_body_bytes);
  ho.plaintext_development = config.development_mode;
  ho.client_auth = http::ClientAuth::kOptional;
  ASSIGN_OR_RETURN(s->http_, http::HttpsServer::Create(ho, trust.ingest_checker));
  RegisterIngestRoutes(s->http_.get(), s->ingest_.get(), config.development_mode);
  RETURN_IF_ERROR(s->http_->Start());
  return s;
}

IngestSubsystem::~IngestSubsystem() {
  if (listening_ && grpc_ != nullptr) grpc_->Shutdown(absl::ToChronoTime(absl::Now()));
  if (listening_ && http_ != nullptr) http_->Stop();
}

void IngestSubsystem::SetServing(bool serving) {
  grpc_->GetHealthCheckService()->SetServingStatus(serving);
}

void IngestSubsystem::StopListening(absl::Duration drain_timeout) {
  if (!listening_) return;
  listening_ = false;
  grpc_->Shutdown(absl::ToChronoTime(absl::Now() + drain_timeout));
  http_->Stop();
}

void IngestSubsystem::CommitQueued() { publisher_->Drain(); }

nlohmann::json IngestSubsystem::TokensStatus() const {
  nlohmann::json tokens = nlohmann::json::array();
  for (const IngestAuthenticator::TokenState& t : auth_->tokens()) {
    tokens.push_back({{"identity", t.identity}, {"valid", t.valid}, {"problem", t.problem}});
  }
  return tokens;
}

void IngestSubsystem::Export(NodeMetrics* metrics) const {
  for (const IngestAuthenticator::TokenState& t : auth_->tokens())
    metrics->SetIngestToken(t.identity, t.valid);
  metrics->SetHttpListener("ingest", http_->stats());
  Publisher::Stats ps = publisher_->stats();
  metrics->SetPublisherStats(ps.transactions, ps.failed_transactions, ps.producer_recreations,
                             ps.known_keys);
  metrics->SetInflightBytes(ingest_->inflight_bytes());
}

}  // namespace node
}  // namespace polder
