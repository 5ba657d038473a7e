#include "common/views/gate.h"

#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <random>

#include "absl/time/civil_time.h"
#include "common/status/status_matchers.h"
#include "common/views/lp.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace views {
namespace {

absl::Time At(int h, int m) {
  return absl::FromCivil(absl::CivilSecond(2026, 12, 3, h, m, 0), absl::UTCTimeZone());
}

ViewSpec View(const std::string& id, WindowSize size, std::vector<std::string> dims,
              const std::string& measure = "count") {
  ViewSpec v;
  v.id = id;
  v.window = size;
  for (const auto& d : dims) v.group_by.push_back(*ParseDimension(d));
  v.measures.push_back(*ParseMeasure(measure));
  return v;
}

TEST(CoarsenGridCodeTest, FloorsToTheCoarserCell) {
  EXPECT_EQ(CoarsenGridCode("E1553N4637", 500), "E1550N4635");
  EXPECT_EQ(CoarsenGridCode("E1553N4637", 1000), "E1550N4630");
  EXPECT_EQ(CoarsenGridCode("E1555N4635", 1000), "E1550N4630");
  EXPECT_EQ(CoarsenGridCode("E1553N4637", 100), "E1553N4637");
  EXPECT_EQ(CoarsenGridCode("unknown", 500), "unknown");
}

class GateTest : public ::testing::Test {
 protected:
  void Init(std::vector<ViewSpec> views, DataClass data_class = DataClass::kAggregated) {
    ASSERT_OK(clock_.status());
    ASSERT_OK(table_.status());
    ViewSetSpec spec;
    spec.dataset = "mobility.bike-counts";
    spec.views = std::move(views);
    layout_ = SetLayout::Of(spec, false);
    guard_ = spec.guard;
    gate_ = std::make_unique<Gate>(&layout_, &*clock_, spec.guard, data_class, &*table_);
  }

  // A closed cell with one unit per entry of `counts` (AGGREGATED: sensors and their counts).
  ClosedCell Closed(int view, absl::Time start, const std::string& direction,
                    std::vector<int64_t> counts) {
    ClosedCell c;
    const ViewSpec& v = layout_.spec.views[view];
    c.cell.window = clock_->WindowOf(v.window, start);
    std::vector<std::string> names;
    for (const Dimension& d : v.group_by) {
      names.push_back(d.Name());
      c.cell.group.push_back(direction);
    }
    c.id = CellId{view, c.cell.window.start, GroupKey(names, c.cell.group)};
    uint64_t unit = 1;
    for (int64_t n : counts) {
      UnitStats u;
      u.records = 1;
      u.count = n;
      c.cell.units[unit++] = u;
    }
    return c;
  }
  // The guard's verdict, written by hand: a protection, or the cell-key value `ckm`.
  static PublishedCell Published(const ClosedCell& c, Protection protection,
                                 std::optional<int64_t> ckm = std::nullopt) {
    PublishedCell p;
    p.id = c.id;
    p.window = c.cell.window;
    PublishedMeasure m;
    m.name = "count";
    m.protection = protection;
    if (ckm) {
      m.value = static_cast<double>(*ckm);
      m.perturbed = true;
    }
    p.measures.push_back(m);
    return p;
  }

  absl::StatusOr<WindowClock> clock_ = WindowClock::Amsterdam();
  absl::StatusOr<PTable> table_ = PTable::Build(PTableParams{});
  SetLayout layout_;
  GuardSpec guard_;
  std::unique_ptr<Gate> gate_;
};

// The differencing attack the gate exists for: three quarters published at 16 (true 10 each,
// so each is 10 … 22), the fourth THRESHOLD (true 2), and the hour's cell-key value 26 (true 32,
// so 20 … 32): the fourth quarter = hour − the three ≤ 32 − 30 = 2 — the attacker learns it is
// 1 or 2. The gate moves the hour to the nearest value of its row that keeps [1, 4]: 28.
TEST_F(GateTest, MovesAPublishedTotalThatWouldNarrowAThresholdCell) {
  Init({View("q", WindowSize::kQuarterHour, {"direction"}),
        View("h", WindowSize::kHour, {"direction"})});
  std::vector<ClosedCell> quarters;
  std::vector<PublishedCell> published;
  for (int m : {0, 15, 30}) {
    quarters.push_back(Closed(0, At(10, m), "IN", {4, 3, 3}));
    published.push_back(Published(quarters.back(), Protection::kNone, 16));
  }
  quarters.push_back(Closed(0, At(10, 45), "IN", {1, 1}));
  published.push_back(Published(quarters.back(), Protection::kThreshold));
  ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(quarters, &published));
  EXPECT_EQ(r.moves, 0) << "no hour yet: nothing relates the quarters";
  EXPECT_EQ(r.c2_violations, 0);
  EXPECT_EQ(*published[0].measures[0].value, 16);

