// Mutual-TLS credentials for Polder's gRPC servers and clients.
//
//   auto checker = IdentityChecker::Create({...});
//   ASSIGN_OR_RETURN(auto creds, MakeServerCredentials(files, checker));
//   builder.AddListeningPort("0.0.0.0:8443", creds);
//   ...
//   // In a handler:
//   ASSIGN_OR_RETURN(PeerIdentity peer, CallPeer(*context));
//
// Certificates, keys and the trust bundle are read from files and watched: rotated files are
// picked up without a restart (running streams continue; new handshakes present the new
// certificate). Replace key and certificate together, e.g. by swapping a directory symlink.
//
// Server: a client certificate is required and must chain to the trust bundle (handshake,
// checked by gRPC); then every call is admitted only after IdentityChecker::Check (validity at
// now, CRLs reloaded from disk, peer id, directory thumbprint) — a failure ends the call with
// UNAUTHENTICATED or PERMISSION_DENIED and the reason. Streams re-check with RecheckCallPeer.
//
// Client: presents its certificate and accepts a server only if IdentityChecker admits it and,
// when given, its peer id is the expected one.
#ifndef POLDER_COMMON_TLS_GRPC_TLS_H_
#define POLDER_COMMON_TLS_GRPC_TLS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls/identity.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_context.h"

namespace polder {
namespace tls {

struct TlsFiles {
  std::string cert_path;          // PEM: this party's certificate, then its issuing CA(s).
  std::string key_path;           // PEM private key (mode 0600).
  std::string trust_bundle_path;  // PEM: the federation's trust anchors.
  // How often the files are checked for changes.
  absl::Duration refresh_interval = absl::Seconds(10);
};

// Auth-context properties set on admitted calls.
inline constexpr char kPeerIdProperty[] = "polder_peer_id";
inline constexpr char kKeyThumbprintProperty[] = "polder_key_thumbprint";
inline constexpr char kCertSerialProperty[] = "polder_cert_serial";

// kOptional: a client without a certificate is let through without an identity (CallPeer then
// fails and the service authenticates the call otherwise, e.g. by a bearer token); a presented
// certificate must chain to the bundle and pass the checker as usual.
enum class ClientCertificates { kRequired, kOptional };

// Authenticates a call that presented no client certificate by its `authorization` metadata
// ("" if absent), before the call reaches a handler or takes a thread: a refusal ends the call
// with UNAUTHENTICATED. Must not block (it runs on gRPC's transport thread).
using TokenCheck = std::function<absl::Status(const std::string& authorization)>;

// kOptional with `token_check`: a call without a certificate is admitted only if the check
// passes (without it, such calls pass through without an identity, as documented above).
// `required_peer_id` non-empty: only that peer is admitted (PERMISSION_DENIED for any other the
// checker admits) — a node's internal port, for its own replicas.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, std::shared_ptr<const IdentityChecker> checker,
    ClientCertificates client_certificates = ClientCertificates::kRequired,
    TokenCheck token_check = nullptr, std::string required_peer_id = "");

// `expected_peer_id` empty: any peer the checker admits.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files, std::shared_ptr<const IdentityChecker> checker,
    std::string expected_peer_id);

// The limits every Polder gRPC server applies (ADR 0011): at most `max_threads` threads for
// calls (a call beyond them is refused with RESOURCE_EXHAUSTED instead of queueing a thread),
// `max_streams_per_connection` concurrent streams per HTTP/2 connection, and a TLS handshake
// that does not finish within `handshake_timeout` is dropped. Authentication runs in the auth
// filter (MakeServerCredentials) before a call takes any of those threads.
struct GrpcServerLimits {
  int max_threads = 256;
  int max_streams_per_connection = 100;
  absl::Duration handshake_timeout = absl::Seconds(10);
};
void ApplyServerLimits(grpc::ServerBuilder* builder, const std::string& name,
                       const GrpcServerLimits& limits);

// The identity the server admitted for this call (from the auth context).
absl::StatusOr<PeerIdentity> CallPeer(const grpc::ServerContext& context);

// Checks the call's peer again now (expiry, revocation, directory): for long-lived streams.
absl::StatusOr<PeerIdentity> RecheckCallPeer(const grpc::ServerContext& context,
                                             const IdentityChecker& checker);

// The peer's certificate chain (PEM, leaf first) from an auth context.
std::string PeerChainPem(const grpc::AuthContext& context);

}  // namespace tls
}  // namespace polder

#endif  // POLDER_COMMON_TLS_GRPC_TLS_H_
