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

// A topic the node uses, with the settings it creates it with (or checks it against).
struct WantedTopic {
  kafka::TopicSpec spec;
  bool dataset = true;
  bool exact_partitions = false;  // the partition count must be exactly this, or refuse
  bool internal_log = false;      // single-partition internal topics
  bool mirror = false;  // another city's dataset: created by the node (its source's count)
};

// Every topic the configuration implies, in the order EnsureTopics judges them.
std::vector<WantedTopic> WantedTopics(const NodeConfig& config);

// What the node needs of its Kafka cluster: its topics, and the transactional ids (exact, and
// by prefix) and consumer groups it uses. The Kubernetes chart's KafkaTopics and KafkaUser ACLs
// are checked against this (ADR 0022 §4; `polder-node --print_kafka_needs`).
struct KafkaNeeds {
  std::vector<WantedTopic> topics;
  std::vector<std::string> transactional_ids;
  std::vector<std::string> transactional_id_prefixes;
  std::vector<std::string> groups;
};
KafkaNeeds KafkaNeedsOf(const NodeConfig& config);
std::string KafkaNeedsJson(const KafkaNeeds& needs);

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