  std::vector<ClosedCell> hour{Closed(1, At(10, 0), "IN", {12, 10, 10})};
  std::vector<PublishedCell> hour_out{Published(hour[0], Protection::kNone, 26)};
  ASSERT_OK_AND_ASSIGN(r, gate_->Apply(hour, &hour_out));
  EXPECT_EQ(r.moves, 1);
  EXPECT_EQ(r.fallbacks, 0);
  EXPECT_EQ(r.c2_violations, 0);
  ASSERT_TRUE(hour_out[0].measures[0].value.has_value());
  EXPECT_EQ(*hour_out[0].measures[0].value, 28);
  EXPECT_TRUE(table_->CanPublish(32, 28)) << "a move stays within the true count's row";

  // The attacker's own LP over what was published now leaves the fourth quarter [1, 4].
  LinearProgram lp;
  const int h = lp.AddVariable(std::max<int64_t>(table_->Existence(28).first, 5),
                               table_->Existence(28).second);
  std::vector<std::pair<int, double>> row{{h, 1}};
  for (int i = 0; i < 3; ++i) {
    row.push_back({lp.AddVariable(std::max<int64_t>(table_->Existence(16).first, 5),
                                  table_->Existence(16).second),
                   -1});
  }
  const int hidden = lp.AddVariable(1, 4);
  row.push_back({hidden, -1});
  lp.AddRow(row, 0, 0);
  ASSERT_OK_AND_ASSIGN(LinearProgram::Range range, lp.Bound(hidden));
  EXPECT_LE(range.lo, 1);
  EXPECT_GE(range.hi, 4);
}

// Entities views (ADR 0018 §6) of AGGREGATED data count sensors, not bicycles: they relate to
// each other as distinct units (the hour lies between its quarters' maximum and their sum) and
// not at all to the count views.
TEST_F(GateTest, EntitiesViewsRelateOnlyToEntitiesAsDistinctUnits) {
  Init({View("qe", WindowSize::kQuarterHour, {"direction"}, "entities"),
        View("h", WindowSize::kHour, {"direction"}),
        View("he", WindowSize::kHour, {"direction"}, "entities")});
  const Guard guard(guard_, DataClass::kAggregated, &*table_);
  // One quarter with two sensors (THRESHOLD), alone in its hour: an hour of entities equals it.
  std::vector<ClosedCell> quarter{Closed(0, At(10, 45), "IN", {1, 1})};
  std::vector<PublishedCell> quarter_out{guard.Apply(layout_, quarter[0])};
  ASSERT_EQ(quarter_out[0].measures[0].protection, Protection::kThreshold);
  ASSERT_OK(gate_->Apply(quarter, &quarter_out).status());
  // The count hour (eight bicycles) says nothing about how many sensors: published as it is.
  std::vector<ClosedCell> count_hour{Closed(1, At(10, 0), "IN", std::vector<int64_t>(8, 1))};
  std::vector<PublishedCell> count_out{guard.Apply(layout_, count_hour[0])};
  ASSERT_EQ(count_out[0].measures[0].protection, Protection::kNone);
  const double value = *count_out[0].measures[0].value;
  ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(count_hour, &count_out));
  EXPECT_EQ(r.fallbacks + r.moves, 0);
  EXPECT_EQ(*count_out[0].measures[0].value, value);
  // The entities hour would show the quarter's sensors (≥ k when published, and 8's row has no
  // 0): withheld.
  std::vector<ClosedCell> entities_hour{Closed(2, At(10, 0), "IN", std::vector<int64_t>(8, 1))};
  std::vector<PublishedCell> entities_out{guard.Apply(layout_, entities_hour[0])};
  ASSERT_EQ(entities_out[0].measures[0].protection, Protection::kNone);
  ASSERT_OK_AND_ASSIGN(r, gate_->Apply(entities_hour, &entities_out));
  EXPECT_EQ(r.fallbacks, 1);
  EXPECT_EQ(entities_out[0].measures[0].protection, Protection::kGate);
  EXPECT_FALSE(entities_out[0].measures[0].value.has_value());
  EXPECT_EQ(r.c2_violations, 0);
}

