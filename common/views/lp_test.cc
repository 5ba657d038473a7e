#include "common/views/lp.h"

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace views {
namespace {

using ::polder::testing::StatusIs;

TEST(LinearProgramTest, BoundsAVariableThroughAnEquality) {
  LinearProgram lp;
  const int a = lp.AddVariable(0, 10);
  const int b = lp.AddVariable(2, LinearProgram::kInfinity);
  lp.AddRow({{a, 1}, {b, -1}}, 0, 0);
  ASSERT_OK_AND_ASSIGN(LinearProgram::Range r, lp.Bound(a));
  EXPECT_DOUBLE_EQ(r.lo, 2);
  EXPECT_DOUBLE_EQ(r.hi, 10);
  EXPECT_TRUE(lp.Satisfies(r.at_lo)) << "the minimum's point is feasible";
  EXPECT_TRUE(lp.Satisfies(r.at_hi));
  EXPECT_DOUBLE_EQ(r.at_hi[a], 10);
  ASSERT_OK_AND_ASSIGN(r, lp.Bound(b));
  EXPECT_DOUBLE_EQ(r.lo, 2);
  EXPECT_DOUBLE_EQ(r.hi, 10);
}

// The differencing case of the gate: a total published within ±6, three of four parts within
// ±6 each, the fourth protected — bounded by the LP, not by any single row.
TEST(LinearProgramTest, DifferencingBoundsTheProtectedPart) {
  LinearProgram lp;
  const int total = lp.AddVariable(14, 26);
  const int p1 = lp.AddVariable(5, 17), p2 = lp.AddVariable(5, 17), p3 = lp.AddVariable(5, 17);
  const int hidden = lp.AddVariable(1, 4);
  lp.AddRow({{total, 1}, {p1, -1}, {p2, -1}, {p3, -1}, {hidden, -1}}, 0, 0);
  ASSERT_OK_AND_ASSIGN(LinearProgram::Range r, lp.Bound(hidden));
  EXPECT_NEAR(r.lo, 1, 1e-6);
  EXPECT_NEAR(r.hi, 4, 1e-6);
  // Solver tolerances: bounds are compared within 1e-6 (the gate rounds inwards with the same
  // margin). A tighter total leaves the hidden part less room: 16 − 3·5 = 1 at most.
  lp.SetBounds(total, 10, 16);
  ASSERT_OK_AND_ASSIGN(r, lp.Bound(hidden));
  EXPECT_NEAR(r.lo, 1, 1e-6);
  EXPECT_NEAR(r.hi, 1, 1e-6);
}

TEST(LinearProgramTest, UnboundedAboveIsInfinity) {
  LinearProgram lp;
  const int a = lp.AddVariable(0, LinearProgram::kInfinity);
  const int b = lp.AddVariable(0, 3);
  lp.AddRow({{a, 1}, {b, -1}}, 1, LinearProgram::kInfinity);  // a ≥ b + 1
  ASSERT_OK_AND_ASSIGN(LinearProgram::Range r, lp.Bound(a));
  EXPECT_DOUBLE_EQ(r.lo, 1);
  EXPECT_EQ(r.hi, LinearProgram::kInfinity);
}

TEST(LinearProgramTest, InfeasibleIsFailedPrecondition) {
  LinearProgram lp;
  const int a = lp.AddVariable(0, 1);
  const int b = lp.AddVariable(5, 6);
  lp.AddRow({{a, 1}, {b, -1}}, 0, 0);
  EXPECT_THAT(lp.Bound(a), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(LinearProgramTest, SatisfiesChecksBoundsAndRows) {
  LinearProgram lp;
  const int a = lp.AddVariable(0, 10);
  const int b = lp.AddVariable(0, 10);
  lp.AddRow({{a, 1}, {b, 1}}, 5, 5);
  EXPECT_TRUE(lp.Satisfies({2, 3}));
  EXPECT_FALSE(lp.Satisfies({2, 2})) << "row violated";
  EXPECT_FALSE(lp.Satisfies({-1, 6})) << "bound violated";
  EXPECT_FALSE(lp.Satisfies({5})) << "wrong size";
}

}  // namespace
}  // namespace views
}  // namespace polder
