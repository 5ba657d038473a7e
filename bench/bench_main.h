// The shared main() of Polder's gtest-based benchmarks (bench/*_bench.cc): `--name=N` integer
// flags, and the test environment (TEST_TMPDIR, TEST_SRCDIR) that `bazel run` does not set, so
// the test fixtures find their temp dir and the runfiles.
#ifndef POLDER_BENCH_BENCH_MAIN_H_
#define POLDER_BENCH_BENCH_MAIN_H_

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "gtest/gtest.h"

namespace polder {
namespace bench {

inline int RunBenchmarks(int argc, char** argv, const std::map<std::string, int*>& flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    for (const auto& [name, out] : flags) {
      const std::string prefix = "--" + name + "=";
      if (a.rfind(prefix, 0) == 0) *out = std::atoi(a.c_str() + prefix.size());
    }
  }
  if (std::getenv("TEST_TMPDIR") == nullptr) {
    char tmpl[] = "/tmp/polder-bench.XXXXXX";
    setenv("TEST_TMPDIR", mkdtemp(tmpl), 1);
  }
  if (std::getenv("TEST_SRCDIR") == nullptr) {
    setenv("TEST_SRCDIR", std::filesystem::current_path().parent_path().c_str(), 1);
    setenv("TEST_WORKSPACE", "polder", 1);
  }
  int gargc = 1;
  ::testing::InitGoogleTest(&gargc, argv);
  return RUN_ALL_TESTS();
}

}  // namespace bench
}  // namespace polder

#endif  // POLDER_BENCH_BENCH_MAIN_H_
