#include "common/log/log.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace log {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetComponent("polder-test");
    SetMinSeverity(Severity::kInfo);
    SetSinkForTesting([this](const std::string& line) { lines_.push_back(line); });
  }
  void TearDown() override { SetSinkForTesting(nullptr); }
  std::vector<std::string> lines_;
};

TEST_F(LogTest, WritesOneParsableJsonObjectPerLine) {
  Info("topic created", {{"topic", "groningen.mobility.bike-counts"},
                         {"partitions", 3},
                         {"note", "multi\nline \"quoted\""}});
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].find('\n'), std::string::npos) << "a line never contains a raw newline";
  auto j = nlohmann::json::parse(lines_[0]);
  EXPECT_EQ(j["severity"], "INFO");
  EXPECT_EQ(j["component"], "polder-test");
  EXPECT_EQ(j["message"], "topic created");
  EXPECT_EQ(j["topic"], "groningen.mobility.bike-counts");
  EXPECT_EQ(j["partitions"], 3);
  EXPECT_EQ(j["note"], "multi\nline \"quoted\"");
  EXPECT_THAT(
      j["time"].get<std::string>(),
      testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z"));
}

TEST_F(LogTest, SecretsNeverReachTheLine) {
  Warning("login", {{"password", "hunter2"},
                    {"Authorization", "Bearer abc"},
                    {"api_token", "t0k3n"},
                    {"payload", Secret{"s3cr3t"}},
                    {"token_file", "/etc/polder/token"}});
  ASSERT_EQ(lines_.size(), 1u);
  for (const char* secret : {"hunter2", "Bearer abc", "t0k3n", "s3cr3t"}) {
    EXPECT_THAT(lines_[0], Not(HasSubstr(secret)));
  }
  auto j = nlohmann::json::parse(lines_[0]);
  EXPECT_EQ(j["password"], "[redacted]");
  EXPECT_EQ(j["payload"], "[redacted]");
  EXPECT_EQ(j["token_file"], "/etc/polder/token") << "where a secret lives may be logged";
}

TEST_F(LogTest, SeverityFilterAndReservedKeys) {
  Debug("dropped");
  SetMinSeverity(Severity::kDebug);
  Debug("kept", {{"message", "user field"}});
  ASSERT_EQ(lines_.size(), 1u);
  auto j = nlohmann::json::parse(lines_[0]);
  EXPECT_EQ(j["message"], "kept");
  EXPECT_EQ(j["field_message"], "user field");
}

TEST_F(LogTest, InvalidUtf8DoesNotBreakTheLine) {
  Error("bad bytes", {{"value", std::string("ab\xff\xfe")}});
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_NO_THROW(nlohmann::json::parse(lines_[0]));
}

TEST_F(LogTest, ConcurrentLinesDoNotInterleave) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) Info("tick", {{"thread", t}, {"i", i}});
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(lines_.size(), 800u);
  for (const auto& l : lines_) EXPECT_NO_THROW(nlohmann::json::parse(l)) << l;
}

TEST(RateLimitTest, LetsABurstThroughThenCountsWhatItDrops) {
  auto now = std::chrono::steady_clock::time_point();
  RateLimit limit(5, [&now] { return now; });
  int64_t suppressed = -1;
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += limit.Allow(&suppressed) ? 1 : 0;
  EXPECT_EQ(allowed, 5) << "a burst of per_second, then nothing within the same instant";
  EXPECT_EQ(suppressed, 0);
  now += std::chrono::milliseconds(400);  // two tokens
  ASSERT_TRUE(limit.Allow(&suppressed));
  EXPECT_EQ(suppressed, 95) << "the first line after the drops counts them";
  ASSERT_TRUE(limit.Allow(&suppressed));
  EXPECT_EQ(suppressed, 0);
  EXPECT_FALSE(limit.Allow(&suppressed));
}

}  // namespace
}  // namespace log
}  // namespace polder
