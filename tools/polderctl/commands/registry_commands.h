// `polderctl registry`: operating the federation's schema registry (registry_client.h).
//
//   polderctl registry set-primary --address reg-b:9443 --replica reg-b --cert ... --key ...
//       --bundle ... --directory directory.json --operator-key operator.key.pub
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_REGISTRY_COMMANDS_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_REGISTRY_COMMANDS_H_

#include <vector>

#include "tools/polderctl/commands/command.h"

namespace polder {
namespace polderctl {

// registry set-primary.
std::vector<Command> RegistryCommands();

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_REGISTRY_COMMANDS_H_
