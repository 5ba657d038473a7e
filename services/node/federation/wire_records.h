// The two conversions of a shared record, and nothing else converts it: a source record into
// the federation's wire record (the provider, before sending) and a wire record into the record
// written to the mirror (the subscriber's mirror writer). Key, value, headers and timestamp
// carry over unchanged; the source offset travels with the wire record, so the mirror's cursor
// and audit entries name source offsets.
#ifndef POLDER_SERVICES_NODE_FEDERATION_WIRE_RECORDS_H_
#define POLDER_SERVICES_NODE_FEDERATION_WIRE_RECORDS_H_

#include <cstdint>
#include <string>

#include "common/kafka/record.h"
#include "proto/polder/federation/v1/federation.pb.h"

namespace polder {
namespace node {

void ToWireRecord(const kafka::ConsumedRecord& source, federation::v1::Record* out);

// The mirror's copy of `record`, for `topic` and the source's `partition`. A wire record always
// has a key (empty if the source record had none), as mirrors have always been written.
kafka::ProducerRecord ToMirrorRecord(const federation::v1::Record& record, const std::string& topic,
                                     int32_t partition);

// The bytes a record counts for in batches, flow control and audit entries: key, value, and
// each header's key and value — the same on both sides (ConsumedBytes on the provider).
int64_t WireRecordBytes(const federation::v1::Record& record);

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_WIRE_RECORDS_H_
