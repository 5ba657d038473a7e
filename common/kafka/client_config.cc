#include "common/kafka/client_config.h"

#include "absl/strings/str_cat.h"

namespace polder {
namespace kafka {

std::string Millis(absl::Duration d) { return std::to_string(absl::ToInt64Milliseconds(d)); }

absl::StatusOr<std::map<std::string, std::string>> CommonProperties(const ClientOptions& options) {
  if (options.bootstrap_servers.empty()) {
    return absl::InvalidArgumentError("Kafka bootstrap_servers is empty");
  }
  if (options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("Kafka request_timeout must be positive, got ",
                                                   absl::FormatDuration(options.request_timeout)));
  }
  std::map<std::string, std::string> props = options.properties;
  props["bootstrap.servers"] = options.bootstrap_servers;
  props["client.id"] = options.client_id;
  // Never let a metadata request create a topic (producer-type handles default to allowing it
  // when the broker does): a misspelt topic must be NOT_FOUND, and topics are created
  // explicitly with their configuration.
  props["allow.auto.create.topics"] = "false";
  // Keep re-connect attempts brisk so a restarted broker is found again quickly.
  props.emplace("reconnect.backoff.ms", "100");
  props.emplace("reconnect.backoff.max.ms", "2000");
  return props;
}

}  // namespace kafka
}  // namespace polder
