// Start-up helpers shared by the node's subsystems.
#ifndef POLDER_SERVICES_NODE_SERVER_STARTUP_H_
#define POLDER_SERVICES_NODE_SERVER_STARTUP_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/kafka/client_config.h"
#include "common/log/log.h"
#include "services/node/node_config.h"

namespace polder {
namespace node {

// The connection settings every Kafka client of this node shares.
inline kafka::ClientOptions NodeKafkaClient(const NodeConfig& config) {
  kafka::ClientOptions client;
  client.bootstrap_servers = config.bootstrap_servers;
  client.client_id = absl::StrCat("polder-node-", config.peer_id);
  client.properties = config.kafka_properties;
  client.request_timeout = config.kafka_request_timeout;
  return client;
}

// Calls `fn` again every two seconds while it answers UNAVAILABLE (Kafka not up yet), for up to
// `limit`; returns its last answer.
template <typename Fn>
auto RetryWhileUnavailable(const char* what, absl::Duration limit, Fn fn) -> decltype(fn()) {
  const absl::Time deadline = absl::Now() + limit;
  while (true) {
    auto result = fn();
    if (result.ok() || result.status().code() != absl::StatusCode::kUnavailable ||
        absl::Now() > deadline) {
      return result;
    }
    log::Warning("waiting for Kafka",
                 {{"step", what}, {"error", std::string(result.status().message())}});
    absl::SleepFor(absl::Seconds(2));
  }
}

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_SERVER_STARTUP_H_
