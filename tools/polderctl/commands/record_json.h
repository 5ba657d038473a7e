// The decoding core of `polderctl tail`: one Kafka record (headers + Confluent-framed value) and a
// schema lookup → one JSON object, printed as one line:
//
//   {"topic","partition","offset","key","ce_id","ce_type","ce_time","ce_source","schema_id",
//    "value": <the message as proto3 JSON>}
//
// The value is read with wire::ReadRecordValue, so both content types are accepted
// (application/vnd.polder.confluent-protobuf and the older application/x-protobuf), with or
// without ce_dataschema. A header absent from the record is null in the line; so is a null key.
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_RECORD_JSON_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_RECORD_JSON_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/kafka/record.h"
#include "tools/polderctl/commands/schema_source.h"

namespace polder {
namespace polderctl {

// The JSON line (no trailing newline) for `record`. Errors:
//   INVALID_ARGUMENT  the record itself is unreadable: no or another content-type, a corrupt
//                     frame, a ce_dataschema that contradicts the frame's schema id (or names
//                     another federation than `federation`, when that is not empty), message
//                     indexes outside the schema, Protobuf bytes that do not parse, a tombstone;
//   NOT_FOUND         the schema endpoint does not know the frame's schema id;
//   anything else     the schema endpoint could not be asked (the caller should stop).
absl::StatusOr<std::string> RecordToJsonLine(const kafka::ConsumedRecord& record,
                                             SchemaSource* schemas,
                                             const std::string& federation = "");

// True when RecordToJsonLine's error concerns that record only (skip it and go on).
bool IsRecordError(const absl::Status& status);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_RECORD_JSON_H_
