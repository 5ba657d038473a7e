// The production polder-node carries no test hook: the crash point used by the federation kill
// tests exists only in the testonly polder-node-test-hooks build (same main.cc, compiled with
// POLDER_NODE_TEST_HOOKS). Checked on the binaries' bytes, with the hooks build as the control.
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "gtest/gtest.h"

namespace polder {
namespace {

std::string ReadBinary(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  EXPECT_NE(srcdir, nullptr);
  const std::string path =
      std::string(srcdir == nullptr ? "." : srcdir) + "/polder/services/node/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(ProductionBinaryTest, OnlyTheTestHooksBuildKnowsTheCrashHook) {
  const std::string production = ReadBinary("polder-node");
  const std::string hooks = ReadBinary("polder-node-test-hooks");
  ASSERT_GT(production.size(), 1000000u);
  ASSERT_GT(hooks.size(), 1000000u);
  EXPECT_NE(hooks.find("POLDER_TEST_CRASH_BEFORE_COMMIT"), std::string::npos)
      << "the control: the hooks build has it";
  EXPECT_EQ(production.find("POLDER_TEST_CRASH_BEFORE_COMMIT"), std::string::npos);
  EXPECT_NE(hooks.find("POLDER_TEST_CRASH_VIEW_COMMIT"), std::string::npos)
      << "the control: the hooks build has the view hook";
  EXPECT_EQ(production.find("POLDER_TEST_CRASH_VIEW_COMMIT"), std::string::npos);
  EXPECT_NE(hooks.find("POLDER_TEST_MAX_CONNECTION_AGE"), std::string::npos);
  EXPECT_EQ(production.find("POLDER_TEST_MAX_CONNECTION_AGE"), std::string::npos);
  EXPECT_EQ(production.find("test hook"), std::string::npos);
}

}  // namespace
}  // namespace polder
