#include "common/views/engine.h"

#include "absl/time/civil_time.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace views {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

absl::Time At(int h, int m, int s = 0, int day = 3) {
  return absl::FromCivil(absl::CivilSecond(2026, 12, day, h, m, s), absl::UTCTimeZone());
}

ViewSpec View(const std::string& id, WindowSize size, std::vector<std::string> dims,
              std::vector<std::string> measures) {
  ViewSpec v;
  v.id = id;
  v.window = size;
  for (const auto& d : dims) v.group_by.push_back(*ParseDimension(d));
  for (const auto& m : measures) v.measures.push_back(*ParseMeasure(m));
  return v;
}

class EngineTest : public ::testing::Test {
 protected:
  void Init(std::vector<ViewSpec> views, std::vector<int32_t> partitions = {0},
            bool ends_interval = false) {
    ViewSetSpec spec;
    spec.dataset = "mobility.bike-counts";
    spec.views = std::move(views);
    spec.grace = absl::Minutes(5);
    spec.idle_timeout = absl::Minutes(30);
    spec.max_event_lead = absl::Minutes(5);
    spec.max_event_age = absl::Hours(48);
    layout_ = SetLayout::Of(spec, ends_interval);
    engine_ = std::make_unique<Engine>(&layout_, &*clock_, partitions, now_);
  }
  // A record of unit `unit` in `direction` with value `x`, at event time t.
  Fact Rec(absl::Time t, uint64_t unit = 1, std::string direction = "IN", double x = 1,
           int32_t partition = 0) {
    Fact f;
    f.partition = partition;
    f.offset = next_offset_[partition]++;
    f.event_time = t;
    f.unit_key = unit;
    f.unit_count = static_cast<int64_t>(x);
    for (const std::string& d : layout_.dimensions) {
      f.dimensions.push_back(d == "direction" ? direction : "GM0014");
    }
    for (size_t i = 0; i < layout_.fields.size(); ++i) f.fields.push_back(x);
    return f;
  }
  Outcome Offer(const Fact& f) { return engine_->Offer(f, now_); }
  std::vector<ClosedCell> Close() {
    engine_->Evaluate(now_);
    return engine_->TakeClosed();
  }

  absl::StatusOr<WindowClock> clock_ = WindowClock::Amsterdam();
  absl::Time now_ = At(12, 0);
  SetLayout layout_;
  std::unique_ptr<Engine> engine_;
  std::map<int32_t, int64_t> next_offset_;
};

TEST_F(EngineTest, WindowClosesWhenTheWatermarkPassesItsEndAndEmitsEachCellOnce) {
  ASSERT_OK(clock_.status());
  Init({View("q", WindowSize::kQuarterHour, {"direction"}, {"count", "sum:count"})});
  EXPECT_EQ(Offer(Rec(At(10, 0), 1, "IN", 3)), Outcome::kMerged);  // start: inclusive
  EXPECT_EQ(Offer(Rec(At(10, 14, 59), 2, "IN", 4)), Outcome::kMerged);
  EXPECT_EQ(Offer(Rec(At(10, 7), 1, "OUT", 5)), Outcome::kMerged);
  EXPECT_EQ(Offer(Rec(At(10, 15), 1, "IN", 6)), Outcome::kMerged);  // end: the next window
  EXPECT_THAT(Close(), IsEmpty()) << "W = 10:10: nothing closes yet";
  EXPECT_EQ(engine_->watermark(), At(10, 10));
  EXPECT_EQ(Offer(Rec(At(10, 19, 59))), Outcome::kMerged);
  EXPECT_THAT(Close(), IsEmpty()) << "W = 10:14:59";
  EXPECT_EQ(Offer(Rec(At(10, 20))), Outcome::kMerged);
  std::vector<ClosedCell> closed = Close();
  ASSERT_THAT(closed, SizeIs(2));
  EXPECT_EQ(closed[0].id.group_key, "direction=IN");
  EXPECT_EQ(closed[0].cell.window.start, At(10, 0));
  EXPECT_EQ(closed[0].cell.window.end, At(10, 15));
  ASSERT_EQ(closed[0].cell.units.size(), 2u);
  EXPECT_EQ(closed[0].cell.units.at(1).count, 3);
  EXPECT_EQ(closed[0].cell.units.at(2).fields[1].sum, 4);
  EXPECT_EQ(closed[1].id.group_key, "direction=OUT");
  EXPECT_THAT(Close(), IsEmpty()) << "closed once";
}

