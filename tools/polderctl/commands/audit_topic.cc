#include "tools/polderctl/commands/audit_topic.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/kafka/record.h"
#include "common/status/status_macros.h"

namespace polder {
namespace polderctl {

absl::StatusOr<kafka::ConsumerOptions> AuditConsumerOptions(
    const std::string& bootstrap, const std::vector<std::string>& properties) {
  kafka::ConsumerOptions o;
  o.client.bootstrap_servers = bootstrap;
  o.client.client_id = "polderctl-audit";
  for (const std::string& kv : properties) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("--kafka-property '", kv, "': use k=v"));
    }
    o.client.properties[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  o.client.properties["log_level"] = "3";
  return o;
}

absl::StatusOr<audit::Trail> ReadAuditTopic(kafka::ClientFactory& kafka,
                                            const kafka::ConsumerOptions& options,
                                            const std::string& topic, absl::Duration timeout) {
  std::vector<std::pair<std::string, std::string>> records;
  absl::Status s = kafka::ReadToEnd(kafka, options, topic, 0, 0, timeout,
                                    [&](const kafka::ConsumedRecord& r) -> absl::Status {
                                      records.push_back({r.key.value_or(""), r.value});
                                      return absl::OkStatus();
                                    })
                       .status();
  if (!s.ok()) {
    return Prepend(
        s, absl::StrCat("reading ", topic, " from ", options.client.bootstrap_servers, ": "));
  }
  return audit::ReadTrail(records);
}

}  // namespace polderctl
}  // namespace polder
