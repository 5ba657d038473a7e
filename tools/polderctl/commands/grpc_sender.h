// BatchSender over the node's gRPC ingest (IngestService.Publish, one call per batch), with TLS
// verified against a CA file and the gateway's identity as a client certificate or a bearer
// token (the same identities the node's fixture tests use).
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_GRPC_SENDER_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_GRPC_SENDER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/polderctl/commands/publish.h"

namespace polder {
namespace polderctl {

struct GrpcSenderOptions {
  std::string endpoint;    // host:port of the node's gRPC ingest
  std::string ca_file;     // verifies the node's certificate
  std::string cert_file;   // gateway certificate ...
  std::string key_file;    // ... and its key
  std::string token_file;  // or a file holding a bearer token (first line)
  std::string
      server_name;         // the name the node's certificate must carry, if not the endpoint's host
  bool plaintext = false;  // a development-mode node on loopback: no TLS, no identity
  absl::Duration timeout = absl::Seconds(60);  // per batch
};

// INVALID_ARGUMENT for a missing CA file, a certificate without key, both a certificate and a
// token, an empty token file, and --plaintext with TLS material, with a token or towards an
// endpoint that is not loopback; NOT_FOUND for unreadable files.
absl::StatusOr<std::unique_ptr<BatchSender>> NewGrpcSender(const GrpcSenderOptions& options);

// True for localhost:<port>, 127.x.y.z:<port> and [::1]:<port>.
bool IsLoopbackEndpoint(const std::string& endpoint);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_GRPC_SENDER_H_
