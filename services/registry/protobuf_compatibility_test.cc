#include "services/registry/protobuf_compatibility.h"

#include <string>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace registry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::shared_ptr<const schema::ParsedSchema> P(const std::string& body) {
  auto s = schema::ParsedSchema::Parse(absl::StrCat("syntax = \"proto3\"; package p; ", body), {});
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

std::vector<std::string> Backward(const std::string& old_body, const std::string& new_body) {
  return CompareForReading(*P(new_body), *P(old_body), ReaderIs::kNewer);
}

std::vector<std::string> Forward(const std::string& old_body, const std::string& new_body) {
  return CompareForReading(*P(old_body), *P(new_body), ReaderIs::kOlder);
}

TEST(ProtobufCompatibilityTest, AddingAFieldIsReadableBackwards) {
  EXPECT_THAT(Backward("message M { string a = 1; }", "message M { string a = 1; int32 b = 2; }"),
              IsEmpty());
}

TEST(ProtobufCompatibilityTest, RemovingAFieldNeedsItsNumberAndNameReserved) {
  EXPECT_THAT(
      Backward("message M { string a = 1; int32 b = 2; }", "message M { string a = 1; }"),
      ElementsAre(HasSubstr("p.M.b (2) was deleted without reserving its number and name")));
  EXPECT_THAT(Backward("message M { string a = 1; int32 b = 2; }",
                       "message M { string a = 1; reserved 2; reserved \"b\"; }"),
              IsEmpty());
  EXPECT_THAT(Backward("message M { string a = 1; int32 b = 2; }",
                       "message M { string a = 1; reserved 2; }"),
              ElementsAre(HasSubstr("deleted without reserving its name")));
}

TEST(ProtobufCompatibilityTest, TypeNameAndCardinalityChanges) {
  EXPECT_THAT(Backward("message M { int64 a = 1; }", "message M { string a = 1; }"),
              ElementsAre(HasSubstr("changed type between int64 and string")));
  EXPECT_THAT(Backward("message M { int32 a = 1; }", "message M { int32 b = 1; }"),
              ElementsAre(HasSubstr("named 'b' (JSON 'b') in the newer version")));
  EXPECT_THAT(Backward("message M { int32 a = 1; }", "message M { repeated int32 a = 1; }"),
              ElementsAre(HasSubstr("between repeated and singular")));
  EXPECT_THAT(Backward("message M { int32 a = 1; int32 b = 2; }",
                       "message M { oneof o { int32 a = 1; } int32 b = 2; }"),
              ElementsAre(HasSubstr("moved between oneofs")));
  EXPECT_THAT(Backward("message M { int32 a = 1; }", "message M { optional int32 a = 1; }"),
              IsEmpty())
      << "proto3 optional changes neither wire nor JSON";
}

TEST(ProtobufCompatibilityTest, MessageIndexesAndPackagesMustStay) {
  EXPECT_THAT(Backward("message A {} message B {}", "message B {} message A {}"),
              ::testing::SizeIs(2));
  EXPECT_THAT(Backward("message A {} message B {}", "message A {} message C {} message B {}"),
              ElementsAre(HasSubstr("p.B moved from index [1] to [2]")));
  EXPECT_THAT(Backward("message A {} message B {}", "message A {} message B {} message C {}"),
              IsEmpty())
      << "appending a message keeps every index";
  EXPECT_THAT(
      CompareForReading(
          *schema::ParsedSchema::Parse("syntax = \"proto3\"; package q; message A {}", {}).value(),
          *P("message A {}"), ReaderIs::kNewer),
      ElementsAre(HasSubstr("message p.A [0] is gone")));
}

TEST(ProtobufCompatibilityTest, EnumValues) {
  EXPECT_THAT(Backward("message M { enum E { E_UNSPECIFIED = 0; E_A = 1; } E e = 1; }",
                       "message M { enum E { E_UNSPECIFIED = 0; E_A = 1; E_B = 2; } E e = 1; }"),
              IsEmpty());
  EXPECT_THAT(Backward("message M { enum E { E_UNSPECIFIED = 0; E_A = 1; } E e = 1; }",
                       "message M { enum E { E_UNSPECIFIED = 0; } E e = 1; }"),
              ElementsAre(HasSubstr("p.M.E.E_A (1) was deleted without reserving")));
  EXPECT_THAT(Backward("message M { enum E { E_UNSPECIFIED = 0; E_A = 1; } E e = 1; }",
                       "message M { enum E { E_UNSPECIFIED = 0; E_X = 1; } E e = 1; }"),
              ElementsAre(HasSubstr("named 'E_X' and 'E_A'")));
}

