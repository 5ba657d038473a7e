#include "common/views/guard.h"

#include <cmath>
#include <set>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace views {
namespace {

SetLayout Layout(std::vector<std::string> measures) {
  ViewSetSpec spec;
  spec.dataset = "mobility.bike-counts";
  ViewSpec v;
  v.id = "q";
  v.group_by = {*ParseDimension("municipality")};
  for (const auto& m : measures) v.measures.push_back(*ParseMeasure(m));
  spec.views.push_back(v);
  return SetLayout::Of(spec, false);
}

// Well-spread unit keys, as HMAC record keys are.
uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A closed cell with one unit per entry of `counts` (unit keys 1, 2, …), each with that count
// and, for field measures, one record of value `counts[i]`.
ClosedCell CellOf(const std::vector<int64_t>& counts, size_t measures, uint64_t key_base = 1) {
  ClosedCell c;
  c.id.group_key = "municipality=GM0014";
  c.cell.group = {"GM0014"};
  for (size_t i = 0; i < counts.size(); ++i) {
    UnitStats u;
    u.records = 1;
    u.count = counts[i];
    u.fields.resize(measures);
    for (auto& f : u.fields) {
      f.n = 1;
      f.sum = f.min = f.max = static_cast<double>(counts[i]);
    }
    c.cell.units[SplitMix(key_base * 1000 + i)] = u;
  }
  return c;
}

class GuardTest : public ::testing::Test {
 protected:
  PTable table_ = *PTable::Build(PTableParams{});
  GuardSpec spec_;
};

TEST_F(GuardTest, DominanceRuleAtTheLimitAndJustBelow) {
  EXPECT_FALSE(DominanceSensitive({100, 50, 17.65}, 17.65)) << "rest = p% of x1: safe";
  EXPECT_TRUE(DominanceSensitive({100, 50, 17.64}, 17.65)) << "rest below p% of x1";
  EXPECT_TRUE(DominanceSensitive({17.64, 100, 50}, 17.65)) << "order does not matter";
  EXPECT_TRUE(DominanceSensitive({100, 50}, 17.65)) << "two contributors: always";
  EXPECT_TRUE(DominanceSensitive({100, 50, 40, -1}, 17.65)) << "negative: the rule fails";
  EXPECT_FALSE(DominanceSensitive({1, 1, 1, 1, 1}, 17.65));
  EXPECT_NEAR(UpperProtectionLevel({100, 50, 10}, 17.65), 7.65, 1e-9);
}

TEST_F(GuardTest, AggregatedCountsHaveAThresholdOfKAndDominanceOverSensors) {
  const SetLayout layout = Layout({"count"});
  Guard guard(spec_, DataClass::kAggregated, &table_);
  // Five sensors counting one each: the threshold's limit, published perturbed.
  PublishedCell at = guard.Apply(layout, CellOf({1, 1, 1, 1, 1}, 1));
  ASSERT_EQ(at.measures.size(), 1u);
  EXPECT_EQ(at.measures[0].protection, Protection::kNone);
  ASSERT_TRUE(at.measures[0].value.has_value());
  EXPECT_TRUE(at.measures[0].perturbed);
  EXPECT_TRUE(table_.CanPublish(5, static_cast<int64_t>(*at.measures[0].value)));
  EXPECT_EQ(at.group[0].first, "municipality");
  // Four: protected, nothing published.
  PublishedCell below = guard.Apply(layout, CellOf({1, 1, 1, 1}, 1));
  EXPECT_EQ(below.measures[0].protection, Protection::kThreshold);
  EXPECT_FALSE(below.measures[0].value.has_value());
  // The summed count decides, not the number of sensors: one sensor counting 4 is below k …
  EXPECT_EQ(guard.Apply(layout, CellOf({4}, 1)).measures[0].protection, Protection::kThreshold);
  // … one counting 400 is dominated.
  EXPECT_EQ(guard.Apply(layout, CellOf({400}, 1)).measures[0].protection, Protection::kDominance);
  EXPECT_EQ(guard.Apply(layout, CellOf({300, 200, 10}, 1)).measures[0].protection,
            Protection::kDominance);
  EXPECT_EQ(guard.Apply(layout, CellOf({300, 200, 100}, 1)).measures[0].protection,
            Protection::kNone);
  // A cell whose sensors counted nothing publishes a zero (zeros stay zero).
  PublishedCell zero = guard.Apply(layout, CellOf({0, 0, 0}, 1));
  EXPECT_EQ(zero.measures[0].protection, Protection::kNone);
  EXPECT_EQ(*zero.measures[0].value, 0);
}

TEST_F(GuardTest, PseudonymisedCountsDistinctUnitsWithAThreshold) {
  const SetLayout layout = Layout({"count"});
  Guard guard(spec_, DataClass::kPseudonymised, &table_);
  EXPECT_EQ(guard.Apply(layout, CellOf({9, 9, 9, 9}, 1)).measures[0].protection,
            Protection::kThreshold)
      << "four shuttles, however many records";
  PublishedCell five = guard.Apply(layout, CellOf({9, 9, 9, 9, 9}, 1));
  EXPECT_EQ(five.measures[0].protection, Protection::kNone) << "no dominance over unit counts";
  EXPECT_TRUE(table_.CanPublish(5, static_cast<int64_t>(*five.measures[0].value)));
}

// Entities reporting (ADR 0018 §6): the number of sensors, not of bicycles — four busy
// counters are below k however much they counted, five idle ones are published (perturbed), and
// one busy counter among five is no dominance: each unit contributes one.
TEST_F(GuardTest, EntitiesCountSensorsWithAThresholdAndNoDominance) {
  const SetLayout layout = Layout({"entities"});
  Guard guard(spec_, DataClass::kAggregated, &table_);
  EXPECT_TRUE(guard.CountsUnits(layout.spec.views[0]));
  EXPECT_FALSE(guard.CountsUnits(Layout({"count"}).spec.views[0]));
  const ClosedCell four = CellOf({400, 300, 200, 100}, 1);
  EXPECT_EQ(guard.Frequency(layout.spec.views[0], four.cell), 4);
  PublishedCell below = guard.Apply(layout, four);
  ASSERT_EQ(below.measures.size(), 1u);
  EXPECT_EQ(below.measures[0].name, "entities");
  EXPECT_EQ(below.measures[0].protection, Protection::kThreshold);
  EXPECT_FALSE(below.measures[0].value.has_value());
  for (const std::vector<int64_t>& counts :
       std::vector<std::vector<int64_t>>{{0, 0, 0, 0, 0}, {900, 1, 1, 1, 1}}) {
    PublishedCell five = guard.Apply(layout, CellOf(counts, 1));
    EXPECT_EQ(five.measures[0].protection, Protection::kNone);
    ASSERT_TRUE(five.measures[0].value.has_value());
    EXPECT_TRUE(five.measures[0].perturbed);
    EXPECT_TRUE(table_.CanPublish(5, static_cast<int64_t>(*five.measures[0].value)));
  }
  // Unguarded data publishes the exact number of units.
  Guard none(spec_, DataClass::kNone, &table_);
  EXPECT_EQ(*none.Apply(layout, CellOf({7, 7}, 1)).measures[0].value, 2);
}

TEST_F(GuardTest, TheSameContentsDrawTheSameNoiseAndOtherUnitsOtherNoise) {
  const SetLayout layout = Layout({"count"});
  Guard guard(spec_, DataClass::kPseudonymised, &table_);
  std::set<double> seen;
  for (uint64_t base = 1; base < 200; ++base) {
    const ClosedCell cell = CellOf(std::vector<int64_t>(20, 1), 1, base);
    const double a = *guard.Apply(layout, cell).measures[0].value;
    EXPECT_EQ(a, *guard.Apply(layout, cell).measures[0].value);
    EXPECT_LE(std::abs(a - 20), 6);
    seen.insert(a);
  }
  EXPECT_GE(seen.size(), 5u) << "noise varies with the cell's units";
}

TEST_F(GuardTest, NonPersonalDataIsPublishedExactly) {
  const SetLayout layout =
      Layout({"count", "sum:occupied", "mean:occupied", "min:occupied", "max:occupied"});
  Guard guard(spec_, DataClass::kNone, &table_);
  PublishedCell out = guard.Apply(layout, CellOf({2, 7}, 5));
  ASSERT_EQ(out.measures.size(), 5u);
  EXPECT_EQ(*out.measures[0].value, 2);
  EXPECT_EQ(*out.measures[1].value, 9);
  EXPECT_EQ(*out.measures[2].value, 4.5);
  EXPECT_EQ(*out.measures[3].value, 2);
  EXPECT_EQ(*out.measures[4].value, 7);
  for (const auto& m : out.measures) {
    EXPECT_EQ(m.protection, Protection::kNone);
    EXPECT_FALSE(m.perturbed);
  }
  EXPECT_EQ(out.measures[1].name, "sum:occupied");
}

}  // namespace
}  // namespace views
}  // namespace polder
