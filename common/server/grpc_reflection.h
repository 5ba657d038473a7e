// gRPC server reflection (grpc.reflection.v1alpha.ServerReflection) per server, so
// `buf curl --list-services` and `grpcurl list` work against the registry's and the node's ingest
// ports without the .proto files. Linking gRPC's reflection library registers its plugin for
// every server built in the process (a static initializer), so each server says which it is:
// AddReflection on the ingest and registry ports, NoReflection on the federation port, which
// does not serve it (peers use `buf curl --schema` with the published protos).
//
// Reflection calls pass the server's authentication like any call (mutual TLS, and on ingest the
// token check in the auth filter) before a stream is accepted; each open reflection stream holds
// one of the server's call threads, so the thread quota and the per-connection stream limit
// (tls::ApplyServerLimits) bound them.
#ifndef POLDER_COMMON_SERVER_GRPC_REFLECTION_H_
#define POLDER_COMMON_SERVER_GRPC_REFLECTION_H_

#include "grpcpp/server_builder.h"

namespace polder {
namespace server {

void AddReflection(grpc::ServerBuilder* builder);
void NoReflection(grpc::ServerBuilder* builder);

}  // namespace server
}  // namespace polder

#endif  // POLDER_COMMON_SERVER_GRPC_REFLECTION_H_
