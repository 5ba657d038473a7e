// The provider's audit log: every batch offered is recorded in `_polder.audit` (acks=all,
// idempotent) *before* it is sent; a batch whose entry could not be recorded is not sent
// (ARCHITECTURE §8). Entries of a stream can be read back for GetAuditEntries.
#ifndef POLDER_SERVICES_NODE_FEDERATION_AUDIT_LOG_H_
#define POLDER_SERVICES_NODE_FEDERATION_AUDIT_LOG_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/audit/audit_chain.h"
#include "common/kafka/consumer.h"
#include "common/kafka/producer.h"

namespace polder {
namespace node {

class AuditLog {
 public:
  static absl::StatusOr<std::unique_ptr<AuditLog>> Create(kafka::ProducerOptions producer,
                                                          kafka::ConsumerOptions consumer, std::string topic);

  // Appends `entry` to `chain` and writes the link; returns it once the broker acknowledged it.
  // On any error the chain does not advance and the caller must not send the batch.
  absl::StatusOr<audit::AuditLink> Record(audit::AuditChain& chain, const audit::AuditEntry& entry);

  // Keeps a peer's receipt (already verified) beside the chain it vouches for.
  absl::Status StoreReceipt(const audit::Receipt& receipt);

  // The stored links of `stream_id` with sequence ≥ `from`, at most `max` (reads the topic).
  absl::StatusOr<std::vector<audit::AuditLink>> Read(const std::string& stream_id, uint64_t from, int max,
                                                     absl::Duration timeout);

 private:
  AuditLog(std::unique_ptr<kafka::IdempotentProducer> producer, kafka::ConsumerOptions consumer, std::string topic)
      : producer_(std::move(producer)), consumer_(std::move(consumer)), topic_(std::move(topic)) {}
  std::unique_ptr<kafka::IdempotentProducer> producer_;
  const kafka::ConsumerOptions consumer_;
  const std::string topic_;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_AUDIT_LOG_H_
