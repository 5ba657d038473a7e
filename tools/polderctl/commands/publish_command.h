// `polderctl publish`: sends NDJSON or CSV files to a node's gRPC ingest in resumable batches
// (the library is publish.h; this file wires flags, files, gRPC and the terminal to it).
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_PUBLISH_COMMAND_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_PUBLISH_COMMAND_H_

#include <ostream>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "tools/polderctl/cli.h"

namespace polder {
namespace polderctl {

inline constexpr char kPublishSummary[] =
    "send NDJSON or CSV files to a node's ingest in resumable, idempotent batches";

std::vector<cli::FlagSpec> PublishFlags();

// Runs the command: progress (on a terminal) and one summary line per file on `err`; the
// summaries also go to `result["files"]` for -o json.
absl::Status RunPublishCommand(const cli::Args& args, std::ostream& err,
                               nlohmann::ordered_json* result);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_PUBLISH_COMMAND_H_
