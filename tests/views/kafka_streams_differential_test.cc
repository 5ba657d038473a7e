// Differential test of Polder's window semantics against Kafka Streams (ADR 0016 §13).
//
// One generated file of logical events (group, value, event time, entity) is read by both
// Polder's view engine (common/views: Engine, then Guard for a PERSONAL_DATA_NONE dataset, which
// publishes exact values) and a Kafka Streams topology in TopologyTestDriver
// (tests/views/streams/StreamsWindows.java, compiled here with javac from the setup's cache,
// outside Bazel): tumbling epoch-aligned windows with a grace period, final results only
// (suppress(untilWindowCloses)), an event-time extractor, one partition. The events include
// out-of-order records within the grace period, late records beyond it, records on window
// boundaries and a last record at the last window's end + grace that closes it. Compared: every
// final (window, group) count, sum, min and max, and Polder's late records against Kafka
// Streams' dropped-records-total. One entity per event, so distinct units equal records.
//
// DST days, idle closes and late accounting across views have no Kafka Streams counterpart;
// they are checked against Polder's own recomputation oracle (common/views/engine_test.cc and
// the view job's kill tests).
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status/status_matchers.h"
#include "common/views/engine.h"
#include "common/views/guard.h"
#include "common/views/ptable.h"
#include "common/views/spec.h"
#include "common/views/window.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace views {
namespace {

struct Event {
  std::string group;
  double value = 0;
  int64_t event_ms = 0;
  uint64_t entity = 0;
};

struct Generated {
  std::vector<Event> events;
  int out_of_order_within_grace = 0;  // behind the largest event time, by less than the grace
  int behind_beyond_grace = 0;        // behind it by more: late unless their window is open
  int on_boundaries = 0;
};

// Events over about a day and a half, mostly in order, with the disorder the test is about.
Generated Generate(uint64_t seed, int64_t window_ms, int64_t grace_ms, int count) {
  std::mt19937_64 rng(seed);
  auto uniform = [&rng](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  Generated g;
  const int64_t base = absl::ToUnixMillis(absl::FromUnixSeconds(1769990400));  // 2026-02-02 UTC
  int64_t now = base;
  int64_t max_seen = base;
  for (int i = 0; i < count; ++i) {
    now += uniform(0, 8000);
    Event e;
    e.group = absl::StrCat("zone-", uniform(0, 4));
    // Values in quarters, so every sum is exact in binary floating point in any order.
    e.value = static_cast<double>(uniform(-80, 4000)) / 4;
    e.entity = static_cast<uint64_t>(i) + 1;
    const int64_t kind = uniform(0, 99);
    if (kind < 15) {
      e.event_ms = max_seen - uniform(0, grace_ms - 1);
    } else if (kind < 18) {
      e.event_ms = max_seen - uniform(grace_ms, 3 * window_ms);
    } else if (kind < 20) {
      const int64_t start = now - now % window_ms;
      e.event_ms = kind % 2 == 0 ? start : start + window_ms - 1;
      ++g.on_boundaries;
    } else {
      e.event_ms = now;
    }
    if (e.event_ms < max_seen - grace_ms) {
      ++g.behind_beyond_grace;
    } else if (e.event_ms < max_seen) {
      ++g.out_of_order_within_grace;
    }
    max_seen = std::max(max_seen, e.event_ms);
    g.events.push_back(e);
  }
  // The flush: a record at the last window's end + grace closes every window before its own.
  const int64_t last_end = max_seen - max_seen % window_ms + window_ms;
  g.events.push_back(Event{"zone-0", 1, last_end + grace_ms, static_cast<uint64_t>(count) + 1});
  return g;
}

std::string CellLine(int64_t start_ms, const std::string& group, int64_t count, double sum,
                     double min, double max) {
  return absl::StrFormat("%d\t%s\t%d\t%.6f\t%.6f\t%.6f", start_ms, group, count, sum, min, max);
}

struct Result {
  std::vector<std::string> cells;  // sorted CellLine()s
  int64_t late = 0;
};

// Polder's side: the view engine over the events in file order, the watermark evaluated after
// every record (as Kafka Streams advances stream time per record), each closed cell published
// through the guard of a PERSONAL_DATA_NONE dataset.
Result RunPolder(const Generated& g, WindowSize size, absl::Duration grace) {
  ViewSetSpec spec;
  spec.dataset = "test.differential";
  spec.grace = grace;
  // Far from the events, so nothing is rejected or closed for idleness: Kafka Streams has no
  // counterpart for either.
  spec.idle_timeout = absl::Hours(24 * 3650);
  spec.max_event_lead = absl::Hours(24 * 3650);
  spec.max_event_age = absl::Hours(24 * 3650);
  ViewSpec view;
  view.id = "differential";
  view.window = size;
  view.group_by.push_back(*ParseDimension("zone"));
  for (const char* m : {"count", "sum:value", "min:value", "max:value"}) {
    view.measures.push_back(*ParseMeasure(m));
  }
  spec.views.push_back(view);
  const SetLayout layout = SetLayout::Of(spec, /*event_time_ends_interval=*/false);
  absl::StatusOr<WindowClock> clock = WindowClock::ForZone("UTC");
  EXPECT_OK(clock.status());
  absl::StatusOr<PTable> table = PTable::Build(spec.guard.ptable);
  EXPECT_OK(table.status());
  const Guard guard(spec.guard, DataClass::kNone, &*table);
  const absl::Time now = absl::FromUnixMillis(g.events.front().event_ms);
  Engine engine(&layout, &*clock, {0}, now);

  Result r;
  int64_t offset = 0;
  for (const Event& e : g.events) {
    Fact f;
    f.partition = 0;
    f.offset = offset++;
    f.event_time = absl::FromUnixMillis(e.event_ms);
    f.unit_key = e.entity;
    f.dimensions = {e.group};
    f.fields = {e.value};
    const Outcome outcome = engine.Offer(f, now);
    EXPECT_TRUE(outcome == Outcome::kMerged || outcome == Outcome::kLate)
        << "event " << f.offset << " was rejected";
    if (outcome == Outcome::kLate) ++r.late;
    engine.Evaluate(now);
    for (const ClosedCell& closed : engine.TakeClosed()) {
      const PublishedCell out = guard.Apply(layout, closed);
      EXPECT_EQ(out.group.size(), 1u);
      EXPECT_EQ(out.measures.size(), 4u);
      if (out.group.size() != 1 || out.measures.size() != 4) continue;
      r.cells.push_back(CellLine(absl::ToUnixMillis(out.window.start), out.group[0].second,
                                 static_cast<int64_t>(*out.measures[0].value),
                                 *out.measures[1].value, *out.measures[2].value,
                                 *out.measures[3].value));
    }
  }
  std::sort(r.cells.begin(), r.cells.end());
  return r;
}

std::string Quote(const std::string& s) { return absl::StrCat("'", s, "'"); }

// Runs a shell command, its output into `log`; the exit status.
int RunCommand(const std::string& command, const std::string& log) {
  const int status = std::system(absl::StrCat(command, " >", Quote(log), " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class KafkaStreamsDifferentialTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/streams"));
    const char* home = std::getenv("POLDER_STREAMS_HOME");
    libs_ = new std::string(absl::StrCat(
        home != nullptr && *home != '\0' ? home : "/var/cache/polder/kafka-streams-4.1.1",
        "/libs"));
    ASSERT_EQ(std::system(absl::StrCat("mkdir -p ", Quote(*tmp_ + "/classes")).c_str()), 0);
    const std::string source =
        absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"),
                     "/tests/views/streams/StreamsWindows.java");
    const std::string log = *tmp_ + "/javac.log";
    ASSERT_EQ(RunCommand(absl::StrCat("javac -encoding UTF-8 -d ", Quote(*tmp_ + "/classes"),
                                      " -cp ", Quote(*libs_ + "/*"), " ", Quote(source)),
                         log),
              0)
        << "javac failed (is Kafka Streams in " << *libs_ << "? run tools/setup/setup.sh):\n"
        << ReadAll(log);
  }

