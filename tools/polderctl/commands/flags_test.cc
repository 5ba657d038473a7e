// The shared flag and file helpers of polderctl's commands, and how a command's Output prints.
#include "tools/polderctl/commands/flags.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "common/status/status_matchers.h"
#include "common/trust/document.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/polderctl/commands/command.h"

namespace polder {
namespace polderctl {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

cli::Args Parse(const std::vector<std::string>& argv) {
  absl::StatusOr<cli::Args> args = cli::Args::Parse(
      argv,
      {{"timeout", "", false, false, false, "60s"}, {"at", ""}, {"operator-key", "", false, true}});
  EXPECT_TRUE(args.ok()) << args.status();
  return args.ok() ? *args : cli::Args();
}

std::string TempPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

TEST(DurationFlagTest, TakesPositiveDurationsAndTheDefault) {
  ASSERT_OK_AND_ASSIGN(absl::Duration d, DurationFlag(Parse({}), "timeout"));
  EXPECT_EQ(d, absl::Seconds(60));
  ASSERT_OK_AND_ASSIGN(d, DurationFlag(Parse({"--timeout", "1h30m"}), "timeout"));
  EXPECT_EQ(d, absl::Minutes(90));
  for (const char* bad : {"0s", "-5s", "soon", "10", ""}) {
    EXPECT_THAT(DurationFlag(Parse({"--timeout", bad}), "timeout"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("--timeout: '", bad,
                                      "' is not a positive duration such as 90s, 30m, 720h")));
  }
}

TEST(TimeFlagTest, IsNowWhenAbsentAndRfc3339Otherwise) {
  const absl::Time before = absl::Now();
  ASSERT_OK_AND_ASSIGN(absl::Time t, TimeFlag(Parse({}), "at"));
  EXPECT_GE(t, before);
  EXPECT_LE(t, absl::Now());
  ASSERT_OK_AND_ASSIGN(t, TimeFlag(Parse({"--at", "2026-03-01T12:00:00Z"}), "at"));
  EXPECT_EQ(trust::FormatRfc3339(t), "2026-03-01T12:00:00Z");
  EXPECT_THAT(TimeFlag(Parse({"--at", "tomorrow"}), "at"),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::StartsWith("--at: ")));
}

TEST(OperatorKeysTest, NeedsAtLeastOneReadableKey) {
  EXPECT_THAT(OperatorKeys(Parse({})), StatusIs(absl::StatusCode::kInvalidArgument,
                                                "give the pinned --operator-key (a .pub file)"));
  EXPECT_FALSE(OperatorKeys(Parse({"--operator-key", TempPath("missing.pub")})).ok());
}

TEST(WriteSecretTest, WritesMode0600AndNeverOverwrites) {
  const std::string path = TempPath("secret.key");
  ASSERT_OK(WriteSecret(path, "k1"));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_THAT(WriteSecret(path, "k2"),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       absl::StrCat("'", path, "' exists; refusing to overwrite a key")));
  std::ifstream in(path);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "k1");
}

TEST(WritePublicTest, WritesMode0644AndReplaces) {
  const std::string path = TempPath("public.json");
  ASSERT_OK(WritePublic(path, "{}"));
  ASSERT_OK(WritePublic(path, R"({"a": 1})"));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644);
  ASSERT_OK_AND_ASSIGN(nlohmann::json j, ReadJsonFile(path));
  EXPECT_EQ(j["a"], 1);
}

TEST(ReadJsonFileTest, NamesTheFileOfInvalidJson) {
  const std::string path = TempPath("bad.json");
  std::ofstream(path) << "{\"a\": ";
  EXPECT_THAT(ReadJsonFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, absl::StrCat(path, ": not valid JSON")));
  EXPECT_FALSE(ReadJsonFile(TempPath("missing.json")).ok());
}

TEST(OutputTest, PrintsLinesOrTheResultAfterOk) {
  Output out;
  out.Line("first");
  out.Line("second");
  out.result = {{"serial", 2}, {"file", "d.json"}};
  std::ostringstream text;
  PrintSuccess(out, text);
  EXPECT_EQ(text.str(), "first\nsecond\n");
  out.json = true;
  std::ostringstream json;
  PrintSuccess(out, json);
  EXPECT_EQ(json.str(), "{\n  \"ok\": true,\n  \"serial\": 2,\n  \"file\": \"d.json\"\n}\n");
  std::ostringstream error;
  PrintJsonError(absl::DataLossError("2 finding(s)"), error);
  EXPECT_EQ(error.str(),
            "{\n  \"ok\": false,\n  \"code\": \"DATA_LOSS\",\n  \"error\": \"2 finding(s)\"\n}\n");
}

}  // namespace
}  // namespace polderctl
}  // namespace polder
