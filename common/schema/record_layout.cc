#include "common/schema/record_layout.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/unknown_field_set.h"

namespace polder {
namespace schema {

namespace pb = ::google::protobuf;

namespace {

// The options message re-read as unknown fields: every option, extension or not, by number.
void OptionsByNumber(const pb::Message& options, pb::UnknownFieldSet* set) {
  set->ParseFromString(options.SerializeAsString());
}

const pb::UnknownField* Find(const pb::UnknownFieldSet& set, int number) {
  for (int i = set.field_count() - 1; i >= 0; --i) {  // the last occurrence wins, as in parsing
    if (set.field(i).number() == number) return &set.field(i);
  }
  return nullptr;
}

}  // namespace

bool HasFieldOption(const pb::FieldDescriptor* field, int option) {
  pb::UnknownFieldSet set;
  OptionsByNumber(field->options(), &set);
  const pb::UnknownField* f = Find(set, option);
  return f != nullptr && f->type() == pb::UnknownField::TYPE_VARINT && f->varint() != 0;
}

absl::StatusOr<RecordLayout> RecordLayoutOf(const pb::Descriptor* message) {
  RecordLayout layout;
  layout.message = message;
  const std::string where = message->full_name();
  for (int i = 0; i < message->field_count(); ++i) {
    const pb::FieldDescriptor* f = message->field(i);
    struct Mark {
      int option;
      const char* name;
      const pb::FieldDescriptor** slot;
    } marks[] = {{kEntityIdOption, "entity_id", &layout.entity_id},
                 {kEventTimeOption, "event_time", &layout.event_time},
                 {kLocationOption, "location", &layout.location}};
    for (const Mark& m : marks) {
      if (!HasFieldOption(f, m.option)) continue;
      if (*m.slot != nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": both ", (*m.slot)->name(), " and ", f->name(),
                         " are marked (polder.datasets.common.v1.", m.name, ")"));
      }
      *m.slot = f;
    }
  }
  if (layout.entity_id == nullptr || layout.event_time == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        where,
        ": a dataset message marks one field (polder.datasets.common.v1.entity_id) and one field "
        "(polder.datasets.common.v1.event_time); missing: ",
        layout.entity_id == nullptr ? "entity_id" : "",
        layout.entity_id == nullptr && layout.event_time == nullptr ? ", " : "",
        layout.event_time == nullptr ? "event_time" : ""));
  }
  if (layout.entity_id->type() != pb::FieldDescriptor::TYPE_STRING ||
      layout.entity_id->is_repeated()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".", layout.entity_id->name(),
                                                   ": the entity id must be a singular string"));
  }
  if (layout.event_time->type() != pb::FieldDescriptor::TYPE_MESSAGE ||
      layout.event_time->is_repeated() ||
      layout.event_time->message_type()->full_name() != "google.protobuf.Timestamp") {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".", layout.event_time->name(),
                     ": the event time must be a singular google.protobuf.Timestamp"));
  }
  if (layout.location != nullptr &&
      (layout.location->type() != pb::FieldDescriptor::TYPE_MESSAGE ||
       layout.location->is_repeated() ||
       layout.location->message_type()->full_name() != "polder.datasets.common.v1.Location")) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".", layout.location->name(),
                     ": the location must be a singular polder.datasets.common.v1.Location"));
  }
  pb::UnknownFieldSet message_options;
  OptionsByNumber(message->options(), &message_options);
  if (const pb::UnknownField* info = Find(message_options, kDatasetOption);
      info != nullptr && info->type() == pb::UnknownField::TYPE_LENGTH_DELIMITED) {
    pb::UnknownFieldSet fields;
    if (fields.ParseFromString(info->length_delimited())) {
      if (const pb::UnknownField* id = Find(fields, 1);
          id && id->type() == pb::UnknownField::TYPE_LENGTH_DELIMITED) {
        layout.dataset_id = id->length_delimited();
      }
      if (const pb::UnknownField* pd = Find(fields, 2);
          pd && pd->type() == pb::UnknownField::TYPE_VARINT) {
        layout.personal_data = static_cast<int>(pd->varint());
      }
      if (const pb::UnknownField* ends = Find(fields, 5);
          ends && ends->type() == pb::UnknownField::TYPE_VARINT) {
        layout.event_time_ends_interval = ends->varint() != 0;
      }
    }
  }
  return layout;
}

absl::StatusOr<RecordMetadata> RecordMetadataFrom(const RecordLayout& layout, std::string entity_id,
                                                  bool has_event_time, int64_t seconds,
                                                  int32_t nanos) {
  RecordMetadata m;
  m.entity_id = std::move(entity_id);
  if (m.entity_id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(layout.entity_id->name(), ": the entity id is missing or empty"));
  }
  if (!has_event_time) {
    return absl::InvalidArgumentError(
        absl::StrCat(layout.event_time->name(), ": the event time is missing"));
  }
  // google.protobuf.Timestamp's range: 0001-01-01 to 9999-12-31, nanos in [0, 1e9).
  if (seconds < -62135596800LL || seconds > 253402300799LL || nanos < 0 || nanos > 999999999) {
    return absl::InvalidArgumentError(absl::StrCat(layout.event_time->name(),
                                                   ": not a valid timestamp (seconds ", seconds,
                                                   ", nanos ", nanos, ")"));
  }
  m.event_time = absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
  return m;
}

absl::StatusOr<RecordMetadata> ReadRecordMetadata(const RecordLayout& layout,
                                                  const pb::Message& record) {
  const pb::Reflection* r = record.GetReflection();
  const bool has_time = r->HasField(record, layout.event_time);
  int64_t seconds = 0;
  int32_t nanos = 0;
  if (has_time) {
    const pb::Message& ts = r->GetMessage(record, layout.event_time);
    const pb::Descriptor* td = ts.GetDescriptor();
    seconds = ts.GetReflection()->GetInt64(ts, td->FindFieldByNumber(1));
    nanos = ts.GetReflection()->GetInt32(ts, td->FindFieldByNumber(2));
  }
  return RecordMetadataFrom(layout, r->GetString(record, layout.entity_id), has_time, seconds,
                            nanos);
}

}  // namespace schema
}  // namespace polder