  // Kafka Streams' side over the same file.
  Result RunStreams(const Generated& g, int64_t window_ms, int64_t grace_ms,
                    const std::string& name) {
    const std::string events = absl::StrCat(*tmp_, "/", name, ".events");
    {
      std::ofstream out(events);
      for (const Event& e : g.events) {
        out << absl::StrFormat("%s\t%.2f\t%d\te%d\n", e.group, e.value, e.event_ms, e.entity);
      }
    }
    const std::string cells = absl::StrCat(*tmp_, "/", name, ".streams");
    const std::string log = absl::StrCat(*tmp_, "/", name, ".log");
    Result r;
    const int rc = RunCommand(
        absl::StrCat("java -cp ", Quote(*tmp_ + "/classes:" + *libs_ + "/*"), " StreamsWindows ",
                     Quote(events), " ", window_ms, " ", grace_ms, " ", Quote(cells)),
        log);
    EXPECT_EQ(rc, 0) << "Kafka Streams failed:\n" << ReadAll(log);
    bool saw_dropped = false;
    for (absl::string_view line : absl::StrSplit(ReadAll(cells), '\n', absl::SkipEmpty())) {
      if (absl::StartsWith(line, "dropped\t")) {
        saw_dropped = absl::SimpleAtoi(line.substr(8), &r.late);
        continue;
      }
      r.cells.emplace_back(line);
    }
    EXPECT_TRUE(saw_dropped) << "no dropped-records-total in " << cells;
    std::sort(r.cells.begin(), r.cells.end());
    return r;
  }

