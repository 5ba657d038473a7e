#include "services/node/server/ingest_subsystem.h"

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/replica/role_group.h"
#include "common/server/grpc_reflection.h"
#include "common/server/grpc_security.h"
#include "common/server/host_port.h"
#include "common/status/status_macros.h"
#include "common/tls/grpc_tls.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "services/node/server/startup.h"

namespace polder {
namespace node {
namespace {

// The replica id: configured, or the host name (a StatefulSet pod's name).
std::string ReplicaIdOf(const NodeConfig& config) {
  return config.replica_id.empty() ? replica::HostReplicaId() : config.replica_id;
}

// Where the other replicas reach this one's internal port.
std::string AdvertisedEndpoint(const NodeConfig& config, int bound_port) {
  if (!config.internal_advertise.empty()) return config.internal_advertise;
  absl::StatusOr<server::HostPort> hp = server::ParseHostPort(config.internal_address);
  std::string host = hp.ok() ? hp->host : "localhost";
  if (host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]") {
    char name[256] = {0};
    gethostname(name, sizeof name - 1);
    host = name;
  }
  if (host.find(':') != std::string::npos && host[0] != '[') host = absl::StrCat("[", host, "]");
  return absl::StrCat(host, ":", bound_port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<IngestSubsystem>> IngestSubsystem::Build(
    const NodeConfig& config, const NodeTrust& trust, kafka::ClientFactory& kafka,
    SchemaSubsystem* schemas, NodeMetrics* metrics, server::Readiness* readiness) {
  std::unique_ptr<IngestSubsystem> s(new IngestSubsystem());
  const SizeLimits limits = DeriveSizeLimits(config);
  Publisher::Options po;
  po.producer.client = NodeKafkaClient(config);
  po.producer.delivery_timeout = config.delivery_timeout;
  po.producer.transaction_timeout = config.transaction_timeout;
  po.producer.transaction_spacing = config.transaction_spacing;
  po.producer.max_request_bytes = limits.producer_max_request_bytes;
  po.producer.batch_bytes = limits.producer_batch_bytes;
  po.keys_consumer.client = NodeKafkaClient(config);
  po.keys_consumer.max_partition_fetch_bytes = limits.consumer_max_partition_fetch_bytes;
  po.idempotency_window = config.idempotency_window;
  po.publish_timeout = config.publish_timeout;
  for (const DatasetConfig& d : config.datasets) po.data_topics.push_back(config.TopicOf(d));

  // The internal port first: the replica's address goes into the directory with its claims.
  const std::string replica_id = ReplicaIdOf(config);
  const tls::TlsFiles files =
      config.ReplicaTls()
          ? tls::TlsFiles{config.replica_cert_file, config.replica_key_file, config.replica_ca_file}
          : tls::TlsFiles{config.cert_file, config.key_file, config.trust_bundle_file};
  s->replica_service_ =
      std::make_unique<ReplicaService>(config.development_mode ? "" : config.InternalPeer());
  std::shared_ptr<grpc::ServerCredentials> internal_creds;
  if (config.development_mode) {
    // The configuration refuses a non-loopback internal_address in development mode.
    internal_creds = grpc::InsecureServerCredentials();  // loopback development mode only
  } else {
    // Only another replica is admitted (this node's own peer id, or the replicas' identity from
    // their own CA), before a request is parsed.
    ASSIGN_OR_RETURN(internal_creds, tls::MakeServerCredentials(files, trust.replica_checker,
                                                                tls::ClientCertificates::kRequired,
                                                                nullptr, config.InternalPeer()));
  }
  {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(config.internal_address, internal_creds, &s->internal_port_);
    builder.RegisterService(s->replica_service_.get());
    builder.SetMaxReceiveMessageSize(static_cast<int>(limits.grpc_max_message_bytes) + (1 << 20));
    tls::ApplyServerLimits(&builder, "internal", tls::GrpcServerLimits{});
    s->internal_ = builder.BuildAndStart();
    if (s->internal_ == nullptr || s->internal_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen for the internal port on ", config.internal_address));
    }
  }
  GrpcReplicaForwarder::Options fwd;
  fwd.development_mode = config.development_mode;
  fwd.files = files;
  fwd.checker = trust.replica_checker;
  fwd.self_peer_id = config.InternalPeer();
  fwd.self_replica = replica_id;
  fwd.max_message_bytes = static_cast<int>(limits.grpc_max_message_bytes) + (1 << 20);
  s->forwarder_ = std::make_unique<GrpcReplicaForwarder>(fwd);

  KeyedPublisher::Options ko;
  ko.publisher = po;
  ko.city = config.peer_id;
  ko.replica_id = replica_id;
  ko.internal_endpoint = AdvertisedEndpoint(config, s->internal_port_);
  ko.keys_topic = config.keys_topic;
  ko.partitions = config.keys_partitions;
  ko.replicas_topic = config.replicas_topic;
  ko.legacy_transactional_id = config.transactional_id;
  ko.group.client = NodeKafkaClient(config);
  ko.group.session_timeout = config.replica_session_timeout;
  ko.group.heartbeat_interval = config.replica_heartbeat_interval;
  {
    // The single-partition keys topic of an upgraded node, if there is one.
    ASSIGN_OR_RETURN(std::unique_ptr<kafka::Admin> admin, kafka.NewAdmin(NodeKafkaClient(config)));
    absl::StatusOr<kafka::TopicDescription> legacy =
        admin->DescribeTopic(config.legacy_keys_topic, config.kafka_request_timeout);
    if (legacy.ok()) ko.legacy_keys_topic = config.legacy_keys_topic;
  }
  ASSIGN_OR_RETURN(s->publisher_, RetryWhileUnavailable("ingest producer", absl::Minutes(2), [&] {
                     return KeyedPublisher::Start(ko, kafka, s->forwarder_.get());
                   }));
  s->replica_service_->set_keyed(s->publisher_.get());
  // Serve once in the group with the first assignment started (a lone replica then holds every
  // key partition); a slow group only delays readiness, which /readyz reports.
  if (!s->publisher_->AwaitReady(config.publish_timeout)) {
    log::Warning("ingest starts before joining the replica group",
                 {{"group", absl::StrCat("polder-", config.peer_id, "-keys")}});
  }
  ASSIGN_OR_RETURN(s->auth_,
                   IngestAuthenticator::Create(config.identities, config.development_mode));
  KeyedPublisher* publisher = s->publisher_.get();
  s->ingest_ = std::make_unique<Ingest>(
      config, schemas->cache(),
      [publisher](PublishBatch batch) { return publisher->Submit(std::move(batch)); },
      s->auth_.get(), metrics);
  // Ready once in the group and the directory is read: a replica holding no key partition
  // forwards (a role held elsewhere never makes a replica unready; ADR 0021 §6).
  readiness->AddCheck("ingest", [publisher]() -> absl::Status {
    if (!publisher->ready()) {
      return absl::UnavailableError(
          "ingest is not ready: not yet in the replica group or the replica directory is unread");
    }
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
      tls::TlsFiles{config.IngestCertFile(), config.IngestKeyFile(),
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
  ho.per_source_limits = config.http_per_source_limits;
  ho.listener = "ingest-https";
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
  if (publisher_ != nullptr) publisher_->Drain();
  if (internal_ != nullptr) internal_->Shutdown(absl::ToChronoTime(absl::Now()));
}

void IngestSubsystem::StopInternal() {
  if (internal_ != nullptr) internal_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
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

nlohmann::json IngestSubsystem::ReplicaStatus() const {
  nlohmann::json owners = nlohmann::json::object();
  for (const auto& [k, a] : publisher_->owners()) {
    owners[std::to_string(k)] = {{"replica", a.replica}, {"endpoint", a.endpoint}};
  }
  const KeyedPublisher::Stats s = publisher_->stats();
  return {{"id", publisher_->replica_id()},  {"internal_port", internal_port_},
          {"ready", publisher_->ready()},    {"key_partitions_held", publisher_->held()},
          {"key_partition_holders", owners}, {"rebalances", s.rebalances},
          {"forwarded_ok", s.forwarded_ok},  {"forwarded_failed", s.forwarded_failed}};
}

void IngestSubsystem::Export(NodeMetrics* metrics) const {
  for (const IngestAuthenticator::TokenState& t : auth_->tokens())
    metrics->SetIngestToken(t.identity, t.valid);
  metrics->SetHttpListener("ingest", http_->stats());
  const KeyedPublisher::Stats ks = publisher_->stats();
  const Publisher::Stats& ps = ks.publishers;
  metrics->SetPublisherStats(ps.transactions, ps.failed_transactions, ps.producer_recreations,
                             ps.known_keys);
  metrics->SetInflightBytes(ingest_->inflight_bytes());
}

}  // namespace node
}  // namespace polder
