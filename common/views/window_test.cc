#include "common/views/window.h"

#include <optional>
#include <set>
#include <utility>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace views {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

// An instant given as UTC civil time.
absl::Time Utc(int y, int mo, int d, int h, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

class WindowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(WindowClock c, WindowClock::Amsterdam());
    clock_.emplace(c);
  }
  const WindowClock& clock() const { return *clock_; }
  std::optional<WindowClock> clock_;
};

TEST(WindowSizeTest, ParsesTheThreeSizesAndRefusesOthers) {
  ASSERT_OK_AND_ASSIGN(WindowSize q, ParseWindowSize("15m"));
  EXPECT_EQ(q, WindowSize::kQuarterHour);
  ASSERT_OK_AND_ASSIGN(WindowSize h, ParseWindowSize("1h"));
  EXPECT_EQ(h, WindowSize::kHour);
  ASSERT_OK_AND_ASSIGN(WindowSize d, ParseWindowSize("1d"));
  EXPECT_EQ(d, WindowSize::kDay);
  for (const char* bad : {"", "15", "30m", "1H", "24h", "1w", "15m "}) {
    EXPECT_THAT(ParseWindowSize(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("15m, 1h, 1d")))
        << "'" << bad << "'";
  }
  for (WindowSize s : {WindowSize::kQuarterHour, WindowSize::kHour, WindowSize::kDay}) {
    ASSERT_OK_AND_ASSIGN(WindowSize back, ParseWindowSize(WindowSizeName(s)));
    EXPECT_EQ(back, s);
  }
}