TEST_F(EngineTest, OutOfOrderWithinGraceMergesAndBeyondIsLateAndMergedNowhere) {
  Init({View("q", WindowSize::kQuarterHour, {}, {"count"})});
  Offer(Rec(At(10, 18)));  // W = 10:13
  Close();
  EXPECT_EQ(Offer(Rec(At(10, 14), 7)), Outcome::kMerged) << "out of order, within grace";
  Offer(Rec(At(10, 21)));  // W = 10:16: [10:00, 10:15) closes
  std::vector<ClosedCell> closed = Close();
  ASSERT_THAT(closed, SizeIs(1));
  EXPECT_EQ(closed[0].id.group_key, "all");
  EXPECT_TRUE(closed[0].cell.units.count(7));
  EXPECT_EQ(Offer(Rec(At(10, 14, 59), 8)), Outcome::kLate);
  EXPECT_EQ(Offer(Rec(At(10, 16), 9)), Outcome::kMerged);
  Offer(Rec(At(10, 40)));
  closed = Close();
  ASSERT_THAT(closed, SizeIs(1));  // [10:15, 10:30)
  EXPECT_FALSE(closed[0].cell.units.count(8)) << "a late record is merged nowhere";
  EXPECT_TRUE(closed[0].cell.units.count(9));
}

TEST_F(EngineTest, ARecordLateInOneViewIsMergedIntoNone) {
  Init({View("q", WindowSize::kQuarterHour, {}, {"count"}),
        View("d", WindowSize::kDay, {}, {"count"})});
  Offer(Rec(At(10, 0), 1));
  Offer(Rec(At(10, 30), 2));  // W = 10:25: the 10:00 quarter closes, the day stays open
  ASSERT_THAT(Close(), SizeIs(1));
  EXPECT_EQ(Offer(Rec(At(10, 5), 3)), Outcome::kLate);
  const auto& open = engine_->open_cells();
  ASSERT_EQ(open.size(), 2u);  // the 10:30 quarter and the day
  for (const auto& [id, cell] : open) EXPECT_FALSE(cell.units.count(3)) << id.view;
}

TEST_F(EngineTest, RecordsOutsideTheEventBoundsAreRejectedAndMoveNothing) {
  Init({View("q", WindowSize::kQuarterHour, {}, {"count"})});
  Offer(Rec(At(11, 0)));
  Close();
  const absl::Time w = engine_->watermark();
  // Produced straight to Kafka, a day ahead: it must not close the other windows.
  EXPECT_EQ(Offer(Rec(now_ + absl::Minutes(5) + absl::Seconds(1))), Outcome::kTooNew);
  EXPECT_EQ(Offer(Rec(now_ + absl::Minutes(5))), Outcome::kMerged) << "the bound is inclusive";
  EXPECT_EQ(Offer(Rec(now_ - absl::Hours(48) - absl::Seconds(1))), Outcome::kTooOld);
  EXPECT_EQ(Offer(Rec(At(11, 2))), Outcome::kMerged);
  EXPECT_EQ(engine_->watermark(), w);
  Close();
  EXPECT_EQ(engine_->watermark(), now_) << "the valid lead record moves W to 12:05 − grace";
  EXPECT_EQ(engine_->positions().at(0), 5) << "every record moves the position";
}

