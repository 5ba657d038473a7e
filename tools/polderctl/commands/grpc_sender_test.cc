// NewGrpcSender's refusals: no channel is made from incomplete or contradictory credentials, and
// plaintext only reaches a loopback endpoint without a token.
#include "tools/polderctl/commands/grpc_sender.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace polderctl {
namespace {

using ::polder::testing::IsOk;
using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

std::string TokenFile() {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/token";
  std::ofstream(path) << "secret-token\n";
  return path;
}

TEST(GrpcSenderTest, PlaintextOnlyToLoopbackAndNeverWithCredentials) {
  GrpcSenderOptions o;
  o.plaintext = true;
  for (const char* loopback : {"localhost:7444", "127.0.0.1:7444", "[::1]:7444"}) {
    o.endpoint = loopback;
    EXPECT_THAT(NewGrpcSender(o), IsOk()) << loopback;
  }
  for (const char* remote :
       {"node.groningen.nl:7444", "10.0.0.5:7444", "127.0.0.1", "localhost.evil.nl:1"}) {
    o.endpoint = remote;
    EXPECT_THAT(NewGrpcSender(o),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("loopback")))
        << remote;
  }
  o.endpoint = "127.0.0.1:7444";
  o.token_file = TokenFile();
  EXPECT_THAT(NewGrpcSender(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("in clear")));
  o.token_file.clear();
  o.ca_file = "/etc/ssl/certs/ca-certificates.crt";
  EXPECT_THAT(NewGrpcSender(o), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GrpcSenderTest, TlsNeedsACaFileAndConsistentIdentity) {
  GrpcSenderOptions o;
  o.endpoint = "node.groningen.nl:7444";
  EXPECT_THAT(NewGrpcSender(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--ca-file")));
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_FALSE(NewGrpcSender(o).ok()) << "an unreadable CA file refuses, never falls back";
  o.cert_file = "gateway.pem";
  EXPECT_THAT(NewGrpcSender(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("go together")));
  o.key_file = "gateway.key";
  o.token_file = TokenFile();
  EXPECT_THAT(NewGrpcSender(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not both")));
}

TEST(GrpcSenderTest, IsLoopbackEndpoint) {
  EXPECT_TRUE(IsLoopbackEndpoint("127.1.2.3:1"));
  EXPECT_FALSE(IsLoopbackEndpoint("localhost"));
  EXPECT_FALSE(IsLoopbackEndpoint("localhost:"));
  EXPECT_FALSE(IsLoopbackEndpoint("::1:80"));
}

}  // namespace
}  // namespace polderctl
}  // namespace polder