TEST(WindowClockTest, AZoneThatCannotBeLoadedIsRefusedNeverUtc) {
  EXPECT_THAT(WindowClock::ForZone("Europe/Nowhere"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Europe/Nowhere")));
  EXPECT_THAT(WindowClock::ForZone(""), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(WindowTest, QuarterHoursAreHalfOpenAndEpochAligned) {
  const Window w = clock().WindowOf(WindowSize::kQuarterHour, Utc(2026, 6, 1, 10, 7, 30));
  EXPECT_EQ(w.start, Utc(2026, 6, 1, 10, 0));
  EXPECT_EQ(w.end, Utc(2026, 6, 1, 10, 15));
  // The start belongs to the window, the end to the next.
  EXPECT_EQ(clock().WindowOf(WindowSize::kQuarterHour, w.start), w);
  EXPECT_EQ(clock().WindowOf(WindowSize::kQuarterHour, w.end).start, w.end);
  EXPECT_EQ(clock().WindowOf(WindowSize::kQuarterHour, w.end - absl::Nanoseconds(1)), w);
  EXPECT_EQ(clock().Next(WindowSize::kQuarterHour, w).start, w.end);
  EXPECT_TRUE(w.Contains(w.start));
  EXPECT_FALSE(w.Contains(w.end));
}

TEST_F(WindowTest, HoursAreEpochAlignedAndAlsoLocalHours) {
  const Window w = clock().WindowOf(WindowSize::kHour, Utc(2026, 1, 15, 23, 59, 59));
  EXPECT_EQ(w.start, Utc(2026, 1, 15, 23));
  EXPECT_EQ(w.length(), absl::Hours(1));
  // Amsterdam is a whole number of hours from UTC, so the window starts on a local hour too.
  EXPECT_EQ(absl::ToCivilSecond(w.start, clock().zone()), absl::CivilSecond(2026, 1, 16, 0, 0, 0));
}

TEST_F(WindowTest, TimesBeforeTheEpochFloorDownwards) {
  const Window w = clock().WindowOf(WindowSize::kQuarterHour, Utc(1969, 12, 31, 23, 50));
  EXPECT_EQ(w.start, Utc(1969, 12, 31, 23, 45));
  EXPECT_EQ(w.end, Utc(1970, 1, 1, 0, 0));
  EXPECT_EQ(clock().WindowOf(WindowSize::kHour, Utc(1969, 12, 31, 23, 0)).start,
            Utc(1969, 12, 31, 23, 0));
}

TEST_F(WindowTest, DaysAreAmsterdamCalendarDays) {
  // 2026-01-15 00:30 local (CET, UTC+1) is 2026-01-14 23:30 UTC: the 15th, locally.
  const Window w = clock().WindowOf(WindowSize::kDay, Utc(2026, 1, 14, 23, 30));
  EXPECT_EQ(w.start, Utc(2026, 1, 14, 23));  // local midnight
  EXPECT_EQ(w.end, Utc(2026, 1, 15, 23));
  EXPECT_EQ(w.length(), absl::Hours(24));
  // A summer day (CEST, UTC+2) starts at 22:00 UTC the day before.
  const Window s = clock().WindowOf(WindowSize::kDay, Utc(2026, 7, 1, 12));
  EXPECT_EQ(s.start, Utc(2026, 6, 30, 22));
  EXPECT_EQ(s.end, Utc(2026, 7, 1, 22));
}

TEST_F(WindowTest, TheSpringChangeDayHas23HoursAndTheAutumnOne25) {
  // 2025-03-30: clocks go from 02:00 CET to 03:00 CEST. 2025-10-26: from 03:00 CEST to 02:00 CET.
  const Window spring = clock().WindowOf(WindowSize::kDay, Utc(2025, 3, 30, 12));
  EXPECT_EQ(spring.start, Utc(2025, 3, 29, 23));
  EXPECT_EQ(spring.end, Utc(2025, 3, 30, 22));
  EXPECT_EQ(spring.length(), absl::Hours(23));
  const Window autumn = clock().WindowOf(WindowSize::kDay, Utc(2025, 10, 26, 12));
  EXPECT_EQ(autumn.start, Utc(2025, 10, 25, 22));
  EXPECT_EQ(autumn.end, Utc(2025, 10, 26, 23));
  EXPECT_EQ(autumn.length(), absl::Hours(25));
  // Consecutive days tile time without gaps or overlaps across both changes.
  Window d = clock().WindowOf(WindowSize::kDay, Utc(2025, 3, 28, 12));
  for (int i = 0; i < 220; ++i) {
    const Window next = clock().Next(WindowSize::kDay, d);
    EXPECT_EQ(next.start, d.end);
    EXPECT_TRUE(next.length() == absl::Hours(23) || next.length() == absl::Hours(24) ||
                next.length() == absl::Hours(25));
    d = next;
  }
}

TEST_F(WindowTest, EachChangeDayHoldsItsNumberOfHoursAndQuarters) {
  for (const auto& [day, hours] : {std::pair<absl::Time, int>{Utc(2025, 3, 30, 12), 23},
                                   {Utc(2025, 10, 26, 12), 25},
                                   {Utc(2025, 6, 1, 12), 24}}) {
    const Window d = clock().WindowOf(WindowSize::kDay, day);
    std::set<absl::Time> h, q;
    for (absl::Time t = d.start; t < d.end; t += absl::Minutes(1)) {
      const Window hw = clock().WindowOf(WindowSize::kHour, t);
      const Window qw = clock().WindowOf(WindowSize::kQuarterHour, t);
      // Every hour and quarter of the day lies inside it: they nest.
      EXPECT_TRUE(d.Contains(hw.start) && hw.end <= d.end);
      EXPECT_TRUE(hw.Contains(qw.start) && qw.end <= hw.end);
      h.insert(hw.start);
      q.insert(qw.start);
    }
    EXPECT_EQ(static_cast<int>(h.size()), hours);
    EXPECT_EQ(static_cast<int>(q.size()), 4 * hours);
  }
}

TEST_F(WindowTest, AnIntervalEndEventTimeCountsInTheIntervalsOwnWindow) {
  // A count of 10:00–10:15 stamped with its exclusive end, 10:15.
  const absl::Time end = Utc(2026, 6, 1, 10, 15);
  EXPECT_EQ(clock().WindowOfRecord(WindowSize::kQuarterHour, end, true).start,
            Utc(2026, 6, 1, 10, 0));
  EXPECT_EQ(clock().WindowOfRecord(WindowSize::kQuarterHour, end, false).start, end);
  // A daily count stamped with the next local midnight belongs to the day it counted.
  const Window day = clock().WindowOf(WindowSize::kDay, Utc(2026, 6, 1, 12));
  EXPECT_EQ(clock().WindowOfRecord(WindowSize::kDay, day.end, true), day);
  EXPECT_EQ(clock().WindowOfRecord(WindowSize::kDay, day.end, false).start, day.end);
}

TEST(WindowOrderTest, WindowsOrderByStartThenEnd) {
  const absl::Time t = Utc(2026, 1, 1, 0);
  const Window a{t, t + absl::Minutes(15)}, b{t, t + absl::Hours(1)},
      c{t + absl::Minutes(15), t + absl::Minutes(30)};
  EXPECT_TRUE(a < b);
  EXPECT_TRUE(b < c);
  EXPECT_FALSE(b < a);
  EXPECT_NE(a, b);
}

TEST(FormatInstantTest, UtcWithTheFractionTheInstantHas) {
  const absl::Time t =
      absl::FromCivil(absl::CivilSecond(2026, 12, 3, 11, 15, 0), absl::UTCTimeZone());
  EXPECT_EQ(FormatInstant(t), "2026-12-03T11:15:00Z");
  EXPECT_EQ(FormatInstant(t - absl::Milliseconds(1)), "2026-12-03T11:14:59.999Z");
}

}  // namespace
}  // namespace views
}  // namespace polder