TEST_F(EngineTest, IdlePartitionsAreLeftOutAndRealignBeforeTheyCountAgain) {
  Init({View("q", WindowSize::kQuarterHour, {}, {"count"})}, {0, 1});
  Offer(Rec(At(10, 10), 1, "IN", 1, 0));
  EXPECT_THAT(Close(), IsEmpty()) << "partition 1 has seen nothing: W stays";
  EXPECT_EQ(engine_->watermark(), absl::InfinitePast());
  now_ += absl::Minutes(29);
  Offer(Rec(At(10, 31), 1, "IN", 1, 0));
  EXPECT_THAT(Close(), IsEmpty()) << "29 minutes of silence are not idle yet";
  now_ += absl::Minutes(1);
  ASSERT_THAT(Close(), SizeIs(1)) << "30 minutes: partition 1 is idle, W = 10:26";
  EXPECT_EQ(engine_->watermark(), At(10, 26));
  // Partition 1 wakes up with old records: merged if not late, but it does not hold W back.
  EXPECT_EQ(Offer(Rec(At(10, 27), 2, "IN", 1, 1)), Outcome::kMerged);
  Offer(Rec(At(10, 50), 1, "IN", 1, 0));
  Close();
  EXPECT_EQ(engine_->watermark(), At(10, 45)) << "unaligned partition 1 does not count";
  Offer(Rec(At(10, 52), 2, "IN", 1, 1));  // M_1 − grace = 10:47 ≥ W: aligned again
  Offer(Rec(At(11, 30), 1, "IN", 1, 0));
  Close();
  EXPECT_EQ(engine_->watermark(), At(10, 47)) << "partition 1 counts again and holds W";
}

TEST_F(EngineTest, WhenEveryPartitionIsIdleTheIdleCloseMovesW) {
  Init({View("q", WindowSize::kQuarterHour, {}, {"count"})}, {0, 1});
  Offer(Rec(At(11, 50), 1, "IN", 1, 0));
  Offer(Rec(At(11, 40), 1, "IN", 1, 1));
  Close();
  EXPECT_EQ(engine_->watermark(), At(11, 35));
  now_ += absl::Minutes(30);  // 12:30, everything idle
  engine_->Evaluate(now_);
  auto advance = engine_->Evaluate(now_ + absl::Seconds(1));
  ASSERT_TRUE(advance.has_value());
  EXPECT_EQ(advance->cause, CloseCause::kIdle);
  EXPECT_EQ(advance->watermark, now_ + absl::Seconds(1) - absl::Minutes(30));
  EXPECT_THAT(engine_->TakeClosed(), SizeIs(2));
}

TEST_F(EngineTest, EmptyWindowsEmitNothing) {
  Init({View("q", WindowSize::kQuarterHour, {}, {"count"})});
  Offer(Rec(At(9, 0)));
  Offer(Rec(At(11, 50)));
  std::vector<ClosedCell> closed = Close();
  ASSERT_THAT(closed, SizeIs(1)) << "the seven quarters between have no cell";
  EXPECT_EQ(closed[0].cell.window.start, At(9, 0));
}

TEST_F(EngineTest, DayWindowsFollowAmsterdamDaysAcrossDstChanges) {
  now_ = absl::FromCivil(absl::CivilSecond(2025, 3, 31, 1, 0, 0), absl::UTCTimeZone());
  Init({View("d", WindowSize::kDay, {}, {"count"})});
  // 2025-03-30 00:30 local (CET, UTC+1) and 23:30 local (CEST, UTC+2): one 23-hour day.
  Offer(Rec(absl::FromCivil(absl::CivilSecond(2025, 3, 29, 23, 30, 0), absl::UTCTimeZone())));
  Offer(Rec(absl::FromCivil(absl::CivilSecond(2025, 3, 30, 21, 30, 0), absl::UTCTimeZone())));
  Offer(Rec(absl::FromCivil(absl::CivilSecond(2025, 3, 31, 0, 55, 0), absl::UTCTimeZone())));
  std::vector<ClosedCell> closed = Close();
  ASSERT_THAT(closed, SizeIs(1));
  EXPECT_EQ(closed[0].cell.window.length(), absl::Hours(23));
  EXPECT_EQ(closed[0].cell.units.at(1).records, 2);
}