// The first test's numbers as sensors: the hour is no sum of its quarters (a sensor reports in
// several), so 26 leaves the fourth quarter as open as before and stays — as a count it moved.
TEST_F(GateTest, EntitiesHoursAreNotSumsOfTheirQuarters) {
  Init({View("qe", WindowSize::kQuarterHour, {"direction"}, "entities"),
        View("he", WindowSize::kHour, {"direction"}, "entities")});
  std::vector<ClosedCell> quarters;
  std::vector<PublishedCell> published;
  for (int m : {0, 15, 30}) {
    quarters.push_back(Closed(0, At(10, m), "IN", std::vector<int64_t>(10, 1)));
    published.push_back(Published(quarters.back(), Protection::kNone, 16));
  }
  quarters.push_back(Closed(0, At(10, 45), "IN", {1, 1}));
  published.push_back(Published(quarters.back(), Protection::kThreshold));
  ASSERT_OK(gate_->Apply(quarters, &published).status());
  std::vector<ClosedCell> hour{Closed(1, At(10, 0), "IN", std::vector<int64_t>(32, 1))};
  std::vector<PublishedCell> hour_out{Published(hour[0], Protection::kNone, 26)};
  ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(hour, &hour_out));
  EXPECT_EQ(r.moves, 0);
  EXPECT_EQ(r.fallbacks, 0);
  EXPECT_EQ(r.c2_violations, 0);
  EXPECT_EQ(*hour_out[0].measures[0].value, 26);
}

TEST_F(GateTest, LeavesTheCellKeyValueWhenNothingIsNarrowed) {
  Init({View("q", WindowSize::kQuarterHour, {"direction"}),
        View("h", WindowSize::kHour, {"direction"})});
  std::vector<ClosedCell> cells;
  std::vector<PublishedCell> published;
  for (int m : {0, 15, 30}) {
    cells.push_back(Closed(0, At(10, m), "IN", {4, 3, 3}));
    published.push_back(Published(cells.back(), Protection::kNone, 16));
  }
  cells.push_back(Closed(0, At(10, 45), "IN", {1, 1}));
  published.push_back(Published(cells.back(), Protection::kThreshold));
  cells.push_back(Closed(1, At(10, 0), "IN", {12, 10, 10}));
  published.push_back(Published(cells.back(), Protection::kNone, 32));
  // Engine order: by view, then window start.
  ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(cells, &published));
  EXPECT_EQ(r.moves, 0);
  EXPECT_EQ(*published[4].measures[0].value, 32);
  EXPECT_EQ(r.c2_violations, 0);
  EXPECT_EQ(r.lps, 0) << "one total and its parts: the interval in closed form, no LP";
}

// Labels alone can disclose: an hour of 4 labelled THRESHOLD over four THRESHOLD quarters would
// tell that each quarter is 1 (each ≥ 1, together ≤ 4). The label gate publishes the hour as
// SECONDARY instead (no upper bound): each quarter is then 1 … 4 again, and the hour, at least 4,
// is not shown to be small.
// A THRESHOLD total over four THRESHOLD parts: when labels stated k − 1, the total's label
// told each part was at most 3 and the gate relabelled the total SECONDARY. Every withheld cell
// now carries one label that bounds nothing, so there is nothing to relabel.
TEST_F(GateTest, AThresholdTotalOverThresholdPartsNarrowsNothing) {
  Init({View("q", WindowSize::kQuarterHour, {"direction"}),
        View("h", WindowSize::kHour, {"direction"})});
  std::vector<ClosedCell> cells;
  std::vector<PublishedCell> published;
  for (int m : {0, 15, 30, 45}) {
    cells.push_back(Closed(0, At(10, m), "IN", {1}));
    published.push_back(Published(cells.back(), Protection::kThreshold));
  }
  cells.push_back(Closed(1, At(10, 0), "IN", {1, 1, 1, 1}));
  published.push_back(Published(cells.back(), Protection::kThreshold));
  ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(cells, &published));
  EXPECT_EQ(r.relabelled, 0);
  EXPECT_EQ(r.c2_violations, 0);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(published[i].measures[0].protection, Protection::kThreshold) << i;
    EXPECT_FALSE(published[i].measures[0].value.has_value()) << i;
  }
}

