// `polderctl contract`: sharing contracts between a providing and a consuming peer, signed by
// both parties and verified against the signed directory; and their revocation by either party.
//
//   polderctl contract propose --id gr-am-1 --federation nl-smartcity --provider groningen
//       --consumer amersfoort --dataset mobility.bike-counts --schema-versions 1,2
//       --purpose "..." --out contract.json
//   polderctl contract sign --file contract.json --peer groningen --key groningen/signing.key
//   polderctl contract verify --file contract.json --directory directory.json --operator-key ...
//   polderctl contract revoke --file contract.json --peer amersfoort --key ... --out rev.json
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_CONTRACT_COMMANDS_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_CONTRACT_COMMANDS_H_

#include <vector>

#include "tools/polderctl/commands/command.h"

namespace polder {
namespace polderctl {

// contract propose, contract sign, contract verify.
std::vector<Command> ContractCommands();

// contract revoke: a revocation is a document of its own, handed to the other party (and given
// to contract verify with --revocation).
std::vector<Command> ContractRevocationCommands();

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_CONTRACT_COMMANDS_H_
