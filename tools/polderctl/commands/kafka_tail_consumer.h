// TailConsumer on librdkafka: a kafka::KafkaConsumer (assign-only, read_committed) for reading,
// and a metadata-only handle for the topic's partitions.
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_KAFKA_TAIL_CONSUMER_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_KAFKA_TAIL_CONSUMER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/kafka/client_config.h"
#include "common/kafka/consumer.h"
#include "common/kafka/rdkafka_consumer.h"
#include "tools/polderctl/commands/tail.h"

namespace polder {
namespace polderctl {

class KafkaTailConsumer : public TailConsumer {
 public:
  // `options.read_committed` is forced on: Polder's ingest and mirroring are transactional.
  static absl::StatusOr<std::unique_ptr<KafkaTailConsumer>> Create(kafka::ConsumerOptions options);

  absl::Status Assign(const std::vector<kafka::TopicPartitionOffset>& partitions) override {
    return consumer_->Assign(partitions);
  }
  absl::StatusOr<std::vector<kafka::ConsumedRecord>> Poll(absl::Duration timeout,
                                                          int max_records) override {
    return consumer_->Poll(timeout, max_records);
  }
  absl::StatusOr<std::pair<int64_t, int64_t>> QueryWatermarks(const std::string& topic,
                                                              int32_t partition,
                                                              absl::Duration timeout) override {
    return consumer_->QueryWatermarks(topic, partition, timeout);
  }
  absl::StatusOr<int64_t> Position(const std::string& topic, int32_t partition) override {
    return consumer_->Position(topic, partition);
  }
  absl::StatusOr<int64_t> OffsetForTime(const std::string& topic, int32_t partition, absl::Time at,
                                        absl::Duration timeout) override {
    return consumer_->OffsetForTime(topic, partition, at, timeout);
  }
  absl::StatusOr<std::vector<int32_t>> Partitions(const std::string& topic,
                                                  absl::Duration timeout) override;

 private:
  KafkaTailConsumer(std::unique_ptr<kafka::KafkaConsumer> consumer, kafka::HandlePtr metadata)
      : consumer_(std::move(consumer)), metadata_(std::move(metadata)) {}

  std::unique_ptr<kafka::KafkaConsumer> consumer_;
  kafka::HandlePtr metadata_;
};

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_KAFKA_TAIL_CONSUMER_H_