// One THRESHOLD part under a THRESHOLD total narrows nothing: the total is 1 … 4 and so is the
// part (the others are published 0, each 0 … 6).
TEST_F(GateTest, KeepsAThresholdTotalOverOneThresholdPart) {
  Init({View("q", WindowSize::kQuarterHour, {"direction"}),
        View("h", WindowSize::kHour, {"direction"})});
  std::vector<ClosedCell> cells{Closed(0, At(10, 0), "IN", {3}), Closed(0, At(10, 15), "IN", {0})};
  std::vector<PublishedCell> published{Published(cells[0], Protection::kThreshold),
                                       Published(cells[1], Protection::kNone, 0)};
  cells.push_back(Closed(1, At(10, 0), "IN", {3, 0}));
  published.push_back(Published(cells.back(), Protection::kThreshold));
  ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(cells, &published));
  EXPECT_EQ(r.relabelled, 0);
  EXPECT_EQ(r.c2_violations, 0);
  EXPECT_EQ(published[2].measures[0].protection, Protection::kThreshold);
}

// C3: a quarter dominated by one counter (100 bikes, UPL = 17.65) beside a published quarter;
// an hour published within ±6 would bound it to ±12: the hour is protected (SECONDARY).
TEST_F(GateTest, ProtectsTheParentOfADominatedCellThatWouldBeBoundedTooClosely) {
  Init({View("q", WindowSize::kQuarterHour, {"direction"}),
        View("h", WindowSize::kHour, {"direction"})});
  std::vector<ClosedCell> cells{Closed(0, At(10, 0), "IN", {100}),
                                Closed(0, At(10, 15), "IN", {10, 10, 10, 10, 10}),
                                Closed(1, At(10, 0), "IN", {100, 10, 10, 10, 10, 10})};
  std::vector<PublishedCell> published{Published(cells[0], Protection::kDominance),
                                       Published(cells[1], Protection::kNone, 50),
                                       Published(cells[2], Protection::kNone, 150)};
  ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(cells, &published));
  EXPECT_EQ(r.secondary, 1);
  EXPECT_EQ(r.c3_violations, 0);
  EXPECT_FALSE(published[2].measures[0].value.has_value());
  EXPECT_EQ(published[2].measures[0].protection, Protection::kSecondary);
  EXPECT_EQ(*published[1].measures[0].value, 50) << "the sibling stays published";
}

TEST_F(GateTest, ADominatedCellWithNothingToProtectIsCounted) {
  Init({View("q", WindowSize::kQuarterHour, {"direction"}),
        View("h", WindowSize::kHour, {"direction"})});
  // The hour closes first (it is not related until its quarters exist), then the dominated
  // quarter alone cannot be repaired: its parent was published in an earlier close.
  std::vector<ClosedCell> hour{Closed(1, At(10, 0), "IN", {100, 10, 10, 10, 10, 10})};
  std::vector<PublishedCell> hour_out{Published(hour[0], Protection::kNone, 150)};
  ASSERT_OK(gate_->Apply(hour, &hour_out).status());
  std::vector<ClosedCell> quarters{Closed(0, At(10, 0), "IN", {100}),
                                   Closed(0, At(10, 15), "IN", {10, 10, 10, 10, 10})};
  std::vector<PublishedCell> out{Published(quarters[0], Protection::kDominance),
                                 Published(quarters[1], Protection::kNone, 50)};
  ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(quarters, &out));
  EXPECT_EQ(r.c3_violations, 1);
}

