// `polderctl tail`: prints a dataset or mirror topic's records as JSON lines, decoded with the
// schemas of a Confluent-compatible endpoint (the library is tail.h; this file wires flags,
// Kafka, HTTPS and SIGINT to it).
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_TAIL_COMMAND_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_TAIL_COMMAND_H_

#include <ostream>
#include <vector>

#include "absl/status/status.h"
#include "tools/polderctl/cli.h"

namespace polder {
namespace polderctl {

inline constexpr char kTailSummary[] =
    "print a topic's records as JSON lines, decoded with the schemas of a Confluent-compatible "
    "endpoint";

std::vector<cli::FlagSpec> TailFlags();

// Runs the command: records on `out`, skipped records and the final count on `err`.
absl::Status RunTailCommand(const cli::Args& args, std::ostream& out, std::ostream& err);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_TAIL_COMMAND_H_
