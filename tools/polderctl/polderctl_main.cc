// polderctl: the operator's command-line tool for Polder's trust layer — the federation PKI,
// signing keys, the peer directory, sharing contracts, the registry, audit trails and dataset
// records. Each command group is in tools/polderctl/commands/<group>_commands.h (tail and
// publish: record_commands.h), with examples.
//
// Every command takes --help, and -o json for machine-readable output. Errors go to stderr with
// exit status 1 (2 for usage errors). Private keys are written with mode 0600 and never printed.
#include <algorithm>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "tools/polderctl/cli.h"
#include "tools/polderctl/commands/audit_commands.h"
#include "tools/polderctl/commands/command.h"
#include "tools/polderctl/commands/contract_commands.h"
#include "tools/polderctl/commands/directory_commands.h"
#include "tools/polderctl/commands/federation_commands.h"
#include "tools/polderctl/commands/keys_commands.h"
#include "tools/polderctl/commands/pki_commands.h"
#include "tools/polderctl/commands/record_commands.h"
#include "tools/polderctl/commands/registry_commands.h"

namespace polder {
namespace polderctl {
namespace {

// In the order of the usage text.
std::vector<Command> Commands(kafka::ClientFactory& kafka) {
  std::vector<Command> all;
  for (std::vector<Command> group :
       {PkiCommands(), KeysCommands(), DirectoryCommands(), ContractCommands(), RegistryCommands(),
        FederationCommands(), AuditCommands(kafka), ContractRevocationCommands(),
        RecordCommands()}) {
    for (Command& c : group) all.push_back(std::move(c));
  }
  return all;
}

void Usage(std::ostream& os, const std::vector<Command>& commands) {
  os << "usage: polderctl <group> <command> [flags] [-o json]\n\n"
        "Operator tool for Polder: PKI, signing keys, the peer directory, sharing contracts,\n"
        "the registry primary, the standard datasets, audit trails, and dataset records (tail, "
        "publish).\n"
        "`polderctl <group> <command> --help` (or `polderctl tail --help`) "
        "lists a command's flags.\n\n";
  for (const Command& c : commands) {
    std::string left =
        c.name.empty() ? absl::StrCat("  ", c.group) : absl::StrCat("  ", c.group, " ", c.name);
    if (left.size() < 24) left.resize(24, ' ');
    os << left << c.summary << "\n";
  }
}

int Run(int argc, char** argv) {
  kafka::RdKafkaClientFactory kafka;
  const std::vector<Command> commands = Commands(kafka);
  std::vector<std::string> rest(argv + 1, argv + argc);
  bool json = false;
  for (size_t i = 0; i < rest.size(); ++i) {
    if ((rest[i] == "-o" || rest[i] == "--output") && i + 1 < rest.size()) {
      if (rest[i + 1] != "json" && rest[i + 1] != "text") {
        std::cerr << "polderctl: -o takes json or text\n";
        return 2;
      }
      json = rest[i + 1] == "json";
      rest.erase(rest.begin() + i, rest.begin() + i + 2);
      --i;
    } else if (rest[i] == "-o=json" || rest[i] == "--output=json") {
      json = true;
      rest.erase(rest.begin() + i);
      --i;
    }
  }
  if (rest.empty() || rest[0] == "--help" || rest[0] == "-h" || rest[0] == "help") {
    Usage(rest.empty() ? std::cerr : std::cout, commands);
    return rest.empty() ? 2 : 0;
  }
  const bool single = std::any_of(commands.begin(), commands.end(), [&](const Command& c) {
    return c.group == rest[0] && c.name.empty();
  });
  if (rest.size() < 2 && !single) {
    std::cerr << "polderctl: '" << rest[0] << "' needs a command\n";
    Usage(std::cerr, commands);
    return 2;
  }
  for (const Command& c : commands) {
    if (c.group != rest[0] || (single ? !c.name.empty() : c.name != rest[1])) continue;
    const std::string title = single ? c.group : absl::StrCat(c.group, " ", c.name);
    std::vector<std::string> flags(rest.begin() + (single ? 1 : 2), rest.end());
    for (const std::string& f : flags) {
      if (f == "--help" || f == "-h") {
        std::cout << "usage: polderctl " << title << " [flags] [-o json]\n\n"
                  << c.summary << "\n\n"
                  << cli::FlagHelp(c.flags);
        return 0;
      }
    }
    absl::StatusOr<cli::Args> args = cli::Args::Parse(flags, c.flags);
    if (!args.ok()) {
      std::cerr << "polderctl " << title << ": " << args.status().message() << "\n";
      return 2;
    }
    Output out;
    out.json = json;
    absl::Status s = c.run(*args, &out);
    if (!s.ok()) {
      if (json) PrintJsonError(s, std::cout);
      std::cerr << "polderctl " << title << ": error: " << s.message() << "\n";
      return 1;
    }
    PrintSuccess(out, std::cout);
    return 0;
  }
  std::cerr << "polderctl: unknown command '" << rest[0] << " " << rest[1] << "'\n";
  Usage(std::cerr, commands);
  return 2;
}

}  // namespace
}  // namespace polderctl
}  // namespace polder

int main(int argc, char** argv) { return polder::polderctl::Run(argc, argv); }