TEST_F(GateTest, ViewsRelateOnlyWhereBothCoveredTheWindow) {
  Init({View("q", WindowSize::kQuarterHour, {"direction"}),
        View("h", WindowSize::kHour, {"direction"})});
  gate_->SetCoverage(0, At(10, 5));  // the quarter view joined at 10:05
  std::vector<ClosedCell> cells;
  std::vector<PublishedCell> published;
  for (int m : {0, 15, 30}) {
    cells.push_back(Closed(0, At(10, m), "IN", {4, 3, 3}));
    published.push_back(Published(cells.back(), Protection::kNone, 16));
  }
  cells.push_back(Closed(0, At(10, 45), "IN", {1, 1}));
  published.push_back(Published(cells.back(), Protection::kThreshold));
  cells.push_back(Closed(1, At(10, 0), "IN", {12, 10, 10}));
  published.push_back(Published(cells.back(), Protection::kNone, 26));
  ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(cells, &published));
  EXPECT_EQ(r.moves, 0) << "the 10:00 hour is not the sum of quarters seen from 10:05 only";
  EXPECT_EQ(*published[4].measures[0].value, 26);
}

TEST_F(GateTest, GridCellsNestInCoarserGridCells) {
  Init({View("fine", WindowSize::kQuarterHour, {"grid:100m"}),
        View("coarse", WindowSize::kQuarterHour, {"grid:500m"})});
  std::vector<ClosedCell> cells;
  std::vector<PublishedCell> published;
  // Coarse view first (view 1 sorts after view 0 in the engine's order, so add fine first).
  for (const char* code : {"E1550N4630", "E1551N4630", "E1552N4630"}) {
    cells.push_back(Closed(0, At(10, 0), code, {4, 3, 3}));
    published.push_back(Published(cells.back(), Protection::kNone, 16));
  }
  cells.push_back(Closed(0, At(10, 0), "E1553N4631", {1, 1}));
  published.push_back(Published(cells.back(), Protection::kThreshold));
  cells.push_back(Closed(1, At(10, 0), "E1550N4630", {12, 10, 10}));
  published.push_back(Published(cells.back(), Protection::kNone, 26));
  ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(cells, &published));
  EXPECT_EQ(r.moves, 1);
  EXPECT_EQ(*published[4].measures[0].value, 28);
}

// The map: a municipality holds the grid cells inside it. Three cells of GM0014 published at
// 16 (true 10 each) and a fourth THRESHOLD (true 2) inside it: the municipality's cell-key value
// 26 (true 32) would show the fourth to be 1 or 2, exactly as a coarser grid cell would — once
// the records showed which cells lie in GM0014 (Note). Without that knowledge the two views are
// unrelated.
class GateMapTest : public GateTest {
 protected:
  void SetUp() override {
    Init({View("grid", WindowSize::kQuarterHour, {"grid:100m"}),
          View("mun", WindowSize::kQuarterHour, {"municipality"})});
  }
  // A record of grid cell `code` in municipality `municipality` at 10:05.
  Fact Record(const std::string& code, const std::string& municipality) {
    Fact f;
    f.event_time = At(10, 5);
    for (const std::string& d : layout_.dimensions) {
      f.dimensions.push_back(d == "municipality" ? municipality : code);
    }
    return f;
  }
  // The records showed the quarter's four grid cells in GM0014 and `in_gm1966` in GM1966.
  void NoteMap(const std::string& in_gm1966) {
    for (const char* code : {"E1550N4630", "E1551N4630", "E1552N4630", "E1553N4631"}) {
      gate_->Note(Record(code, "GM0014"));
    }
    gate_->Note(Record(in_gm1966, "GM1966"));
  }
  // Decides the quarter's cells (in CellId order: the THRESHOLD grid cell is published[3],
  // GM0014 published[4]).
  absl::StatusOr<Gate::Report> DecideQuarter(std::vector<PublishedCell>* published) {
    std::vector<ClosedCell> cells;
    for (const char* code : {"E1550N4630", "E1551N4630", "E1552N4630"}) {
      cells.push_back(Closed(0, At(10, 0), code, {4, 3, 3}));
      published->push_back(Published(cells.back(), Protection::kNone, 16));
    }
    cells.push_back(Closed(0, At(10, 0), "E1553N4631", {1, 1}));
    published->push_back(Published(cells.back(), Protection::kThreshold));
    cells.push_back(Closed(1, At(10, 0), "GM0014", {12, 10, 10}));
    published->push_back(Published(cells.back(), Protection::kNone, 26));
    cells.push_back(Closed(1, At(10, 0), "GM1966", {1, 1}));
    published->push_back(Published(cells.back(), Protection::kThreshold));
    return gate_->Apply(cells, published);
  }
};

