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
#include "common/testing/commands.h"
#include "gtest/gtest.h"
#include "services/registry/protobuf_compatibility.h"

namespace polder {
namespace {

namespace fs = std::filesystem;

std::string Buf() { return testing::NpmHome() + "/node_modules/.bin/buf"; }

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
                                 "'{\"version\":\"v1\",\"breaking\":{\"use\":[\"WIRE_JSON\"]}}'");
  int code = testing::RunCommand(cmd, out);
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
    {"int32 to int64", "message M { int32 a = 1; }", "message M { int64 a = 1; }"},
    {"int32 to uint32", "message M { int32 a = 1; }", "message M { uint32 a = 1; }",
     "negative int32 values read as huge uint32 numbers (and fail JSON parsing): Polder refuses "
     "the reinterpretation; buf accepts the shared varint encoding"},
    {"int32 to sint32", "message M { int32 a = 1; }", "message M { sint32 a = 1; }"},
    {"fixed32 to sfixed32", "message M { fixed32 a = 1; }", "message M { sfixed32 a = 1; }",
     "values above 2^31 change sign: Polder refuses; buf accepts the shared fixed32 encoding"},
    {"bool to int32", "message M { bool a = 1; }", "message M { int32 a = 1; }"},
    {"enum to int32", "enum E { E_UNSPECIFIED = 0; } message M { E a = 1; }", "enum E { E_UNSPECIFIED = 0; } message M { int32 a = 1; }"},
    {"message type changed", "message A { int32 x = 1; } message B { int32 x = 1; } message M { A a = 1; }",
     "message A { int32 x = 1; } message B { int32 x = 1; } message M { B a = 1; }"},
    {"float to double", "message M { float a = 1; }", "message M { double a = 1; }"},
    {"repeated to singular", "message M { repeated int32 a = 1; }", "message M { int32 a = 1; }"},
    {"packed to unpacked", "message M { repeated int32 a = 1; }", "message M { repeated int32 a = 1 [packed = false]; }"},
    {"out of a oneof", "message M { oneof o { int32 a = 1; int32 b = 2; } }", "message M { oneof o { int32 a = 1; } int32 b = 2; }"},
    {"new oneof with new fields", "message M { int32 a = 1; }", "message M { int32 a = 1; oneof o { int32 b = 2; string c = 3; } }"},
    {"rename oneof", "message M { oneof o { int32 a = 1; } }", "message M { oneof p { int32 a = 1; } }"},
    {"renumber field", "message M { int32 a = 1; }", "message M { int32 a = 2; }"},
    {"custom json_name", "message M { int32 a = 1; }", "message M { int32 a = 1 [json_name = \"alpha\"]; }"},
    {"add nested message", "message M { int32 a = 1; }", "message M { int32 a = 1; message N { int32 x = 1; } N n = 2; }"},
    {"rename message", "message M { int32 a = 1; }", "message N { int32 a = 1; }",
     "the message's full name is the subject (RecordNameStrategy) and the CloudEvents ce_type: "
     "renaming makes another dataset; buf's WIRE_JSON rules do not compare message names"},
    {"move field to nested", "message M { int32 a = 1; int32 b = 2; }", "message M { int32 a = 1; message N { int32 b = 2; } }"},
    {"enum value renumbered", "enum E { E_UNSPECIFIED = 0; E_A = 1; } message M { E e = 1; }",
     "enum E { E_UNSPECIFIED = 0; E_A = 2; } message M { E e = 1; }"},
    {"delete enum value, reserved", "enum E { E_UNSPECIFIED = 0; E_A = 1; } message M { E e = 1; }",
     "enum E { E_UNSPECIFIED = 0; reserved 1; reserved \"E_A\"; } message M { E e = 1; }"},
    {"reuse reserved number", "message M { int32 a = 1; reserved 2; }", "message M { int32 a = 1; string b = 2; }"},
    {"drop a reservation", "message M { int32 a = 1; reserved 2; }", "message M { int32 a = 1; }"},
    {"add map field", "message M { int32 a = 1; }", "message M { int32 a = 1; map<string, int32> m = 2; }"},
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