  void Compare(uint64_t seed, WindowSize size, int64_t window_ms) {
    const int64_t grace_ms = 5 * 60 * 1000;
    const Generated g = Generate(seed, window_ms, grace_ms, 20000);
    const std::string name = absl::StrCat("seed", seed, "-", window_ms);
    const Result polder = RunPolder(g, size, absl::Milliseconds(grace_ms));
    const Result streams = RunStreams(g, window_ms, grace_ms, name);

    std::vector<std::string> only_polder, only_streams;
    std::set_difference(polder.cells.begin(), polder.cells.end(), streams.cells.begin(),
                        streams.cells.end(), std::back_inserter(only_polder));
    std::set_difference(streams.cells.begin(), streams.cells.end(), polder.cells.begin(),
                        polder.cells.end(), std::back_inserter(only_streams));
    const size_t differing = only_polder.size() + only_streams.size();
    only_polder.resize(std::min<size_t>(only_polder.size(), 10));
    only_streams.resize(std::min<size_t>(only_streams.size(), 10));
    EXPECT_EQ(differing, 0u) << polder.cells.size() << " cells from Polder, "
                             << streams.cells.size()
                             << " from Kafka Streams; first only Polder's:\n"
                             << absl::StrJoin(only_polder, "\n") << "\nfirst only Kafka Streams':\n"
                             << absl::StrJoin(only_streams, "\n");
    EXPECT_EQ(polder.late, streams.late) << "late records (Kafka Streams: dropped-records-total)";

    // The case is only as good as its disorder: each kind must be present.
    EXPECT_GT(polder.cells.size(), 100u);
    EXPECT_GT(g.out_of_order_within_grace, 1000);
    EXPECT_GT(g.on_boundaries, 100);
    EXPECT_GT(polder.late, 50);
    EXPECT_LT(polder.late, g.behind_beyond_grace)
        << "some records far behind still found an open window";
    std::printf(
        "seed %llu, %lld ms windows: %zu events, %zu final cells equal, %lld late equal; "
        "%d out of order within grace, %d behind beyond grace, %d on boundaries\n",
        static_cast<unsigned long long>(seed), static_cast<long long>(window_ms), g.events.size(),
        polder.cells.size(), static_cast<long long>(polder.late), g.out_of_order_within_grace,
        g.behind_beyond_grace, g.on_boundaries);
  }

  static std::string* tmp_;
  static std::string* libs_;
};

std::string* KafkaStreamsDifferentialTest::tmp_ = nullptr;
std::string* KafkaStreamsDifferentialTest::libs_ = nullptr;

TEST_F(KafkaStreamsDifferentialTest, QuarterHourWindowsEqualKafkaStreams) {
  for (uint64_t seed : {1, 2, 3}) Compare(seed, WindowSize::kQuarterHour, 15 * 60 * 1000);
}

TEST_F(KafkaStreamsDifferentialTest, HourWindowsEqualKafkaStreams) {
  for (uint64_t seed : {4, 5, 6}) Compare(seed, WindowSize::kHour, 60 * 60 * 1000);
}

}  // namespace
}  // namespace views
}  // namespace polder
