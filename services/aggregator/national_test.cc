#include "services/aggregator/national.h"

#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace aggregator {
namespace {

namespace nv1 = ::polder::national::v1;
namespace vv1 = ::polder::views::v1;
using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using Outcome = National::Outcome;

absl::Time At(int h, int m) {
  return absl::FromCivil(absl::CivilMinute(2026, 12, 3, h, m), absl::UTCTimeZone());
}

class NationalTest : public ::testing::Test {
 protected:
  NationalTest() {
    spec_.dataset = "mobility.bike-counts";
    spec_.view = "quarter-municipality";
    spec_.definition_hashes = {"h1"};
    spec_.cities = {"amersfoort", "groningen"};
    spec_.grace = absl::Minutes(5);
    spec_.deadline = absl::Minutes(10);
    spec_.revision_horizon = absl::Hours(1);
  }

  static vv1::AggregateCell Base(absl::Time start, const std::string& city) {
    vv1::AggregateCell c;
    c.mutable_window_start()->set_seconds(absl::ToUnixSeconds(start));
    c.mutable_window_end()->set_seconds(absl::ToUnixSeconds(start + absl::Minutes(15)));
    c.set_dataset_id("mobility.bike-counts");
    c.set_view_id("quarter-municipality");
    c.set_definition_hash("h1");
    c.set_source_peer(city);
    return c;
  }
  // A cell with a count (nullopt: withheld).
  static vv1::AggregateCell Cell(absl::Time start, const std::string& city,
                                 const std::string& group, std::optional<double> count,
                                 bool perturbed = true) {
    vv1::AggregateCell c = Base(start, city);
    c.set_group_key(group);
    vv1::MeasureValue* m = c.add_measures();
    m->set_name("count");
    if (count) {
      m->set_value(*count);
      m->set_perturbed(perturbed);
    } else {
      m->set_protection(vv1::PROTECTION_SUPPRESSED);
    }
    return c;
  }
  static vv1::AggregateCell Close(absl::Time start, const std::string& city, int64_t cells,
                                  absl::Time through) {
    vv1::AggregateCell c = Base(start, city);
    c.mutable_window_close()->set_cells(cells);
    c.mutable_window_close()->mutable_closed_through()->set_seconds(absl::ToUnixSeconds(through));
    c.mutable_window_close()->mutable_watermark()->set_seconds(
        absl::ToUnixSeconds(through + absl::Minutes(3)));
    return c;
  }

  NationalViewSpec spec_;
};

TEST_F(NationalTest, AWindowEveryCityClosedIsDecidedAtOnceFromWhatTheyPublished) {
  National n(spec_);
  const absl::Time now = At(10, 20);
  EXPECT_EQ(n.Offer("groningen", Cell(At(10, 0), "groningen", "municipality=GM0014", 40), now),
            Outcome::kCell);
  EXPECT_EQ(n.Offer("groningen", Cell(At(10, 0), "groningen", "municipality=GM0017", 12), now),
            Outcome::kCell);
  EXPECT_EQ(n.Offer("groningen", Close(At(10, 0), "groningen", 2, At(10, 15)), now),
            Outcome::kClose);
  EXPECT_TRUE(n.Decide(now).empty()) << "amersfoort has not closed it";
  EXPECT_EQ(n.Offer("amersfoort", Cell(At(10, 0), "amersfoort", "municipality=GM0307", 30), now),
            Outcome::kCell);
  EXPECT_EQ(n.Offer("amersfoort", Cell(At(10, 0), "amersfoort", "municipality=GM0308", {}), now),
            Outcome::kCell);
  EXPECT_EQ(n.Offer("amersfoort", Close(At(10, 0), "amersfoort", 2, At(10, 15)), now),
            Outcome::kClose);
  std::vector<Decision> d = n.Decide(now);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].window, At(10, 0));
  EXPECT_EQ(d[0].revision, 0);
  ASSERT_OK_AND_ASSIGN(nv1::NationalFigure f, n.Figure(At(10, 0), 0));
  EXPECT_EQ(f.figure_key(), "mobility.bike-counts/quarter-municipality/2026-12-03T10:00:00Z");
  EXPECT_EQ(f.reason(), nv1::REVISION_REASON_ALL_CITIES);
  EXPECT_TRUE(f.complete());
  EXPECT_THAT(f.cities_added(), ElementsAre("amersfoort", "groningen"));
  ASSERT_EQ(f.totals_size(), 1);
  EXPECT_EQ(f.totals(0).name(), "count");
  EXPECT_EQ(f.totals(0).value(), 82) << "40 + 12 + 30; the withheld cell is left out";
  EXPECT_EQ(f.totals(0).withheld_cells(), 1);
  EXPECT_TRUE(f.totals(0).perturbed());
  ASSERT_EQ(f.cities_size(), 2);
  EXPECT_EQ(f.cities(0).peer(), "amersfoort");
  EXPECT_EQ(f.cities(0).cells(), 2);
  EXPECT_EQ(f.cities(0).measures(0).value(), 30);
  EXPECT_EQ(f.cities(0).measures(0).withheld_cells(), 1);
  EXPECT_EQ(f.cities(1).measures(0).value(), 52);
  EXPECT_EQ(f.cities(1).watermark().seconds(), absl::ToUnixSeconds(At(10, 18)));
  EXPECT_TRUE(n.Decide(now).empty()) << "decided once";
}

