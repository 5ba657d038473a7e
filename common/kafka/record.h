// Plain record types shared by Polder's Kafka producer and consumer interfaces.
#ifndef POLDER_COMMON_KAFKA_RECORD_H_
#define POLDER_COMMON_KAFKA_RECORD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace polder {
namespace kafka {

// Let the partitioner choose (murmur2 of the key, as the Java client does).
inline constexpr int32_t kAnyPartition = -1;
// Special start offsets for Consumer::Assign.
inline constexpr int64_t kOffsetBeginning = -2;
inline constexpr int64_t kOffsetEnd = -1;

struct Header {
  std::string key;
  std::string value;
  bool operator==(const Header& o) const { return key == o.key && value == o.value; }
};

// A record to produce.
struct ProducerRecord {
  std::string topic;
  int32_t partition = kAnyPartition;
  // Absent: a null key (partitioned randomly).
  std::optional<std::string> key;
  std::string value;
  std::vector<Header> headers;
  // Milliseconds since the epoch; 0 lets the producer use the current time.
  int64_t timestamp_ms = 0;
  // A tombstone: no value at all (compaction deletes the key); `value` is ignored.
  bool tombstone = false;
};

// Where a produced record landed.
struct RecordMetadata {
  std::string topic;
  int32_t partition = kAnyPartition;
  int64_t offset = -1;
};

// A record read by a Consumer.
struct ConsumedRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;
  std::optional<std::string> key;
  std::string value;
  std::vector<Header> headers;
  int64_t timestamp_ms = 0;
  // True for a tombstone (a record without a value, as opposed to an empty value).
  bool tombstone = false;
};

// A partition of a topic (a group member's assignment is a set of them).
struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  bool operator<(const TopicPartition& o) const {
    return topic != o.topic ? topic < o.topic : partition < o.partition;
  }
  bool operator==(const TopicPartition& o) const {
    return topic == o.topic && partition == o.partition;
  }
};

// A partition and an offset: where to start reading, or a committed position.
struct TopicPartitionOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = kOffsetBeginning;
};

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_RECORD_H_
