// Consumer: reads explicitly assigned partitions from given offsets, read_committed, without a
// consumer group (no JoinGroup, no offset commits: Polder keeps its own cursors). The librdkafka
// implementation is in rdkafka_consumer.h, a fake in common/kafka/testing; classes that consume
// get consumers from a ClientFactory (client_factory.h) passed to their constructor.
//
//   ConsumerOptions options;
//   options.client.bootstrap_servers = broker;
//   ASSIGN_OR_RETURN(std::unique_ptr<Consumer> consumer, factory.NewConsumer(options));
//   RETURN_IF_ERROR(consumer->Assign({{"groningen.mobility.bike-counts", 0, kOffsetBeginning}}));
//   ASSIGN_OR_RETURN(std::vector<ConsumedRecord> batch, consumer->Poll(absl::Seconds(1), 500));
#ifndef POLDER_COMMON_KAFKA_CONSUMER_H_
#define POLDER_COMMON_KAFKA_CONSUMER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka/client_config.h"
#include "common/kafka/record.h"

namespace polder {
namespace kafka {

struct ConsumerOptions {
  ClientOptions client;
  // read_committed (default) hides aborted and open transactions; read_uncommitted shows them
  // (tests use it to prove a transaction's records exist before commit).
  bool read_committed = true;
  // Largest fetch per partition and per request (max.partition.fetch.bytes, fetch.max.bytes);
  // at least the largest producer batch, or a batch could never be read.
  int64_t max_partition_fetch_bytes = 1048576;
  int64_t max_fetch_bytes = 52428800;
};

// Reads assigned partitions. Not thread-safe: one thread polls a consumer.
class Consumer {
 public:
  virtual ~Consumer() = default;

  // Replaces the assignment. Offsets: an absolute offset, kOffsetBeginning or kOffsetEnd.
  virtual absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) = 0;

  // Returns up to `max_records` records, waiting at most `timeout` for the first one; an empty
  // vector when none arrived. Reading past the log (an offset that no longer exists) is
  // OUT_OF_RANGE naming the partition; transient broker errors are retried internally. An error
  // met after some records were read is returned by the next call, after those records.
  //
  // librdkafka 2.0.2 requires a group.id even for assign-only consumers and may look up the
  // group's coordinator: on a cluster with ACLs, grant the principal Describe on the group
  // "polder-assign-only" (no Read: Polder never joins or commits).
  virtual absl::StatusOr<std::vector<ConsumedRecord>> Poll(absl::Duration timeout,
                                                           int max_records) = 0;

  // (low, high) watermarks of a partition; with read_committed, `high` is the last stable
  // offset as the broker reports it.
  virtual absl::StatusOr<std::pair<int64_t, int64_t>> QueryWatermarks(const std::string& topic,
                                                                      int32_t partition,
                                                                      absl::Duration timeout) = 0;

  // The watermarks this consumer last saw for an assigned partition it fetches, without asking
  // a broker (never blocks): with read_committed, `high` is the last stable offset. UNAVAILABLE
  // until a fetch response told them. The default asks like QueryWatermarks with no wait.
  virtual absl::StatusOr<std::pair<int64_t, int64_t>> CachedWatermarks(const std::string& topic,
                                                                       int32_t partition) {
    return QueryWatermarks(topic, partition, absl::ZeroDuration());
  }

  // The first offset of the partition whose timestamp is at or after `at`; the high watermark
  // if there is none (Kafka's ListOffsets by time).
  virtual absl::StatusOr<int64_t> OffsetForTime(const std::string& topic, int32_t partition,
                                                absl::Time at, absl::Duration timeout) = 0;

  // The next offset this consumer will read from the partition (past skipped aborted records
  // and transaction markers); negative if not known yet. Safe to call from any thread.
  virtual absl::StatusOr<int64_t> Position(const std::string& topic, int32_t partition) = 0;
};

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_CONSUMER_H_
