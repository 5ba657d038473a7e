#include "common/server/grpc_security.h"

#include "gtest/gtest.h"

namespace polder {
namespace server {
namespace {

TEST(GrpcSecurityTest, DevelopmentModeIsPlaintext) {
  ServerSecurity s;
  s.development_mode = true;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server = GrpcServerCredentials(s);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_NE(*server, nullptr);
  ChannelSecurity c;
  c.development_mode = true;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> channel = GrpcChannelCredentials(c);
  ASSERT_TRUE(channel.ok()) << channel.status();
  EXPECT_NE(*channel, nullptr);
}

TEST(GrpcSecurityTest, OutsideDevelopmentModeMissingCredentialsAreAnErrorNotPlaintext) {
  ServerSecurity s;
  s.files = {"/nonexistent/cert.pem", "/nonexistent/key.pem", "/nonexistent/bundle.pem"};
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server = GrpcServerCredentials(s);
  EXPECT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("cert.pem"), absl::string_view::npos) << server.status();
  ChannelSecurity c;
  c.files = s.files;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> channel = GrpcChannelCredentials(c);
  EXPECT_FALSE(channel.ok());
  // Nothing configured at all: refused too.
  ServerSecurity no_checker;
  EXPECT_FALSE(GrpcServerCredentials(no_checker).ok());
  EXPECT_FALSE(GrpcChannelCredentials(ChannelSecurity{}).ok());
}

}  // namespace
}  // namespace server
}  // namespace polder
