#include "common/views/spec.h"

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace views {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

ViewSetSpec Bikes() {
  ViewSetSpec set;
  set.dataset = "mobility.bike-counts";
  ViewSpec v;
  v.id = "quarter-municipality";
  v.window = WindowSize::kQuarterHour;
  v.group_by = {*ParseDimension("municipality"), *ParseDimension("direction")};
  v.measures = {*ParseMeasure("count")};
  set.views.push_back(v);
  return set;
}

TEST(SpecTest, DimensionsAndMeasuresRoundTripTheirNames) {
  for (const char* d : {"municipality", "grid:100m", "grid:500m", "grid:1km", "direction"}) {
    ASSERT_OK_AND_ASSIGN(Dimension dim, ParseDimension(d));
    EXPECT_EQ(dim.Name(), d);
  }
  for (const char* m :
       {"count", "entities", "sum:count", "mean:occupied", "min:pm25", "max:pm25"}) {
    ASSERT_OK_AND_ASSIGN(Measure measure, ParseMeasure(m));
    EXPECT_EQ(measure.Name(), m);
  }
  EXPECT_THAT(ParseDimension("grid:200m").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("grid:100m")));
  EXPECT_THAT(ParseDimension("Direction").status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseMeasure("median:x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not count")));
  EXPECT_THAT(ParseMeasure("sum:").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a field")));
  EXPECT_THAT(ParseMeasure("sum").status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SpecTest, ValidSetPassesAndEachMistakeIsNamed) {
  EXPECT_OK(ValidateViewSet("groningen", Bikes()));
  auto refused = [](ViewSetSpec s, absl::string_view what) {
    EXPECT_THAT(ValidateViewSet("groningen", s),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(std::string(what))));
  };
  ViewSetSpec s = Bikes();
  s.views.clear();
  refused(s, "no views");
  s = Bikes();
  s.views.push_back(s.views[0]);
  refused(s, "declared twice");
  s = Bikes();
  s.views[0].measures.clear();
  refused(s, "no measures");
  s = Bikes();
  s.views[0].group_by.push_back(s.views[0].group_by[0]);
  refused(s, "groups by municipality twice");
  s = Bikes();
  s.guard.k = 2;
  refused(s, "guard.k must be at least 3");
  s = Bikes();
  s.guard.p = 0;
  refused(s, "guard.p");
  s = Bikes();
  s.guard.ptable.v = 1.5;
  refused(s, "cannot be reached");
  s = Bikes();
  s.idle_timeout = absl::ZeroDuration();
  refused(s, "idle_timeout");
  s = Bikes();
  s.max_event_age = absl::Minutes(1);
  refused(s, "max_event_age");
  s = Bikes();
  s.views[0].id = std::string(64, 'v');
  s.dataset = std::string(180, 'd');
  refused(s, "longer than Kafka's 249");
  s = Bikes();
  s.views[0].id = "Quarter";
  refused(s, "lowercase");
  s = Bikes();
  s.views[0].measures.push_back(*ParseMeasure("entities"));
  refused(s, "view 'quarter-municipality': entities counts distinct units");
  s = Bikes();
  s.views[0].measures = {*ParseMeasure("entities")};
  EXPECT_OK(ValidateViewSet("groningen", s));
}

TEST(SpecTest, DefinitionHashFollowsWhatDecidesTheOutputOnly) {
  const ViewSetSpec base = Bikes();
  const std::string h = DefinitionHash(base, base.views[0]);
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(h, DefinitionHash(Bikes(), Bikes().views[0]));
  EXPECT_THAT(DefinitionJson(base, base.views[0]),
              HasSubstr(R"("group_by":["municipality","direction"])"));
  ViewSetSpec epoch = Bikes();
  epoch.views[0].epoch = "2";
  EXPECT_EQ(h, DefinitionHash(epoch, epoch.views[0])) << "the epoch is not the definition";
  ViewSetSpec grace = Bikes();
  grace.grace = absl::Minutes(6);
  EXPECT_NE(h, DefinitionHash(grace, grace.views[0]));
  ViewSetSpec k = Bikes();
  k.guard.k = 10;
  EXPECT_NE(h, DefinitionHash(k, k.views[0]));
  ViewSetSpec order = Bikes();
  std::swap(order.views[0].group_by[0], order.views[0].group_by[1]);
  EXPECT_NE(h, DefinitionHash(order, order.views[0])) << "group keys are ordered";
  ViewSetSpec window = Bikes();
  window.views[0].window = WindowSize::kHour;
  EXPECT_NE(h, DefinitionHash(window, window.views[0]));
}

}  // namespace
}  // namespace views
}  // namespace polder
