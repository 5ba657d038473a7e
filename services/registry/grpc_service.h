// The gRPC adapter of the registry: polder.registry.v1.SchemaRegistryService.
#ifndef POLDER_SERVICES_REGISTRY_GRPC_SERVICE_H_
#define POLDER_SERVICES_REGISTRY_GRPC_SERVICE_H_

#include "proto/polder/registry/v1/registry.grpc.pb.h"
#include "services/registry/access.h"
#include "services/registry/kafka_store.h"
#include "services/registry/registry.h"

namespace polder {
namespace registry {

class RegistryGrpcService final : public polder::registry::v1::SchemaRegistryService::Service {
 public:
  // `store` may be null (tests without Kafka): SetPrimary is then UNIMPLEMENTED.
  RegistryGrpcService(Registry* registry, KafkaSchemaStore* store, AccessPolicy policy)
      : registry_(registry), store_(store), policy_(std::move(policy)) {}

  grpc::Status RegisterSchema(grpc::ServerContext*, const v1::RegisterSchemaRequest*,
                              v1::RegisterSchemaResponse*) override;
  grpc::Status LookupSchema(grpc::ServerContext*, const v1::LookupSchemaRequest*,
                            v1::Schema*) override;
  grpc::Status GetSchema(grpc::ServerContext*, const v1::GetSchemaRequest*, v1::Schema*) override;
  grpc::Status GetVersion(grpc::ServerContext*, const v1::GetVersionRequest*, v1::Schema*) override;
  grpc::Status ListSubjects(grpc::ServerContext*, const v1::ListSubjectsRequest*,
                            v1::ListSubjectsResponse*) override;
  grpc::Status ListVersions(grpc::ServerContext*, const v1::ListVersionsRequest*,
                            v1::VersionsResponse*) override;
  grpc::Status DeleteSubject(grpc::ServerContext*, const v1::DeleteSubjectRequest*,
                             v1::VersionsResponse*) override;
  grpc::Status DeleteVersion(grpc::ServerContext*, const v1::DeleteVersionRequest*,
                             v1::DeleteVersionResponse*) override;
  grpc::Status CheckCompatibility(grpc::ServerContext*, const v1::CheckCompatibilityRequest*,
                                  v1::CheckCompatibilityResponse*) override;
  grpc::Status GetConfig(grpc::ServerContext*, const v1::GetConfigRequest*,
                         v1::ConfigResponse*) override;
  grpc::Status SetConfig(grpc::ServerContext*, const v1::SetConfigRequest*,
                         v1::ConfigResponse*) override;
  grpc::Status GetMode(grpc::ServerContext*, const v1::GetModeRequest*, v1::ModeResponse*) override;
  grpc::Status SetMode(grpc::ServerContext*, const v1::SetModeRequest*, v1::ModeResponse*) override;
  grpc::Status Export(grpc::ServerContext*, const v1::ExportRequest*, v1::RegistryExport*) override;
  grpc::Status Import(grpc::ServerContext*, const v1::RegistryExport*,
                      v1::ImportResponse*) override;
  grpc::Status SetPrimary(grpc::ServerContext*, const v1::SetPrimaryRequest*,
                          v1::SetPrimaryResponse*) override;

 private:
  absl::StatusOr<std::string> Caller(grpc::ServerContext* context) const;

  Registry* const registry_;
  KafkaSchemaStore* const store_;
  const AccessPolicy policy_;
};

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_GRPC_SERVICE_H_
