#include "common/server/keepalive.h"

#include <map>

#include "grpc/grpc.h"
#include "gtest/gtest.h"

namespace polder {
namespace server {
namespace {

TEST(KeepaliveTest, ServerArgumentsCarryTheConfiguredTimes) {
  Keepalive k;
  k.time = absl::Seconds(20);
  k.timeout = absl::Seconds(4);
  k.max_connection_age = absl::Minutes(30);
  k.max_connection_age_grace = absl::Seconds(90);
  k.max_connection_idle = absl::Minutes(7);
  std::map<std::string, int> args;
  for (const auto& [name, value] : ServerKeepaliveArguments(k)) args[name] = value;
  EXPECT_EQ(args[GRPC_ARG_KEEPALIVE_TIME_MS], 20000);
  EXPECT_EQ(args[GRPC_ARG_KEEPALIVE_TIMEOUT_MS], 4000);
  EXPECT_EQ(args[GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS], 1);
  // Clients ping every `time`: the server must accept pings at least that often.
  EXPECT_LE(args[GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS], 20000);
  EXPECT_EQ(args[GRPC_ARG_HTTP2_MAX_PING_STRIKES], 0);
  EXPECT_EQ(args[GRPC_ARG_MAX_CONNECTION_AGE_MS], 30 * 60 * 1000);
  EXPECT_EQ(args[GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS], 90000);
  EXPECT_EQ(args[GRPC_ARG_MAX_CONNECTION_IDLE_MS], 7 * 60 * 1000);
}

TEST(KeepaliveTest, ClientArgumentsPingIdleConnections) {
  Keepalive k;
  k.time = absl::Seconds(15);
  k.timeout = absl::Seconds(3);
  grpc::ChannelArguments arguments;
  ApplyClientKeepalive(k, &arguments);
  std::map<std::string, int> args;
  const grpc_channel_args c = arguments.c_channel_args();
  for (size_t i = 0; i < c.num_args; ++i) {
    if (c.args[i].type == GRPC_ARG_INTEGER) args[c.args[i].key] = c.args[i].value.integer;
  }
  EXPECT_EQ(args[GRPC_ARG_KEEPALIVE_TIME_MS], 15000);
  EXPECT_EQ(args[GRPC_ARG_KEEPALIVE_TIMEOUT_MS], 3000);
  EXPECT_EQ(args[GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS], 1);
  EXPECT_EQ(args[GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA], 0);
}

}  // namespace
}  // namespace server
}  // namespace polder
