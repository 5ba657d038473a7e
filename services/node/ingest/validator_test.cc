// The ingest bad-input classes (ADR 0008), one test per class, against the standard BikeCount
// schema parsed at run time (as the node gets it from the registry).
#include "services/node/ingest/validator.h"

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "common/wire/confluent_frame.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proto/polder/datasets/standard_parsed.h"

namespace polder {
namespace node {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;
using Format = IncomingRecord::Format;

constexpr char kSubject[] = "polder.datasets.mobility.v1.BikeCount";
const absl::Time kNow = absl::FromUnixSeconds(1795000000);  // 2026-11-18T11:06:40Z

class ValidatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto parsed = datasets::ParseStandardSchemas();
    ASSERT_OK(parsed.status());
    target_.peer_id = "groningen";
    target_.federation = "nl-smartcity";
    target_.dataset_id = "mobility.bike-counts";
    target_.topic = "groningen.mobility.bike-counts";
    target_.schema_id = 42;
    target_.schema = (*parsed)[kSubject];
    const auto* d = target_.schema->file()->pool()->FindMessageTypeByName(kSubject);
    ASSERT_NE(d, nullptr);
    ASSERT_OK_AND_ASSIGN(target_.layout, schema::RecordLayoutOf(d));
    ASSERT_OK_AND_ASSIGN(target_.message_indexes, target_.schema->IndexesOf(kSubject));
  }

  static std::string Json(const std::string& extra = "",
                          const std::string& time = "2026-11-17T08:00:00Z") {
    return absl::StrCat(
        R"({"counterId":"gn-herestraat-01","eventTime":")", time,
        R"(","location":{"latitude":53.2,"longitude":6.56},"count":"17","direction":"DIRECTION_INBOUND")",
        extra, "}");
  }

  // The JSON record as binary Protobuf.
  std::string Binary() {
    auto m = target_.schema->NewMessage(target_.layout.message);
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(Json(), m.get()).ok());
    return m->SerializeAsString();
  }

  absl::StatusOr<std::vector<kafka::ProducerRecord>> Run(std::vector<IncomingRecord> records,
                                                         IngestLimits limits = {},
                                                         const std::string& seed = "") {
    return BatchValidator(limits).Validate(target_, records, kNow, seed);
  }

  IngestTarget target_;
};

TEST_F(ValidatorTest, JsonRecordBecomesAFramedKafkaRecordWithCloudEventsHeaders) {
  ASSERT_OK_AND_ASSIGN(auto out, Run({{Format::kJson, Json(), "ce-1"}}));
  ASSERT_EQ(out.size(), 1u);
  const kafka::ProducerRecord& r = out[0];
  EXPECT_EQ(r.topic, "groningen.mobility.bike-counts");
  EXPECT_EQ(r.key, "gn-herestraat-01");
  EXPECT_EQ(r.timestamp_ms, absl::ToUnixMillis(kNow)) << "the Kafka timestamp is the ingest time";
  EXPECT_THAT(
      r.headers,
      ::testing::ElementsAre(
          kafka::Header{"ce_specversion", "1.0"}, kafka::Header{"ce_id", "ce-1"},
          kafka::Header{"ce_source", "/peers/groningen/datasets/mobility.bike-counts"},
          kafka::Header{"ce_type", kSubject}, kafka::Header{"ce_time", "2026-11-17T08:00:00Z"},
          kafka::Header{"ce_dataschema", "urn:polder:nl-smartcity:schemas:42"},
          kafka::Header{"content-type", "application/vnd.polder.confluent-protobuf"}));
  ASSERT_OK_AND_ASSIGN(wire::Frame frame, wire::Decode(r.value));
  EXPECT_EQ(frame.schema_id, 42);
  EXPECT_EQ(frame.message_indexes, std::vector<int32_t>{0});
  EXPECT_EQ(std::string(frame.payload), Binary()) << "JSON and binary give the same bytes";
}

TEST_F(ValidatorTest, BinaryRecordIsAcceptedAsIs) {
  ASSERT_OK_AND_ASSIGN(auto out, Run({{Format::kBinary, Binary(), ""}}));
  ASSERT_OK_AND_ASSIGN(wire::Frame frame, wire::Decode(out[0].value));
  EXPECT_EQ(std::string(frame.payload), Binary());
}

