#include "common/kafka/rdkafka_client_factory.h"

#include "common/kafka/rdkafka_admin.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/kafka/rdkafka_group.h"
#include "common/kafka/rdkafka_producer.h"
#include "common/status/status_macros.h"

namespace polder {
namespace kafka {

absl::StatusOr<std::unique_ptr<Producer>> RdKafkaClientFactory::NewProducer(
    const ProducerOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<IdempotentProducer> p, IdempotentProducer::Create(options));
  return std::unique_ptr<Producer>(std::move(p));
}

absl::StatusOr<std::unique_ptr<TransactionalProducer>>
RdKafkaClientFactory::NewTransactionalProducer(const ProducerOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<KafkaTransactionalProducer> p,
                   KafkaTransactionalProducer::Create(options));
  return std::unique_ptr<TransactionalProducer>(std::move(p));
}

absl::StatusOr<std::unique_ptr<Consumer>> RdKafkaClientFactory::NewConsumer(
    const ConsumerOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<KafkaConsumer> c, KafkaConsumer::Create(options));
  return std::unique_ptr<Consumer>(std::move(c));
}

absl::StatusOr<std::unique_ptr<Admin>> RdKafkaClientFactory::NewAdmin(
    const ClientOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<KafkaAdmin> a, KafkaAdmin::Create(options));
  return std::unique_ptr<Admin>(std::move(a));
}

absl::StatusOr<std::unique_ptr<GroupMember>> RdKafkaClientFactory::NewGroupMember(
    const GroupOptions& options, GroupListener* listener) {
  ASSIGN_OR_RETURN(std::unique_ptr<KafkaGroupMember> m,
                   KafkaGroupMember::Create(options, listener));
  return std::unique_ptr<GroupMember>(std::move(m));
}

}  // namespace kafka
}  // namespace polder
