#include "tools/polderctl/commands/record_commands.h"

#include <iostream>
#include <vector>

#include "absl/status/status.h"
#include "tools/polderctl/commands/publish_command.h"
#include "tools/polderctl/commands/tail_command.h"

namespace polder {
namespace polderctl {

std::vector<Command> RecordCommands() {
  return {
      {"tail", "", kTailSummary, TailFlags(),
       [](const cli::Args& a, Output* out) -> absl::Status {
         if (out->json) {
           return absl::InvalidArgumentError("tail prints JSON lines already: drop -o json");
         }
         return RunTailCommand(a, std::cout, std::cerr);
       }},
      {"publish", "", kPublishSummary, PublishFlags(),
       [](const cli::Args& a, Output* out) {
         return RunPublishCommand(a, std::cerr, &out->result);
       }},
  };
}

}  // namespace polderctl
}  // namespace polder
