#include "common/server/grpc_reflection.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"

namespace polder {
namespace server {
namespace {

// Adds the reflection plugin to the one builder it is set on.
class ReflectionOption final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    for (const auto& p : *plugins) {
      if (p->name() == "proto_server_reflection") return;
    }
    plugins->push_back(std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>());
  }
};

// Removes it from the one builder it is set on.
class NoReflectionOption final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                    return p->name() == "proto_server_reflection";
                                  }),
                   plugins->end());
  }
};

}  // namespace

void NoReflection(grpc::ServerBuilder* builder) {
  builder->SetOption(std::make_unique<NoReflectionOption>());
}

void AddReflection(grpc::ServerBuilder* builder) {
  // gRPC's health service has no generated code in the binary: link grpc.health.v1's descriptor
  // (proto/grpc/health/v1) so reflection can describe it.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  builder->SetOption(std::make_unique<ReflectionOption>());
}

}  // namespace server
}  // namespace polder
