#include "tools/polderctl/commands/registry_client.h"

#include <utility>

#include "common/status/grpc_status.h"
#include "grpcpp/client_context.h"
#include "tools/polderctl/commands/service_channel.h"

namespace polder {
namespace polderctl {
namespace {

template <typename Request>
void AddReferences(const std::vector<SchemaReference>& references, Request* req) {
  for (const SchemaReference& r : references) {
    registry::v1::SchemaReference* ref = req->add_references();
    ref->set_name(r.name);
    ref->set_subject(r.subject);
    ref->set_version(r.version);
  }
}

bool IsNotFound(const grpc::Status& s) { return s.error_code() == grpc::StatusCode::NOT_FOUND; }

}  // namespace

RegistryClient::RegistryClient(std::shared_ptr<grpc::ChannelInterface> channel,
                               absl::Duration timeout)
    : stub_(registry::v1::SchemaRegistryService::NewStub(std::move(channel))), timeout_(timeout) {}

absl::StatusOr<std::string> RegistryClient::SetPrimary(const std::string& replica) {
  grpc::ClientContext ctx;
  registry::v1::SetPrimaryRequest req;
  req.set_replica(replica);
  registry::v1::SetPrimaryResponse resp;
  grpc::Status s = stub_->SetPrimary(WithDeadline(&ctx, timeout_), req, &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return resp.primary();
}

absl::StatusOr<std::optional<std::string>> RegistryClient::SubjectCompatibility(
    const std::string& subject) {
  grpc::ClientContext ctx;
  registry::v1::GetConfigRequest req;
  req.set_subject(subject);
  req.set_default_to_global(false);
  registry::v1::ConfigResponse resp;
  grpc::Status s = stub_->GetConfig(WithDeadline(&ctx, timeout_), req, &resp);
  if (IsNotFound(s)) return std::nullopt;
  if (!s.ok()) return FromGrpcStatus(s);
  return resp.compatibility();
}

absl::Status RegistryClient::SetSubjectCompatibility(const std::string& subject,
                                                     const std::string& level) {
  grpc::ClientContext ctx;
  registry::v1::SetConfigRequest req;
  req.set_subject(subject);
  req.set_compatibility(level);
  registry::v1::ConfigResponse resp;
  return FromGrpcStatus(stub_->SetConfig(WithDeadline(&ctx, timeout_), req, &resp));
}

absl::StatusOr<std::optional<RegisteredSchema>> RegistryClient::LookupSchema(
    const SubjectSchema& schema) {
  grpc::ClientContext ctx;
  registry::v1::LookupSchemaRequest req;
  req.set_subject(schema.subject);
  req.set_schema(schema.schema);
  AddReferences(schema.references, &req);
  registry::v1::Schema resp;
  grpc::Status s = stub_->LookupSchema(WithDeadline(&ctx, timeout_), req, &resp);
  if (IsNotFound(s)) return std::nullopt;
  if (!s.ok()) return FromGrpcStatus(s);
  return RegisteredSchema{resp.version(), resp.id()};
}

absl::StatusOr<std::optional<CompatibilityVerdict>> RegistryClient::CheckCompatibility(
    const SubjectSchema& schema) {
  grpc::ClientContext ctx;
  registry::v1::CheckCompatibilityRequest req;
  req.set_subject(schema.subject);
  req.set_schema(schema.schema);
  AddReferences(schema.references, &req);
  registry::v1::CheckCompatibilityResponse resp;
  grpc::Status s = stub_->CheckCompatibility(WithDeadline(&ctx, timeout_), req, &resp);
  if (IsNotFound(s)) return std::nullopt;
  if (!s.ok()) return FromGrpcStatus(s);
  CompatibilityVerdict verdict;
  verdict.compatible = resp.is_compatible();
  verdict.messages.assign(resp.messages().begin(), resp.messages().end());
  return verdict;
}

absl::StatusOr<RegisteredSchema> RegistryClient::RegisterSchema(const SubjectSchema& schema) {
  grpc::ClientContext ctx;
  registry::v1::RegisterSchemaRequest req;
  req.set_subject(schema.subject);
  req.set_schema(schema.schema);
  req.set_schema_type("PROTOBUF");
  AddReferences(schema.references, &req);
  registry::v1::RegisterSchemaResponse resp;
  grpc::Status s = stub_->RegisterSchema(WithDeadline(&ctx, timeout_), req, &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return RegisteredSchema{resp.version(), resp.id()};
}

}  // namespace polderctl
}  // namespace polder
