// `polderctl pki`: the federation's certificate authority in a folder — a root CA, an issuing CA
// that signs the peers' TLS certificates, and its CRL.
//
//   polderctl pki init --dir pki --federation nl-smartcity
//   polderctl pki issue --dir pki --peer groningen --out groningen/tls --dns localhost
//   polderctl pki revoke --dir pki --cert groningen/tls/cert.pem
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_PKI_COMMANDS_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_PKI_COMMANDS_H_

#include <vector>

#include "tools/polderctl/commands/command.h"

namespace polder {
namespace polderctl {

// pki init, pki issue, pki revoke.
std::vector<Command> PkiCommands();

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_PKI_COMMANDS_H_
