// Counts every gRPC call a handler answered (method, status code, duration) in the registry's
// metrics. Calls the auth filter refused never reach a handler and are not counted here.
#ifndef POLDER_SERVICES_REGISTRY_GRPC_METRICS_H_
#define POLDER_SERVICES_REGISTRY_GRPC_METRICS_H_

#include <memory>

#include "grpcpp/support/server_interceptor.h"
#include "services/registry/registry_metrics.h"

namespace polder {
namespace registry {

// `metrics` must outlive the server the factory is installed in.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewGrpcMetricsInterceptor(
    RegistryMetrics* metrics);

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_GRPC_METRICS_H_
