#include "services/node/federation/stream_audit.h"

namespace polder {
namespace node {

absl::string_view DirectionName(AuditDirection direction) {
  switch (direction) {
    case AuditDirection::kOffered:
      return "offered";
    case AuditDirection::kReceived:
      return "received";
    case AuditDirection::kGap:
      return "gap";
  }
  return "offered";
}

namespace {

audit::AuditEntry PartiesEntry(const StreamParties& parties, AuditDirection direction,
                               absl::Time at) {
  audit::AuditEntry e;
  e.direction = std::string(DirectionName(direction));
  e.contract_hash = parties.contract_hash;
  e.source = parties.source;
  e.destination = parties.destination;
  e.dataset = parties.dataset;
  e.at = at;
  e.traceparent = parties.traceparent;
  e.purpose = parties.purpose;
  e.view = parties.view;
  return e;
}

}  // namespace

void ResumeFacts(const federation::v1::SubscribeRequest& request, audit::AuditEntry* entry) {
  entry->resumes = request.previous_stream_id();
  for (const auto& [p, o] : request.cursor().next_offsets()) entry->cursor[p] = o;
}

audit::AuditEntry BatchEntry(const StreamParties& parties, AuditDirection direction,
                             const BatchFacts& batch, absl::Time at) {
  audit::AuditEntry e = PartiesEntry(parties, direction, at);
  e.partition = batch.partition;
  e.first_offset = batch.first_offset;
  e.next_offset = batch.next_offset;
  e.records = batch.records;
  e.bytes = batch.bytes;
  return e;
}

audit::AuditEntry GapEntry(const StreamParties& parties, std::string stream_id, std::string detail,
                           absl::Time at) {
  audit::AuditEntry e = PartiesEntry(parties, AuditDirection::kGap, at);
  e.transaction_id = std::move(stream_id);
  e.detail = std::move(detail);
  return e;
}

}  // namespace node
}  // namespace polder
