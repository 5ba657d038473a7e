// The CloudEvents headers of a Polder record on Kafka (ARCHITECTURE §5, ADR 0012): what a
// record's `content-type` and `ce_dataschema` say, written by the node's ingest and read by every
// Polder reader.
//
//   content-type   application/vnd.polder.confluent-protobuf — the value is a Confluent frame
//                  (wire/confluent_frame.h) around Protobuf bytes, not bare Protobuf. Records
//                  written before ADR 0012 (and their mirrors, copied byte for byte) say
//                  application/x-protobuf for the same bytes: readers accept both.
//   ce_dataschema  urn:polder:<federation>:schemas:<id> — the registry id of the writer's schema,
//                  named without a host so it reads the same in every city's cluster (ids are
//                  federation-wide). Absent on records written before ADR 0012.
#ifndef POLDER_COMMON_WIRE_RECORD_HEADERS_H_
#define POLDER_COMMON_WIRE_RECORD_HEADERS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/wire/confluent_frame.h"

namespace polder {
namespace wire {

inline constexpr char kContentTypeHeader[] = "content-type";
inline constexpr char kDataSchemaHeader[] = "ce_dataschema";
// What the node writes since ADR 0012.
inline constexpr char kConfluentProtobufContentType[] = "application/vnd.polder.confluent-protobuf";
// What it wrote before, for the same bytes; read, never written.
inline constexpr char kLegacyContentType[] = "application/x-protobuf";

// True for either content type of a Confluent-framed Protobuf value (media type compared
// case-insensitively, parameters ignored).
bool IsConfluentProtobuf(absl::string_view content_type);

// urn:polder:<federation>:schemas:<id>
std::string DataSchemaUrn(absl::string_view federation, int32_t schema_id);

struct DataSchema {
  std::string federation;
  int32_t schema_id = 0;
};
// INVALID_ARGUMENT saying what is wrong: not a urn:polder: URN, no federation, not a schemas
// path, an id that is not a positive 32-bit number.
absl::StatusOr<DataSchema> ParseDataSchemaUrn(absl::string_view urn);

// A record's value read by its headers. `headers` as on Kafka (key, value). INVALID_ARGUMENT when
// the content-type is missing or names something else, the frame is corrupt, or ce_dataschema
// is present and names another federation than `federation` (unless empty) or another schema id
// than the frame's.
struct DecodedRecord {
  Frame frame;
  std::optional<DataSchema> data_schema;  // absent on records written before ADR 0012
  bool legacy_content_type = false;
};
absl::StatusOr<DecodedRecord> ReadRecordValue(
    const std::vector<std::pair<std::string, std::string>>& headers, absl::string_view value,
    absl::string_view federation);

}  // namespace wire
}  // namespace polder

#endif  // POLDER_COMMON_WIRE_RECORD_HEADERS_H_
