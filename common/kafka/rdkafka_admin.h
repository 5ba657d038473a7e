// The librdkafka implementation of Admin (admin.h). Only RdKafkaClientFactory
// (rdkafka_client_factory.h) and tests of this package create it.
#ifndef POLDER_COMMON_KAFKA_RDKAFKA_ADMIN_H_
#define POLDER_COMMON_KAFKA_RDKAFKA_ADMIN_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka/admin.h"
#include "common/kafka/rdkafka_conf.h"

namespace polder {
namespace kafka {

class KafkaAdmin : public Admin {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaAdmin>> Create(ClientOptions options);

  absl::Status CreateTopic(const TopicSpec& spec, absl::Duration timeout) override;
  absl::StatusOr<TopicDescription> DescribeTopic(const std::string& name,
                                                 absl::Duration timeout) override;
  absl::Status DeleteRecords(const std::string& topic, const std::map<int32_t, int64_t>& before,
                             absl::Duration timeout) override;

 private:
  explicit KafkaAdmin(HandlePtr rk) : rk_(std::move(rk)) {}
  HandlePtr rk_;
};

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_RDKAFKA_ADMIN_H_
