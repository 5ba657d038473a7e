#include "common/tls/grpc_tls.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/base/const_init.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log/log.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "common/trust/keys.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace polder {
namespace tls {
namespace {

std::string First(const std::vector<grpc::string_ref>& values) {
  return values.empty() ? std::string() : std::string(values[0].data(), values[0].size());
}

absl::Status CheckReadable(const std::string& path, const char* what) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat("TLS ", what, " path is empty"));
  if (access(path.c_str(), R_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("TLS ", what, " '", path, "': ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status CheckFiles(const TlsFiles& files) {
  RETURN_IF_ERROR(CheckReadable(files.cert_path, "certificate"));
  RETURN_IF_ERROR(CheckReadable(files.key_path, "private key"));
  RETURN_IF_ERROR(CheckReadable(files.trust_bundle_path, "trust bundle"));
  RETURN_IF_ERROR(trust::CheckPrivateFile(files.key_path, "TLS private key"));
  if (files.refresh_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("TLS refresh_interval must be at least 1s");
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::experimental::FileWatcherCertificateProvider> Provider(
    const TlsFiles& files) {
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key_path, files.cert_path, files.trust_bundle_path,
      static_cast<unsigned int>(absl::ToInt64Seconds(files.refresh_interval)));
}

// gRPC hands the processor the *connection's* auth context, shared by every call on it, and
// may run Process for concurrent calls of one connection on different threads
// (server_auth_filter.cc): adding properties while another call reads them is a data race on
// the context's array (gRPC asserted `prop->name != nullptr` under a flood of streams on one
// connection). So every read and write of a context in Process holds this lock, and a
// connection's identity is added once: later calls find it there and add nothing, so the
// context never changes after the first call's handler can read it (and does not grow by three
// properties per call on a long-lived connection).
ABSL_CONST_INIT absl::Mutex admission_mu(absl::kConstInit);

// Admits each call on the server after IdentityChecker::Check.
class PeerAdmission : public grpc::AuthMetadataProcessor {
 public:
  PeerAdmission(std::shared_ptr<const IdentityChecker> checker, bool optional,
                TokenCheck token_check, std::string required_peer_id)
      : checker_(std::move(checker)),
        optional_(optional),
        token_check_(std::move(token_check)),
        required_peer_id_(std::move(required_peer_id)) {}
  bool IsBlocking() const override { return false; }  // Check does no network I/O.

  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context, OutputMetadata*,
                       OutputMetadata*) override {
    std::string chain;
    {
      absl::MutexLock lock(&admission_mu);
      chain = PeerChainPem(*context);
    }
    if (chain.empty() && optional_) {
      if (!token_check_) return grpc::Status::OK;  // no certificate: no identity
      // No certificate: the token decides, before the call takes a thread or is parsed.
      auto it = metadata.find("authorization");
      absl::Status s = token_check_(
          it == metadata.end() ? std::string() : std::string(it->second.data(), it->second.size()));
      if (!s.ok()) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(s.message()));
      return grpc::Status::OK;
    }
    absl::StatusOr<PeerIdentity> peer = checker_->Check(chain);
    if (!peer.ok()) {
      static log::RateLimit limit(10);  // a flood of refusals does not flood the log
      int64_t suppressed = 0;
      if (limit.Allow(&suppressed)) {
        log::Warning("peer refused", {{"reason", std::string(peer.status().message())},
                                      {"code", absl::StatusCodeToString(peer.status().code())},
                                      {"suppressed_before", suppressed}});
      }
      return ToGrpcStatus(peer.status());
    }
    if (!required_peer_id_.empty() && peer->peer_id != required_peer_id_) {
      static log::RateLimit limit(10);
      int64_t suppressed = 0;
      const std::string why =
          absl::StrCat("this port admits only peer '", required_peer_id_,
                       "' (its own replicas); the caller is '", peer->peer_id, "'");
      if (limit.Allow(&suppressed)) {
        log::Warning("peer refused", {{"reason", why}, {"suppressed_before", suppressed}});
      }
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why);
    }
    absl::MutexLock lock(&admission_mu);
    const std::vector<grpc::string_ref> known = context->FindPropertyValues(kPeerIdProperty);
    if (known.empty()) {
      context->AddProperty(kPeerIdProperty, peer->peer_id);
      context->AddProperty(kKeyThumbprintProperty, peer->key_thumbprint);
      context->AddProperty(kCertSerialProperty, peer->serial_hex);
      context->SetPeerIdentityPropertyName(kPeerIdProperty);
    } else if (std::string(known[0].data(), known[0].size()) != peer->peer_id) {
      // One connection, one certificate: never reached, refused rather than mixed.
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "the connection was admitted as another peer");
    }
    return grpc::Status::OK;
  }

