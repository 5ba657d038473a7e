#include "common/views/changelog.h"

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace views {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

absl::Time At(int h, int m) {
  return absl::FromCivil(absl::CivilMinute(2026, 12, 3, h, m), absl::UTCTimeZone());
}

SetLayout Layout() {
  ViewSetSpec spec;
  spec.dataset = "parking.occupancy";
  ViewSpec q;
  q.id = "quarter";
  q.group_by = {*ParseDimension("status")};
  q.measures = {*ParseMeasure("count"), *ParseMeasure("mean:occupancy_percent")};
  spec.views.push_back(q);
  ViewSpec d = q;
  d.id = "day";
  d.window = WindowSize::kDay;
  spec.views.push_back(d);
  return SetLayout::Of(spec, false);
}

Fact Rec(int32_t p, int64_t offset, absl::Time t, uint64_t unit, std::optional<double> x) {
  Fact f;
  f.partition = p;
  f.offset = offset;
  f.event_time = t;
  f.unit_key = unit;
  f.dimensions = {"STATUS_OPEN"};
  f.fields = {x};
  return f;
}

TEST(ChangelogTest, EngineStateRoundTripsThroughTheChangelog) {
  const SetLayout layout = Layout();
  auto clock = WindowClock::Amsterdam();
  ASSERT_OK(clock.status());
  const absl::Time now = At(12, 0);
  Engine engine(&layout, &*clock, {0, 1}, now);
  engine.Offer(Rec(0, 0, At(10, 1), 5, 12.5), now);
  engine.Offer(Rec(0, 1, At(10, 25), 7, std::nullopt), now);
  engine.Offer(Rec(1, 0, At(10, 20), 0xFFFFFFFFFFFFFFF0ULL, 81.25), now);  // beyond 2⁵³: exact
  engine.Evaluate(now);  // W = 10:15: the 10:00 quarter closes
  std::vector<ClosedCell> closed = engine.TakeClosed();
  ASSERT_EQ(closed.size(), 1u);

  RestoredViews restored;
  for (const CellId& id : engine.TakeDirty()) {
    auto it = engine.open_cells().find(id);
    const ChangelogEntry e =
        EncodeCell(layout, id, it == engine.open_cells().end() ? nullptr : &it->second);
    ASSERT_OK(restored.Apply(layout, e.key, e.value)) << e.key;
  }
  const ChangelogEntry progress = EncodeProgress(engine);
  ASSERT_OK(restored.Apply(layout, progress.key, progress.value));
  ASSERT_TRUE(restored.has_progress);
  EXPECT_EQ(restored.watermark, At(10, 15));
  EXPECT_EQ(restored.positions.at(0), 2);
  EXPECT_EQ(restored.positions.at(1), 1);
  EXPECT_EQ(restored.clocks.at(1).max_event, At(10, 20));
  ASSERT_EQ(restored.cells.size(), engine.open_cells().size()) << "the closed cell is a tombstone";

  Engine again(&layout, &*clock, {0, 1}, now);
  again.Restore(restored.watermark, restored.clocks, restored.positions, restored.cells, now);
  for (const auto& [id, cell] : engine.open_cells()) {
    const Cell& other = again.open_cells().at(id);
    EXPECT_EQ(other.window, cell.window);
    EXPECT_EQ(other.group, cell.group);
    ASSERT_EQ(other.units.size(), cell.units.size());
    for (const auto& [key, u] : cell.units) {
      const UnitStats& v = other.units.at(key);
      EXPECT_EQ(v.records, u.records);
      ASSERT_EQ(v.fields.size(), u.fields.size());
      for (size_t m = 0; m < u.fields.size(); ++m) {
        EXPECT_EQ(v.fields[m].n, u.fields[m].n);
        EXPECT_EQ(v.fields[m].sum, u.fields[m].sum);
        EXPECT_EQ(v.fields[m].min, u.fields[m].min);
        EXPECT_EQ(v.fields[m].max, u.fields[m].max);
      }
    }
  }
  EXPECT_TRUE(again.open_cells().begin()->second.units.count(0xFFFFFFFFFFFFFFF0ULL));
}

TEST(ChangelogTest, DecisionsRunsAndMetaRoundTrip) {
  const SetLayout layout = Layout();
  RestoredViews r;
  CloseDecision d;
  d.view = "quarter";
  d.window_start = At(10, 0);
  d.watermark = At(10, 16);
  d.cause = CloseCause::kIdle;
  d.positions = {{0, 12}, {1, 40}};
  d.cells = 3;
  ChangelogEntry e = EncodeClose(d);
  EXPECT_EQ(e.key, absl::StrCat("close/quarter/", absl::ToUnixMillis(At(10, 0))));
  ASSERT_OK(r.Apply(layout, e.key, e.value));
  const CloseDecision& back = r.closes.at(e.key);
  EXPECT_EQ(back.cause, CloseCause::kIdle);
  EXPECT_EQ(back.watermark, At(10, 16));
  EXPECT_EQ(back.positions, d.positions);
  EXPECT_EQ(back.cells, 3);

  RecordRun run{1, 17, 20, 4, "too_new"};
  e = EncodeRun("reject", run);
  EXPECT_EQ(e.key, "reject/1/17");
  ASSERT_OK(r.Apply(layout, e.key, e.value));
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].last_offset, 20);
  EXPECT_EQ(r.rejected[0].reason, "too_new");

  ChangelogMeta meta{"0011223344556677", "abc", {{"quarter", "h1"}, {"day", "h2"}}};
  e = EncodeMeta(meta);
  ASSERT_OK(r.Apply(layout, e.key, e.value));
  ASSERT_TRUE(r.meta.has_value());
  EXPECT_EQ(r.meta->definitions.at("day"), "h2");
}

