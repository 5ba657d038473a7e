// Mutual-TLS gRPC channels from polderctl to Polder's services, and call deadlines.
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_SERVICE_CHANNEL_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_SERVICE_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "tools/polderctl/cli.h"

namespace polder {
namespace polderctl {

// A mutual-TLS channel to the Polder service of peer `server_peer` at `address`: this side's
// identity is --cert/--key, the server is checked against --bundle, --crl-dir and the signed
// directory --directory, which is verified first against --operator-key.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ServiceChannel(const cli::Args& args,
                                                              const std::string& address,
                                                              const std::string& server_peer);

// The same, to --address and the peer --server-peer.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ServiceChannel(const cli::Args& args);

// Sets the deadline of `ctx` to `timeout` from now; returns `ctx`.
grpc::ClientContext* WithDeadline(grpc::ClientContext* ctx, absl::Duration timeout);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_SERVICE_CHANNEL_H_
