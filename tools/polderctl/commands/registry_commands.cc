#include "tools/polderctl/commands/registry_commands.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status/status_macros.h"
#include "tools/polderctl/commands/registry_client.h"
#include "tools/polderctl/commands/service_channel.h"

namespace polder {
namespace polderctl {
namespace {

absl::Status RegistrySetPrimary(const cli::Args& a, Output* out) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, ServiceChannel(a));
  // Moving the role goes through Kafka (the new primary fences the old one): allow longer than
  // other calls.
  RegistryClient registry(channel, absl::Seconds(90));
  ASSIGN_OR_RETURN(std::string primary, registry.SetPrimary(a.Get("replica")));
  out->result = {{"primary", primary}};
  out->Line(absl::StrCat("the registry primary is now '", primary, "'"));
  return absl::OkStatus();
}

}  // namespace

std::vector<Command> RegistryCommands() {
  return {
      {"registry",
       "set-primary",
       "move the registry's primary role: ask the primary to hand over, or a replica to take over",
       {{"address", "the registry replica's gRPC address host:port", true},
        {"replica", "the replica that should be primary", true},
        {"cert", "your TLS certificate (federation operator)", true},
        {"key", "your TLS key", true},
        {"bundle", "the federation trust bundle", true},
        {"directory", "the signed directory file", true},
        {"operator-key", "pinned operator public key (.pub)", true, true},
        {"crl-dir", "folder of CRLs"},
        {"server-peer", "the registry's peer id in the directory", false, false, false,
         "registry"}},
       RegistrySetPrimary},
  };
}

}  // namespace polderctl
}  // namespace polder
