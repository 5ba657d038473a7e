#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "proto/polder/datasets/common/v1/location.pb.h"
#include "proto/polder/datasets/common/v1/options.pb.h"
#include "proto/polder/datasets/economy/v1/footfall.pb.h"
#include "proto/polder/datasets/energy/v1/streetlight.pb.h"
#include "proto/polder/datasets/environment/v1/air_quality.pb.h"
#include "proto/polder/datasets/mobility/v1/bike_count.pb.h"
#include "proto/polder/datasets/mobility/v1/shuttle_telemetry.pb.h"
#include "proto/polder/datasets/parking/v1/parking_occupancy.pb.h"
#include "proto/polder/datasets/safety/v1/incident_counts.pb.h"
#include "proto/polder/datasets/standard_sources.h"
#include "proto/polder/national/v1/national_figure.pb.h"
#include "proto/polder/views/v1/aggregate_cell.pb.h"

namespace polder {
namespace datasets {

namespace pb = ::google::protobuf;

namespace {

// Touches one message of every standard file: a statically linked binary keeps a generated
// file's descriptor only if something refers to it.
void LinkGeneratedDescriptors() {
  for (const pb::Descriptor* d :
       {common::v1::DatasetInfo::descriptor(), common::v1::Location::descriptor(),
        mobility::v1::BikeCount::descriptor(), mobility::v1::ShuttleTelemetry::descriptor(),
        parking::v1::ParkingOccupancy::descriptor(),
        environment::v1::AirQualityObserved::descriptor(),
        energy::v1::StreetlightReading::descriptor(), economy::v1::FootfallCount::descriptor(),
        safety::v1::IncidentCount::descriptor(), views::v1::AggregateCell::descriptor(),
        national::v1::NationalFigure::descriptor()}) {
    (void)d;
  }
}

}  // namespace

absl::StatusOr<std::vector<StandardSchema>> StandardSchemas() {
  LinkGeneratedDescriptors();
  std::vector<StandardSchema> out;
  std::set<std::string> seen;
  for (const EmbeddedProto& e : StandardSources()) {
    const pb::FileDescriptor* file = pb::DescriptorPool::generated_pool()->FindFileByName(e.path);
    if (file == nullptr) {
      return absl::InternalError(
          absl::StrCat(e.path, " is embedded but its descriptor is not linked"));
    }
    StandardSchema s{e.path, e.source, e.path, "", {}};
    for (int i = 0; i < file->dependency_count(); ++i) {
      const std::string& dep = file->dependency(i)->name();
      if (absl::StartsWith(dep, "google/protobuf/")) continue;
      if (seen.count(dep) == 0) {
        return absl::InternalError(
            absl::StrCat(e.path, " imports ", dep, ", which is not embedded before it"));
      }
      s.imports.push_back(dep);
    }
    for (int i = 0; i < file->message_type_count(); ++i) {
      const pb::Descriptor* m = file->message_type(i);
      const bool dataset = m->options().HasExtension(common::v1::dataset);
      const bool record = m->options().GetExtension(common::v1::record_schema);
      if (!dataset && !record) continue;
      if (s.subject != e.path) {
        return absl::InternalError(
            absl::StrCat(e.path, " declares two records: ", s.subject, " and ", m->full_name()));
      }
      s.subject = m->full_name();
      s.record_schema = record;
      if (dataset) s.dataset_id = m->options().GetExtension(common::v1::dataset).dataset_id();
    }
    seen.insert(e.path);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace datasets
}  // namespace polder
