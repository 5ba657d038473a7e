// Reading a node's audit topic (`_polder.audit`, partition 0) back as an audit::Trail, for
// `polderctl audit verify` and `polderctl audit query`.
//
//   RdKafkaClientFactory kafka;   // in main(); tests pass kafka::testing::FakeClientFactory
//   ASSIGN_OR_RETURN(kafka::ConsumerOptions o, AuditConsumerOptions("kafka:9092", properties));
//   ASSIGN_OR_RETURN(audit::Trail trail, ReadAuditTopic(kafka, o, "_polder.audit", timeout));
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_AUDIT_TOPIC_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_AUDIT_TOPIC_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/audit/trail.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/consumer.h"

namespace polder {
namespace polderctl {

// Consumer options for the audit topic at `bootstrap`: client id polderctl-audit, the librdkafka
// `properties` ("k=v" each; INVALID_ARGUMENT naming one without "="), and librdkafka's log level
// 3 (errors only), whatever the properties say.
absl::StatusOr<kafka::ConsumerOptions> AuditConsumerOptions(
    const std::string& bootstrap, const std::vector<std::string>& properties);

// Reads partition 0 of `topic` from the beginning to its end as of the call, with read_committed
// consumers from `kafka`, and builds the trail (records that do not decode are listed in
// Trail::unreadable). An error of the read, or DEADLINE_EXCEEDED after `timeout`, is prefixed
// "reading <topic> from <bootstrap>: ".
absl::StatusOr<audit::Trail> ReadAuditTopic(kafka::ClientFactory& kafka,
                                            const kafka::ConsumerOptions& options,
                                            const std::string& topic, absl::Duration timeout);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_AUDIT_TOPIC_H_
