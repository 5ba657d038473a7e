// The librdkafka implementation of Consumer (consumer.h). Only RdKafkaClientFactory
// (rdkafka_client_factory.h) and tests of this package create it.
#ifndef POLDER_COMMON_KAFKA_RDKAFKA_CONSUMER_H_
#define POLDER_COMMON_KAFKA_RDKAFKA_CONSUMER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka/consumer.h"
#include "common/kafka/rdkafka_conf.h"

namespace polder {
namespace kafka {

class KafkaConsumer : public Consumer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaConsumer>> Create(ConsumerOptions options);
  ~KafkaConsumer() override;

  absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) override;
  absl::StatusOr<std::vector<ConsumedRecord>> Poll(absl::Duration timeout,
                                                   int max_records) override;
  absl::StatusOr<std::pair<int64_t, int64_t>> CachedWatermarks(const std::string& topic,
                                                               int32_t partition) override;
  absl::StatusOr<std::pair<int64_t, int64_t>> QueryWatermarks(const std::string& topic,
                                                              int32_t partition,
                                                              absl::Duration timeout) override;
  absl::StatusOr<int64_t> OffsetForTime(const std::string& topic, int32_t partition, absl::Time at,
                                        absl::Duration timeout) override;
  absl::StatusOr<int64_t> Position(const std::string& topic, int32_t partition) override;

 private:
  explicit KafkaConsumer(HandlePtr rk) : rk_(std::move(rk)) {}
  HandlePtr rk_;
  absl::Status deferred_error_;
};

// The librdkafka properties a consumer with `options` runs with.
absl::StatusOr<std::map<std::string, std::string>> ConsumerProperties(
    const ConsumerOptions& options);

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_RDKAFKA_CONSUMER_H_
