// GoogleTest matchers for absl::Status and absl::StatusOr<T> (Debian's Abseil has none).
//
//   EXPECT_THAT(Parse("x"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
//   EXPECT_THAT(Parse("1"), IsOk());
//   ASSERT_OK(status);               ASSERT_OK_AND_ASSIGN(auto v, ParseInt("1"));
#ifndef POLDER_COMMON_STATUS_STATUS_MATCHERS_H_
#define POLDER_COMMON_STATUS_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace testing {
namespace internal {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

template <typename StatusType>
class StatusIsMatcherImpl : public ::testing::MatcherInterface<StatusType> {
 public:
  StatusIsMatcherImpl(::testing::Matcher<absl::StatusCode> code,
                      ::testing::Matcher<const std::string&> message)
      : code_(std::move(code)), message_(std::move(message)) {}

  void DescribeTo(std::ostream* os) const override {
    *os << "has a status code that ";
    code_.DescribeTo(os);
    *os << ", and has an error message that ";
    message_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const override {
    *os << "has a status code that ";
    code_.DescribeNegationTo(os);
    *os << ", or has an error message that ";
    message_.DescribeNegationTo(os);
  }
  bool MatchAndExplain(StatusType value, ::testing::MatchResultListener* listener) const override {
    const absl::Status& status = GetStatus(value);
    *listener << "whose status is " << status.ToString();
    if (!code_.Matches(status.code())) return false;
    return message_.Matches(std::string(status.message()));
  }

 private:
  ::testing::Matcher<absl::StatusCode> code_;
  ::testing::Matcher<const std::string&> message_;
};

class StatusIsMatcher {
 public:
  StatusIsMatcher(::testing::Matcher<absl::StatusCode> code,
                  ::testing::Matcher<const std::string&> message)
      : code_(std::move(code)), message_(std::move(message)) {}
  template <typename StatusType>
  operator ::testing::Matcher<StatusType>() const {  // NOLINT
    return ::testing::Matcher<StatusType>(
        new StatusIsMatcherImpl<const std::decay_t<StatusType>&>(code_, message_));
  }

 private:
  ::testing::Matcher<absl::StatusCode> code_;
  ::testing::Matcher<const std::string&> message_;
};

}  // namespace internal

// Matches an absl::Status or absl::StatusOr<T> whose code matches `code` and whose message
// matches `message` (any message when omitted).
inline internal::StatusIsMatcher StatusIs(::testing::Matcher<absl::StatusCode> code,
                                          ::testing::Matcher<const std::string&> message) {
  return internal::StatusIsMatcher(std::move(code), std::move(message));
}
inline internal::StatusIsMatcher StatusIs(::testing::Matcher<absl::StatusCode> code) {
  return internal::StatusIsMatcher(std::move(code), ::testing::_);
}

// Matches an OK absl::Status or absl::StatusOr<T>.
inline internal::StatusIsMatcher IsOk() {
  return internal::StatusIsMatcher(absl::StatusCode::kOk, ::testing::_);
}

}  // namespace testing
}  // namespace polder

// Lets GoogleTest print a StatusOr<T> by its status instead of its bytes (found through ADL).
namespace absl {
ABSL_NAMESPACE_BEGIN
template <typename T>
void PrintTo(const StatusOr<T>& value, std::ostream* os) {
  *os << value.status();
}
ABSL_NAMESPACE_END
}  // namespace absl

#define POLDER_MATCHERS_CONCAT_INNER_(a, b) a##b
#define POLDER_MATCHERS_CONCAT_(a, b) POLDER_MATCHERS_CONCAT_INNER_(a, b)

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::polder::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::polder::testing::IsOk())

// ASSERT_OK_AND_ASSIGN(lhs, expr): asserts `expr` (a StatusOr) is OK and moves its value to lhs.
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                     \
  auto POLDER_MATCHERS_CONCAT_(polder_statusor_, __LINE__) = (expr);        \
  ASSERT_THAT(POLDER_MATCHERS_CONCAT_(polder_statusor_, __LINE__).status(), \
              ::polder::testing::IsOk());                                   \
  lhs = std::move(POLDER_MATCHERS_CONCAT_(polder_statusor_, __LINE__)).value()

#endif  // POLDER_COMMON_STATUS_STATUS_MATCHERS_H_
