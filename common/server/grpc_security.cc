#include "common/server/grpc_security.h"

#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace polder {
namespace server {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const ServerSecurity& security) {
  if (security.development_mode) {
    return grpc::InsecureServerCredentials();  // loopback development mode only
  }
  return tls::MakeServerCredentials(security.files, security.checker, security.client_certificates,
                                    security.token_check);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> GrpcChannelCredentials(
    const ChannelSecurity& security) {
  if (security.development_mode) {
    return grpc::InsecureChannelCredentials();  // loopback development mode only
  }
  return tls::MakeChannelCredentials(security.files, security.checker, security.expected_peer_id);
}

}  // namespace server
}  // namespace polder
