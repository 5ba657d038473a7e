// Admin: create topics and describe them (partitions, replication, configs). The librdkafka
// implementation is in rdkafka_admin.h, a fake in common/kafka/testing.
//
// librdkafka 2.0.2 has CreateTopics and DescribeConfigs but not DescribeTopics or
// IncrementalAlterConfigs, and its legacy AlterConfigs resets every setting not passed. Polder
// therefore never alters an existing topic: it describes it (Metadata + DescribeConfigs) and
// reports mismatches for an operator to fix.
#ifndef POLDER_COMMON_KAFKA_ADMIN_H_
#define POLDER_COMMON_KAFKA_ADMIN_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka/client_config.h"

namespace polder {
namespace kafka {

struct TopicSpec {
  std::string name;
  int partitions = 1;
  int replication_factor = 1;
  // Topic-level configs, e.g. {"cleanup.policy", "compact"}, {"max.message.bytes", "1048576"}.
  std::map<std::string, std::string> configs;
};

struct TopicConfigEntry {
  std::string value;
  // True when the value is the broker's default rather than set on the topic.
  bool is_default = false;
  bool is_sensitive = false;
  // Where the value comes from, as the broker says: DYNAMIC_TOPIC_CONFIG (set on the topic),
  // STATIC_BROKER_CONFIG, DEFAULT_CONFIG, ...
  std::string source;
};

struct TopicDescription {
  std::string name;
  int partitions = 0;
  // Replicas of partition 0 (Polder creates topics with one replication factor throughout).
  int replication_factor = 0;
  // Every config the broker reports for the topic.
  std::map<std::string, TopicConfigEntry> configs;
};

class Admin {
 public:
  virtual ~Admin() = default;
  // Creates `spec`. ALREADY_EXISTS if a topic of that name exists (whatever its settings);
  // INVALID_ARGUMENT for an invalid name, partition count, replication factor or config.
  virtual absl::Status CreateTopic(const TopicSpec& spec, absl::Duration timeout) = 0;
  // NOT_FOUND if the topic does not exist.
  virtual absl::StatusOr<TopicDescription> DescribeTopic(const std::string& name,
                                                         absl::Duration timeout) = 0;
  // Deletes every record of `topic` below the given offsets (partition → offset; kOffsetEnd,
  // -1, for the high watermark): Kafka's DeleteRecords, which moves the log start offset.
  virtual absl::Status DeleteRecords(const std::string& topic,
                                     const std::map<int32_t, int64_t>& before,
                                     absl::Duration timeout) = 0;
};

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_ADMIN_H_
