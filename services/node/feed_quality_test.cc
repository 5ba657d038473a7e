// Feed quality per dataset: freshness from the newest accepted event time, accepted and refused
// counts, late records only for datasets with views, nothing for a dataset that is not the
// node's.
#include "services/node/feed_quality.h"

#include "absl/time/civil_time.h"
#include "gtest/gtest.h"

namespace polder {
namespace node {
namespace {

absl::Time At(int h, int m) {
  return absl::FromCivil(absl::CivilMinute(2026, 12, 5, h, m), absl::UTCTimeZone());
}

TEST(FeedQualityTest, FreshnessCountsAndLateRecordsPerDataset) {
  FeedQualityTracker t({"mobility.bike-counts", "parking.occupancy"}, At(9, 0));
  std::optional<federation::v1::FeedQuality> empty = t.Snapshot("parking.occupancy", At(10, 0));
  ASSERT_TRUE(empty.has_value());
  EXPECT_FALSE(empty->has_newest_event_time()) << "nothing accepted yet";
  EXPECT_FALSE(empty->has_freshness_seconds());
  EXPECT_FALSE(empty->has_records_late()) << "no views";

  t.Accepted("mobility.bike-counts", 9, At(9, 50));
  t.Accepted("mobility.bike-counts", 3, At(9, 45));  // older events: freshness unchanged
  t.Rejected("mobility.bike-counts", 4);
  t.SetLate("mobility.bike-counts", 2);
  t.Accepted("economy.footfall", 5, At(9, 59));  // not the node's: ignored
  std::optional<federation::v1::FeedQuality> q = t.Snapshot("mobility.bike-counts", At(10, 0));
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->records_accepted(), 12);
  EXPECT_EQ(q->records_rejected(), 4);
  EXPECT_EQ(q->records_late(), 2);
  EXPECT_EQ(q->freshness_seconds(), 600);
  EXPECT_EQ(q->since().seconds(), absl::ToUnixSeconds(At(9, 0)));
  EXPECT_FALSE(t.Snapshot("economy.footfall", At(10, 0)).has_value());

  const nlohmann::json j = FeedQualityTracker::ToJson(*q);
  EXPECT_EQ(j["newest_event_time"], "2026-12-05T09:50:00Z");
  EXPECT_EQ(j["records_rejected"], 4);
  EXPECT_TRUE(FeedQualityTracker::ToJson(*empty)["freshness_seconds"].is_null());
  EXPECT_TRUE(j["entities_hour"].is_null()) << "no entities view closed yet";
}

// Entities reporting: what the entities views published, as published — a perturbed value, or
// withheld (never 0, which means no unit reported).
TEST(FeedQualityTest, EntitiesReportingIsWhatTheViewsPublished) {
  FeedQualityTracker t({"mobility.bike-counts"}, At(9, 0));
  t.SetEntities("mobility.bike-counts", "entities-hour",
                views::FeedFigure{views::Window{At(9, 0), At(10, 0)}, 27.0, true});
  t.SetEntities(
      "mobility.bike-counts", "entities-day",
      views::FeedFigure{views::Window{At(0, 0), At(0, 0) + absl::Hours(24)}, std::nullopt, false});
  t.SetEntities("mobility.bike-counts", "quarter", views::FeedFigure{});     // not feed quality
  t.SetEntities("parking.occupancy", "entities-hour", views::FeedFigure{});  // not the node's
  std::optional<federation::v1::FeedQuality> q = t.Snapshot("mobility.bike-counts", At(10, 1));
  ASSERT_TRUE(q.has_value());
  ASSERT_TRUE(q->has_entities_hour());
  EXPECT_EQ(q->entities_hour().value(), 27);
  EXPECT_TRUE(q->entities_hour().perturbed());
  EXPECT_EQ(q->entities_hour().window_start().seconds(), absl::ToUnixSeconds(At(9, 0)));
  ASSERT_TRUE(q->has_entities_day());
  EXPECT_FALSE(q->entities_day().has_value()) << "withheld";
  const nlohmann::json j = FeedQualityTracker::ToJson(*q);
  EXPECT_EQ(j["entities_hour"]["value"], 27.0);
  EXPECT_EQ(j["entities_hour"]["window_end"], "2026-12-05T10:00:00Z");
  EXPECT_TRUE(j["entities_day"]["value"].is_null());
  EXPECT_EQ(j["entities_day"]["withheld"], true);
  EXPECT_FALSE(t.Snapshot("parking.occupancy", At(10, 1)).has_value());
}

}  // namespace
}  // namespace node
}  // namespace polder
