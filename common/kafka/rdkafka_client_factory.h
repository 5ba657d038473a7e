// The ClientFactory of Polder's binaries: librdkafka clients (rdkafka_producer.h,
// rdkafka_consumer.h, rdkafka_admin.h). Stateless and thread-safe.
#ifndef POLDER_COMMON_KAFKA_RDKAFKA_CLIENT_FACTORY_H_
#define POLDER_COMMON_KAFKA_RDKAFKA_CLIENT_FACTORY_H_

#include <memory>

#include "common/kafka/client_factory.h"

namespace polder {
namespace kafka {

class RdKafkaClientFactory : public ClientFactory {
 public:
  absl::StatusOr<std::unique_ptr<Producer>> NewProducer(const ProducerOptions& options) override;
  absl::StatusOr<std::unique_ptr<TransactionalProducer>> NewTransactionalProducer(
      const ProducerOptions& options) override;
  absl::StatusOr<std::unique_ptr<Consumer>> NewConsumer(const ConsumerOptions& options) override;
  absl::StatusOr<std::unique_ptr<Admin>> NewAdmin(const ClientOptions& options) override;
  absl::StatusOr<std::unique_ptr<GroupMember>> NewGroupMember(const GroupOptions& options,
                                                              GroupListener* listener) override;
};

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_RDKAFKA_CLIENT_FACTORY_H_