TEST(ChangelogTest, UnreadableEntriesAreDataLossAndRemovedViewsAreNamed) {
  const SetLayout layout = Layout();
  RestoredViews r;
  EXPECT_THAT(r.Apply(layout, "progress", std::string("{not json")),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'progress'")));
  EXPECT_THAT(r.Apply(layout, "progress", std::string(R"({"w": "soon"})")),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(r.Apply(layout, "cell/quarter/x/all", std::string("{}")),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(r.Apply(layout, "cell/hour/0/all", std::string("{}")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no longer declares")));
  EXPECT_THAT(r.Apply(layout, "mystery", std::string("{}")),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("no known kind")));
}

TEST(ChangelogTest, GateEntriesAndCoverageRoundTrip) {
  const SetLayout layout = Layout();
  const CellId published{0, At(10, 0), "status=STATUS_OPEN"};
  GateEntry p;
  p.kind = GateEntry::Kind::kPublished;
  p.window = {At(10, 0), At(10, 15)};
  p.group = {"STATUS_OPEN"};
  p.published = 17;
  const CellId dominated{1, At(0, 0), "status=STATUS_OPEN/x"};
  GateEntry d;
  d.kind = GateEntry::Kind::kProtected;
  d.reason = Protection::kDominance;
  d.window = {At(0, 0), At(23, 0)};
  d.group = {"STATUS_OPEN"};
  d.truth = 120;
  d.upl = 21.18;
  GateEntry r = d;
  r.reason = Protection::kSecondary;
  r.truth = 0;
  r.upl = 0;
  r.small = true;
  const CellId relabelled{0, At(10, 15), "status=STATUS_OPEN"};

  RestoredViews restored;
  for (const auto& [id, entry] :
       std::vector<std::pair<CellId, GateEntry>>{{published, p}, {dominated, d}, {relabelled, r}}) {
    const ChangelogEntry e = EncodeGate(layout, id, &entry);
    ASSERT_OK(restored.Apply(layout, e.key, e.value));
  }
  ASSERT_EQ(restored.gate.size(), 3u);
  EXPECT_EQ(restored.gate.at(published).kind, GateEntry::Kind::kPublished);
  EXPECT_EQ(restored.gate.at(published).published, 17);
  EXPECT_EQ(restored.gate.at(published).window.end, At(10, 15));
  EXPECT_EQ(restored.gate.at(dominated).reason, Protection::kDominance);
  EXPECT_EQ(restored.gate.at(dominated).truth, 120);
  EXPECT_DOUBLE_EQ(restored.gate.at(dominated).upl, 21.18);
  EXPECT_EQ(restored.gate.at(dominated).group, std::vector<std::string>{"STATUS_OPEN"});
  EXPECT_TRUE(restored.gate.at(relabelled).small);
  EXPECT_EQ(restored.gate.at(relabelled).reason, Protection::kSecondary);
  // The published cell's entry does not carry a truth.
  EXPECT_THAT(EncodeGate(layout, published, &p).value.value(), ::testing::Not(HasSubstr("\"t\"")));

  const ChangelogEntry gone = EncodeGate(layout, published, nullptr);
  ASSERT_OK(restored.Apply(layout, gone.key, gone.value));
  EXPECT_EQ(restored.gate.count(published), 0u);

  ChangelogMeta meta;
  meta.key_fingerprint = "f";
  meta.ptable_sha256 = "h";
  meta.definitions = {{"quarter", "a"}, {"day", "b"}};
  meta.coverage = {{"day", At(9, 0)}};
  const ChangelogEntry m = EncodeMeta(meta);
  ASSERT_OK(restored.Apply(layout, m.key, m.value));
  ASSERT_TRUE(restored.meta.has_value());
  EXPECT_EQ(restored.meta->coverage.at("day"), At(9, 0));
  EXPECT_EQ(restored.meta->coverage.count("quarter"), 0u);
}

TEST(ChangelogTest, AGateEntryThatDoesNotParseIsDataLoss) {
  const SetLayout layout = Layout();
  RestoredViews restored;
  EXPECT_THAT(restored.Apply(layout, "gate/quarter/0/all", std::string("{\"k\":\"bogus\"}")),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("gate/quarter/0/all")));
  EXPECT_THAT(
      restored.Apply(layout, "gate/quarter/0/all",
                     std::string("{\"k\":\"protected\",\"r\":\"NOPE\",\"end\":1,\"g\":[]}")),
      StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(restored.Apply(layout, "gate/gone/0/all", std::string("{}")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no longer declares")));
}

// The gate's map pairs: written while their day is open, tombstoned after; a value that does
// not match its key (or does not parse) is DATA_LOSS.
TEST(ChangelogTest, MapPairsRoundTripAndAMismatchedOneIsDataLoss) {
  const SetLayout layout = Layout();
  RestoredViews restored;
  const MapPair pair{At(0, 0), "grid:100m", "E1550N4630", "GM0014"};
  const ChangelogEntry e = EncodeMapPair(pair, true);
  EXPECT_EQ(e.key,
            absl::StrCat("map/", absl::ToUnixMillis(At(0, 0)), "/grid:100m/E1550N4630/GM0014"));
  ASSERT_OK(restored.Apply(layout, e.key, e.value));
  ASSERT_EQ(restored.map_pairs.size(), 1u);
  const MapPair& back = restored.map_pairs.begin()->second;
  EXPECT_EQ(back.day, pair.day);
  EXPECT_EQ(back.grid, pair.grid);
  EXPECT_EQ(back.code, pair.code);
  EXPECT_EQ(back.municipality, pair.municipality);

  const ChangelogEntry gone = EncodeMapPair(pair, false);
  EXPECT_EQ(gone.key, e.key);
  EXPECT_FALSE(gone.value.has_value());
  ASSERT_OK(restored.Apply(layout, gone.key, gone.value));
  EXPECT_TRUE(restored.map_pairs.empty());

  EXPECT_THAT(restored.Apply(layout, "map/0/grid:100m/E1550N4630/GM0015", e.value),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("map/0/grid:100m")));
  EXPECT_THAT(restored.Apply(layout, e.key, std::string("{\"day\":\"x\"}")),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_TRUE(restored.map_pairs.empty());
}

TEST(ChangelogTest, FeedFiguresRoundTripWithheldOrNotAndAMalformedOneIsDataLoss) {
  const SetLayout layout = Layout();
  RestoredViews restored;
  FeedFigure shown{Window{At(10, 0), At(11, 0)}, 12.0, true};
  FeedFigure withheld{Window{At(0, 0), At(0, 0) + absl::Hours(24)}, std::nullopt, false};
  for (const auto& [view, f] :
       {std::pair<std::string, FeedFigure>{"entities-hour", shown}, {"entities-day", withheld}}) {
    const ChangelogEntry e = EncodeFeedFigure(view, f);
    EXPECT_EQ(e.key, "feed/" + view);
    ASSERT_OK(restored.Apply(layout, e.key, e.value));
  }
  ASSERT_EQ(restored.feed.size(), 2u);
  EXPECT_TRUE(restored.feed.at("entities-hour") == shown);
  EXPECT_TRUE(restored.feed.at("entities-day") == withheld);
  EXPECT_FALSE(restored.feed.at("entities-day").value.has_value());
  EXPECT_THAT(restored.Apply(layout, "feed/entities-hour", std::string("{\"start\":1}")),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("feed/entities-hour")));
  EXPECT_THAT(restored.Apply(layout, "feed/a/b", EncodeFeedFigure("a", shown).value),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_TRUE(restored.feed.at("entities-hour") == shown) << "a bad entry changes nothing";
}

}  // namespace
}  // namespace views
}  // namespace polder
