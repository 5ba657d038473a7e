#include "common/server/process.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "common/status/status_matchers.h"
#include "gtest/gtest.h"

namespace polder {
namespace server {
namespace {

using ::polder::testing::StatusIs;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ProcessTest, WaitReturnsTheTerminationSignalInsteadOfDying) {
  TerminationSignals signals;
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);  // blocked: pending until Wait takes it
  EXPECT_EQ(signals.Wait(), SIGTERM);
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  EXPECT_EQ(signals.Wait(), SIGINT);
  ASSERT_EQ(kill(getpid(), SIGPIPE), 0);  // ignored, not fatal
}

TEST(ProcessTest, ReadyFileIsOneJsonLineReplacingTheOldOne) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/ports.json";
  std::ofstream(path) << "stale and longer than the new content\n";
  ASSERT_OK(WriteReadyFile(path, {{"grpc_port", 4711}, {"ops_port", 9}}));
  EXPECT_EQ(Slurp(path), "{\"grpc_port\":4711,\"ops_port\":9}\n");
  EXPECT_FALSE(std::ifstream(path + ".tmp").good());
}

TEST(ProcessTest, UnwritableReadyFileIsAnError) {
  EXPECT_THAT(WriteReadyFile("/nonexistent-dir/ports.json", {{"grpc_port", 1}}),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace server
}  // namespace polder
