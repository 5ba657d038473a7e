#include "common/status/status_macros.h"

#include <memory>
#include <string>

#include "absl/strings/cord.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace {

using ::polder::testing::IsOk;
using ::polder::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<int> ParsePositive(int v) {
  if (v <= 0) return absl::InvalidArgumentError("not positive");
  return v;
}

absl::Status CheckTwice(int a, int b, int* calls) {
  ++*calls;
  RETURN_IF_ERROR(ParsePositive(a));
  ++*calls;
  RETURN_IF_ERROR(ParsePositive(b).status());
  ++*calls;
  return absl::OkStatus();
}

absl::StatusOr<int> Sum(int a, int b) {
  ASSIGN_OR_RETURN(int x, ParsePositive(a));
  ASSIGN_OR_RETURN(const int y, ParsePositive(b), _.Prepend("second operand: "));
  return x + y;
}

absl::StatusOr<std::unique_ptr<int>> MakeBox(int v) {
  if (v < 0) return absl::OutOfRangeError("negative");
  return std::make_unique<int>(v);
}

absl::StatusOr<int> Unbox(int v) {
  std::unique_ptr<int> box;
  ASSIGN_OR_RETURN(box, MakeBox(v));  // Move-only value into an existing variable.
  return *box;
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtFirstError) {
  int calls = 0;
  EXPECT_THAT(CheckTwice(1, -1, &calls), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(calls, 2);
  calls = 0;
  EXPECT_THAT(CheckTwice(-1, 1, &calls), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(calls, 1);
  calls = 0;
  EXPECT_OK(CheckTwice(1, 2, &calls));
  EXPECT_EQ(calls, 3);
}

TEST(StatusMacrosTest, AssignOrReturnAssignsOrPropagatesWithContext) {
  EXPECT_THAT(Sum(2, 3), IsOk());
  EXPECT_EQ(*Sum(2, 3), 5);
  EXPECT_THAT(Sum(-2, 3), StatusIs(absl::StatusCode::kInvalidArgument, "not positive"));
  EXPECT_THAT(Sum(2, -3),
              StatusIs(absl::StatusCode::kInvalidArgument, "second operand: not positive"));
}

TEST(StatusMacrosTest, AssignOrReturnWorksWithMoveOnlyValues) {
  EXPECT_EQ(*Unbox(7), 7);
  EXPECT_THAT(Unbox(-1), StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("negative")));
}

TEST(StatusMacrosTest, PrependAndAppendKeepCodeAndPayload) {
  absl::Status s = absl::UnavailableError("broker down");
  s.SetPayload("polder/test", absl::Cord("x"));
  absl::Status p = Append(Prepend(s, "producing: "), " (retry)");
  EXPECT_THAT(p, StatusIs(absl::StatusCode::kUnavailable, "producing: broker down (retry)"));
  ASSERT_TRUE(p.GetPayload("polder/test").has_value());
  EXPECT_EQ(std::string(*p.GetPayload("polder/test")), "x");
  EXPECT_OK(Prepend(absl::OkStatus(), "ignored: "));
}

TEST(StatusMatchersTest, StatusIsRejectsOtherCodesAndMessages) {
  absl::Status s = absl::NotFoundError("dataset x");
  EXPECT_THAT(s, Not(StatusIs(absl::StatusCode::kInvalidArgument)));
  EXPECT_THAT(s, Not(StatusIs(absl::StatusCode::kNotFound, HasSubstr("dataset y"))));
  EXPECT_THAT(s, Not(IsOk()));
  absl::StatusOr<int> v = 3;
  EXPECT_THAT(v, IsOk());
  ASSERT_OK_AND_ASSIGN(int got, v);
  EXPECT_EQ(got, 3);
}

TEST(StatusMacrosDeathTest, CheckAbortsWithConditionAndMessage) {
  EXPECT_DEATH(POLDER_CHECK(1 + 1 == 3), "1 \\+ 1 == 3");
  EXPECT_DEATH(POLDER_CHECK_MSG(false, std::string("bad start-up")), "bad start-up");
  EXPECT_DEATH(POLDER_CHECK_OK(absl::InternalError("boom")), "boom");
  POLDER_CHECK(true);  // Does not abort.
}

}  // namespace
}  // namespace polder
