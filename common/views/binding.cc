#include "common/views/binding.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/views/grid.h"
#include "google/protobuf/reflection.h"

namespace polder {
namespace views {

namespace pb = ::google::protobuf;

namespace {

bool IsNumber(const pb::FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
    case pb::FieldDescriptor::CPPTYPE_INT64:
    case pb::FieldDescriptor::CPPTYPE_UINT32:
    case pb::FieldDescriptor::CPPTYPE_UINT64:
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return true;
    default:
      return false;
  }
}

bool IsInteger(const pb::FieldDescriptor* f) {
  return f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32 ||
         f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT64 ||
         f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT32 ||
         f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT64;
}

double NumberOf(const pb::Message& m, const pb::FieldDescriptor* f) {
  const pb::Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return r->GetInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return static_cast<double>(r->GetInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return r->GetUInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return static_cast<double>(r->GetUInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return r->GetFloat(m, f);
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return r->GetDouble(m, f);
    default:
      return 0;
  }
}

const char* ClassName(DataClass c) {
  switch (c) {
    case DataClass::kNone:
      return "PERSONAL_DATA_NONE";
    case DataClass::kAggregated:
      return "PERSONAL_DATA_AGGREGATED";
    case DataClass::kPseudonymised:
      return "PERSONAL_DATA_PSEUDONYMISED";
    case DataClass::kPersonal:
      return "PERSONAL_DATA_PERSONAL";
  }
  return "?";
}

constexpr char kUnknown[] = "unknown";

}  // namespace

absl::StatusOr<DataClass> DataClassOf(int personal_data) {
  switch (personal_data) {
    case 1:
      return DataClass::kNone;
    case 2:
      return DataClass::kAggregated;
    case 3:
      return DataClass::kPseudonymised;
    case 4:
      return DataClass::kPersonal;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("the dataset does not state its personal data (", personal_data, ")"));
  }
}

absl::StatusOr<Binding> Binding::Of(const SetLayout* layout, const pb::Descriptor* message) {
  const ViewSetSpec& spec = layout->spec;
  const std::string where =
      absl::StrCat("views of ", spec.dataset, " (", message->full_name(), ")");
  auto refuse = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", why));
  };
  Binding b;
  b.layout_ = layout;
  absl::StatusOr<schema::RecordLayout> record = schema::RecordLayoutOf(message);
  if (!record.ok()) return refuse(record.status().message());
  b.record_ = *record;
  if (!b.record_.dataset_id.empty() && b.record_.dataset_id != spec.dataset) {
    return refuse(absl::StrCat("the message belongs to dataset ", b.record_.dataset_id));
  }
  absl::StatusOr<DataClass> data_class = DataClassOf(b.record_.personal_data);
  if (!data_class.ok()) return refuse(data_class.status().message());
  b.class_ = *data_class;
  if (b.class_ == DataClass::kPersonal) {
    return refuse("PERSONAL_DATA_PERSONAL datasets get no views");
  }
  const bool guarded = b.class_ != DataClass::kNone;

  if (b.class_ == DataClass::kAggregated) {
    for (int i = 0; i < message->field_count(); ++i) {
      const pb::FieldDescriptor* f = message->field(i);
      if (!schema::HasFieldOption(f, schema::kUnitCountOption)) continue;
      if (b.unit_count_ != nullptr) {
        return refuse(absl::StrCat("both ", b.unit_count_->name(), " and ", f->name(),
                                   " are marked (polder.datasets.common.v1.unit_count)"));
      }
      if (!IsInteger(f) || f->is_repeated()) {
        return refuse(absl::StrCat(f->name(), ": a unit count must be a singular integer"));
      }
      b.unit_count_ = f;
    }
    if (b.unit_count_ == nullptr) {
      return refuse(
          "a PERSONAL_DATA_AGGREGATED dataset must mark the field that counts people or events "
          "(polder.datasets.common.v1.unit_count)");
    }
  }

  for (const std::string& name : layout->dimensions) {
    ASSIGN_OR_RETURN(Dimension d, ParseDimension(name));
    DimensionReader reader{d, nullptr};
    if (d.kind != Dimension::Kind::kField) {
      if (b.record_.location == nullptr) {
        return refuse(absl::StrCat("dimension ", name, " needs a location field"));
      }
    } else {
      const pb::FieldDescriptor* f = message->FindFieldByName(d.field);
      if (f == nullptr) return refuse(absl::StrCat("dimension ", name, ": no such field"));
      if (f->is_repeated() || (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_ENUM &&
                               f->cpp_type() != pb::FieldDescriptor::CPPTYPE_BOOL)) {
        return refuse(absl::StrCat("dimension ", name, " must be a singular enum or bool field"));
      }
      if (!schema::HasFieldOption(f, schema::kDimensionOption)) {
        return refuse(
            absl::StrCat("field ", name, " is not marked (polder.datasets.common.v1.dimension)"));
      }
      reader.field = f;
    }
    b.dimensions_.push_back(reader);
  }