TEST(ProtobufCompatibilityTest, ReservedNumbersAndNamesAreHonoured) {
  EXPECT_THAT(Backward("message M { reserved 2; reserved \"b\"; }", "message M { int32 b = 2; }"),
              ::testing::IsSupersetOf({HasSubstr("reserved numbers 2 to 2 are no longer reserved"),
                                       HasSubstr("reserved name 'b' is no longer reserved")}));
  EXPECT_THAT(Backward("message M { int32 a = 1; reserved 2; }", "message M { int32 a = 1; }"),
              ElementsAre(HasSubstr(
                  "reserved numbers 2 to 2 are no longer reserved in the newer version")));
  EXPECT_THAT(
      Forward("message M { int32 a = 1; reserved 2; }", "message M { int32 a = 1; }"),
      ElementsAre(HasSubstr("reserved numbers 2 to 2 are no longer reserved in the newer version")))
      << "the newer version keeps the older's reservations whichever side reads";
  EXPECT_THAT(Forward("message M { int32 a = 1; }", "message M { int32 a = 1; reserved 2 to 5; }"),
              IsEmpty());
  EXPECT_THAT(
      Forward("message M { int32 a = 1; reserved 2; }", "message M { int32 a = 1; string b = 2; }"),
      ::testing::Contains(
          HasSubstr("takes a number the older version reserves for another field")));
  EXPECT_THAT(Backward("enum E { E_UNSPECIFIED = 0; reserved 3 to 4; } message M { E e = 1; }",
                       "enum E { E_UNSPECIFIED = 0; reserved 3; } message M { E e = 1; }"),
              ElementsAre(HasSubstr("enum p.E: reserved numbers 3 to 4 are no longer reserved")));
}

// FORWARD (the older version reads the newer one's records): additions are readable — unknown
// fields are skipped, unknown enum numbers kept — while renames, type changes and moves are not.
TEST(ProtobufCompatibilityTest, ForwardAcceptsAdditionsAndRefusesChanges) {
  EXPECT_THAT(Forward("message M { string a = 1; }", "message M { string a = 1; int32 b = 2; }"),
              IsEmpty());
  EXPECT_THAT(Forward("message M { enum E { E_UNSPECIFIED = 0; } E e = 1; }",
                      "message M { enum E { E_UNSPECIFIED = 0; E_A = 1; } E e = 1; }"),
              IsEmpty());
  EXPECT_THAT(Forward("message A {}", "message A {} message B { int32 x = 1; }"), IsEmpty());
  EXPECT_THAT(Forward("message M { string a = 1; int32 b = 2; }", "message M { string a = 1; }"),
              IsEmpty())
      << "older readers see the default; the BACKWARD direction asks for the reservation";
  EXPECT_THAT(Forward("message M { int32 a = 1; }", "message M { int32 b = 1; }"),
              ElementsAre(HasSubstr("in the older version; JSON uses names")));
  EXPECT_THAT(Forward("message M { int32 a = 1; }", "message M { int64 a = 1; }"),
              ElementsAre(HasSubstr("changed type between int64 and int32")));
  EXPECT_THAT(Forward("message A {} message B {}", "message B {} message A {}"),
              ::testing::SizeIs(2));
  EXPECT_THAT(
      CompareForReading(
          *P("message A {}"),
          *schema::ParsedSchema::Parse("syntax = \"proto3\"; package q; message A {}", {}).value(),
          ReaderIs::kOlder),
      ElementsAre(HasSubstr("message p.A [0] is gone from the newer version")));
}

TEST(ProtobufCompatibilityTest, MovingARecordMetadataOptionIsRefused) {
  // The option is read by number (51001), so a local extension with that number stands in for
  // polder.datasets.common.v1.entity_id.
  constexpr char kExt[] =
      "import \"google/protobuf/descriptor.proto\"; "
      "extend google.protobuf.FieldOptions { bool entity_id = 51001; } ";
  EXPECT_THAT(
      Backward(
          absl::StrCat(kExt, "message M { string a = 1 [(entity_id) = true]; string b = 2; }"),
          absl::StrCat(kExt, "message M { string a = 1; string b = 2 [(entity_id) = true]; }")),
      ::testing::IsSupersetOf({HasSubstr("p.M.a (1) is the record's entity id on one side only"),
                               HasSubstr("p.M.b (2) is the record's entity id on one side only")}));
  EXPECT_THAT(Backward(absl::StrCat(kExt, "message M { string a = 1 [(entity_id) = true]; }"),
                       absl::StrCat(
                           kExt, "message M { string a = 1 [(entity_id) = true]; string c = 3; }")),
              IsEmpty());
}

}  // namespace
}  // namespace registry
}  // namespace polder