TEST_F(ValidatorTest, UnknownFieldsAreRefusedInJsonAndBinary) {
  EXPECT_THAT(Run({{Format::kJson, Json()}, {Format::kJson, Json(R"(,"speed":3)")}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 1: speed: Cannot find field")));
  EXPECT_THAT(Run({{Format::kJson, Json(R"(,"location":{"latitude":1,"altitude":3})")}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 0: location.altitude: Cannot find field")));
  std::string extra = Binary();
  extra += std::string("\xb8\x06\x01", 3);  // field 103, varint 1
  EXPECT_THAT(Run({{Format::kBinary, extra}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 0: field number 103 is not a field of "
                                 "polder.datasets.mobility.v1.BikeCount")));
  // Nested: an unknown field inside the location.
  std::string nested = std::string("\x1a\x03\xa0\x06\x01", 5);  // location { field 100: 1 }
  EXPECT_THAT(Run({{Format::kBinary, Binary() + nested}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 0: location: field number 100")));
}

TEST_F(ValidatorTest, WrongTypesAreRefusedWithTheField) {
  auto s = Run({{Format::kJson, Json(R"(,"intervalStart":42)")}});
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr("record 0: interval_start: invalid value")));
  EXPECT_THAT(Run({{Format::kJson, Json(R"(,"count":"many")")}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 0: count: invalid value \"many\" for type TYPE_INT64")));
  std::string wrong_wire = std::string("\x28\x01", 2);  // count as varint is fine...
  std::string as_string = std::string(
      "\x2a\x01"
      "x",
      3);  // ...count (5) as length-delimited is not
  EXPECT_THAT(
      Run({{Format::kBinary, Binary() + as_string}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record 0: count: wire type 2")));
  EXPECT_OK(Run({{Format::kBinary, Binary() + wrong_wire}}).status());
  EXPECT_THAT(
      Run({{Format::kBinary, std::string("\x2a\x05", 2)}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record 0: count: wire type 2")));
  EXPECT_THAT(
      Run({{Format::kBinary, std::string("\x0a\x05"
                                         "ab",
                                         4)}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record 0: counter_id: truncated")));
  EXPECT_THAT(Run({{Format::kBinary, Binary() + std::string("\x30\x07", 2)}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 0: direction: 7 is not a value of "
                                 "polder.datasets.mobility.v1.BikeCount.Direction")));
  EXPECT_THAT(Run({{Format::kJson, "[1,2]"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record 0: ")));
}

TEST_F(ValidatorTest, MissingEntityIdOrEventTimeIsRefused) {
  EXPECT_THAT(Run({{Format::kJson, R"({"eventTime":"2026-11-17T08:00:00Z","count":"1"})"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 0: counter_id: the entity id is missing")));
  EXPECT_THAT(Run({{Format::kJson, Json()}, {Format::kJson, R"({"counterId":"a","count":"1"})"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 1: event_time: the event time is missing")));
}

TEST_F(ValidatorTest, BinaryRecordsGetTheSameMetadataChecksFromTheWire) {
  EXPECT_THAT(Run({{Format::kBinary, std::string("\x28\x01", 2)}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 0: counter_id: the entity id is missing")));
  EXPECT_THAT(Run({{Format::kBinary, std::string("\x0a\x01"
                                                 "a"
                                                 "\x28\x01",
                                                 5)}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 0: event_time: the event time is missing")));
  // event_time { nanos: 2000000000 }
  EXPECT_THAT(
      Run({{Format::kBinary, std::string("\x0a\x01"
                                         "a"
                                         "\x12\x06\x10\x80\xa8\xd6\xb9\x07",
                                         11)}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("event_time: not a valid timestamp")));
  // The key and ce_time come from the wire values.
  ASSERT_OK_AND_ASSIGN(auto out, Run({{Format::kBinary, Binary(), "x"}}));
  EXPECT_EQ(out[0].key, "gn-herestraat-01");
  EXPECT_EQ(out[0].headers[4].value, "2026-11-17T08:00:00Z");
}

TEST_F(ValidatorTest, EventTimeOutsideTheWindowIsRefused) {
  IngestLimits limits;
  limits.max_event_age = absl::Hours(24);
  limits.max_event_lead = absl::Minutes(5);
  EXPECT_OK(Run({{Format::kJson, Json("", "2026-11-18T11:11:40Z")}}, limits).status())
      << "exactly 5 minutes ahead";
  EXPECT_THAT(
      Run({{Format::kJson, Json("", "2026-11-18T11:11:41Z")}}, limits),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          HasSubstr("record 0: event_time: 2026-11-18T11:11:41Z is outside the accepted window")));
  EXPECT_OK(Run({{Format::kJson, Json("", "2026-11-17T11:06:40Z")}}, limits).status())
      << "exactly 24 hours old";
  EXPECT_THAT(
      Run({{Format::kJson, Json("", "2026-11-17T11:06:39Z")}}, limits),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside the accepted window")));
}

TEST_F(ValidatorTest, InvalidUtf8IsRefused) {
  EXPECT_THAT(Run({{Format::kJson, absl::StrCat(R"({"counterId":"gn-)", "\xc3\x28", R"("})")}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 0: not valid UTF-8 (byte 17")));
  std::string bad_id = std::string("\x0a\x02\xed\xa0", 4);  // counter_id = a UTF-16 surrogate
  EXPECT_THAT(Run({{Format::kBinary, bad_id + Binary()}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 0: counter_id: not valid UTF-8 (byte 0")));
}

TEST_F(ValidatorTest, RecordAndBatchSizeLimitsHoldAtTheLimitAndRefuseOneByteOver) {
  ASSERT_OK_AND_ASSIGN(auto one, Run({{Format::kJson, Json(), "fixed-id"}}));
  const int64_t size = RecordBytes(one[0]);
  IngestLimits limits;
  limits.max_record_bytes = size;
  EXPECT_OK(Run({{Format::kJson, Json(), "fixed-id"}}, limits).status());
  limits.max_record_bytes = size - 1;
  EXPECT_THAT(Run({{Format::kJson, Json(), "fixed-id"}}, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("record 0: ", size,
                                              " bytes as a Kafka record (key, headers and value), "
                                              "over the limit of ",
                                              size - 1))));
  limits = {};
  limits.max_batch_bytes = 3 * size;
  std::vector<IncomingRecord> three(3, {Format::kJson, Json(), "fixed-id"});
  EXPECT_OK(Run(three, limits).status());
  limits.max_batch_bytes = 3 * size - 1;
  EXPECT_THAT(Run(three, limits), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("record 2: the batch reaches")));
  limits = {};
  limits.max_batch_records = 3;
  EXPECT_OK(Run(three, limits).status());
  three.push_back(three[0]);
  EXPECT_THAT(Run(three, limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("the batch has 4 records, over the limit of 3")));
  EXPECT_THAT(Run({}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no records")));
}

TEST_F(ValidatorTest, GeneratedCeIdsRepeatForTheSameSeedAndDifferOtherwise) {
  std::vector<IncomingRecord> two(2, {Format::kJson, Json(), ""});
  ASSERT_OK_AND_ASSIGN(auto a, Run(two, {}, "gateway-1\nkey-7"));
  ASSERT_OK_AND_ASSIGN(auto b, Run(two, {}, "gateway-1\nkey-7"));
  ASSERT_OK_AND_ASSIGN(auto c, Run(two, {}, ""));
  ASSERT_OK_AND_ASSIGN(auto d, Run(two, {}, ""));
  EXPECT_EQ(a[0].headers[1].value, b[0].headers[1].value);
  EXPECT_NE(a[0].headers[1].value, a[1].headers[1].value);
  EXPECT_NE(c[0].headers[1].value, d[0].headers[1].value);
  EXPECT_THAT(a[0].headers[1].value,
              ::testing::MatchesRegex(
                  "[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  EXPECT_THAT(Run({{Format::kJson, Json(), "has space"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record 0: ce_id")));
}

}  // namespace
}  // namespace node
}  // namespace polder
