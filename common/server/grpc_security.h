// The one place a Polder service chooses between TLS and plaintext for its gRPC credentials.
// Outside the development mode every listener and channel made here is TLS with the identity
// checker (common/tls/grpc_tls.h); the development mode — which each service's configuration
// allows only on loopback addresses — is plaintext. There is no other path: a missing or broken
// credential is an error, never a plaintext fallback. The node's federation listener and its
// subscriptions, which are mutual TLS in every mode, take common/tls's credentials directly.
#ifndef POLDER_COMMON_SERVER_GRPC_SECURITY_H_
#define POLDER_COMMON_SERVER_GRPC_SECURITY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/tls/grpc_tls.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace polder {
namespace server {

struct ServerSecurity {
  // Plaintext; the caller's configuration has checked the listener is on loopback.
  bool development_mode = false;
  tls::TlsFiles files;
  std::shared_ptr<const tls::IdentityChecker> checker;
  tls::ClientCertificates client_certificates = tls::ClientCertificates::kRequired;
  tls::TokenCheck token_check;  // with kOptional: authenticates calls without a certificate
};

// INVALID_ARGUMENT or NOT_FOUND (from common/tls) when TLS is required and a file or the
// checker is missing.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const ServerSecurity& security);

struct ChannelSecurity {
  bool development_mode = false;  // plaintext to a loopback endpoint
  tls::TlsFiles files;
  std::shared_ptr<const tls::IdentityChecker> checker;
  std::string expected_peer_id;  // "" admits any peer the checker admits
};

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> GrpcChannelCredentials(
    const ChannelSecurity& security);

}  // namespace server
}  // namespace polder

#endif  // POLDER_COMMON_SERVER_GRPC_SECURITY_H_
