// A view set bound to one version of its dataset's schema (ADR 0016 §1, §6): the checks that
// need the message descriptor, and the reduction of a record to a Fact.
//
//   ASSIGN_OR_RETURN(Binding b, Binding::Of(layout, descriptor));   // refused: why, where
//   ASSIGN_OR_RETURN(Fact f, b.Extract(record, key));
//
// Refused: a dataset whose personal-data class is PERSONAL or unstated; a message whose
// dataset option names another dataset; a dimension field that does not exist, is not a
// singular enum or bool, or is not marked (polder.datasets.common.v1.dimension); municipality
// or grid dimensions without a location field; a measure over a field that is not a singular
// number; for guarded classes (AGGREGATED, PSEUDONYMISED) any measure but count; for AGGREGATED
// a message without exactly one (polder.datasets.common.v1.unit_count) integer field.
#ifndef POLDER_COMMON_VIEWS_BINDING_H_
#define POLDER_COMMON_VIEWS_BINDING_H_

#include <vector>

#include "absl/status/statusor.h"
#include "common/schema/record_layout.h"
#include "common/views/engine.h"
#include "common/views/guard.h"
#include "common/views/view_key.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace polder {
namespace views {

// The class a dataset's PersonalData number stands for; INVALID_ARGUMENT for unstated.
absl::StatusOr<DataClass> DataClassOf(int personal_data);

class Binding {
 public:
  // `layout` must outlive the binding.
  static absl::StatusOr<Binding> Of(const SetLayout* layout,
                                    const google::protobuf::Descriptor* message);

  // The record's fact (partition and offset left to the caller). INVALID_ARGUMENT when the
  // record has no entity id or event time.
  absl::StatusOr<Fact> Extract(const google::protobuf::Message& record, const ViewKey& key) const;
  // The same, with the unit's record key from a cache (the view job's hot path).
  absl::StatusOr<Fact> Extract(const google::protobuf::Message& record, RecordKeyCache& keys) const;

  DataClass data_class() const { return class_; }
  bool event_time_ends_interval() const { return record_.event_time_ends_interval; }

 private:
  struct DimensionReader {
    Dimension dimension;
    const google::protobuf::FieldDescriptor* field = nullptr;  // kField
  };

  const SetLayout* layout_ = nullptr;
  schema::RecordLayout record_;
  DataClass class_ = DataClass::kNone;
  const google::protobuf::FieldDescriptor* unit_count_ = nullptr;
  std::vector<DimensionReader> dimensions_;                       // per SetLayout::dimensions
  std::vector<const google::protobuf::FieldDescriptor*> fields_;  // per SetLayout::fields
  // Looked up once: the event time's seconds and nanos, the location's municipality code,
  // latitude and longitude (null when the message has no location).
  const google::protobuf::FieldDescriptor* seconds_ = nullptr;
  const google::protobuf::FieldDescriptor* nanos_ = nullptr;
  const google::protobuf::FieldDescriptor* municipality_ = nullptr;
  const google::protobuf::FieldDescriptor* latitude_ = nullptr;
  const google::protobuf::FieldDescriptor* longitude_ = nullptr;

  template <typename KeyOf>
  absl::StatusOr<Fact> ExtractWith(const google::protobuf::Message& record, KeyOf key_of) const;
};

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_BINDING_H_
