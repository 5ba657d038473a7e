// `polderctl keys`: Ed25519 signing keys, separate from TLS keys, with which the operator signs
// the directory and peers sign contracts and receipts.
//
//   polderctl keys new --out groningen/signing.key      (and groningen/signing.key.pub)
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_KEYS_COMMANDS_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_KEYS_COMMANDS_H_

#include <vector>

#include "tools/polderctl/commands/command.h"

namespace polder {
namespace polderctl {

// keys new.
std::vector<Command> KeysCommands();

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_KEYS_COMMANDS_H_
