#include "common/server/keepalive.h"

#include "grpc/grpc.h"

namespace polder {
namespace server {
namespace {

int Ms(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

}  // namespace

std::vector<std::pair<std::string, int>> ServerKeepaliveArguments(const Keepalive& k) {
  return {
      {GRPC_ARG_KEEPALIVE_TIME_MS, Ms(k.time)},
      {GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Ms(k.timeout)},
      {GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1},
      // Peers ping every `time`; accept that (gRPC's default refuses pings under 5 minutes).
      {GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, Ms(k.time / 2)},
      {GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0},
      {GRPC_ARG_MAX_CONNECTION_AGE_MS, Ms(k.max_connection_age)},
      {GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, Ms(k.max_connection_age_grace)},
      {GRPC_ARG_MAX_CONNECTION_IDLE_MS, Ms(k.max_connection_idle)},
  };
}

void ApplyServerKeepalive(const Keepalive& keepalive, grpc::ServerBuilder* builder) {
  for (const auto& [name, value] : ServerKeepaliveArguments(keepalive)) {
    builder->AddChannelArgument(name, value);
  }
}

void ApplyClientKeepalive(const Keepalive& keepalive, grpc::ChannelArguments* arguments) {
  arguments->SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, Ms(keepalive.time));
  arguments->SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Ms(keepalive.timeout));
  arguments->SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  arguments->SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
}

}  // namespace server
}  // namespace polder
