#include "common/views/names.h"

#include <string>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace views {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

TEST(NamesTest, ViewTopicsHaveFivePartsAndNeverMeetDatasetTopics) {
  EXPECT_EQ(ViewTopic("groningen", "mobility.bike-counts", "quarter-municipality"),
            "groningen.mobility.bike-counts.view.quarter-municipality");
  EXPECT_EQ(ViewChangelogTopic("mobility.bike-counts"),
            "_polder.views.mobility.bike-counts.changelog");
  EXPECT_EQ(ViewTransactionalId("groningen", "mobility.bike-counts"),
            "polder-views-groningen-mobility.bike-counts");
}

TEST(NamesTest, ViewIdsAreLowercaseNames) {
  EXPECT_OK(ValidateViewId("quarter-municipality"));
  EXPECT_OK(ValidateViewId("h1"));
  EXPECT_THAT(ValidateViewId(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateViewId(std::string(65, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1 to 64")));
  EXPECT_THAT(ValidateViewId("1h"), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("start with a lowercase letter")));
  EXPECT_THAT(ValidateViewId("hour.city"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'.' at 4")));
  EXPECT_THAT(ValidateViewId("Hour"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(NamesTest, DatasetIdsAreDomainDotName) {
  EXPECT_TRUE(IsValidDatasetId("mobility.bike-counts"));
  EXPECT_TRUE(IsValidDatasetId("safety.incident-counts2"));
  for (const char* bad : {"", "bikes", ".bikes", "mobility.", "a.b.c", "Mobility.bikes",
                          "mobility.bike_counts", "mobility./x"}) {
    EXPECT_FALSE(IsValidDatasetId(bad)) << bad;
  }
  EXPECT_FALSE(IsValidDatasetId(std::string("m.") + std::string(99, 'a'))) << "over 100";
}

}  // namespace
}  // namespace views
}  // namespace polder