  for (const std::string& name : layout->fields) {
    const pb::FieldDescriptor* f = message->FindFieldByName(name);
    if (f == nullptr) return refuse(absl::StrCat("measure over ", name, ": no such field"));
    if (f->is_repeated() || !IsNumber(f)) {
      return refuse(absl::StrCat("measure over ", name, ": not a singular number field"));
    }
    b.fields_.push_back(f);
  }
  const pb::Descriptor* ts = b.record_.event_time->message_type();
  b.seconds_ = ts->FindFieldByNumber(1);
  b.nanos_ = ts->FindFieldByNumber(2);
  if (b.record_.location != nullptr) {
    const pb::Descriptor* ld = b.record_.location->message_type();
    b.municipality_ = ld->FindFieldByName("municipality_code");
    b.latitude_ = ld->FindFieldByName("latitude");
    b.longitude_ = ld->FindFieldByName("longitude");
  }
  if (guarded) {
    for (const ViewSpec& v : spec.views) {
      for (const Measure& m : v.measures) {
        if (m.kind == Measure::Kind::kCount || m.kind == Measure::Kind::kEntities) continue;
        return refuse(absl::StrCat(
            "view ", v.id, ": ", m.Name(), " is not published for ", ClassName(b.class_),
            " data; such views publish counts (a perturbed magnitude needs a noise level, "
            "ADR 0016 §8, that is not decided)"));
      }
    }
  }
  return b;
}

absl::StatusOr<Fact> Binding::Extract(const pb::Message& record, const ViewKey& key) const {
  return ExtractWith(record, [&](const std::string& entity) {
    return key.RecordKey(layout_->spec.dataset, entity);
  });
}

absl::StatusOr<Fact> Binding::Extract(const pb::Message& record, RecordKeyCache& keys) const {
  return ExtractWith(record, [&](const std::string& entity) { return keys.Get(entity); });
}

template <typename KeyOf>
absl::StatusOr<Fact> Binding::ExtractWith(const pb::Message& record, KeyOf key_of) const {
  const pb::Reflection* r = record.GetReflection();
  const std::string entity = r->GetString(record, record_.entity_id);
  if (entity.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(record_.entity_id->name(), ": the entity id is missing or empty"));
  }
  if (!r->HasField(record, record_.event_time)) {
    return absl::InvalidArgumentError(
        absl::StrCat(record_.event_time->name(), ": the event time is missing"));
  }
  const pb::Message& ts = r->GetMessage(record, record_.event_time);
  const int64_t seconds = ts.GetReflection()->GetInt64(ts, seconds_);
  const int32_t nanos = ts.GetReflection()->GetInt32(ts, nanos_);
  ASSIGN_OR_RETURN(schema::RecordMetadata meta,
                   schema::RecordMetadataFrom(record_, entity, true, seconds, nanos));

  Fact fact;
  fact.event_time = meta.event_time;
  fact.unit_key = key_of(entity);
  fact.unit_count =
      unit_count_ != nullptr ? static_cast<int64_t>(NumberOf(record, unit_count_)) : 1;

  const pb::Message* location = nullptr;
  if (record_.location != nullptr && r->HasField(record, record_.location)) {
    location = &r->GetMessage(record, record_.location);
  }
  fact.dimensions.reserve(dimensions_.size());
  for (const DimensionReader& d : dimensions_) {
    std::string value = kUnknown;
    switch (d.dimension.kind) {
      case Dimension::Kind::kMunicipality:
        if (location != nullptr && municipality_ != nullptr) {
          std::string c = location->GetReflection()->GetString(*location, municipality_);
          if (!c.empty()) value = std::move(c);
        }
        break;
      case Dimension::Kind::kGrid:
        if (location != nullptr && latitude_ != nullptr && longitude_ != nullptr) {
          const pb::Reflection* lr = location->GetReflection();
          const double lat = lr->GetDouble(*location, latitude_);
          const double lon = lr->GetDouble(*location, longitude_);
          if (std::optional<std::string> cell = GridCell(lat, lon, d.dimension.grid_metres)) {
            value = std::move(*cell);
          }
        }
        break;
      case Dimension::Kind::kField:
        if (d.field->cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL) {
          value = r->GetBool(record, d.field) ? "true" : "false";
        } else {
          const pb::EnumValueDescriptor* e = r->GetEnum(record, d.field);
          // An open enum may carry a number this version does not name.
          if (e != nullptr && e->type()->FindValueByNumber(e->number()) == e) value = e->name();
          if (e != nullptr && absl::StrContains(e->name(), "UNKNOWN_ENUM_VALUE")) value = kUnknown;
        }
        break;
    }
    fact.dimensions.push_back(std::move(value));
  }
  fact.fields.reserve(fields_.size());
  for (const pb::FieldDescriptor* f : fields_) {
    if (f->has_presence() && !r->HasField(record, f)) {
      fact.fields.push_back(std::nullopt);
    } else {
      fact.fields.push_back(NumberOf(record, f));
    }
  }
  return fact;
}

}  // namespace views
}  // namespace polder
