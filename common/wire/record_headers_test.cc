#include "common/wire/record_headers.h"

#include <string>
#include <utility>
#include <vector>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace wire {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;
using Headers = std::vector<std::pair<std::string, std::string>>;

TEST(RecordHeadersTest, BothContentTypesNameConfluentFramedProtobuf) {
  EXPECT_TRUE(IsConfluentProtobuf("application/vnd.polder.confluent-protobuf"));
  EXPECT_TRUE(IsConfluentProtobuf("Application/Vnd.Polder.Confluent-Protobuf; charset=binary"));
  EXPECT_TRUE(IsConfluentProtobuf("application/x-protobuf"));
  EXPECT_FALSE(IsConfluentProtobuf("application/protobuf"));
  EXPECT_FALSE(IsConfluentProtobuf("application/json"));
  EXPECT_FALSE(IsConfluentProtobuf(""));
}

TEST(RecordHeadersTest, DataSchemaUrnRoundTrips) {
  EXPECT_EQ(DataSchemaUrn("nl-smartcity", 42), "urn:polder:nl-smartcity:schemas:42");
  ASSERT_OK_AND_ASSIGN(DataSchema ds, ParseDataSchemaUrn("urn:polder:nl-smartcity:schemas:42"));
  EXPECT_EQ(ds.federation, "nl-smartcity");
  EXPECT_EQ(ds.schema_id, 42);
  // Scheme and namespace id are case-insensitive (RFC 8141).
  EXPECT_OK(ParseDataSchemaUrn("URN:Polder:nl-smartcity:schemas:7").status());
}

TEST(RecordHeadersTest, BadDataSchemaUrnsSayWhatIsWrong) {
  EXPECT_THAT(ParseDataSchemaUrn("https://registry:8081/schemas/ids/42"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a urn:polder: URN")));
  EXPECT_THAT(ParseDataSchemaUrn("urn:polder::schemas:42"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no federation")));
  EXPECT_THAT(ParseDataSchemaUrn("urn:polder:nl:subjects:42"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a schemas name")));
  EXPECT_THAT(ParseDataSchemaUrn("urn:polder:nl:schemas:42:1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("wrong number of parts")));
  for (const char* id : {"0", "-3", "x", "", "042", "+4", "99999999999"}) {
    SCOPED_TRACE(id);
    EXPECT_THAT(ParseDataSchemaUrn(std::string("urn:polder:nl:schemas:") + id),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a positive number")));
  }
}

TEST(RecordHeadersTest, ReadsNewAndOldRecords) {
  const std::string value = Encode(42, {0}, "\x08\x01");
  ASSERT_OK_AND_ASSIGN(DecodedRecord now,
                       ReadRecordValue({{"ce_id", "a"},
                                        {"content-type", kConfluentProtobufContentType},
                                        {"ce_dataschema", "urn:polder:nl-smartcity:schemas:42"}},
                                       value, "nl-smartcity"));
  EXPECT_EQ(now.frame.schema_id, 42);
  EXPECT_EQ(now.frame.payload, "\x08\x01");
  ASSERT_TRUE(now.data_schema.has_value());
  EXPECT_EQ(now.data_schema->schema_id, 42);
  EXPECT_FALSE(now.legacy_content_type);
  // Before ADR 0012: the old content type and no ce_dataschema; a mirror keeps those.
  ASSERT_OK_AND_ASSIGN(DecodedRecord old,
                       ReadRecordValue({{"content-type", kLegacyContentType}}, value, "nl"));
  EXPECT_EQ(old.frame.schema_id, 42);
  EXPECT_FALSE(old.data_schema.has_value());
  EXPECT_TRUE(old.legacy_content_type);
}

TEST(RecordHeadersTest, RefusesRecordsWhoseHeadersContradictTheirValue) {
  const std::string value = Encode(42, {0}, "\x08\x01");
  EXPECT_THAT(ReadRecordValue({}, value, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no content-type")));
  EXPECT_THAT(ReadRecordValue({{"content-type", "application/json"}}, value, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'application/json' is not")));
  EXPECT_THAT(ReadRecordValue({{"content-type", kConfluentProtobufContentType}}, "\x08\x01", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("the value:")));
  EXPECT_THAT(ReadRecordValue({{"content-type", kConfluentProtobufContentType},
                               {"ce_dataschema", "urn:polder:nl:schemas:43"}},
                              value, ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("names schema 43 but the value is framed with schema 42")));
  EXPECT_THAT(
      ReadRecordValue({{"content-type", kConfluentProtobufContentType},
                       {"ce_dataschema", "urn:polder:be-smartcity:schemas:42"}},
                      value, "nl"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("names federation 'be-smartcity'")));
  EXPECT_THAT(
      ReadRecordValue({{"content-type", kConfluentProtobufContentType}, {"ce_dataschema", "42"}},
                      value, ""),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a urn:polder: URN")));
}

}  // namespace
}  // namespace wire
}  // namespace polder
