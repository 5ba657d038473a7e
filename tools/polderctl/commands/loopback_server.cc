#include "tools/polderctl/commands/loopback_server.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace polder {
namespace polderctl {

LoopbackServer::LoopbackServer(grpc::Service* service) {
  int port = 0;
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> plaintext =
      grpc::InsecureServerCredentials();  // loopback development mode only
  builder.AddListeningPort("127.0.0.1:0", plaintext, &port);
  builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    std::fprintf(stderr, "LoopbackServer: cannot listen on 127.0.0.1\n");
    std::abort();
  }
  address_ = absl::StrCat("127.0.0.1:", port);
}

LoopbackServer::~LoopbackServer() { server_->Shutdown(); }

std::shared_ptr<grpc::Channel> LoopbackServer::Channel() const {
  std::shared_ptr<grpc::ChannelCredentials> plaintext =
      grpc::InsecureChannelCredentials();  // loopback development mode only
  return grpc::CreateChannel(address_, plaintext);
}

}  // namespace polderctl
}  // namespace polder
