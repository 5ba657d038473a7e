// Every standard dataset declares its metadata the generic way (ADR 0006): a dataset option
// with id and personal-data class, and exactly one entity id (string), event time (Timestamp)
// and location (Location) field, marked by field options.
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "polder/datasets/common/v1/options.pb.h"
#include "polder/datasets/economy/v1/footfall.pb.h"
#include "polder/datasets/energy/v1/streetlight.pb.h"
#include "polder/datasets/environment/v1/air_quality.pb.h"
#include "polder/datasets/mobility/v1/bike_count.pb.h"
#include "polder/datasets/mobility/v1/shuttle_telemetry.pb.h"
#include "polder/datasets/parking/v1/parking_occupancy.pb.h"
#include "polder/datasets/safety/v1/incident_counts.pb.h"

namespace polder {
namespace {

namespace pb = ::google::protobuf;
namespace opt = ::polder::datasets::common::v1;

std::vector<const pb::Descriptor*> StandardDatasets() {
  return {
      datasets::mobility::v1::BikeCount::descriptor(),
      datasets::mobility::v1::ShuttleTelemetry::descriptor(),
      datasets::parking::v1::ParkingOccupancy::descriptor(),
      datasets::environment::v1::AirQualityObserved::descriptor(),
      datasets::energy::v1::StreetlightReading::descriptor(),
      datasets::economy::v1::FootfallCount::descriptor(),
      datasets::safety::v1::IncidentCount::descriptor(),
  };
}

TEST(DatasetsTest, EveryDatasetDeclaresItsMetadataGenerically) {
  std::set<std::string> ids;
  for (const pb::Descriptor* d : StandardDatasets()) {
    SCOPED_TRACE(d->full_name());
    ASSERT_TRUE(d->options().HasExtension(opt::dataset));
    const opt::DatasetInfo& info = d->options().GetExtension(opt::dataset);
    EXPECT_TRUE(ids.insert(info.dataset_id()).second) << "dataset id used twice";
    // "<domain>.<name>", and the package is polder.datasets.<domain>.v1.
    size_t dot = info.dataset_id().find('.');
    ASSERT_NE(dot, std::string::npos) << info.dataset_id();
    EXPECT_EQ(d->file()->package(), "polder.datasets." + info.dataset_id().substr(0, dot) + ".v1");
    EXPECT_NE(info.personal_data(), opt::PERSONAL_DATA_UNSPECIFIED);
    EXPECT_FALSE(info.update_rhythm().empty());
    int entity = 0, time = 0, place = 0;
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor* f = d->field(i);
      if (f->options().GetExtension(opt::entity_id)) {
        ++entity;
        EXPECT_EQ(f->type(), pb::FieldDescriptor::TYPE_STRING) << f->name();
      }
      if (f->options().GetExtension(opt::event_time)) {
        ++time;
        ASSERT_EQ(f->type(), pb::FieldDescriptor::TYPE_MESSAGE) << f->name();
        EXPECT_EQ(f->message_type()->full_name(), "google.protobuf.Timestamp");
      }
      if (f->options().GetExtension(opt::location)) {
        ++place;
        ASSERT_EQ(f->type(), pb::FieldDescriptor::TYPE_MESSAGE) << f->name();
        EXPECT_EQ(f->message_type()->full_name(), "polder.datasets.common.v1.Location");
      }
      EXPECT_FALSE(f->is_required());
    }
    EXPECT_EQ(entity, 1);
    EXPECT_EQ(time, 1);
    EXPECT_EQ(place, 1);
  }
  EXPECT_EQ(ids.size(), 7u);
}

}  // namespace
}  // namespace polder