 private:
  std::shared_ptr<const IdentityChecker> checker_;
  const bool optional_;
  const TokenCheck token_check_;
  const std::string required_peer_id_;
};

// Accepts a server only if the checker admits it (and it is the expected peer).
class ServerAdmission : public grpc::experimental::ExternalCertificateVerifier {
 public:
  ServerAdmission(std::shared_ptr<const IdentityChecker> checker, std::string expected)
      : checker_(std::move(checker)), expected_(std::move(expected)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    grpc::string_ref chain = request->peer_cert_full_chain();
    grpc::string_ref leaf = request->peer_cert();
    std::string pem = chain.empty() ? std::string(leaf.data(), leaf.size())
                                    : std::string(chain.data(), chain.size());
    absl::StatusOr<PeerIdentity> peer = checker_->Check(pem);
    if (!peer.ok()) {
      log::Warning("server refused", {{"reason", std::string(peer.status().message())}});
      *sync_status = ToGrpcStatus(peer.status());
      return true;
    }
    if (!expected_.empty() && peer->peer_id != expected_) {
      std::string why =
          absl::StrCat("server is peer '", peer->peer_id, "', expected '", expected_, "'");
      log::Warning("server refused", {{"reason", why}});
      *sync_status = grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why);
      return true;
    }
    *sync_status = grpc::Status::OK;
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  std::shared_ptr<const IdentityChecker> checker_;
  std::string expected_;
};

}  // namespace

std::string PeerChainPem(const grpc::AuthContext& context) {
  std::string leaf = First(context.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME));
  std::string chain = First(context.FindPropertyValues(GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME));
  // On a server, OpenSSL's peer chain holds only the intermediates; on a client it starts with
  // the leaf. Return leaf first, then the intermediates, either way.
  if (chain.empty() || chain.find(leaf) != std::string::npos) return chain.empty() ? leaf : chain;
  return leaf + chain;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, std::shared_ptr<const IdentityChecker> checker,
    ClientCertificates client_certificates, TokenCheck token_check, std::string required_peer_id) {
  RETURN_IF_ERROR(CheckFiles(files));
  if (checker == nullptr) return absl::InvalidArgumentError("TLS server needs an identity checker");
  grpc::experimental::TlsServerCredentialsOptions options(Provider(files));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  const bool optional = client_certificates == ClientCertificates::kOptional;
  options.set_cert_request_type(optional
                                    ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
                                    : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::experimental::TlsServerCredentials(options);
  if (creds == nullptr) return absl::InternalError("gRPC refused the TLS server options");
  creds->SetAuthMetadataProcessor(std::make_shared<PeerAdmission>(
      std::move(checker), optional, std::move(token_check), std::move(required_peer_id)));
  return creds;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files, std::shared_ptr<const IdentityChecker> checker,
    std::string expected_peer_id) {
  RETURN_IF_ERROR(CheckFiles(files));
  if (checker == nullptr) return absl::InvalidArgumentError("TLS client needs an identity checker");
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(Provider(files));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  // The server's identity is its federation peer id (checked below), not a host name.
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<ServerAdmission>(
          std::move(checker), std::move(expected_peer_id)));
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::experimental::TlsCredentials(options);
  if (creds == nullptr) return absl::InternalError("gRPC refused the TLS channel options");
  return creds;
}

void ApplyServerLimits(grpc::ServerBuilder* builder, const std::string& name,
                       const GrpcServerLimits& limits) {
  grpc::ResourceQuota quota(name);
  quota.SetMaxThreads(limits.max_threads);
  builder->SetResourceQuota(quota);
  builder->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, limits.max_streams_per_connection);
  builder->AddChannelArgument(
      GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
      static_cast<int>(absl::ToInt64Milliseconds(limits.handshake_timeout)));
}

absl::StatusOr<PeerIdentity> CallPeer(const grpc::ServerContext& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return absl::UnauthenticatedError("call has no TLS peer");
  PeerIdentity p;
  p.peer_id = First(auth->FindPropertyValues(kPeerIdProperty));
  p.key_thumbprint = First(auth->FindPropertyValues(kKeyThumbprintProperty));
  p.serial_hex = First(auth->FindPropertyValues(kCertSerialProperty));
  if (p.peer_id.empty()) return absl::UnauthenticatedError("call's peer was not admitted");
  return p;
}

absl::StatusOr<PeerIdentity> RecheckCallPeer(const grpc::ServerContext& context,
                                             const IdentityChecker& checker) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return absl::UnauthenticatedError("call has no TLS peer");
  return checker.Check(PeerChainPem(*auth));
}

}  // namespace tls
}  // namespace polder
