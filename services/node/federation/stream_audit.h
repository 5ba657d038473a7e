// The audit entries of a federation stream, built in one place for both sides: the provider's
// "offered" entry of each batch it sends, the subscriber's "received" entry of each batch it
// mirrors, and the subscriber's "gap" entry when the provider no longer has what its cursor
// points at. Both sides count a batch's bytes the same way (WireRecordBytes/ConsumedBytes), so
// their entries of one batch agree field by field except direction and time.
#ifndef POLDER_SERVICES_NODE_FEDERATION_STREAM_AUDIT_H_
#define POLDER_SERVICES_NODE_FEDERATION_STREAM_AUDIT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/audit/audit_chain.h"
#include "proto/polder/federation/v1/federation.pb.h"

namespace polder {
namespace node {

enum class AuditDirection { kOffered, kReceived, kGap };
absl::string_view DirectionName(AuditDirection direction);  // "offered", "received", "gap"

// Who shares what under which contract: the same for every entry of a stream.
// Sets a stream's first entry's `resumes` and `cursor` from the Subscribe request that opened it
// (both sides call it with the same request, so their first entries agree).
void ResumeFacts(const federation::v1::SubscribeRequest& request, audit::AuditEntry* entry);

struct StreamParties {
  std::string source;       // the providing peer
  std::string destination;  // the consuming peer
  std::string dataset;
  std::string contract_hash;
  std::string purpose;
  std::string traceparent;  // W3C trace context of the Subscribe, if any
  std::string view;         // the aggregate view of `dataset` streamed; empty for the dataset
};

// One batch of source partition `partition`, offsets [first_offset, next_offset). The stream id
// (the entry's transaction id) is set by whoever appends the entry to the stream's chain.
struct BatchFacts {
  int32_t partition = 0;
  int64_t first_offset = 0;
  int64_t next_offset = 0;
  int64_t records = 0;
  int64_t bytes = 0;
};

audit::AuditEntry BatchEntry(const StreamParties& parties, AuditDirection direction,
                             const BatchFacts& batch, absl::Time at);

// The subscriber's record of a gap, in a one-entry chain of its own (`stream_id`), with what the
// provider said is missing.
audit::AuditEntry GapEntry(const StreamParties& parties, std::string stream_id, std::string detail,
                           absl::Time at);

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_STREAM_AUDIT_H_
