// `polderctl directory`: the federation's signed peer directory — each peer's endpoint, TLS key
// thumbprints and signing keys, signed by the operator and verified by every node against the
// pinned operator keys.
//
//   polderctl directory create --federation nl-smartcity --serial 1 --out directory.json
//   polderctl directory add-peer --file directory.json --peer groningen --endpoint h:8443
//       --tls-cert groningen/tls/cert.pem --signing-key groningen/signing.key.pub
//   polderctl directory sign --file directory.json --key operator.key
//   polderctl directory verify --file directory.json --operator-key operator.key.pub
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_DIRECTORY_COMMANDS_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_DIRECTORY_COMMANDS_H_

#include <vector>

#include "tools/polderctl/commands/command.h"

namespace polder {
namespace polderctl {

// directory create, directory add-peer, directory sign, directory verify.
std::vector<Command> DirectoryCommands();

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_DIRECTORY_COMMANDS_H_
