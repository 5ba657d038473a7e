// Test helper: a gRPC server for one service on 127.0.0.1 (a free port), in plaintext as a
// development-mode service on loopback is, and plaintext channels to it. For unit tests of
// polderctl's gRPC clients against in-process fakes.
//
//   FakeRegistry registry;
//   LoopbackServer server(&registry);
//   RegistryClient client(server.Channel(), absl::Seconds(5));
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_LOOPBACK_SERVER_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_LOOPBACK_SERVER_H_

#include <memory>
#include <string>

#include "grpcpp/channel.h"
#include "grpcpp/server.h"
#include "grpcpp/support/config.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace polder {
namespace polderctl {

class LoopbackServer {
 public:
  // Starts serving `service` (which must outlive the server); aborts the test binary if no port
  // can be bound.
  explicit LoopbackServer(grpc::Service* service);
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  // 127.0.0.1:<port>.
  const std::string& address() const { return address_; }
  // A new plaintext channel to the server.
  std::shared_ptr<grpc::Channel> Channel() const;

 private:
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_LOOPBACK_SERVER_H_
