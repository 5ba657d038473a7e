#include "common/trust/jcs.h"

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace trust {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

TEST(JcsTest, SortsKeysAndDropsWhitespace) {
  auto a = nlohmann::json::parse(R"({ "b": [1, 2, {"z": true, "a": null}], "a": "x" })");
  auto b = nlohmann::json::parse(R"({"a":"x","b":[1,2,{"a":null,"z":true}]})");
  ASSERT_OK_AND_ASSIGN(std::string ca, Canonicalize(a));
  ASSERT_OK_AND_ASSIGN(std::string cb, Canonicalize(b));
  EXPECT_EQ(ca, R"({"a":"x","b":[1,2,{"a":null,"z":true}]})");
  EXPECT_EQ(ca, cb);
}

TEST(JcsTest, EscapesLikeRfc8785) {
  // RFC 8785 §3.2.2.2: only quote, backslash and control characters are escaped; "/" and
  // non-ASCII stay as they are; control characters use the short forms or lowercase \u00xx.
  nlohmann::json v = {{"s", std::string("\"\\/\b\f\n\r\t\x01\x1f") + "€ü"}};
  ASSERT_OK_AND_ASSIGN(std::string c, Canonicalize(v));
  EXPECT_EQ(c, std::string(R"({"s":"\"\\/\b\f\n\r\t\u0001\u001f)") + "€ü\"}");
}

TEST(JcsTest, RefusesWhatCannotBeSignedExactly) {
  EXPECT_THAT(Canonicalize(nlohmann::json::parse(R"({"a":{"b":1.5}})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("$.a.b: non-integral")));
  EXPECT_THAT(Canonicalize(nlohmann::json::parse(R"({"a":[9007199254740992]})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("$.a[0]: integer")));
  EXPECT_THAT(Canonicalize(nlohmann::json{{"k\xc3\xa9", 1}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not ASCII")));
  EXPECT_THAT(Canonicalize(nlohmann::json{{"k", std::string("\xc3\x28")}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("$.k: invalid UTF-8")));
  EXPECT_OK(Canonicalize(nlohmann::json::parse(R"({"a":9007199254740991,"b":-9007199254740991})")));
}

}  // namespace
}  // namespace trust
}  // namespace polder
