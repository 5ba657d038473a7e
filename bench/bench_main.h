// The shared main() of Polder's gtest-based benchmarks (bench/*_bench.cc): the command line
// parsed with Abseil's flag library (each benchmark defines its flags with ABSL_FLAG; an
// unknown flag or a stray argument is an error, never ignored), `--only` to run some of a
// benchmark's cases, and the test environment (TEST_TMPDIR, TEST_SRCDIR) that `bazel run` does
// not set, so the test fixtures find their temp dir and the runfiles. The runtimes a baseline
// needs (Kafka's tools, Kafka Streams, MirrorMaker 2) are found the way the tests find them:
// setup's environment variable if set, else setup's cache folder for the pinned version.
#ifndef POLDER_BENCH_BENCH_MAIN_H_
#define POLDER_BENCH_BENCH_MAIN_H_

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tools/kafka/kafka_broker.h"

ABSL_FLAG(std::string, only, "",
          "Run only the cases matching this GoogleTest filter (e.g. '*Live*'); empty: all.");

namespace polder {
namespace bench {

// Setup's folder for a runtime: `env` if set and not empty, else /var/cache/polder/<name>-<pinned
// Kafka version> (tools/setup/versions.sh).
inline std::string RuntimeHome(const char* env, const std::string& name) {
  const char* v = std::getenv(env);
  if (v != nullptr && *v != '\0') return v;
  return absl::StrCat("/var/cache/polder/", name, "-", kafka_testing::kPinnedKafkaVersion);
}
inline std::string KafkaHome() { return kafka_testing::DefaultKafkaHome(); }
inline std::string StreamsHome() { return RuntimeHome("POLDER_STREAMS_HOME", "kafka-streams"); }
// MirrorMaker 2 is fetched by bench/mm2/fetch.sh into this folder.
inline std::string Mm2Home() { return RuntimeHome("POLDER_MM2_HOME", "mm2"); }

// Parses the flags (exits with the usage on an unknown flag or a stray argument), hands them to
// the benchmark (`apply`), prepares the environment and runs the benchmark's cases.
inline int RunBenchmarks(int argc, char** argv, const char* usage,
                         const std::function<void()>& apply) {
  absl::SetProgramUsageMessage(usage);
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  apply();
  if (rest.size() > 1) {
    std::fprintf(stderr, "%s: unexpected argument '%s' (flags are --name=value; see --help)\n",
                 argv[0], rest[1]);
    return 2;
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
  if (const std::string only = absl::GetFlag(FLAGS_only); !only.empty()) {
    ::testing::GTEST_FLAG(filter) = only;
  }
  return RUN_ALL_TESTS();
}

}  // namespace bench
}  // namespace polder

#endif  // POLDER_BENCH_BENCH_MAIN_H_
