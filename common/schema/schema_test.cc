#include "common/schema/schema.h"

#include <string>

#include "absl/strings/escaping.h"
#include "common/status/status_matchers.h"
#include "common/wire/confluent_frame.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace schema {
namespace {

using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kBikes[] = R"(
syntax = "proto3";
package polder.datasets.mobility.v1;
import "google/protobuf/timestamp.proto";

// Counts of bicycles passing a counter.
message BikeCount {
  string counter_id = 1;
  google.protobuf.Timestamp event_time = 2;
  int64 count = 3;
  message Direction {
    string name = 1;
  }
  Direction direction = 4;
}

message CounterInfo {
  string counter_id = 1;
  double latitude = 2;
}
)";

TEST(SchemaTest, ParsesTextAndFindsMessagesByIndexes) {
  ASSERT_OK_AND_ASSIGN(auto s, ParsedSchema::Parse(kBikes, {}));
  EXPECT_EQ(s->file()->package(), "polder.datasets.mobility.v1");
  ASSERT_OK_AND_ASSIGN(const auto* first, s->MessageByIndexes({0}));
  EXPECT_EQ(first->full_name(), "polder.datasets.mobility.v1.BikeCount");
  ASSERT_OK_AND_ASSIGN(const auto* second, s->MessageByIndexes({1}));
  EXPECT_EQ(second->name(), "CounterInfo");
  ASSERT_OK_AND_ASSIGN(const auto* nested, s->MessageByIndexes({0, 0}));
  EXPECT_EQ(nested->full_name(), "polder.datasets.mobility.v1.BikeCount.Direction");
  EXPECT_THAT(*s->IndexesOf("polder.datasets.mobility.v1.BikeCount.Direction"), ElementsAre(0, 0));
  EXPECT_THAT(*s->IndexesOf("polder.datasets.mobility.v1.CounterInfo"), ElementsAre(1));
  EXPECT_THAT(s->IndexesOf("x.Y"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(s->MessageNames(), ElementsAre("polder.datasets.mobility.v1.BikeCount",
                                             "polder.datasets.mobility.v1.BikeCount.Direction",
                                             "polder.datasets.mobility.v1.CounterInfo"));
  EXPECT_THAT(s->MessageByIndexes({2}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("the schema has 2 top-level message(s)")));
  EXPECT_THAT(s->MessageByIndexes({5, 1, 3}), StatusIs(absl::StatusCode::kInvalidArgument,
                                                       HasSubstr("omitted the message indexes")));
}

TEST(SchemaTest, SameSchemaSameCanonicalFormWhicheverFormWasSent) {
  ASSERT_OK_AND_ASSIGN(auto text, ParsedSchema::Parse(kBikes, {}));
  // Whitespace and comments do not matter.
  std::string reformatted = std::string(kBikes);
  reformatted.insert(0, "// A comment\n\n");
  ASSERT_OK_AND_ASSIGN(auto text2, ParsedSchema::Parse(reformatted, {}));
  EXPECT_EQ(text->CanonicalBytes(), text2->CanonicalBytes());
  // The base64 FileDescriptorProto form (as the JS client sends it), under another file name
  // and with json_name filled in as protoc does (counter_id -> counterId).
  google::protobuf::FileDescriptorProto p = text->descriptor_proto();
  p.set_name("mobility.proto");
  for (auto& m : *p.mutable_message_type()) {
    for (auto& f : *m.mutable_field()) {
      std::string j;
      bool up = false;
      for (char c : f.name()) {
        if (c == '_') {
          up = true;
          continue;
        }
        j.push_back(up ? static_cast<char>(toupper(c)) : c);
        up = false;
      }
      f.set_json_name(j);
    }
  }
  std::string b64;
  absl::Base64Escape(p.SerializeAsString(), &b64);
  ASSERT_OK_AND_ASSIGN(auto serialized, ParsedSchema::Parse(b64, {}));
  EXPECT_EQ(serialized->CanonicalBytes(), text->CanonicalBytes());
  EXPECT_EQ(serialized->CanonicalHash(), text->CanonicalHash());
  // And back: the text printed from a schema parses to the same canonical form.
  ASSERT_OK_AND_ASSIGN(auto printed, ParsedSchema::Parse(text->ToProtoText(), {}));
  EXPECT_EQ(printed->CanonicalBytes(), text->CanonicalBytes());
  ASSERT_OK_AND_ASSIGN(auto from_b64, ParsedSchema::Parse(text->ToSerializedBase64(), {},
                                                          {InputFormat::kSerialized}));
  EXPECT_EQ(from_b64->CanonicalBytes(), text->CanonicalBytes());
  // A custom JSON name changes the JSON mapping: another schema.
  google::protobuf::FileDescriptorProto custom = text->descriptor_proto();
  custom.mutable_message_type(0)->mutable_field(0)->set_json_name("id");
  std::string custom_b64;
  absl::Base64Escape(custom.SerializeAsString(), &custom_b64);
  ASSERT_OK_AND_ASSIGN(auto custom_schema, ParsedSchema::Parse(custom_b64, {}));
  EXPECT_NE(custom_schema->CanonicalBytes(), text->CanonicalBytes());
  // A real change is a different schema.
  std::string changed = kBikes;
  changed.replace(changed.find("int64 count = 3"), 15, "int32 count = 3");
  ASSERT_OK_AND_ASSIGN(auto other, ParsedSchema::Parse(changed, {}));
  EXPECT_NE(other->CanonicalBytes(), text->CanonicalBytes());
}

TEST(SchemaTest, ImportsResolveThroughReferences) {
  constexpr char kCommon[] =
      "syntax = \"proto3\"; package polder.common.v1; message Location { double lat = 1; double "
      "lon = 2; }";
  constexpr char kParking[] = R"(syntax = "proto3";
package polder.datasets.parking.v1;
import "polder/common/v1/location.proto";
message Occupancy { string garage_id = 1; polder.common.v1.Location location = 2; int32 free = 3; })";
  ASSERT_OK_AND_ASSIGN(auto common, ParsedSchema::Parse(kCommon, {}));
  EXPECT_THAT(ParsedSchema::Parse(kParking, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("import \"polder/common/v1/location.proto\" is not resolved")));
  ResolvedReference ref{"polder/common/v1/location.proto", "polder.common.v1.Location", 1, common};
  ASSERT_OK_AND_ASSIGN(auto parking, ParsedSchema::Parse(kParking, {ref}));
  ASSERT_OK_AND_ASSIGN(const auto* occ, parking->MessageByIndexes({0}));
  EXPECT_EQ(occ->FindFieldByName("location")->message_type()->full_name(),
            "polder.common.v1.Location");
  // The references are part of the identity: the same text with another version is another schema.
  ResolvedReference v2 = ref;
  v2.version = 2;
  ASSERT_OK_AND_ASSIGN(auto parking2, ParsedSchema::Parse(kParking, {v2}));
  EXPECT_NE(parking2->CanonicalBytes(), parking->CanonicalBytes());
}

TEST(SchemaTest, BadSchemasAreRefusedWithReasons) {
  EXPECT_THAT(
      ParsedSchema::Parse("syntax = \"proto3\";\nmessage A {\n  string a = 1\n}\n", {}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid .proto schema: line 4:1")));
  EXPECT_THAT(
      ParsedSchema::Parse("syntax = \"proto3\"; message A { Missing m = 1; }", {}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"Missing\" is not defined")));
  EXPECT_THAT(
      ParsedSchema::Parse("syntax = \"proto3\"; message A { string a = 1; string b = 1; }", {}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("Field number 1 has already been used")));
  EXPECT_THAT(ParsedSchema::Parse("!!!not base64!!!", {}, {InputFormat::kSerialized}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid base64")));
  EXPECT_THAT(ParsedSchema::Parse("", {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  // Found by the proto_schema fuzzer: an escape in a string option makes invalid UTF-8.
  EXPECT_THAT(ParsedSchema::Parse(
                  "syntax = \"proto3\"; option java_package = \"nl.\\377\"; message A {}", {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("options.java_package is not valid UTF-8")));
  ParseOptions small;
  small.max_bytes = 16;
  EXPECT_THAT(ParsedSchema::Parse(kBikes, {}, small),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("the limit is 16")));
}

TEST(SchemaTest, DynamicMessagesRoundTripThroughAConfluentFrame) {
  ASSERT_OK_AND_ASSIGN(auto s, ParsedSchema::Parse(kBikes, {}));
  ASSERT_OK_AND_ASSIGN(const auto* d, s->MessageByIndexes({0, 0}));
  auto m = s->NewMessage(d);
  ASSERT_NE(m, nullptr);
  m->GetReflection()->SetString(m.get(), d->FindFieldByName("name"), "north");
  std::string frame = wire::Encode(42, {0, 0}, m->SerializeAsString());
  ASSERT_OK_AND_ASSIGN(wire::Frame f, wire::Decode(frame));
  ASSERT_OK_AND_ASSIGN(const auto* back_type, s->MessageByIndexes(f.message_indexes));
  auto back = s->NewMessage(back_type);
  ASSERT_TRUE(back->ParseFromArray(f.payload.data(), static_cast<int>(f.payload.size())));
  EXPECT_EQ(back->GetReflection()->GetString(*back, back_type->FindFieldByName("name")), "north");
}

}  // namespace
}  // namespace schema
}  // namespace polder