TEST_F(GateMapTest, AMunicipalityHoldsTheGridCellsInsideIt) {
  ASSERT_TRUE(gate_->uses_map());
  NoteMap("E1554N4631");
  std::vector<PublishedCell> published;
  ASSERT_OK_AND_ASSIGN(Gate::Report r, DecideQuarter(&published));
  EXPECT_EQ(r.moves, 1);
  EXPECT_EQ(r.c2_violations, 0);
  ASSERT_TRUE(published[4].measures[0].value.has_value());
  EXPECT_EQ(*published[4].measures[0].value, 28);
}

TEST_F(GateMapTest, WithoutThePairsTheViewsAreUnrelated) {
  std::vector<PublishedCell> published;
  ASSERT_OK_AND_ASSIGN(Gate::Report r, DecideQuarter(&published));
  EXPECT_EQ(r.moves, 0);
  EXPECT_EQ(*published[4].measures[0].value, 26);
}

// A cell on the border (records in GM0014 and in GM1966, which is THRESHOLD) is split between
// them: GM0014's total bounds only its share, and the THRESHOLD cell stays [1, 4] unmoved.
TEST_F(GateMapTest, ABorderCellIsSplitBetweenItsMunicipalities) {
  NoteMap("E1553N4631");
  std::vector<PublishedCell> published;
  ASSERT_OK_AND_ASSIGN(Gate::Report r, DecideQuarter(&published));
  EXPECT_EQ(r.moves, 0);
  EXPECT_EQ(r.c2_violations, 0);
  EXPECT_EQ(*published[4].measures[0].value, 26);
}

TEST_F(GateMapTest, PairsAreTakenOnceRestoredAndForgottenWithTheirDay) {
  gate_->Note(Record("E1550N4630", "GM0014"));
  gate_->Note(Record("E1550N4630", "GM0014"));
  gate_->Note(Record("E1551N4630", "GM0014"));
  std::vector<MapPair> pairs = gate_->TakeNewPairs();
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].grid, "grid:100m");
  EXPECT_EQ(pairs[0].code, "E1550N4630");
  EXPECT_EQ(pairs[0].municipality, "GM0014");
  EXPECT_THAT(gate_->TakeNewPairs(), ::testing::IsEmpty());

  // A restarted gate restores them (not new) and decides as the first one would.
  Init(layout_.spec.views);
  for (const MapPair& p : pairs) gate_->RestorePair(p);
  EXPECT_THAT(gate_->TakeNewPairs(), ::testing::IsEmpty());
  gate_->Note(Record("E1551N4630", "GM0014"));
  EXPECT_THAT(gate_->TakeNewPairs(), ::testing::IsEmpty()) << "known from the restore";

  std::vector<MapPair> gone;
  gate_->Forget(At(20, 0), &gone);
  EXPECT_THAT(gone, ::testing::IsEmpty()) << "the Amsterdam day is open";
  gate_->Forget(At(23, 0), &gone);  // 2026-12-03 in Amsterdam ends at 23:00 UTC
  EXPECT_THAT(gone, ::testing::SizeIs(2));
}

TEST_F(GateTest, NoneClassIsNotGated) {
  Init({View("q", WindowSize::kQuarterHour, {"direction"})}, DataClass::kNone);
  EXPECT_FALSE(gate_->enabled());
  std::vector<ClosedCell> cells{Closed(0, At(10, 0), "IN", {1})};
  std::vector<PublishedCell> published{Published(cells[0], Protection::kNone, 1)};
  ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(cells, &published));
  EXPECT_EQ(r.lps, 0);
  EXPECT_EQ(gate_->size(), 0u);
}

