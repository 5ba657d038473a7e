#include "common/views/binding.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "common/views/grid.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "polder/datasets/common/v1/options.pb.h"
#include "polder/datasets/mobility/v1/bike_count.pb.h"
#include "polder/datasets/mobility/v1/shuttle_telemetry.pb.h"
#include "polder/datasets/parking/v1/parking_occupancy.pb.h"

namespace polder {
namespace views {
namespace {

using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace mobility = ::polder::datasets::mobility::v1;
namespace parking = ::polder::datasets::parking::v1;

SetLayout LayoutOf(const std::string& dataset, std::vector<std::string> dims,
                   std::vector<std::string> measures) {
  ViewSetSpec spec;
  spec.dataset = dataset;
  ViewSpec v;
  v.id = "v";
  for (const auto& d : dims) v.group_by.push_back(*ParseDimension(d));
  for (const auto& m : measures) v.measures.push_back(*ParseMeasure(m));
  spec.views.push_back(v);
  return SetLayout::Of(spec, false);
}

mobility::BikeCount Bike() {
  mobility::BikeCount b;
  b.set_counter_id("gn-herestraat-01");
  b.mutable_event_time()->set_seconds(1764763200);  // 2025-12-03T12:00:00Z
  b.mutable_location()->set_latitude(53.21924);
  b.mutable_location()->set_longitude(6.56822);
  b.mutable_location()->set_municipality_code("GM0014");
  b.set_count(7);
  b.set_direction(mobility::BikeCount::DIRECTION_INBOUND);
  return b;
}

TEST(BindingTest, BikeCountsReduceToSensorCountsByMunicipalityGridAndDirection) {
  const SetLayout layout =
      LayoutOf("mobility.bike-counts", {"municipality", "grid:1km", "direction"}, {"count"});
  ASSERT_OK_AND_ASSIGN(Binding b, Binding::Of(&layout, mobility::BikeCount::descriptor()));
  EXPECT_EQ(b.data_class(), DataClass::kAggregated);
  EXPECT_TRUE(b.event_time_ends_interval());
  const ViewKey key = ViewKey::FromBytesForTesting(std::string(32, 'k'));
  ASSERT_OK_AND_ASSIGN(Fact f, b.Extract(Bike(), key));
  EXPECT_EQ(f.event_time, absl::FromUnixSeconds(1764763200));
  EXPECT_EQ(f.unit_count, 7);
  EXPECT_EQ(f.unit_key, key.RecordKey("mobility.bike-counts", "gn-herestraat-01"));
  ASSERT_EQ(f.dimensions.size(), 3u);
  EXPECT_EQ(f.dimensions[0], "GM0014");
  EXPECT_EQ(f.dimensions[1], *GridCell(53.21924, 6.56822, 1000));
  EXPECT_EQ(f.dimensions[2], "DIRECTION_INBOUND");

  mobility::BikeCount nowhere = Bike();
  nowhere.clear_location();
  ASSERT_OK_AND_ASSIGN(Fact g, b.Extract(nowhere, key));
  EXPECT_THAT(g.dimensions, ElementsAre("unknown", "unknown", "DIRECTION_INBOUND"))
      << "a record without a location is grouped under unknown, never dropped";

  mobility::BikeCount anonymous = Bike();
  anonymous.clear_counter_id();
  EXPECT_THAT(b.Extract(anonymous, key).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("counter_id")));
  mobility::BikeCount timeless = Bike();
  timeless.clear_event_time();
  EXPECT_THAT(b.Extract(timeless, key).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("event_time")));
}

TEST(BindingTest, NonPersonalDataPublishesMagnitudesOfNumberFields) {
  const SetLayout layout = LayoutOf("parking.occupancy", {"status"},
                                    {"count", "mean:occupancy_percent", "max:available_spots"});
  ASSERT_OK_AND_ASSIGN(Binding b, Binding::Of(&layout, parking::ParkingOccupancy::descriptor()));
  parking::ParkingOccupancy p;
  p.set_facility_id("am-garage-1");
  p.mutable_event_time()->set_seconds(1764763200);
  p.set_occupancy_percent(81.5);
  p.set_available_spots(40);
  p.set_status(parking::ParkingOccupancy::STATUS_OPEN);
  ASSERT_OK_AND_ASSIGN(Fact f, b.Extract(p, ViewKey::FromBytesForTesting("")));
  EXPECT_EQ(f.unit_count, 1);
  EXPECT_THAT(f.dimensions, ElementsAre("STATUS_OPEN"));
  ASSERT_EQ(f.fields.size(), 2u);
  EXPECT_EQ(*f.fields[0], 81.5);
  EXPECT_EQ(*f.fields[1], 40);
}

TEST(BindingTest, EachUnsuitableDeclarationIsRefusedWithItsReason) {
  auto refused = [](const std::string& dataset, std::vector<std::string> dims,
                    std::vector<std::string> measures, const google::protobuf::Descriptor* d,
                    const std::string& why) {
    const SetLayout layout = LayoutOf(dataset, std::move(dims), std::move(measures));
    EXPECT_THAT(Binding::Of(&layout, d).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(why)))
        << why;
  };
  const auto* bike = mobility::BikeCount::descriptor();
  const auto* parking = parking::ParkingOccupancy::descriptor();
  const auto* shuttle = mobility::ShuttleTelemetry::descriptor();
  refused("mobility.bike-counts", {"counter_id"}, {"count"}, bike, "singular enum or bool");
  refused("mobility.bike-counts", {"lane"}, {"count"}, bike, "no such field");
  refused("mobility.bike-counts", {}, {"sum:count"}, bike, "publish counts");
  refused("economy.footfall", {}, {"count"}, bike, "belongs to dataset mobility.bike-counts");
  refused("parking.occupancy", {}, {"sum:facility_id"}, parking, "not a singular number");
  refused("parking.occupancy", {}, {"sum:spots"}, parking, "no such field");
  refused("mobility.shuttle-telemetry", {}, {"max:speed_kmh"}, shuttle, "publish counts");
  refused("mobility.shuttle-telemetry", {"mode"}, {"mean:battery_percent"}, shuttle,
          "PERSONAL_DATA_PSEUDONYMISED");

