// `polderctl audit`: a node's federation audit trail, read from its Kafka — verified on its own
// and against the peer's side of the same streams, or listed by exchange.
//
//   polderctl audit verify --bootstrap kafka:9092 --directory directory.json
//       --operator-key operator.key.pub [--peer-endpoint groningen:8443 --self amersfoort
//       --peer groningen --cert ... --key ... --bundle ...]
//   polderctl audit query --bootstrap kafka:9092 --peer groningen --since 2025-01-01T00:00:00Z
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_AUDIT_COMMANDS_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_AUDIT_COMMANDS_H_

#include <vector>

#include "common/kafka/client_factory.h"
#include "tools/polderctl/commands/command.h"

namespace polder {
namespace polderctl {

// audit verify, audit query: their Kafka consumers come from `kafka`, which must outlive the
// commands.
std::vector<Command> AuditCommands(kafka::ClientFactory& kafka);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_AUDIT_COMMANDS_H_
