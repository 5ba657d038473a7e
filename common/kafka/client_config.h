// Options shared by Polder's Kafka clients, and the client properties they imply.
#ifndef POLDER_COMMON_KAFKA_CLIENT_CONFIG_H_
#define POLDER_COMMON_KAFKA_CLIENT_CONFIG_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace polder {
namespace kafka {

// Connection settings every client needs.
struct ClientOptions {
  // host:port[,host:port...]. Required.
  std::string bootstrap_servers;
  // Shown in broker logs and in Polder's log lines.
  std::string client_id = "polder";
  // Timeout of one request to a broker (request.timeout.ms for producers; also bounds admin and
  // metadata calls).
  absl::Duration request_timeout = absl::Seconds(10);
  // Further librdkafka properties, e.g. security.protocol=ssl and ssl.*.location (paths only,
  // never secret values). Applied last; a property Polder sets for a guarantee (acks,
  // enable.idempotence, isolation.level, ...) cannot be overridden here.
  std::map<std::string, std::string> properties;
};

// Validates `options` (bootstrap servers present, timeouts positive) and returns the properties
// common to every client: bootstrap.servers, client.id and the user's extra properties.
absl::StatusOr<std::map<std::string, std::string>> CommonProperties(const ClientOptions& options);

// Milliseconds as a property value.
std::string Millis(absl::Duration d);

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_CLIENT_CONFIG_H_
