#include "services/node/server/schema_subsystem.h"

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/server/grpc_security.h"
#include "common/server/host_port.h"
#include "common/status/status_macros.h"
#include "common/views/names.h"
#include "grpcpp/create_channel.h"
#include "services/node/schema_cache/registry_source.h"
#include "services/node/schema_cache/schema_endpoint.h"

namespace polder {
namespace node {

absl::StatusOr<std::unique_ptr<SchemaSubsystem>> SchemaSubsystem::Build(
    const NodeConfig& config, const NodeTrust& trust, server::Readiness* readiness) {
  std::unique_ptr<SchemaSubsystem> s(new SchemaSubsystem());
  server::ChannelSecurity security;
  security.development_mode = config.development_mode;
  security.files = tls::TlsFiles{config.cert_file, config.key_file, config.trust_bundle_file};
  security.checker = trust.federation_checker;
  security.expected_peer_id = config.registry_peer;
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> creds,
                   server::GrpcChannelCredentials(security));
  auto source = std::make_shared<RegistryGrpcSource>(
      grpc::CreateChannel(config.registry_address, creds), config.registry_timeout);
  ASSIGN_OR_RETURN(s->cache_, SchemaCache::Open(config.state_dir + "/schema-cache.json", source));
  for (const DatasetConfig& d : config.datasets) {
    s->subjects_.push_back(d.subject);
    s->subject_of_dataset_[d.id] = d.subject;
  }
  s->cache_->SetServedSubjects(s->subjects_);
  s->Refresh();
  SchemaSubsystem* self = s.get();
  readiness->AddCheck("schemas", [self]() -> absl::Status {
    return self->ready_ ? absl::OkStatus()
                        : absl::UnavailableError("not every dataset's schema is known");
  });
  return s;
}

void SchemaSubsystem::Refresh() {
  absl::Status s = cache_->Refresh(subjects_);
  if (!s.ok()) log::Warning("schema refresh", {{"error", std::string(s.message())}});
  bool all = true;
  for (const std::string& subject : subjects_) {
    // Known from an earlier refresh or the persisted cache.
    all &= cache_->IdOf(subject, -1).ok();
  }
  ready_ = all;
}

absl::Status SchemaSubsystem::StartEndpoint(const NodeConfig& config) {
  ASSIGN_OR_RETURN(server::HostPort address,
                   server::ParseHostPort(config.schema_address, "node.schema_address"));
  http::HttpsOptions o;
  o.files =
      tls::TlsFiles{config.IngestCertFile(), config.IngestKeyFile(), config.trust_bundle_file};
  o.bind_address = address.host;
  o.port = address.port;
  o.plaintext_development = config.development_mode;
  o.client_auth = http::ClientAuth::kNone;
  o.per_source_limits = config.schema_per_source_limits;
  o.listener = "schema";
  o.refusal_formatter = &SchemaEndpointRefusal;
  ASSIGN_OR_RETURN(endpoint_, http::HttpsServer::Create(o, nullptr));
  RegisterSchemaRoutes(endpoint_.get(), cache_.get());
  return endpoint_->Start();
}

void SchemaSubsystem::StopEndpoint() {
  if (endpoint_ != nullptr) endpoint_->Stop();
}

absl::StatusOr<int64_t> SchemaSubsystem::VersionOfDatasetSchema(const std::string& dataset,
                                                                int32_t id) const {
  // Views' cells are registered under their own subject (ADR 0016 §5).
  if (dataset == views::kAggregateCellSubject) return cache_->VersionUnder(dataset, id);
  auto s = subject_of_dataset_.find(dataset);
  if (s == subject_of_dataset_.end())
    return absl::NotFoundError(absl::StrCat("dataset ", dataset, " is not this node's"));
  return cache_->VersionUnder(s->second, id);
}

void SchemaSubsystem::PinMirrored(int32_t id) const {
  absl::StatusOr<std::shared_ptr<const CachedSchema>> s = cache_->ById(id);
  // Pinned: the schema endpoint serves it (and its references) to readers of the mirror.
  absl::Status pinned = s.ok() ? cache_->Pin(id) : s.status();
  if (!pinned.ok())
    log::Warning("schema of mirrored records not cached",
                 {{"schema_id", id}, {"error", std::string(pinned.message())}});
}

void SchemaSubsystem::Export(NodeMetrics* metrics) const {
  if (endpoint_ != nullptr) metrics->SetHttpListener("schema", endpoint_->stats());
  SchemaCache::Stats cs = cache_->stats();
  metrics->SetSchemaCache(cs.schemas, cs.registry_reachable, cs.last_refresh_ok);
}

}  // namespace node
}  // namespace polder