TEST_F(EngineTest, IntervalEndTimesCountInTheIntervalTheyEnd) {
  Init({View("q", WindowSize::kQuarterHour, {}, {"count"})}, {0}, /*ends_interval=*/true);
  Offer(Rec(At(10, 15), 1));  // the count of 10:00–10:15
  Offer(Rec(At(10, 15, 1), 2));
  Offer(Rec(At(10, 40)));
  std::vector<ClosedCell> closed = Close();
  ASSERT_THAT(closed, SizeIs(2));
  EXPECT_EQ(closed[0].cell.window.start, At(10, 0));
  EXPECT_TRUE(closed[0].cell.units.count(1));
  EXPECT_TRUE(closed[1].cell.units.count(2));
}

TEST_F(EngineTest, AnIntervalEndDoesNotCloseItsWindowBeforeItsPeersOfTheSameInstant) {
  Init({View("q", WindowSize::kQuarterHour, {}, {"count"})}, {0}, /*ends_interval=*/true);
  layout_.spec.grace = absl::ZeroDuration();
  Offer(Rec(At(10, 15), 1));  // the count of 10:00–10:15 from one sensor
  EXPECT_THAT(Close(), IsEmpty()) << "W = 10:14:59.999: the quarter is still open";
  EXPECT_EQ(Offer(Rec(At(10, 15), 2)), Outcome::kMerged) << "another sensor, same instant";
  Offer(Rec(At(10, 15, 1), 3));  // the next interval's first instant
  std::vector<ClosedCell> closed = Close();
  ASSERT_THAT(closed, SizeIs(1));
  EXPECT_EQ(closed[0].cell.units.size(), 2u);
}

TEST_F(EngineTest, DirtyCellsAreWhatChangedSinceTheLastCall) {
  Init({View("q", WindowSize::kQuarterHour, {"direction"}, {"count"})});
  Offer(Rec(At(10, 0), 1, "IN"));
  Offer(Rec(At(10, 1), 1, "OUT"));
  std::vector<CellId> dirty = engine_->TakeDirty();
  ASSERT_THAT(dirty, SizeIs(2));
  EXPECT_THAT(engine_->TakeDirty(), IsEmpty());
  Offer(Rec(At(10, 30), 1, "IN"));
  Close();
  dirty = engine_->TakeDirty();
  EXPECT_THAT(dirty, SizeIs(3)) << "the new cell and the two closed ones";
}

TEST_F(EngineTest, RestoreRebasesClocksAndKeepsCells) {
  Init({View("q", WindowSize::kQuarterHour, {}, {"count"})});
  Offer(Rec(At(10, 0), 1));
  Offer(Rec(At(10, 16), 2));
  Close();
  Engine restored(&layout_, &*clock_, {0}, now_);
  restored.Restore(engine_->watermark(), engine_->clocks(), engine_->positions(),
                   engine_->open_cells(), now_ + absl::Hours(1));
  EXPECT_EQ(restored.watermark(), engine_->watermark());
  EXPECT_EQ(restored.clocks().at(0).last_seen, now_ + absl::Hours(1));
  EXPECT_EQ(restored.positions().at(0), 2);
  EXPECT_EQ(restored.open_cells().size(), engine_->open_cells().size());
  EXPECT_THAT(restored.TakeDirty(), IsEmpty());
  EXPECT_EQ(GroupKey({"a", "b"}, {"1", "2"}), "a=1/b=2");
  EXPECT_THAT(engine_->TakeClosed(), ElementsAre());
}

}  // namespace
}  // namespace views
}  // namespace polder
