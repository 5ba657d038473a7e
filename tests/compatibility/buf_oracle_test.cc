// Each schema change goes through Polder's engine and through `buf breaking` (WIRE_JSON), in
// both directions: BACKWARD — can the new version read records written with the old one?
// (`buf breaking new --against old`) — and FORWARD — can the old version read the new one's?
// (the arguments swapped: `buf breaking old --against new`). The transitive levels are checked
// by looping buf over every earlier version. The verdicts (breaking or not) must agree, except
// where a case states why Polder differs (ADR 0007 explains the rules; Confluent's verdicts are
// compared in docs/compatibility.md).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/schema/schema.h"
#include "common/testing/commands.h"
#include "gtest/gtest.h"
#include "services/registry/compatibility.h"
#include "services/registry/protobuf_compatibility.h"

namespace polder {
namespace {

namespace fs = std::filesystem;

std::string Buf() { return testing::NpmHome() + "/node_modules/.bin/buf"; }

struct Case {
  const char* name;
  const char* before;
  const char* after;
  // Empty: Polder and buf agree on BACKWARD. Otherwise why Polder's verdict differs from buf's.
  const char* differs_because = "";
  // The same for FORWARD.
  const char* forward_differs_because = "";
};

// Sources start with "package" when a case changes it; otherwise `package p;` is prepended.
std::string Source(const char* body) {
  return absl::StartsWith(body, "package")
             ? absl::StrCat("syntax = \"proto3\";\n", body, "\n")
             : absl::StrCat("syntax = \"proto3\";\npackage p;\n", body, "\n");
}

// Runs `buf breaking <newer> --against <older>`; true if it reports a breaking change (exit
// 100), with its findings in *out.
bool BufSaysBreaking(const std::string& dir, const std::string& older, const std::string& newer,
                     const std::string& name, std::string* out) {
  fs::remove_all(dir);
  fs::create_directories(dir + "/old");
  fs::create_directories(dir + "/new");
  std::ofstream(dir + "/old/s.proto") << older;
  std::ofstream(dir + "/new/s.proto") << newer;
  std::string cmd = absl::StrCat("cd ", dir, " && ", Buf(),
                                 " breaking new --against old --config "
                                 "'{\"version\":\"v1\",\"breaking\":{\"use\":[\"WIRE_JSON\"]}}'");
  int code = testing::RunCommand(cmd, out);
  EXPECT_TRUE(code == 0 || code == 100) << name << ": buf failed (" << code << "): " << *out;
  return code == 100;
}

std::shared_ptr<const schema::ParsedSchema> Parse(const std::string& source,
                                                  const std::string& name) {
  auto parsed = schema::ParsedSchema::Parse(source, {});
  EXPECT_TRUE(parsed.ok()) << name << ": " << parsed.status();
  return parsed.ok() ? *parsed : nullptr;
}

// FORWARD runs buf with the versions swapped, so buf sees an addition as a deletion and a new
// reservation as a dropped one. Polder knows which version is newer (ADR 0007):
constexpr char kAddedField[] =
    "an added field: older readers skip unknown fields, and Polder never parses JSON text with "
    "another version than its writer's; buf sees the swapped addition as a deletion";
constexpr char kAddedEnumValue[] =
    "an added enum value: older readers keep the unknown number (proto3 enums are open); buf sees "
    "the swapped addition as a deletion";
constexpr char kReservationAdded[] =
    "the newer version reserves more than the older: buf sees the swapped reservation as dropped";
constexpr char kReservationDropped[] =
    "the newer version dropped a reservation of the older: Polder refuses that whichever side "
    "reads (a later version could reuse it); buf sees the swapped drop as an added reservation";
constexpr char kMessageIndex[] =
    "Confluent frames name the record type by message index and full name: records naming a "
    "deleted or moved message cannot be read; buf's WIRE_JSON rules do not compare messages";

// Deliberately stricter than buf in both directions:
constexpr char kInt32Uint32[] =
    "negative int32 values read as huge uint32 numbers (and fail JSON parsing): Polder refuses "
    "the reinterpretation; buf accepts the shared varint encoding";
constexpr char kFixedSign[] =
    "values above 2^31 change sign: Polder refuses; buf accepts the shared fixed32 encoding";
constexpr char kRenamedMessage[] =
    "the message's full name is the subject (RecordNameStrategy) and the CloudEvents ce_type: "
    "renaming makes another dataset; buf's WIRE_JSON rules do not compare message names";
constexpr char kReordered[] =
    "Confluent frames name the record type by message index: reordering breaks existing records; "
    "buf compares by name";

const Case kCases[] = {
    {"add field", "message M { string a = 1; }", "message M { string a = 1; int32 b = 2; }", "",
     kAddedField},
    {"delete field", "message M { string a = 1; int32 b = 2; }", "message M { string a = 1; }"},
    {"delete field, number and name reserved", "message M { string a = 1; int32 b = 2; }",
     "message M { string a = 1; reserved 2; reserved \"b\"; }", "", kReservationAdded},
    {"delete field, only number reserved", "message M { string a = 1; int32 b = 2; }",
     "message M { string a = 1; reserved 2; }", "", kReservationAdded},
    {"rename field", "message M { int32 a = 1; }", "message M { int32 b = 1; }"},
    {"int64 to string", "message M { int64 a = 1; }", "message M { string a = 1; }"},
    {"string to bytes", "message M { string a = 1; }", "message M { bytes a = 1; }"},
    {"singular to repeated", "message M { int32 a = 1; }", "message M { repeated int32 a = 1; }"},
    {"into a oneof", "message M { int32 a = 1; int32 b = 2; }",
     "message M { oneof o { int32 a = 1; } int32 b = 2; }"},
    {"add message", "message A { int32 a = 1; }",
     "message A { int32 a = 1; } message B { int32 b = 1; }"},
    {"add enum value", "enum E { E_UNSPECIFIED = 0; } message M { E e = 1; }",
     "enum E { E_UNSPECIFIED = 0; E_A = 1; } message M { E e = 1; }", "", kAddedEnumValue},
    {"delete enum value", "enum E { E_UNSPECIFIED = 0; E_A = 1; } message M { E e = 1; }",
     "enum E { E_UNSPECIFIED = 0; } message M { E e = 1; }"},
    {"rename enum value", "enum E { E_UNSPECIFIED = 0; E_A = 1; } message M { E e = 1; }",
     "enum E { E_UNSPECIFIED = 0; E_B = 1; } message M { E e = 1; }"},
    {"proto3 optional", "message M { int32 a = 1; }", "message M { optional int32 a = 1; }"},
    {"int32 to int64", "message M { int32 a = 1; }", "message M { int64 a = 1; }"},
    {"int32 to uint32", "message M { int32 a = 1; }", "message M { uint32 a = 1; }", kInt32Uint32,
     kInt32Uint32},
    {"int32 to sint32", "message M { int32 a = 1; }", "message M { sint32 a = 1; }"},
    {"fixed32 to sfixed32", "message M { fixed32 a = 1; }", "message M { sfixed32 a = 1; }",
     kFixedSign, kFixedSign},
    {"bool to int32", "message M { bool a = 1; }", "message M { int32 a = 1; }"},
    {"enum to int32", "enum E { E_UNSPECIFIED = 0; } message M { E a = 1; }",
     "enum E { E_UNSPECIFIED = 0; } message M { int32 a = 1; }"},
    {"message type changed",
     "message A { int32 x = 1; } message B { int32 x = 1; } message M { A a = 1; }",
     "message A { int32 x = 1; } message B { int32 x = 1; } message M { B a = 1; }"},
    {"float to double", "message M { float a = 1; }", "message M { double a = 1; }"},
    {"repeated to singular", "message M { repeated int32 a = 1; }", "message M { int32 a = 1; }"},
    {"packed to unpacked", "message M { repeated int32 a = 1; }",
     "message M { repeated int32 a = 1 [packed = false]; }"},
    {"out of a oneof", "message M { oneof o { int32 a = 1; int32 b = 2; } }",
     "message M { oneof o { int32 a = 1; } int32 b = 2; }"},
    {"new oneof with new fields", "message M { int32 a = 1; }",
     "message M { int32 a = 1; oneof o { int32 b = 2; string c = 3; } }", "", kAddedField},
    {"rename oneof", "message M { oneof o { int32 a = 1; } }",
     "message M { oneof p { int32 a = 1; } }"},
    {"renumber field", "message M { int32 a = 1; }", "message M { int32 a = 2; }"},
    {"custom json_name", "message M { int32 a = 1; }",
     "message M { int32 a = 1 [json_name = \"alpha\"]; }"},
    {"add nested message", "message M { int32 a = 1; }",
     "message M { int32 a = 1; message N { int32 x = 1; } N n = 2; }", "", kAddedField},
    {"rename message", "message M { int32 a = 1; }", "message N { int32 a = 1; }", kRenamedMessage,
     kRenamedMessage},
    {"move field to nested", "message M { int32 a = 1; int32 b = 2; }",
     "message M { int32 a = 1; message N { int32 b = 2; } }"},
    {"enum value renumbered", "enum E { E_UNSPECIFIED = 0; E_A = 1; } message M { E e = 1; }",
     "enum E { E_UNSPECIFIED = 0; E_A = 2; } message M { E e = 1; }"},
    {"delete enum value, reserved", "enum E { E_UNSPECIFIED = 0; E_A = 1; } message M { E e = 1; }",
     "enum E { E_UNSPECIFIED = 0; reserved 1; reserved \"E_A\"; } message M { E e = 1; }", "",
     kReservationAdded},
    {"reuse reserved number", "message M { int32 a = 1; reserved 2; }",
     "message M { int32 a = 1; string b = 2; }"},
    {"drop a reservation", "message M { int32 a = 1; reserved 2; }", "message M { int32 a = 1; }",
     "", kReservationDropped},
    {"add map field", "message M { int32 a = 1; }",
     "message M { int32 a = 1; map<string, int32> m = 2; }", "", kAddedField},
    {"reorder top-level messages", "message A { int32 a = 1; } message B { int32 b = 1; }",
     "message B { int32 b = 1; } message A { int32 a = 1; }", kReordered, kReordered},
    {"change package", "package p; message M { int32 a = 1; }",
     "package q; message M { int32 a = 1; }"},
    {"delete message", "message A { int32 a = 1; } message B { int32 b = 1; }",
     "message A { int32 a = 1; }", kMessageIndex, kMessageIndex},
    {"nest a message in another", "message A { int32 a = 1; } message B { int32 b = 1; }",
     "message A { int32 a = 1; message B { int32 b = 1; } }", kMessageIndex, kMessageIndex},
    {"add enum", "message M { int32 a = 1; }",
     "message M { int32 a = 1; } enum E { E_UNSPECIFIED = 0; }"},
    {"delete unused enum", "message M { int32 a = 1; } enum E { E_UNSPECIFIED = 0; }",
     "message M { int32 a = 1; }"},
    {"add field to existing oneof", "message M { oneof o { int32 a = 1; } }",
     "message M { oneof o { int32 a = 1; string b = 2; } }", "", kAddedField},
    {"proto3 optional to singular", "message M { optional int32 a = 1; }",
     "message M { int32 a = 1; }"},
    {"message to bytes", "message N { int32 x = 1; } message M { N n = 1; }",
     "message N { int32 x = 1; } message M { bytes n = 1; }"},
    {"sint32 to sint64", "message M { sint32 a = 1; }", "message M { sint64 a = 1; }"},
    {"add reserved range", "message M { int32 a = 1; }",
     "message M { int32 a = 1; reserved 5 to 10; }", "", kReservationAdded},
    {"map value int32 to int64", "message M { map<string, int32> m = 1; }",
     "message M { map<string, int64> m = 1; }"},
    {"enum value added to nested enum", "message M { enum S { S_UNSPECIFIED = 0; } S s = 1; }",
     "message M { enum S { S_UNSPECIFIED = 0; S_ON = 1; } S s = 1; }", "", kAddedEnumValue},
};
std::string BaseDir(const char* leaf) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", leaf);
}

// Every case in both directions. The table of verdicts goes to the test log.
TEST(BufOracleTest, VerdictsAgreeWithBufWireJsonBothWays) {
  ASSERT_TRUE(fs::exists(Buf())) << "buf not installed at " << Buf()
                                 << ": run tools/setup/setup.sh";
  ASSERT_GE(sizeof(kCases) / sizeof(kCases[0]), 40u);
  int agreed = 0, documented = 0;
  for (const Case& c : kCases) {
    const std::string before = Source(c.before), after = Source(c.after);
    auto old_schema = Parse(before, c.name), new_schema = Parse(after, c.name);
    ASSERT_TRUE(old_schema && new_schema);
    struct Direction {
      const char* label;
      const std::string& older_for_buf;  // buf: breaking <newer> --against <older>
      const std::string& newer_for_buf;
      std::vector<std::string> ours;
      const char* differs;
    } directions[] = {
        {"BACKWARD", before, after,
         registry::CompareForReading(*new_schema, *old_schema, registry::ReaderIs::kNewer),
         c.differs_because},
        {"FORWARD", after, before,
         registry::CompareForReading(*old_schema, *new_schema, registry::ReaderIs::kOlder),
         c.forward_differs_because},
    };
    for (const Direction& d : directions) {
      std::string buf_out;
      const bool buf =
          BufSaysBreaking(BaseDir("buf"), d.older_for_buf, d.newer_for_buf, c.name, &buf_out);
      const bool ours = !d.ours.empty();
      std::cout << (ours == buf ? "  agree   " : "  DIFFER  ") << d.label << " " << c.name
                << ": polder " << (ours ? "breaking" : "compatible") << ", buf "
                << (buf ? "breaking" : "compatible") << "\n";
      if (std::string(d.differs).empty()) {
        EXPECT_EQ(ours, buf) << d.label << " " << c.name << "\n  polder: "
                             << (ours ? absl::StrJoin(d.ours, "; ") : "compatible")
                             << "\n  buf: " << buf_out;
        ++agreed;
      } else {
        EXPECT_NE(ours, buf) << d.label << " " << c.name
                             << ": a documented difference no longer holds: " << d.differs;
        ++documented;
      }
    }
  }
  RecordProperty("agreed", agreed);
  RecordProperty("documented_differences", documented);
  std::cout << agreed << " verdicts agree, " << documented << " differ as documented\n";
}

// The transitive levels: registering version k checks it against every earlier version. buf has
// no transitive mode; the oracle is buf run against each earlier version, breaking if any is.
struct History {
  const char* name;
  std::vector<const char*> versions;  // oldest first; the last is the candidate
  const char* level;                  // BACKWARD_TRANSITIVE or FORWARD_TRANSITIVE
  bool latest_only_breaking;          // what the non-transitive level says (Polder)
  const char* differs_because = "";   // why Polder's transitive verdict differs from buf's loop
};

const History kHistories[] = {
    // Versions made while the subject was NONE, then the level raised: only the first version
    // typed field 2 as int32.
    {"history made under NONE, then BACKWARD_TRANSITIVE",
     {"message M { int32 a = 1; int32 b = 2; }", "message M { int32 a = 1; string b = 2; }",
      "message M { int32 a = 1; string b = 2; int32 c = 3; }"},
     "BACKWARD_TRANSITIVE",
     false},
    {"compatible steps stay compatible transitively",
     {"message M { int32 a = 1; }", "message M { int32 a = 1; string b = 2; }",
      "message M { int32 a = 1; reserved 2; reserved \"b\"; string c = 3; }"},
     "BACKWARD_TRANSITIVE",
     false},
    {"a renamed field is caught against every version",
     {"message M { int32 a = 1; }", "message M { int32 a = 1; int32 b = 2; }",
      "message M { int32 z = 1; int32 b = 2; }"},
     "BACKWARD_TRANSITIVE",
     true},
    // FORWARD: deleting b is readable by older versions (they see the default) and re-adding
    // number 2 is readable by the version without it, but not by the first, which typed it.
    {"FORWARD_TRANSITIVE: a number re-added with another type",
     {"message M { int32 a = 1; int32 b = 2; }", "message M { int32 a = 1; }",
      "message M { int32 a = 1; string x = 2; }"},
     "FORWARD_TRANSITIVE",
     false},
    {"FORWARD_TRANSITIVE over additions",
     {"message M { int32 a = 1; }", "message M { int32 a = 1; int32 b = 2; }",
      "message M { int32 a = 1; int32 b = 2; int32 c = 3; }"},
     "FORWARD_TRANSITIVE",
     false,
     kAddedField},
};

TEST(BufOracleTest, TransitiveLevelsLoopOverTheHistory) {
  ASSERT_TRUE(fs::exists(Buf())) << "buf not installed at " << Buf()
                                 << ": run tools/setup/setup.sh";
  auto checker = registry::ProtobufCompatibilityChecker();
  for (const History& h : kHistories) {
    std::vector<std::shared_ptr<const schema::ParsedSchema>> previous;
    for (size_t i = 0; i + 1 < h.versions.size(); ++i) {
      previous.push_back(Parse(Source(h.versions[i]), h.name));
      ASSERT_TRUE(previous.back());
    }
    const std::string candidate_source = Source(h.versions.back());
    auto candidate = Parse(candidate_source, h.name);
    ASSERT_TRUE(candidate);
    const bool forward = absl::StartsWith(h.level, "FORWARD");
    // buf: breaking if the candidate breaks against any earlier version.
    bool buf_any = false, buf_latest = false;
    for (size_t i = 0; i < previous.size(); ++i) {
      std::string out;
      const std::string older = Source(h.versions[i]);
      bool breaking =
          forward ? BufSaysBreaking(BaseDir("buf-t"), candidate_source, older, h.name, &out)
                  : BufSaysBreaking(BaseDir("buf-t"), older, candidate_source, h.name, &out);
      buf_any |= breaking;
      if (i + 1 == previous.size()) buf_latest = breaking;
    }
    std::vector<std::string> transitive = checker->Check(*candidate, previous, h.level);
    std::vector<std::string> latest =
        checker->Check(*candidate, previous, forward ? "FORWARD" : "BACKWARD");
    if (std::string(h.differs_because).empty()) {
      EXPECT_EQ(!transitive.empty(), buf_any)
          << h.name << "\n  polder: " << absl::StrJoin(transitive, "; ");
    } else {
      EXPECT_NE(!transitive.empty(), buf_any)
          << h.name << ": a documented difference no longer holds: " << h.differs_because;
    }
    EXPECT_EQ(!latest.empty(), h.latest_only_breaking)
        << h.name << "\n  polder: " << absl::StrJoin(latest, "; ");
    std::cout << "  " << h.level << " " << h.name << ": polder "
              << (transitive.empty() ? "compatible" : "breaking")
              << " (latest only: " << (latest.empty() ? "compatible" : "breaking")
              << "), buf over the history " << (buf_any ? "breaking" : "compatible")
              << " (latest only: " << (buf_latest ? "breaking" : "compatible") << ")\n";
  }
}

}  // namespace
}  // namespace polder
