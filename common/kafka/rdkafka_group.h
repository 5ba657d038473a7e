// The librdkafka implementation of GroupMember (group.h): a high-level consumer subscribed to the
// roles topics with the cooperative-sticky assignor, polled by its own thread, its partitions
// paused as they are assigned. Only RdKafkaClientFactory and tests of this package create it.
#ifndef POLDER_COMMON_KAFKA_RDKAFKA_GROUP_H_
#define POLDER_COMMON_KAFKA_RDKAFKA_GROUP_H_

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/kafka/group.h"
#include "common/kafka/rdkafka_conf.h"

namespace polder {
namespace kafka {

class KafkaGroupMember : public GroupMember {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaGroupMember>> Create(const GroupOptions& options,
                                                                  GroupListener* listener);
  ~KafkaGroupMember() override;

  std::vector<TopicPartition> Assignment() const override;
  std::string member_id() const override;
  bool joined() const override;
  int64_t rebalances() const override;

 private:
  KafkaGroupMember(std::string group_id, GroupListener* listener)
      : group_id_(std::move(group_id)), listener_(listener) {}
  static void RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* partitions, void* opaque);
  void OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
  void Loop();

  const std::string group_id_;
  GroupListener* const listener_;
  HandlePtr rk_;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::set<TopicPartition> assignment_ ABSL_GUARDED_BY(mu_);
  std::string member_id_ ABSL_GUARDED_BY(mu_);
  bool joined_ ABSL_GUARDED_BY(mu_) = false;
  int64_t rebalances_ ABSL_GUARDED_BY(mu_) = 0;
};

// The librdkafka properties a member with `options` runs with.
absl::StatusOr<std::map<std::string, std::string>> GroupProperties(const GroupOptions& options);

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_RDKAFKA_GROUP_H_