TEST_F(GateTest, ForgetsDaysThatEnded) {
  Init({View("q", WindowSize::kQuarterHour, {"direction"})});
  std::vector<ClosedCell> cells{Closed(0, At(10, 0), "IN", {10})};
  std::vector<PublishedCell> published{Published(cells[0], Protection::kNone, 10)};
  ASSERT_OK(gate_->Apply(cells, &published).status());
  EXPECT_EQ(gate_->size(), 1u);
  EXPECT_THAT(gate_->Forget(At(20, 0)), ::testing::IsEmpty()) << "the Amsterdam day is open";
  // 2026-12-03 in Amsterdam ends at 23:00 UTC.
  EXPECT_THAT(gate_->Forget(At(23, 0)), ::testing::SizeIs(1));
  EXPECT_EQ(gate_->size(), 0u);
}

// A municipality with two counters that count 0-2 bicycles a quarter, over 3,000 random
// hours: the quarters are THRESHOLD or 0, the hour DOMINANCE or THRESHOLD. When a THRESHOLD
// label stated k − 1, a dominated hour over THRESHOLD quarters was bounded by their labels
// (each ≤ k − 1) beyond repair (6 of these 3,000 hours). With one label for every withheld cell
// the quarters bound the hour only through published values: the gate keeps C2 and C3 in every
// hour, and counts a C3 case exactly when the published parts' Σ bounds would break it.
TEST_F(GateTest, SparseHoursKeepC2AndC3) {
  Init({View("q", WindowSize::kQuarterHour, {"direction"}),
        View("h", WindowSize::kHour, {"direction"})});
  const Guard guard(guard_, DataClass::kAggregated, &*table_);
  int64_t expected = 0, counted = 0;
  for (uint64_t seed = 0; seed < 3000; ++seed) {
    Init({View("q", WindowSize::kQuarterHour, {"direction"}),
          View("h", WindowSize::kHour, {"direction"})});
    std::mt19937_64 rng(seed);
    ClosedCell hour = Closed(1, At(10, 0), "IN", {});
    double lo = 0, hi = 0;  // the quarters' Σ bounds, as the labels and values give them
    for (int q = 0; q < 4; ++q) {
      ClosedCell c = Closed(0, At(10, 15 * q), "IN", {});
      for (uint64_t u = 1; u <= 2; ++u) {
        const uint64_t key = u * 0x9E3779B97F4A7C15ULL + seed;
        UnitStats s;
        s.records = 1;
        s.count = static_cast<int64_t>(rng() % 3);
        c.cell.units[key] = s;
        hour.cell.units[key].records += 1;
        hour.cell.units[key].count += s.count;
      }
      std::vector<ClosedCell> closed{c};
      std::vector<PublishedCell> out{guard.Apply(layout_, c)};
      ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(closed, &out));
      EXPECT_EQ(r.c2_violations + r.c3_violations, 0) << "seed " << seed;
      const PublishedMeasure& m = out[0].measures[0];
      if (m.value.has_value()) {
        const auto [elo, ehi] = table_->Existence(static_cast<int64_t>(*m.value));
        lo += *m.value > 0 ? std::max<int64_t>(elo, guard_.k) : elo;
        hi += ehi;
      } else {
        hi = std::numeric_limits<double>::infinity();
      }
    }
    std::vector<ClosedCell> closed{hour};
    std::vector<PublishedCell> out{guard.Apply(layout_, hour)};
    ASSERT_OK_AND_ASSIGN(Gate::Report r, gate_->Apply(closed, &out));
    EXPECT_EQ(r.c2_violations, 0) << "seed " << seed;
    counted += r.c3_violations;
    if (out[0].measures[0].protection == Protection::kDominance) {
      std::vector<double> x;
      for (const auto& [key, u] : hour.cell.units) x.push_back(static_cast<double>(u.count));
      const double upl = UpperProtectionLevel(x, guard_.p);
      const double n =
          static_cast<double>(guard.Frequency(layout_.spec.views[hour.id.view], hour.cell));
      const bool fails = upl > 0 && (hi < n + upl - 1e-6 || lo > n - upl + 1e-6);
      EXPECT_EQ(r.c3_violations, fails ? 1 : 0)
          << "seed " << seed << ": X " << n << ", UPL " << upl << ", parts " << lo << " … " << hi;
      expected += fails ? 1 : 0;
    }
  }
  EXPECT_EQ(counted, expected);
  EXPECT_EQ(counted, 0) << "no dominated hour is bounded by its parts any more";
}

}  // namespace
}  // namespace views
}  // namespace polder
