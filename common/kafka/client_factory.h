// ClientFactory: where Polder's classes get their Kafka clients. Every class that produces,
// consumes or administers topics takes a ClientFactory& in its constructor (constructor
// injection) and never names an implementation: binaries pass RdKafkaClientFactory
// (rdkafka_client_factory.h), unit tests common/kafka/testing's FakeClientFactory, whose faults
// (failures, fencing, timeouts, a crash between produce and commit) are set on command.
//
//   RdKafkaClientFactory kafka;                    // in main()
//   ASSIGN_OR_RETURN(auto publisher, Publisher::Create(options, kafka));
//
// The factory must outlive every client it made and every object holding it.
#ifndef POLDER_COMMON_KAFKA_CLIENT_FACTORY_H_
#define POLDER_COMMON_KAFKA_CLIENT_FACTORY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka/admin.h"
#include "common/kafka/client_config.h"
#include "common/kafka/consumer.h"
#include "common/kafka/group.h"
#include "common/kafka/producer.h"

namespace polder {
namespace kafka {

class ClientFactory {
 public:
  virtual ~ClientFactory() = default;

  // An idempotent, non-transactional producer (options.transactional_id is ignored).
  virtual absl::StatusOr<std::unique_ptr<Producer>> NewProducer(const ProducerOptions& options) = 0;
  // A transactional producer with options.transactional_id; InitTransactions is the caller's.
  virtual absl::StatusOr<std::unique_ptr<TransactionalProducer>> NewTransactionalProducer(
      const ProducerOptions& options) = 0;
  virtual absl::StatusOr<std::unique_ptr<Consumer>> NewConsumer(const ConsumerOptions& options) = 0;
  virtual absl::StatusOr<std::unique_ptr<Admin>> NewAdmin(const ClientOptions& options) = 0;
  // A member of a consumer group holding roles (group.h); `listener` must outlive it.
  virtual absl::StatusOr<std::unique_ptr<GroupMember>> NewGroupMember(const GroupOptions& options,
                                                                      GroupListener* listener) = 0;
};

// Reads `partition` of `topic` with read_committed from `start` (clamped to the log start) to the
// end the log had when called — its high watermark, which the last stable offset may trail right
// after a commit — calling `each` for every committed record, with consumers from `factory`.
// Returns the position reached (the
// next offset to read); a record `each` refuses ends the read with its error; DEADLINE_EXCEEDED
// after `timeout`. Used to load small internal topics (keys, cursors, audit) at start.
absl::StatusOr<int64_t> ReadToEnd(ClientFactory& factory, const ConsumerOptions& options,
                                  const std::string& topic, int32_t partition, int64_t start,
                                  absl::Duration timeout,
                                  const std::function<absl::Status(const ConsumedRecord&)>& each);

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_CLIENT_FACTORY_H_
