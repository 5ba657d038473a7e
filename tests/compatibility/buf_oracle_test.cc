// Each schema change goes through Polder's engine (BACKWARD: can the new schema read data
// written with the old one?) and through `buf breaking new --against old` with WIRE_JSON.
// The verdicts (breaking or not) must agree, except where a case states why Polder differs.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/schema/schema.h"
#include "gtest/gtest.h"
#include "services/registry/protobuf_compatibility.h"

namespace polder {
namespace {

namespace fs = std::filesystem;

std::string Buf() {
  const char* env = std::getenv("POLDER_NPM_HOME");
  std::string home = env != nullptr ? env : "";
  if (home.empty()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/var/cache/polder", ec)) {
      if (e.path().filename().string().rfind("npm-", 0) == 0 && fs::exists(e.path() / ".complete")) home = e.path();
    }
  }
  return home + "/node_modules/.bin/buf";
}

struct Case {
  const char* name;
  const char* before;
  const char* after;
  // Empty: Polder and buf must agree. Otherwise why Polder's verdict differs from buf's.
  const char* differs_because = "";
};

// Runs buf; returns true if it reports a breaking change (exit 100), with its findings in *out.
bool BufSaysBreaking(const std::string& dir, const Case& c, std::string* out) {
  fs::remove_all(dir);
  fs::create_directories(dir + "/old");
  fs::create_directories(dir + "/new");
  std::ofstream(dir + "/old/s.proto") << "syntax = \"proto3\";\npackage p;\n" << c.before << "\n";
  std::ofstream(dir + "/new/s.proto") << "syntax = \"proto3\";\npackage p;\n" << c.after << "\n";
  std::string cmd = absl::StrCat("cd ", dir, " && ", Buf(),
                                 " breaking new --against old --config "
                                 "'{\"version\":\"v1\",\"breaking\":{\"use\":[\"WIRE_JSON\"]}}' 2>&1");
  out->clear();
  FILE* p = popen(cmd.c_str(), "r");
  char buf[1024];
  while (p != nullptr && fgets(buf, sizeof buf, p) != nullptr) *out += buf;
  int rc = p != nullptr ? pclose(p) : -1;
  int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  EXPECT_TRUE(code == 0 || code == 100) << c.name << ": buf failed (" << code << "): " << *out;
  return code == 100;
}

bool PolderSaysBreaking(const Case& c, std::string* reasons) {
  auto old_schema = schema::ParsedSchema::Parse(absl::StrCat("syntax = \"proto3\"; package p; ", c.before), {});
  auto new_schema = schema::ParsedSchema::Parse(absl::StrCat("syntax = \"proto3\"; package p; ", c.after), {});
  EXPECT_TRUE(old_schema.ok() && new_schema.ok()) << c.name;
  if (!old_schema.ok() || !new_schema.ok()) return false;
  std::vector<std::string> r = registry::CompareForReading(**new_schema, **old_schema);
  *reasons = absl::StrJoin(r, "; ");
  return !r.empty();
}

const Case kCases[] = {
    {"add field", "message M { string a = 1; }", "message M { string a = 1; int32 b = 2; }"},
    {"delete field", "message M { string a = 1; int32 b = 2; }", "message M { string a = 1; }"},
    {"delete field, number and name reserved", "message M { string a = 1; int32 b = 2; }",
     "message M { string a = 1; reserved 2; reserved \"b\"; }"},
    {"delete field, only number reserved", "message M { string a = 1; int32 b = 2; }",
     "message M { string a = 1; reserved 2; }"},
    {"rename field", "message M { int32 a = 1; }", "message M { int32 b = 1; }"},
    {"int64 to string", "message M { int64 a = 1; }", "message M { string a = 1; }"},
    {"string to bytes", "message M { string a = 1; }", "message M { bytes a = 1; }"},
    {"singular to repeated", "message M { int32 a = 1; }", "message M { repeated int32 a = 1; }"},
    {"into a oneof", "message M { int32 a = 1; int32 b = 2; }", "message M { oneof o { int32 a = 1; } int32 b = 2; }"},
    {"add message", "message A { int32 a = 1; }", "message A { int32 a = 1; } message B { int32 b = 1; }"},
    {"add enum value", "enum E { E_UNSPECIFIED = 0; } message M { E e = 1; }",
     "enum E { E_UNSPECIFIED = 0; E_A = 1; } message M { E e = 1; }"},
    {"delete enum value", "enum E { E_UNSPECIFIED = 0; E_A = 1; } message M { E e = 1; }",
     "enum E { E_UNSPECIFIED = 0; } message M { E e = 1; }"},
    {"rename enum value", "enum E { E_UNSPECIFIED = 0; E_A = 1; } message M { E e = 1; }",
     "enum E { E_UNSPECIFIED = 0; E_B = 1; } message M { E e = 1; }"},
    {"proto3 optional", "message M { int32 a = 1; }", "message M { optional int32 a = 1; }"},
    {"reorder top-level messages", "message A { int32 a = 1; } message B { int32 b = 1; }",
     "message B { int32 b = 1; } message A { int32 a = 1; }",
     "Confluent frames name the record type by message index: reordering breaks existing records; "
     "buf compares by name"},
};

TEST(BufOracleTest, VerdictsAgreeWithBufWireJson) {
  const std::string base = absl::StrCat(std::getenv("TEST_TMPDIR"), "/buf");
  ASSERT_TRUE(fs::exists(Buf())) << "buf not installed at " << Buf() << ": run tools/setup/setup.sh";
  int agreed = 0, documented = 0;
  for (const Case& c : kCases) {
    std::string buf_out, reasons;
    bool buf = BufSaysBreaking(base, c, &buf_out);
    bool ours = PolderSaysBreaking(c, &reasons);
    if (std::string(c.differs_because).empty()) {
      EXPECT_EQ(ours, buf) << c.name << "\n  polder: " << (ours ? reasons : "compatible") << "\n  buf: " << buf_out;
      ++agreed;
    } else {
      EXPECT_NE(ours, buf) << c.name << ": a documented difference no longer holds: " << c.differs_because;
      ++documented;
    }
  }
  RecordProperty("agreed", agreed);
  RecordProperty("documented_differences", documented);
}

}  // namespace
}  // namespace polder
