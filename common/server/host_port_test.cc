#include "common/server/host_port.h"

#include "common/status/status_matchers.h"
#include "gtest/gtest.h"

namespace polder {
namespace server {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

TEST(HostPortTest, ParsesHostAndPort) {
  absl::StatusOr<HostPort> a = ParseHostPort("127.0.0.1:8443");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8443);
  absl::StatusOr<HostPort> any = ParseHostPort("0.0.0.0:0");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->port, 0);
}

TEST(HostPortTest, KeepsTheBracketsOfAnIpv6Literal) {
  absl::StatusOr<HostPort> a = ParseHostPort("[::1]:9000");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "[::1]");
  EXPECT_EQ(a->port, 9000);
}

TEST(HostPortTest, RefusesMalformedAddressesNamingTheField) {
  for (const char* bad : {"", "8443", ":8443", "host:", "host:-1", "host:65536", "host:80x",
                          "host:99999999999999999999"}) {
    EXPECT_THAT(
        ParseHostPort(bad, "node.ops_address"),
        StatusIs(absl::StatusCode::kInvalidArgument,
                 HasSubstr(std::string("node.ops_address: expected host:port, got '") + bad + "'")))
        << bad;
  }
  EXPECT_THAT(ParseHostPort("x", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, "expected host:port, got 'x'"));
}

TEST(HostPortTest, LoopbackHosts) {
  for (const char* h : {"127.0.0.1", "localhost", "::1", "[::1]"}) EXPECT_TRUE(IsLoopbackHost(h));
  for (const char* h : {"0.0.0.0", "10.0.0.1", "node.example", "", "[::]"})
    EXPECT_FALSE(IsLoopbackHost(h)) << h;
}

}  // namespace
}  // namespace server
}  // namespace polder
