// Options shared by Polder's librdkafka clients and the conversion into an rd_kafka_conf_t.
#ifndef POLDER_COMMON_KAFKA_CLIENT_CONFIG_H_
#define POLDER_COMMON_KAFKA_CLIENT_CONFIG_H_

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace polder {
namespace kafka {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;

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

// Builds a configuration from `props` in order. An unknown property or invalid value is an
// INVALID_ARGUMENT naming the property and the value.
absl::StatusOr<ConfPtr> BuildConf(const std::map<std::string, std::string>& props);

// Validates `options` (bootstrap servers present, timeouts positive) and returns the properties
// common to every client: bootstrap.servers, client.id and the user's extra properties.
// BuildConf also routes librdkafka's log through common/log (one JSON object per line).
absl::StatusOr<std::map<std::string, std::string>> CommonProperties(const ClientOptions& options);

// Routes librdkafka's log lines for clients made from `conf` through common/log.
void InstallJsonLogger(rd_kafka_conf_t* conf);

// Milliseconds as a property value.
std::string Millis(absl::Duration d);

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_CLIENT_CONFIG_H_
