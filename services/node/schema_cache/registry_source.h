// SchemaSource over the registry's gRPC API (polder.registry.v1), as this node's federation
// identity over mutual TLS.
#ifndef POLDER_SERVICES_NODE_SCHEMA_CACHE_REGISTRY_SOURCE_H_
#define POLDER_SERVICES_NODE_SCHEMA_CACHE_REGISTRY_SOURCE_H_

#include <memory>

#include "grpcpp/grpcpp.h"
#include "proto/polder/registry/v1/registry.grpc.pb.h"
#include "services/node/schema_cache/schema_cache.h"

namespace polder {
namespace node {

class RegistryGrpcSource : public SchemaSource {
 public:
  RegistryGrpcSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
      : stub_(registry::v1::SchemaRegistryService::NewStub(std::move(channel))),
        timeout_(timeout) {}

  absl::StatusOr<FetchedSchema> ById(int32_t id) override;
  absl::StatusOr<FetchedSchema> Version(const std::string& subject, int32_t version) override;

 private:
  std::unique_ptr<registry::v1::SchemaRegistryService::Stub> stub_;
  const absl::Duration timeout_;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_SCHEMA_CACHE_REGISTRY_SOURCE_H_
