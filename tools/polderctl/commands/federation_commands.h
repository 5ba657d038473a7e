// `polderctl federation`: federation-wide set-up against the registry.
//
//   polderctl federation bootstrap --address registry:9443 --cert operator/tls/cert.pem
//       --key operator/tls/key.pem --bundle pki/bundle.pem --directory directory.json
//       --operator-key operator.key.pub [--dry-run]
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_FEDERATION_COMMANDS_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_FEDERATION_COMMANDS_H_

#include <vector>

#include "tools/polderctl/commands/command.h"

namespace polder {
namespace polderctl {

// federation bootstrap (federation_bootstrap.h).
std::vector<Command> FederationCommands();

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_FEDERATION_COMMANDS_H_
