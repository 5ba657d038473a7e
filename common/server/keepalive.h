// HTTP/2 keepalive and connection-age settings for long-lived federation streams, as gRPC
// channel arguments for the server and for its clients. Both sides must agree: a server refuses
// pings more frequent than it permits, and a client that pings on an idle connection must be
// permitted to.
#ifndef POLDER_COMMON_SERVER_KEEPALIVE_H_
#define POLDER_COMMON_SERVER_KEEPALIVE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/channel_arguments.h"

namespace polder {
namespace server {

struct Keepalive {
  absl::Duration time = absl::Seconds(30);     // ping an idle connection this often
  absl::Duration timeout = absl::Seconds(10);  // and drop it if the ping is not answered
  // Server only: connections are closed after this age (plus the grace for calls in flight) or
  // this long without calls, so load spreads again and abandoned connections are freed.
  absl::Duration max_connection_age = absl::Hours(24);
  absl::Duration max_connection_age_grace = absl::Minutes(5);
  absl::Duration max_connection_idle = absl::Hours(1);
};

// The server's channel arguments: pings every `time` even without calls, clients may ping every
// time/2 without strikes, and the connection-age limits.
std::vector<std::pair<std::string, int>> ServerKeepaliveArguments(const Keepalive& keepalive);
void ApplyServerKeepalive(const Keepalive& keepalive, grpc::ServerBuilder* builder);

// The client's: pings every `time`, also without calls, with no cap on pings without data.
void ApplyClientKeepalive(const Keepalive& keepalive, grpc::ChannelArguments* arguments);

}  // namespace server
}  // namespace polder

#endif  // POLDER_COMMON_SERVER_KEEPALIVE_H_
