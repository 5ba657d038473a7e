#include "services/node/schema_cache/registry_source.h"

#include "absl/strings/str_cat.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"

namespace polder {
namespace node {
namespace {

FetchedSchema FromProto(const registry::v1::Schema& s) {
  FetchedSchema f;
  f.id = s.id();
  f.subject = s.subject();
  f.version = s.version();
  f.serialized = s.schema();
  for (const auto& r : s.references()) f.references.push_back({r.name(), r.subject(), r.version()});
  return f;
}

}  // namespace

absl::StatusOr<FetchedSchema> RegistryGrpcSource::ById(int32_t id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  registry::v1::GetSchemaRequest req;
  req.set_id(id);
  req.set_format(registry::v1::SCHEMA_FORMAT_SERIALIZED);
  registry::v1::Schema resp;
  grpc::Status s = stub_->GetSchema(&ctx, req, &resp);
  if (!s.ok()) return Prepend(FromGrpcStatus(s), absl::StrCat("registry: schema ", id, ": "));
  FetchedSchema f = FromProto(resp);
  f.id = id;
  return f;
}

absl::StatusOr<FetchedSchema> RegistryGrpcSource::Version(const std::string& subject,
                                                          int32_t version) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  registry::v1::GetVersionRequest req;
  req.set_subject(subject);
  req.set_version(version);
  req.set_format(registry::v1::SCHEMA_FORMAT_SERIALIZED);
  registry::v1::Schema resp;
  grpc::Status s = stub_->GetVersion(&ctx, req, &resp);
  if (!s.ok()) {
    return Prepend(
        FromGrpcStatus(s),
        absl::StrCat("registry: subject ", subject, " version ",
                     version == -1 ? std::string("latest") : std::to_string(version), ": "));
  }
  return FromProto(resp);
}

}  // namespace node
}  // namespace polder
