// Where a dataset message keeps its record metadata (ADR 0006), found generically from its
// descriptor — a registered schema parsed at run time, no generated code needed:
//
//   field option (polder.datasets.common.v1.entity_id) = true    → a string field: the Kafka key
//   field option (polder.datasets.common.v1.event_time) = true   → a google.protobuf.Timestamp
//   field option (polder.datasets.common.v1.location) = true
//                                                     → a polder.datasets.common.v1.Location
//   message option (polder.datasets.common.v1.dataset) → DatasetInfo (id, personal data, ...)
//
// Options are read by number from the serialized options, so it works whether or not the
// option extensions are linked into the binary.
#ifndef POLDER_COMMON_SCHEMA_RECORD_LAYOUT_H_
#define POLDER_COMMON_SCHEMA_RECORD_LAYOUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace polder {
namespace schema {

inline constexpr int kEntityIdOption = 51001;
inline constexpr int kEventTimeOption = 51002;
inline constexpr int kLocationOption = 51003;
inline constexpr int kDimensionOption = 51004;
inline constexpr int kUnitCountOption = 51005;
inline constexpr int kDatasetOption = 51010;

struct RecordLayout {
  const google::protobuf::Descriptor* message = nullptr;
  const google::protobuf::FieldDescriptor* entity_id = nullptr;   // string
  const google::protobuf::FieldDescriptor* event_time = nullptr;  // google.protobuf.Timestamp
  const google::protobuf::FieldDescriptor* location = nullptr;    // may be null: optional
  std::string dataset_id;                 // from the message option; may be empty
  int personal_data = 0;                  // PersonalData enum number
  bool event_time_ends_interval = false;  // DatasetInfo.event_time_ends_interval
};

// The layout of `message`. INVALID_ARGUMENT if it does not mark exactly one entity-id field
// (a singular string) and one event-time field (a singular google.protobuf.Timestamp), or marks
// more than one location field or one of the wrong type.
absl::StatusOr<RecordLayout> RecordLayoutOf(const google::protobuf::Descriptor* message);

// Whether `field` carries the boolean field option `option` (one of the numbers above).
bool HasFieldOption(const google::protobuf::FieldDescriptor* field, int option);

// The metadata of one record.
struct RecordMetadata {
  std::string entity_id;
  absl::Time event_time;
};

// Reads the entity id and event time of `record` (a message of layout.message). INVALID_ARGUMENT
// naming the field if the entity id is empty or the event time is unset or out of range.
absl::StatusOr<RecordMetadata> ReadRecordMetadata(const RecordLayout& layout,
                                                  const google::protobuf::Message& record);

// The same checks from values read off the wire (entity id bytes; whether the event time is
// present, and its seconds and nanos).
absl::StatusOr<RecordMetadata> RecordMetadataFrom(const RecordLayout& layout, std::string entity_id,
                                                  bool has_event_time, int64_t seconds,
                                                  int32_t nanos);

}  // namespace schema
}  // namespace polder

#endif  // POLDER_COMMON_SCHEMA_RECORD_LAYOUT_H_
