#include "common/schema/record_layout.h"

#include <map>

#include "common/schema/schema.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/polder/datasets/standard_parsed.h"
#include "proto/polder/datasets/standard_sources.h"

namespace polder {
namespace schema {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

std::map<std::string, std::shared_ptr<const ParsedSchema>> ParseStandard() {
  auto parsed = datasets::ParseStandardSchemas();
  EXPECT_OK(parsed.status());
  return parsed.ok() ? *parsed : std::map<std::string, std::shared_ptr<const ParsedSchema>>{};
}

TEST(RecordLayoutTest, EveryStandardDatasetHasItsMetadataFields) {
  auto parsed = ParseStandard();
  int datasets = 0;
  ASSERT_OK_AND_ASSIGN(std::vector<datasets::StandardSchema> standard, datasets::StandardSchemas());
  for (const datasets::StandardSchema& s : standard) {
    if (s.dataset_id.empty()) continue;
    const auto* d = parsed[s.subject]->file()->pool()->FindMessageTypeByName(s.subject);
    ASSERT_NE(d, nullptr);
    ASSERT_OK_AND_ASSIGN(RecordLayout layout, RecordLayoutOf(d));
    // The same fields the generated descriptors mark.
    const auto* g =
        google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(s.subject);
    ASSERT_NE(g, nullptr);
    ASSERT_OK_AND_ASSIGN(RecordLayout generated, RecordLayoutOf(g));
    EXPECT_EQ(layout.entity_id->number(), generated.entity_id->number()) << s.subject;
    EXPECT_EQ(layout.event_time->number(), generated.event_time->number()) << s.subject;
    EXPECT_NE(layout.location, nullptr) << s.subject;
    EXPECT_EQ(layout.dataset_id, s.dataset_id);
    EXPECT_GT(layout.personal_data, 0) << s.subject << " declares its personal-data class";
    ++datasets;
  }
  EXPECT_EQ(datasets, 7);
}

std::shared_ptr<const ParsedSchema> WithOptions(const std::string& body) {
  auto parsed = ParseStandard();
  auto options = parsed["polder/datasets/common/v1/options.proto"];
  auto location = parsed["polder/datasets/common/v1/location.proto"];
  auto s = ParsedSchema::Parse(
      absl::StrCat("syntax = \"proto3\"; package t; import \"google/protobuf/timestamp.proto\"; "
                   "import \"polder/datasets/common/v1/options.proto\"; "
                   "import \"polder/datasets/common/v1/location.proto\"; ",
                   body),
      {{"polder/datasets/common/v1/options.proto", "o", 1, options},
       {"polder/datasets/common/v1/location.proto", "l", 1, location}});
  EXPECT_OK(s.status());
  return *s;
}

constexpr char kId[] = "[(polder.datasets.common.v1.entity_id) = true]";
constexpr char kTime[] = "[(polder.datasets.common.v1.event_time) = true]";

TEST(RecordLayoutTest, RefusesMessagesWithoutExactlyOneOfEach) {
  auto missing = WithOptions(absl::StrCat("message M { string id = 1 ", kId, "; }"));
  EXPECT_THAT(RecordLayoutOf(missing->file()->message_type(0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing: event_time")));
  auto twice = WithOptions(absl::StrCat("message M { string a = 1 ", kId, "; string b = 2 ", kId,
                                        "; google.protobuf.Timestamp t = 3 ", kTime, "; }"));
  EXPECT_THAT(RecordLayoutOf(twice->file()->message_type(0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("both a and b are marked")));
  auto wrong = WithOptions(absl::StrCat("message M { int64 a = 1 ", kId,
                                        "; google.protobuf.Timestamp t = 3 ", kTime, "; }"));
  EXPECT_THAT(RecordLayoutOf(wrong->file()->message_type(0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be a singular string")));
  auto time =
      WithOptions(absl::StrCat("message M { string a = 1 ", kId, "; int64 t = 3 ", kTime, "; }"));
  EXPECT_THAT(RecordLayoutOf(time->file()->message_type(0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("google.protobuf.Timestamp")));
}

TEST(RecordLayoutTest, ReadsEntityIdAndEventTime) {
  auto s = WithOptions(absl::StrCat("message M { string a = 1 ", kId,
                                    "; google.protobuf.Timestamp t = 2 ", kTime, "; }"));
  const auto* d = s->file()->message_type(0);
  ASSERT_OK_AND_ASSIGN(RecordLayout layout, RecordLayoutOf(d));
  auto m = s->NewMessage(d);
  EXPECT_THAT(ReadRecordMetadata(layout, *m),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("a: the entity id")));
  m->GetReflection()->SetString(m.get(), layout.entity_id, "counter-1");
  EXPECT_THAT(ReadRecordMetadata(layout, *m), StatusIs(absl::StatusCode::kInvalidArgument,
                                                       HasSubstr("t: the event time is missing")));
  auto* ts = m->GetReflection()->MutableMessage(m.get(), layout.event_time);
  ts->GetReflection()->SetInt64(ts, ts->GetDescriptor()->FindFieldByNumber(1), 1700000000);
  ts->GetReflection()->SetInt32(ts, ts->GetDescriptor()->FindFieldByNumber(2), 500);
  ASSERT_OK_AND_ASSIGN(RecordMetadata meta, ReadRecordMetadata(layout, *m));
  EXPECT_EQ(meta.entity_id, "counter-1");
  EXPECT_EQ(meta.event_time, absl::FromUnixSeconds(1700000000) + absl::Nanoseconds(500));
}

}  // namespace
}  // namespace schema
}  // namespace polder
