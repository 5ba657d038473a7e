#include "common/testing/commands.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace polder {
namespace testing {

int RunCommand(const std::string& command, std::string* output) {
  output->clear();
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  while (fgets(buf, sizeof buf, p) != nullptr) *output += buf;
  int rc = pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

namespace {

// $env, else the newest /var/cache/polder/<prefix>* with a .complete mark.
std::string CacheHome(const char* env_name, const std::string& prefix) {
  const char* env = std::getenv(env_name);
  if (env != nullptr && *env != '\0') return env;
  namespace fs = std::filesystem;
  std::string best;
  fs::file_time_type newest;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/var/cache/polder", ec)) {
    if (e.path().filename().string().rfind(prefix, 0) != 0 || !fs::exists(e.path() / ".complete"))
      continue;
    auto t = fs::last_write_time(e.path() / ".complete", ec);
    if (best.empty() || t > newest) {
      best = e.path().string();
      newest = t;
    }
  }
  return best;
}

}  // namespace

std::string NpmHome() { return CacheHome("POLDER_NPM_HOME", "npm-"); }
std::string PipHome() { return CacheHome("POLDER_PIP_HOME", "pip-"); }

}  // namespace testing
}  // namespace polder
