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

}  // namespace
}  // namespace json_input
}  // namespace polder
