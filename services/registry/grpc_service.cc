#include "services/registry/grpc_service.h"

#include "absl/strings/str_cat.h"
#include "common/status/grpc_status.h"
#include "common/tls/grpc_tls.h"
#include "services/registry/errors.h"

namespace polder {
namespace registry {
namespace {

// gRPC clients get the canonical code; the Confluent code is kept in the message.
grpc::Status Out(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return ToGrpcStatus(absl::Status(
      s.code(), absl::StrCat(s.message(), " (error_code ", ConfluentErrorCode(s), ")")));
}

std::vector<SchemaReference> Refs(
    const google::protobuf::RepeatedPtrField<v1::SchemaReference>& in) {
  std::vector<SchemaReference> out;
  for (const auto& r : in) out.push_back({r.name(), r.subject(), r.version()});
  return out;
}

void FillRefs(const std::vector<SchemaReference>& in,
              google::protobuf::RepeatedPtrField<v1::SchemaReference>* out) {
  for (const auto& r : in) {
    v1::SchemaReference* p = out->Add();
    p->set_name(r.name);
    p->set_subject(r.subject);
    p->set_version(r.version);
  }
}

void FillSchema(const SchemaView& v, v1::Schema* out) {
  out->set_id(v.id);
  out->set_subject(v.subject);
  out->set_version(v.version);
  out->set_schema_type(v.schema_type);
  out->set_schema(v.schema);
  out->set_deleted(v.deleted);
  FillRefs(v.references, out->mutable_references());
}

SchemaFormat Format(v1::SchemaFormat f) {
  return f == v1::SCHEMA_FORMAT_SERIALIZED ? SchemaFormat::kSerialized : SchemaFormat::kDefault;
}

}  // namespace

absl::StatusOr<std::string> RegistryGrpcService::Caller(grpc::ServerContext* context) const {
  if (policy_.development) return std::string("development");
  absl::StatusOr<tls::PeerIdentity> peer = tls::CallPeer(*context);
  if (!peer.ok()) return peer.status();
  return peer->peer_id;
}

#define POLDER_CALLER(ctx, var)                       \
  absl::StatusOr<std::string> var##_or = Caller(ctx); \
  if (!var##_or.ok()) return Out(var##_or.status());  \
  const std::string& var = *var##_or

grpc::Status RegistryGrpcService::RegisterSchema(grpc::ServerContext* ctx,
                                                 const v1::RegisterSchemaRequest* req,
                                                 v1::RegisterSchemaResponse* resp) {
  POLDER_CALLER(ctx, peer);
  absl::Status allowed = policy_.CheckSubjectWrite(peer, req->subject());
  if (!allowed.ok()) return Out(allowed);
  RegisterRequest r;
  r.subject = req->subject();
  r.schema = req->schema();
  r.schema_type = req->schema_type().empty() ? "PROTOBUF" : req->schema_type();
  r.references = Refs(req->references());
  if (req->id() > 0) r.id = req->id();
  if (req->version() > 0) r.version = req->version();
  r.writer_namespace = policy_.Namespace(peer);
  absl::StatusOr<RegisterResult> res = registry_->Register(r);
  if (!res.ok()) return Out(res.status());
  resp->set_id(res->id);
  resp->set_version(res->version);
  resp->set_created(res->created);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::LookupSchema(grpc::ServerContext* ctx,
                                               const v1::LookupSchemaRequest* req,
                                               v1::Schema* resp) {
  POLDER_CALLER(ctx, peer);
  (void)peer;
  RegisterRequest r;
  r.subject = req->subject();
  r.schema = req->schema();
  r.references = Refs(req->references());
  absl::StatusOr<SchemaView> v = registry_->Lookup(r, req->deleted());
  if (!v.ok()) return Out(v.status());
  FillSchema(*v, resp);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::GetSchema(grpc::ServerContext* ctx,
                                            const v1::GetSchemaRequest* req, v1::Schema* resp) {
  POLDER_CALLER(ctx, peer);
  (void)peer;
  absl::StatusOr<SchemaView> v =
      registry_->GetById(req->id(), req->subject(), Format(req->format()));
  if (!v.ok()) return Out(v.status());
  FillSchema(*v, resp);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::GetVersion(grpc::ServerContext* ctx,
                                             const v1::GetVersionRequest* req, v1::Schema* resp) {
  POLDER_CALLER(ctx, peer);
  (void)peer;
  absl::StatusOr<SchemaView> v =
      registry_->GetVersion(req->subject(), req->version(), req->deleted(), Format(req->format()));
  if (!v.ok()) return Out(v.status());
  FillSchema(*v, resp);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::ListSubjects(grpc::ServerContext* ctx,
                                               const v1::ListSubjectsRequest* req,
                                               v1::ListSubjectsResponse* resp) {
  POLDER_CALLER(ctx, peer);
  (void)peer;
  for (const std::string& s : registry_->ListSubjects(req->deleted())) resp->add_subjects(s);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::ListVersions(grpc::ServerContext* ctx,
                                               const v1::ListVersionsRequest* req,
                                               v1::VersionsResponse* resp) {
  POLDER_CALLER(ctx, peer);
  (void)peer;
  absl::StatusOr<std::vector<int32_t>> v = registry_->ListVersions(req->subject(), req->deleted());
  if (!v.ok()) return Out(v.status());
  for (int32_t n : *v) resp->add_versions(n);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::DeleteSubject(grpc::ServerContext* ctx,
                                                const v1::DeleteSubjectRequest* req,
                                                v1::VersionsResponse* resp) {
  POLDER_CALLER(ctx, peer);
  absl::Status allowed = policy_.CheckSubjectWrite(peer, req->subject());
  if (!allowed.ok()) return Out(allowed);
  absl::StatusOr<std::vector<int32_t>> v =
      registry_->DeleteSubject(req->subject(), req->permanent());
  if (!v.ok()) return Out(v.status());
  for (int32_t n : *v) resp->add_versions(n);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::DeleteVersion(grpc::ServerContext* ctx,
                                                const v1::DeleteVersionRequest* req,
                                                v1::DeleteVersionResponse* resp) {
  POLDER_CALLER(ctx, peer);
  absl::Status allowed = policy_.CheckSubjectWrite(peer, req->subject());
  if (!allowed.ok()) return Out(allowed);
  absl::StatusOr<int32_t> v =
      registry_->DeleteVersion(req->subject(), req->version(), req->permanent());
  if (!v.ok()) return Out(v.status());
  resp->set_version(*v);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::CheckCompatibility(grpc::ServerContext* ctx,
                                                     const v1::CheckCompatibilityRequest* req,
                                                     v1::CheckCompatibilityResponse* resp) {
  POLDER_CALLER(ctx, peer);
  (void)peer;
  RegisterRequest r;
  r.subject = req->subject();
  r.schema = req->schema();
  r.references = Refs(req->references());
  absl::StatusOr<std::vector<std::string>> reasons =
      registry_->TestCompatibility(r, req->version());
  if (!reasons.ok()) return Out(reasons.status());
  resp->set_is_compatible(reasons->empty());
  for (const std::string& m : *reasons) resp->add_messages(m);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::GetConfig(grpc::ServerContext* ctx,
                                            const v1::GetConfigRequest* req,
                                            v1::ConfigResponse* resp) {
  POLDER_CALLER(ctx, peer);
  (void)peer;
  absl::StatusOr<std::string> level =
      registry_->GetCompatibility(req->subject(), req->default_to_global());
  if (!level.ok()) return Out(level.status());
  resp->set_compatibility(*level);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::SetConfig(grpc::ServerContext* ctx,
                                            const v1::SetConfigRequest* req,
                                            v1::ConfigResponse* resp) {
  POLDER_CALLER(ctx, peer);
  absl::Status allowed = req->subject().empty()
                             ? policy_.CheckOperator(peer, "change the global compatibility")
                             : policy_.CheckSubjectWrite(peer, req->subject());
  if (!allowed.ok()) return Out(allowed);
  absl::StatusOr<std::string> level =
      registry_->SetCompatibility(req->subject(), req->compatibility());
  if (!level.ok()) return Out(level.status());
  resp->set_compatibility(*level);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::GetMode(grpc::ServerContext* ctx, const v1::GetModeRequest* req,
                                          v1::ModeResponse* resp) {
  POLDER_CALLER(ctx, peer);
  (void)peer;
  absl::StatusOr<std::string> mode = registry_->GetMode(req->subject(), req->default_to_global());
  if (!mode.ok()) return Out(mode.status());
  resp->set_mode(*mode);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::SetMode(grpc::ServerContext* ctx, const v1::SetModeRequest* req,
                                          v1::ModeResponse* resp) {
  POLDER_CALLER(ctx, peer);
  absl::Status allowed = policy_.CheckOperator(peer, "change modes");
  if (!allowed.ok()) return Out(allowed);
  absl::StatusOr<std::string> mode = registry_->SetMode(req->subject(), req->mode(), req->force());
  if (!mode.ok()) return Out(mode.status());
  resp->set_mode(*mode);
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::Export(grpc::ServerContext* ctx, const v1::ExportRequest*,
                                         v1::RegistryExport* resp) {
  POLDER_CALLER(ctx, peer);
  absl::Status allowed = policy_.CheckOperator(peer, "export the registry");
  if (!allowed.ok()) return Out(allowed);
  registry::Export e = registry_->ExportAll();
  for (const ExportedVersion& v : e.versions) {
    v1::ExportedVersion* out = resp->add_versions();
    out->set_subject(v.subject);
    out->set_version(v.version);
    out->set_id(v.id);
    out->set_schema(v.schema);
    out->set_deleted(v.deleted);
    FillRefs(v.references, out->mutable_references());
  }
  resp->set_global_compatibility(e.global_compatibility);
  for (const auto& [s, l] : e.subject_compatibility)
    (*resp->mutable_subject_compatibility())[s] = l;
  resp->set_next_id(e.next_id);
  for (const StoredSchema& s : e.orphan_schemas) {
    v1::ExportedSchema* out = resp->add_orphan_schemas();
    out->set_id(s.id);
    out->set_schema(s.schema);
    out->set_hash(s.hash);
    FillRefs(s.references, out->mutable_references());
  }
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::Import(grpc::ServerContext* ctx, const v1::RegistryExport* req,
                                         v1::ImportResponse* resp) {
  POLDER_CALLER(ctx, peer);
  absl::Status allowed = policy_.CheckOperator(peer, "import into the registry");
  if (!allowed.ok()) return Out(allowed);
  registry::Export e;
  for (const auto& v : req->versions()) {
    e.versions.push_back(
        {v.subject(), v.version(), v.id(), v.schema(), Refs(v.references()), v.deleted()});
  }
  e.global_compatibility =
      req->global_compatibility().empty() ? "BACKWARD" : req->global_compatibility();
  for (const auto& [s, l] : req->subject_compatibility()) e.subject_compatibility[s] = l;
  e.next_id = req->next_id();
  for (const auto& o : req->orphan_schemas()) {
    e.orphan_schemas.push_back({o.id(), o.schema(), Refs(o.references()), o.hash()});
  }
  absl::Status s = registry_->Import(e);
  if (!s.ok()) return Out(s);
  resp->set_versions(static_cast<int32_t>(e.versions.size()));
  return grpc::Status::OK;
}

grpc::Status RegistryGrpcService::SetPrimary(grpc::ServerContext* ctx,
                                             const v1::SetPrimaryRequest* req,
                                             v1::SetPrimaryResponse* resp) {
  POLDER_CALLER(ctx, peer);
  absl::Status allowed = policy_.CheckOperator(peer, "move the primary role");
  if (!allowed.ok()) return Out(allowed);
  if (store_ == nullptr) return ToGrpcStatus(absl::UnimplementedError("no Kafka store"));
  absl::Status s = store_->MakePrimary(req->replica());
  if (!s.ok()) return Out(s);
  resp->set_primary(store_->primary_replica());
  return grpc::Status::OK;
}

}  // namespace registry
}  // namespace polder
