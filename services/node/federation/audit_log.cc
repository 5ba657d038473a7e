#include "services/node/federation/audit_log.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace polder {
namespace node {

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Create(kafka::ProducerOptions producer,
                                                           kafka::ConsumerOptions consumer, std::string topic) {
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::IdempotentProducer> p, kafka::IdempotentProducer::Create(producer));
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(p), std::move(consumer), std::move(topic)));
}

absl::StatusOr<audit::AuditLink> AuditLog::Record(audit::AuditChain& chain, const audit::AuditEntry& entry) {
  audit::AuditChain next = chain;
  ASSIGN_OR_RETURN(audit::AuditLink link, next.Append(entry));
  kafka::ProducerRecord r;
  r.topic = topic_;
  r.partition = 0;
  r.key = audit::AuditRecordKey(chain.stream_id(), link.sequence);
  r.value = audit::EncodeAuditRecord(link);
  absl::StatusOr<kafka::RecordMetadata> written = kafka::SendAndWait(*producer_, std::move(r));
  if (!written.ok()) {
    return Prepend(written.status(), absl::StrCat("audit entry ", link.sequence, " of stream ", chain.stream_id(),
                                                  " not recorded; the batch is not sent: "));
  }
  chain = std::move(next);
  return link;
}

absl::Status AuditLog::StoreReceipt(const audit::Receipt& receipt) {
  kafka::ProducerRecord r;
  r.topic = topic_;
  r.partition = 0;
  r.key = audit::ReceiptRecordKey(receipt);
  r.value = audit::EncodeReceipt(receipt);
  absl::StatusOr<kafka::RecordMetadata> written = kafka::SendAndWait(*producer_, std::move(r));
  if (!written.ok()) {
    return Prepend(written.status(), absl::StrCat("receipt of ", receipt.peer, " for stream ", receipt.stream_id,
                                                  " not stored: "));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<audit::AuditLink>> AuditLog::Read(const std::string& stream_id, uint64_t from, int max,
                                                             absl::Duration timeout) {
  std::vector<audit::AuditLink> out;
  const std::string prefix = absl::StrCat(stream_id, "/");
  RETURN_IF_ERROR(kafka::ReadToEnd(consumer_, topic_, 0, 0, timeout,
                                   [&](const kafka::ConsumedRecord& r) -> absl::Status {
                                     if (!r.key || !absl::StartsWith(*r.key, prefix)) return absl::OkStatus();
                                     ASSIGN_OR_RETURN(audit::AuditLink link, audit::DecodeAuditRecord(r.value));
                                     if (link.sequence >= from && static_cast<int>(out.size()) < max) {
                                       out.push_back(std::move(link));
                                     }
                                     return absl::OkStatus();
                                   })
                      .status());
  return out;
}

}  // namespace node
}  // namespace polder