TEST_F(NationalTest, TheDeadlineClosesWithoutALateCityWhoseResultThenRevisesIt) {
  National n(spec_);
  n.Offer("groningen", Cell(At(10, 0), "groningen", "municipality=GM0014", 40), At(10, 20));
  n.Offer("groningen", Close(At(10, 0), "groningen", 1, At(10, 15)), At(10, 20));
  // Due at 10:15 + 5 min grace + 10 min deadline.
  EXPECT_TRUE(n.Decide(At(10, 29)).empty());
  std::vector<Decision> d = n.Decide(At(10, 30));
  ASSERT_EQ(d.size(), 1u);
  ASSERT_OK_AND_ASSIGN(nv1::NationalFigure first, n.Figure(At(10, 0), 0));
  EXPECT_EQ(first.reason(), nv1::REVISION_REASON_DEADLINE);
  EXPECT_FALSE(first.complete());
  EXPECT_EQ(first.totals(0).value(), 40);
  EXPECT_THAT(first.cities_added(), ElementsAre("groningen"));

  n.Offer("amersfoort", Cell(At(10, 0), "amersfoort", "municipality=GM0307", 30), At(10, 41));
  EXPECT_TRUE(n.Decide(At(10, 41)).empty()) << "not closed by amersfoort yet";
  n.Offer("amersfoort", Close(At(10, 0), "amersfoort", 1, At(10, 15)), At(10, 42));
  d = n.Decide(At(10, 42));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].revision, 1);
  ASSERT_OK_AND_ASSIGN(nv1::NationalFigure second, n.Figure(At(10, 0), 1));
  EXPECT_EQ(second.reason(), nv1::REVISION_REASON_LATE_CITY);
  EXPECT_TRUE(second.complete());
  EXPECT_THAT(second.cities_added(), ElementsAre("amersfoort"));
  EXPECT_EQ(second.totals(0).value(), 70);
  EXPECT_EQ(second.cities(0).included_in_revision(), 1);
  ASSERT_EQ(second.changes_size(), 1) << "what the revision changed";
  EXPECT_EQ(second.changes(0).name(), "count");
  EXPECT_EQ(second.changes(0).previous_value(), 40);
  EXPECT_EQ(second.changes(0).value(), 70);
  EXPECT_EQ(first.changes_size(), 0) << "revision 0 changes nothing";
  // Revision 0 stays as it was.
  ASSERT_OK_AND_ASSIGN(nv1::NationalFigure again, n.Figure(At(10, 0), 0));
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());
  EXPECT_THAT(n.Figure(At(10, 0), 2), StatusIs(absl::StatusCode::kNotFound));
}

// A city closes empty windows without a record of their own: a later close record's
// closed_through covers them, before or after another city names the window.
TEST_F(NationalTest, ClosedThroughClosesACitysEmptyWindows) {
  National n(spec_);
  n.Offer("groningen", Cell(At(10, 0), "groningen", "municipality=GM0014", 40), At(10, 50));
  n.Offer("groningen", Close(At(10, 0), "groningen", 1, At(10, 15)), At(10, 50));
  // Amersfoort had nothing at 10:00 and 10:15 and says so at 10:30.
  n.Offer("amersfoort", Close(At(10, 30), "amersfoort", 0, At(10, 45)), At(10, 50));
  std::vector<Decision> d = n.Decide(At(10, 50));
  ASSERT_EQ(d.size(), 1u) << "10:00: both closed (10:30 awaits groningen)";
  ASSERT_OK_AND_ASSIGN(nv1::NationalFigure f, n.Figure(At(10, 0), 0));
  EXPECT_TRUE(f.complete());
  EXPECT_EQ(f.totals(0).value(), 40);
  ASSERT_EQ(f.cities_size(), 2);
  EXPECT_EQ(f.cities(0).cells(), 0);
  // Groningen names 10:15 later: amersfoort's closed_through already covers it.
  n.Offer("groningen", Close(At(10, 15), "groningen", 0, At(10, 45)), At(10, 51));
  d = n.Decide(At(10, 51));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].window, At(10, 15));
  EXPECT_EQ(d[1].window, At(10, 30));
  ASSERT_OK_AND_ASSIGN(f, n.Figure(At(10, 15), 0));
  EXPECT_TRUE(f.complete());
  EXPECT_EQ(f.totals_size(), 0) << "no cell anywhere";
}

