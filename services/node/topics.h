// Start-up check of the node's Kafka topics: each dataset's topic (<peer>.<dataset>) and the
// idempotency-key topic are created when missing (partitions, replication factor, retention,
// max.message.bytes from the configuration) and checked when present (Metadata +
// DescribeConfigs). Existing topics are never altered: mismatches are reported — as errors when
// ingest cannot work (max.message.bytes below the producer's batch size, a compacted dataset
// topic), as warnings otherwise (partitions, retention, replication below production values).
#ifndef POLDER_SERVICES_NODE_TOPICS_H_
#define POLDER_SERVICES_NODE_TOPICS_H_

#include <string>
#include <vector>

#include "common/kafka/admin.h"
#include "services/node/node_config.h"

namespace polder {
namespace node {

struct TopicReport {
  std::vector<std::string> created;
  std::vector<std::string> warnings;
  std::vector<std::string> errors;
};

// UNAVAILABLE if Kafka cannot be asked; otherwise the report (errors included).
absl::StatusOr<TopicReport> EnsureTopics(kafka::Admin& admin, const NodeConfig& config,
                                         absl::Duration timeout);

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_TOPICS_H_
