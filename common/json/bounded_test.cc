#include "common/json/bounded.h"

#include <string>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace json_input {
namespace {

using ::testing::HasSubstr;

std::string Nested(int levels, char open = '[', char close = ']') {
  return std::string(levels, open) + std::string(levels, close);
}

TEST(CheckDepthTest, AcceptsUpToTheBoundAndRefusesOneMore) {
  EXPECT_OK(CheckDepth(Nested(kMaxDepth)));
  absl::Status s = CheckDepth(Nested(kMaxDepth + 1));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("nests deeper than 64 levels (at byte 64)"));
}

TEST(CheckDepthTest, CountsObjectsAndArraysTogether) {
  std::string mixed;
  for (int i = 0; i < 40; ++i) mixed += R"({"a":[)";
  EXPECT_EQ(CheckDepth(mixed).code(), absl::StatusCode::kInvalidArgument);  // 80 levels
  EXPECT_OK(CheckDepth(mixed, 80));
}

TEST(CheckDepthTest, BracketsInStringsDoNotCount) {
  const std::string s = "[\"" + std::string(1000, '[') + "\\\"[[[\"]";
  EXPECT_OK(CheckDepth(s, 2));
  // An escaped backslash ends the escape: the quote after it closes the string.
  EXPECT_OK(CheckDepth(R"(["\\", [1]])", 2));
  EXPECT_EQ(CheckDepth(R"(["\\", [[1]]])", 2).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CheckDepthTest, SiblingsDoNotAddUp) {
  std::string many = "[";
  for (int i = 0; i < 1000; ++i) many += Nested(10) + ",";
  many += "1]";
  EXPECT_OK(CheckDepth(many, 11));
}

TEST(ParseTest, ParsesValidDocuments) {
  ASSERT_OK_AND_ASSIGN(nlohmann::json j, Parse(R"({"a":[1,2,{"b":"[["}]})"));
  EXPECT_EQ(j["a"][2]["b"], "[[");
}

TEST(ParseTest, RefusesDeepDocumentsWithoutRecursing) {
  // Deep enough that a recursive dump or destructor would overflow a thread's stack.
  const std::string deep = "[{\"a\":" + Nested(200000) + "}]";
  absl::StatusOr<nlohmann::json> j = Parse(deep);
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ParseOrDiscarded(deep).is_discarded());
}

TEST(ParseTest, NamesTheByteOfASyntaxError) {
  absl::StatusOr<nlohmann::json> j = Parse("[1, 2,, 3]");
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(j.status().message()), HasSubstr("byte 7"));
  EXPECT_TRUE(ParseOrDiscarded("{").is_discarded());
}

TEST(TypedMembersTest, WrongTypesAndMissingMembersFallBackInsteadOfThrowing) {
  const nlohmann::json j = nlohmann::json::parse(
      R"({"s": "x", "i": -3, "u": 18446744073709551615, "b": true, "n": null, "f": 1.5,
          "o": {"s": 1}})");
  EXPECT_EQ(StringOr(j, "s", "d"), "x");
  EXPECT_EQ(StringOr(j, "i", "d"), "d");
  EXPECT_EQ(StringOr(j, "missing", "d"), "d");
  EXPECT_EQ(IntOr(j, "i", 7), -3);
  EXPECT_EQ(IntOr(j, "s", 7), 7);
  EXPECT_EQ(IntOr(j, "f", 7), 7);
  EXPECT_EQ(IntOr(j, "u", 7), 7);  // beyond int64
  EXPECT_EQ(IntOr(j, "n", 7), 7);
  EXPECT_EQ(UintOr(j, "u", 1), 18446744073709551615u);
  EXPECT_EQ(UintOr(j, "i", 1), 1u);  // negative
  EXPECT_EQ(UintOr(j, "b", 1), 1u);
  EXPECT_TRUE(BoolOr(j, "b", false));
  EXPECT_FALSE(BoolOr(j, "s", false));
  // Not an object at all: every member is missing.
  const nlohmann::json array = nlohmann::json::array({1, 2});
  EXPECT_EQ(StringOr(array, "s", "d"), "d");
  EXPECT_EQ(IntOr(nlohmann::json("text"), "i", 4), 4);
  EXPECT_EQ(StringOr(j["o"], "s", "d"), "d");
}

}  // namespace
}  // namespace json_input
}  // namespace polder
