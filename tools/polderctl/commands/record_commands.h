// `polderctl tail` and `polderctl publish`: a dataset's records, read from a topic or sent to a
// node's ingest (tail_command.h, publish_command.h). Commands without a group: listed with the
// name "".
//
//   polderctl tail --bootstrap kafka:9092 --topic groningen.mobility.bike-counts
//       --schema-url https://node:8082 ...
//   polderctl publish --endpoint node:7444 --dataset mobility.bike-counts --file counts.csv
//       --ca-file ...
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_RECORD_COMMANDS_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_RECORD_COMMANDS_H_

#include <vector>

#include "tools/polderctl/commands/command.h"

namespace polder {
namespace polderctl {

// tail (which prints JSON lines itself and refuses -o json), publish.
std::vector<Command> RecordCommands();

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_RECORD_COMMANDS_H_