  // A personal dataset, and a dimension field that is not marked as one: copies of BikeCount in
  // packages of their own.
  google::protobuf::FileDescriptorProto file;
  auto repackage = [&file](const std::string& package) {
    file.set_name(absl::StrCat("test/", package, ".proto"));
    file.set_package(absl::StrCat("test.", package));
    for (auto& field : *file.mutable_message_type(0)->mutable_field()) {
      if (absl::StartsWith(field.type_name(), ".polder.datasets.mobility.v1.BikeCount.")) {
        field.set_type_name(
            absl::StrCat(".test.", package, ".BikeCount.", field.type_name().substr(39)));
      }
    }
  };
  file.Clear();
  bike->file()->CopyTo(&file);
  repackage("personal");
  auto* msg = file.mutable_message_type(0);
  msg->mutable_options()
      ->MutableExtension(datasets::common::v1::dataset)
      ->set_personal_data(datasets::common::v1::PERSONAL_DATA_PERSONAL);
  google::protobuf::DescriptorPool pool(google::protobuf::DescriptorPool::generated_pool());
  ASSERT_NE(pool.BuildFile(file), nullptr);
  refused("mobility.bike-counts", {}, {"count"},
          pool.FindMessageTypeByName("test.personal.BikeCount"), "get no views");

  file.Clear();
  bike->file()->CopyTo(&file);
  repackage("unmarked");
  for (auto& field : *file.mutable_message_type(0)->mutable_field()) {
    if (field.name() == "direction") field.clear_options();
  }
  ASSERT_NE(pool.BuildFile(file), nullptr);
  refused("mobility.bike-counts", {"direction"}, {"count"},
          pool.FindMessageTypeByName("test.unmarked.BikeCount"), "is not marked");

  file.Clear();
  bike->file()->CopyTo(&file);
  repackage("uncounted");
  for (auto& field : *file.mutable_message_type(0)->mutable_field()) {
    if (field.name() == "count") field.clear_options();
  }
  ASSERT_NE(pool.BuildFile(file), nullptr);
  refused("mobility.bike-counts", {}, {"count"},
          pool.FindMessageTypeByName("test.uncounted.BikeCount"), "unit_count");
}

}  // namespace
}  // namespace views
}  // namespace polder
