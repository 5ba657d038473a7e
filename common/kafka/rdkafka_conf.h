// librdkafka handles and configurations: owning pointers, building an rd_kafka_conf_t from
// client properties (client_config.h), and routing librdkafka's log through common/log.
#ifndef POLDER_COMMON_KAFKA_RDKAFKA_CONF_H_
#define POLDER_COMMON_KAFKA_RDKAFKA_CONF_H_

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

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

// Builds a configuration from `props` in order. An unknown property or invalid value is an
// INVALID_ARGUMENT naming the property and the value.
// The configuration routes librdkafka's log through common/log (one JSON object per line).
absl::StatusOr<ConfPtr> BuildConf(const std::map<std::string, std::string>& props);

// Routes librdkafka's log lines for clients made from `conf` through common/log.
void InstallJsonLogger(rd_kafka_conf_t* conf);

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_RDKAFKA_CONF_H_