TEST_F(NationalTest, RecordsTheViewCannotUseAreNamedAndLeftOut) {
  National n(spec_);
  const absl::Time now = At(10, 20);
  EXPECT_EQ(n.Offer("utrecht", Cell(At(10, 0), "utrecht", "all", 5), now), Outcome::kUnknownCity);
  vv1::AggregateCell other = Cell(At(10, 0), "groningen", "all", 5);
  other.set_definition_hash("h2");
  EXPECT_EQ(n.Offer("groningen", other, now), Outcome::kOtherView);
  other = Cell(At(10, 0), "groningen", "all", 5);
  other.set_view_id("hour");
  EXPECT_EQ(n.Offer("groningen", other, now), Outcome::kOtherView);
  vv1::AggregateCell bad = Close(At(10, 0), "groningen", 1, At(10, 15));
  bad.set_group_key("all");
  EXPECT_EQ(n.Offer("groningen", bad, now), Outcome::kMalformed);
  bad = Cell(At(10, 0), "groningen", "all", 5);
  bad.clear_window_end();
  EXPECT_EQ(n.Offer("groningen", bad, now), Outcome::kMalformed);
  // Past the horizon: due 10:30, kept until 11:30.
  EXPECT_EQ(n.Offer("groningen", Cell(At(10, 0), "groningen", "all", 5), At(11, 30)),
            Outcome::kTooOld);
  EXPECT_TRUE(n.windows().empty());
  // A cell after its city's close record is not counted (cities emit each cell once).
  n.Offer("groningen", Close(At(10, 0), "groningen", 0, At(10, 15)), now);
  EXPECT_EQ(n.Offer("groningen", Cell(At(10, 0), "groningen", "all", 5), now),
            Outcome::kAfterClose);
}

TEST_F(NationalTest, AWindowRestoredFromItsEncodingDecidesAndFiguresAsBefore) {
  National n(spec_);
  n.Offer("groningen", Cell(At(10, 0), "groningen", "municipality=GM0014", 40), At(10, 20));
  n.Offer("groningen", Cell(At(10, 0), "groningen", "municipality=GM0017", {}), At(10, 20));
  n.Offer("groningen", Close(At(10, 0), "groningen", 2, At(10, 15)), At(10, 20));
  // Decided at a time finer than the changelog's milliseconds: the restored figure (what a
  // restart or another replica serves) must equal the one written, event id included.
  ASSERT_EQ(n.Decide(At(10, 30) + absl::Nanoseconds(123456789)).size(), 1u);
  EXPECT_THAT(n.TakeDirty(), ElementsAre(At(10, 0)));
  EXPECT_TRUE(n.TakeCitiesDirty());
  EXPECT_TRUE(n.TakeDirty().empty());

  National restored(spec_);
  ASSERT_OK(restored.Restore(n.Encode(At(10, 0))));
  ASSERT_OK(restored.RestoreCities(n.EncodeCities()));
  ASSERT_OK_AND_ASSIGN(nv1::NationalFigure a, n.Figure(At(10, 0), 0));
  ASSERT_OK_AND_ASSIGN(nv1::NationalFigure b, restored.Figure(At(10, 0), 0));
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
  // Both decide amersfoort's late result the same way.
  for (National* x : {&n, &restored}) {
    x->Offer("amersfoort", Close(At(10, 0), "amersfoort", 0, At(10, 15)), At(10, 40));
    std::vector<Decision> d = x->Decide(At(10, 40));
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].revision, 1);
  }
  EXPECT_EQ(n.Encode(At(10, 0)), restored.Encode(At(10, 0)));

  EXPECT_THAT(restored.Restore("{\"start\":1}"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(restored.Restore(std::string(100, '[') + std::string(100, ']')),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(NationalTest, WindowsAreForgottenAfterTheirRevisionHorizon) {
  National n(spec_);
  n.Offer("groningen", Close(At(10, 0), "groningen", 0, At(10, 15)), At(10, 20));
  n.Offer("amersfoort", Close(At(10, 0), "amersfoort", 0, At(10, 15)), At(10, 20));
  ASSERT_EQ(n.Decide(At(10, 20)).size(), 1u);
  EXPECT_TRUE(n.Forget(At(11, 29)).empty());
  EXPECT_THAT(n.Forget(At(11, 30)), ElementsAre(At(10, 0)));
  EXPECT_TRUE(n.windows().empty());
}

}  // namespace
}  // namespace aggregator
}  // namespace polder
