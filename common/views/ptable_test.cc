#include "common/views/ptable.h"

#include <cmath>
#include <map>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace views {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

constexpr double kOne = 4294967296.0;

struct Moments {
  double mean = 0, variance = 0, sum = 0;
};

Moments Of(const std::vector<PTable::Entry>& row) {
  Moments m;
  double second = 0;
  for (const auto& e : row) {
    const double q = static_cast<double>(e.weight) / kOne;
    m.sum += q;
    m.mean += q * static_cast<double>(e.y);
    second += q * static_cast<double>(e.y) * static_cast<double>(e.y);
  }
  m.variance = second - m.mean * m.mean;
  return m;
}

TEST(PTableTest, DefaultRowsHaveMeanNVarianceVAndNoSmallValues) {
  ASSERT_OK_AND_ASSIGN(PTable table, PTable::Build(PTableParams{}));
  const std::vector<PTable::Entry> zero = table.Row(0);
  ASSERT_EQ(zero.size(), 1u);
  EXPECT_EQ(zero[0].y, 0);
  EXPECT_EQ(zero[0].weight, uint64_t{1} << 32);
  for (int64_t n = 1; n <= 60; ++n) {
    const std::vector<PTable::Entry> row = table.Row(n);
    uint64_t total = 0;
    for (const auto& e : row) {
      total += e.weight;
      EXPECT_LE(std::llabs(e.y - n), 6) << "n=" << n;
      EXPECT_FALSE(e.y == 1 || e.y == 2) << "n=" << n << " publishes " << e.y;
      EXPECT_GE(e.y, 0);
    }
    EXPECT_EQ(total, uint64_t{1} << 32) << "n=" << n;
    const Moments m = Of(row);
    EXPECT_NEAR(m.mean, static_cast<double>(n), 1e-6) << "n=" << n;
    EXPECT_NEAR(m.variance, 2.5, 1e-6) << "n=" << n;
  }
}

TEST(PTableTest, RowsAboveDPlusJsAreShiftsOfOneSymmetricRow) {
  ASSERT_OK_AND_ASSIGN(PTable table, PTable::Build(PTableParams{}));
  const std::vector<PTable::Entry> nine = table.Row(9);
  const std::vector<PTable::Entry> far = table.Row(1000);
  ASSERT_EQ(nine.size(), far.size());
  ASSERT_EQ(nine.size(), 13u);  // [3, 15]: no outcome rounds away
  for (size_t i = 0; i < nine.size(); ++i) {
    EXPECT_EQ(far[i].y, nine[i].y + 991);
    EXPECT_EQ(far[i].weight, nine[i].weight);
    // Symmetric around n: the maximum-entropy row with mean and variance is a discrete normal.
    EXPECT_NEAR(static_cast<double>(nine[i].weight),
                static_cast<double>(nine[nine.size() - 1 - i].weight), 1.0);
  }
}

TEST(PTableTest, TheSameKeyGivesTheSameNoiseAndKeysSpreadAsTheRow) {
  ASSERT_OK_AND_ASSIGN(PTable table, PTable::Build(PTableParams{}));
  for (int64_t n : {1, 2, 3, 5, 8, 40}) {
    std::map<int64_t, uint64_t> counts;
    // 2¹⁶ evenly spaced keys: each outcome's share is its weight to within one step.
    for (uint64_t i = 0; i < (1u << 16); ++i) {
      const uint64_t key = i << 48 | 0x1234;
      const int64_t y = table.Perturb(n, key);
      EXPECT_EQ(y, table.Perturb(n, key));
      ++counts[y];
    }
    for (const auto& e : table.Row(n)) {
      EXPECT_NEAR(static_cast<double>(counts[e.y]) * 65536.0, static_cast<double>(e.weight),
                  65536.0)
          << "n=" << n << " y=" << e.y;
    }
    uint64_t seen = 0;
    for (const auto& [y, c] : counts) {
      seen += c;
      EXPECT_TRUE(table.CanPublish(n, y)) << n << " → " << y;
    }
    EXPECT_EQ(seen, 1u << 16);
  }
  EXPECT_EQ(table.Perturb(0, ~uint64_t{0}), 0) << "zeros stay zero";
}

TEST(PTableTest, ExistenceIsWhatAnAttackerLearnsFromAPublishedValue) {
  ASSERT_OK_AND_ASSIGN(PTable table, PTable::Build(PTableParams{}));
  EXPECT_EQ(table.Existence(0), (std::pair<int64_t, int64_t>(0, 6)));
  EXPECT_GT(table.Existence(1).first, table.Existence(1).second) << "1 is never published";
  EXPECT_GT(table.Existence(2).first, table.Existence(2).second) << "2 is never published";
  EXPECT_EQ(table.Existence(3), (std::pair<int64_t, int64_t>(1, 9)));
  EXPECT_EQ(table.Existence(100), (std::pair<int64_t, int64_t>(94, 106)));
  for (int64_t y = 3; y < 40; ++y) {
    const auto [lo, hi] = table.Existence(y);
    EXPECT_GE(hi - lo, 6) << "y=" << y << ": C1 needs a range of at least D";
    EXPECT_FALSE(table.CanPublish(lo - 1, y));
    EXPECT_FALSE(table.CanPublish(hi + 1, y));
  }
}

TEST(PTableTest, HashFollowsTheParameters) {
  ASSERT_OK_AND_ASSIGN(PTable a, PTable::Build(PTableParams{}));
  ASSERT_OK_AND_ASSIGN(PTable b, PTable::Build(PTableParams{}));
  PTableParams other;
  other.v = 3.0;
  ASSERT_OK_AND_ASSIGN(PTable c, PTable::Build(other));
  EXPECT_EQ(a.sha256(), b.sha256());
  EXPECT_EQ(a.sha256().size(), 64u);
  EXPECT_NE(a.sha256(), c.sha256());
}

TEST(PTableTest, SmallerParametersBuildWhenFeasible) {
  PTableParams p;
  p.d = 3;
  p.v = 1.0;
  p.js = 0;
  ASSERT_OK_AND_ASSIGN(PTable table, PTable::Build(p));
  EXPECT_TRUE(table.CanPublish(1, 1));
  EXPECT_NEAR(Of(table.Row(1)).variance, 1.0, 1e-6);
  EXPECT_NEAR(Of(table.Row(50)).mean, 50.0, 1e-6);
}

TEST(PTableTest, ParametersWithoutATableAreRefusedNamingTheRow) {
  PTableParams low;
  low.v = 1.5;  // row 1 on {0, 3 … 7} needs a variance above 2
  EXPECT_THAT(PTable::Build(low).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("true count 1")));
  PTableParams high;
  high.v = 40;  // beyond what ±6 allows
  EXPECT_THAT(PTable::Build(high).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot be reached")));
  PTableParams jump;
  jump.js = 6;
  EXPECT_THAT(PTable::Build(jump).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("guard.js")));
  PTableParams none;
  none.d = 0;
  EXPECT_THAT(PTable::Build(none).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("guard.d")));
  PTableParams nan;
  nan.v = std::nan("");
  EXPECT_THAT(PTable::Build(nan).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("guard.v")));
}

}  // namespace
}  // namespace views
}  // namespace polder
