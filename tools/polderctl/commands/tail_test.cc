#include "tools/polderctl/commands/tail.h"

#include <atomic>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/schema/schema.h"
#include "common/status/status_matchers.h"
#include "common/wire/confluent_frame.h"
#include "common/wire/record_headers.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tools/polderctl/commands/record_json.h"
#include "tools/polderctl/commands/schema_source.h"

namespace polder {
namespace polderctl {
namespace {

using nlohmann::json;
using ::polder::testing::IsOk;
using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kLocationName[] = "polder/test/common/v1/location.proto";
constexpr char kLocationProto[] = R"(
syntax = "proto3";
package polder.test.common.v1;
message Location {
  double latitude = 1;
  double longitude = 2;
}
)";
constexpr char kBikeProto[] = R"(
syntax = "proto3";
package polder.test.mobility.v1;
import "google/protobuf/timestamp.proto";
import "polder/test/common/v1/location.proto";
message BikeCount {
  string counter_id = 1;
  google.protobuf.Timestamp event_time = 2;
  int64 count = 3;
  polder.test.common.v1.Location location = 4;
}
)";
constexpr int32_t kBikeId = 7;

// The two test schemas parsed as a node would hold them: the dataset with its import resolved.
struct Schemas {
  std::shared_ptr<const schema::ParsedSchema> location;
  std::shared_ptr<const schema::ParsedSchema> bikes;
};

Schemas ParseSchemas() {
  Schemas s;
  schema::ParseOptions lo;
  lo.file_name = kLocationName;
  s.location = schema::ParsedSchema::Parse(kLocationProto, {}, lo).value();
  s.bikes = schema::ParsedSchema::Parse(kBikeProto, {{kLocationName, kLocationName, 1, s.location}})
                .value();
  return s;
}

// Serves canned answers by path and records what was asked.
class FakeHttp : public HttpGetter {
 public:
  explicit FakeHttp(std::map<std::string, HttpReply> replies) : replies_(std::move(replies)) {}
  absl::StatusOr<HttpReply> Get(const std::string& path) override {
    requests_->push_back(path);
    if (down_) return absl::UnavailableError("connection refused");
    auto it = replies_.find(path);
    if (it == replies_.end())
      return HttpReply{404, R"({"error_code":40403,"message":"Schema not found"})"};
    return it->second;
  }
  std::shared_ptr<std::vector<std::string>> requests_ =
      std::make_shared<std::vector<std::string>>();
  bool down_ = false;

 private:
  std::map<std::string, HttpReply> replies_;
};

// The node's endpoint answers for the two schemas, the dataset's reference named `ref_name`.
std::map<std::string, HttpReply> EndpointReplies(const Schemas& s, const std::string& ref_name) {
  json by_id = {{"schemaType", "PROTOBUF"},
                {"schema", s.bikes->ToSerializedBase64()},
                {"references", {{{"name", ref_name}, {"subject", kLocationName}, {"version", 1}}}}};
  json version = {{"subject", kLocationName},
                  {"version", 1},
                  {"id", 3},
                  {"schemaType", "PROTOBUF"},
                  {"schema", s.location->ToSerializedBase64()}};
  return {{"/schemas/ids/7?format=serialized", {200, by_id.dump()}},
          {"/subjects/polder%2Ftest%2Fcommon%2Fv1%2Flocation.proto/versions/1?format=serialized",
           {200, version.dump()}}};
}

class FakeSchemas : public SchemaSource {
 public:
  absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> ById(int32_t id) override {
    if (unavailable) return absl::UnavailableError("schema endpoint down");
    auto it = by_id.find(id);
    if (it == by_id.end()) return absl::NotFoundError(absl::StrCat("schema id ", id, ": HTTP 404"));
    return it->second;
  }
  std::map<int32_t, std::shared_ptr<const schema::ParsedSchema>> by_id;
  bool unavailable = false;
};

// A BikeCount's bytes.
std::string BikeBytes(const Schemas& s, const std::string& json_text) {
  const google::protobuf::Descriptor* d = s.bikes->MessageByIndexes({0}).value();
  std::unique_ptr<google::protobuf::Message> m = s.bikes->NewMessage(d);
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json_text, m.get()).ok());
  return m->SerializeAsString();
}

kafka::ConsumedRecord Record(const Schemas& s, int32_t partition, int64_t offset,
                             const std::string& content_type, const std::string& data_schema) {
  kafka::ConsumedRecord r;
  r.topic = "groningen.mobility.bike-counts";
  r.partition = partition;
  r.offset = offset;
  r.key = "gn-herestraat-01";
  r.value = wire::Encode(
      kBikeId, {0},
      BikeBytes(s, R"({"counterId":"gn-herestraat-01","eventTime":"2024-05-01T10:00:00Z",)"
                   R"("count":"17","location":{"latitude":53.2,"longitude":6.56}})"));
  r.headers = {{"ce_specversion", "1.0"},
               {"ce_id", absl::StrCat("id-", partition, "-", offset)},
               {"ce_source", "/peers/groningen/datasets/mobility.bike-counts"},
               {"ce_type", "polder.test.mobility.v1.BikeCount"},
               {"ce_time", "2024-05-01T10:00:00Z"}};
  if (!data_schema.empty()) r.headers.push_back({wire::kDataSchemaHeader, data_schema});
  if (!content_type.empty()) r.headers.push_back({wire::kContentTypeHeader, content_type});
  return r;
}

class TailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    schemas_ = ParseSchemas();
    fake_.by_id[kBikeId] = schemas_.bikes;
  }
  kafka::ConsumedRecord NewRecord(int32_t p, int64_t o) {
    return Record(schemas_, p, o, wire::kConfluentProtobufContentType,
                  wire::DataSchemaUrn("nl-smartcity", kBikeId));
  }
  Schemas schemas_;
  FakeSchemas fake_;
};

// ---- schema source -----------------------------------------------------------------------------

TEST_F(TailTest, SchemaSourceFetchesReferencesUnderTheirNames) {
  auto http = std::make_unique<FakeHttp>(EndpointReplies(schemas_, kLocationName));
  auto requests = http->requests_;
  ConfluentSchemaSource source(std::move(http));
  ASSERT_OK_AND_ASSIGN(auto parsed, source.ById(kBikeId));
  ASSERT_EQ(parsed->file()->dependency_count(), 2);
  std::vector<std::string> deps;
  for (int i = 0; i < parsed->file()->dependency_count(); ++i)
    deps.push_back(parsed->file()->dependency(i)->name());
  EXPECT_THAT(deps,
              ::testing::UnorderedElementsAre("google/protobuf/timestamp.proto", kLocationName));
  ASSERT_OK_AND_ASSIGN(const google::protobuf::Descriptor* d, parsed->MessageByIndexes({0}));
  EXPECT_EQ(d->full_name(), "polder.test.mobility.v1.BikeCount");
  EXPECT_EQ(d->FindFieldByName("location")->message_type()->file()->name(), kLocationName);
  // Ids are cached: a second lookup asks nothing.
  ASSERT_OK(source.ById(kBikeId).status());
  EXPECT_THAT(
      *requests,
      ElementsAre(
          "/schemas/ids/7?format=serialized",
          "/subjects/polder%2Ftest%2Fcommon%2Fv1%2Flocation.proto/versions/1?format=serialized"));
}

TEST_F(TailTest, SchemaSourceRefusesAReferenceNamedOtherThanTheImport) {
  ConfluentSchemaSource source(
      std::make_unique<FakeHttp>(EndpointReplies(schemas_, "location.proto")));
  EXPECT_THAT(
      source.ById(kBikeId).status(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("import \"polder/test/common/v1/location.proto\" is not resolved")));
}

TEST_F(TailTest, SchemaSourceErrors) {
  auto http = std::make_unique<FakeHttp>(EndpointReplies(schemas_, kLocationName));
  FakeHttp* raw = http.get();
  ConfluentSchemaSource source(std::move(http));
  EXPECT_THAT(source.ById(99).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("Schema not found")));
  raw->down_ = true;
  EXPECT_THAT(source.ById(kBikeId).status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("schema id 7")));
}

TEST(EncodePathSegmentTest, EscapesReservedCharacters) {
  EXPECT_EQ(EncodePathSegment("polder/a b.proto"), "polder%2Fa%20b.proto");
  EXPECT_EQ(EncodePathSegment("polder.datasets.v1.X"), "polder.datasets.v1.X");
}

// ---- one record → one JSON line ----------------------------------------------------------------

TEST_F(TailTest, JsonLineHasEveryField) {
  ASSERT_OK_AND_ASSIGN(std::string line, RecordToJsonLine(NewRecord(2, 41), &fake_));
  EXPECT_EQ(line.find('\n'), std::string::npos);
  json j = json::parse(line);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_THAT(keys, ::testing::UnorderedElementsAre("topic", "partition", "offset", "key", "ce_id",
                                                    "ce_type", "ce_time", "ce_source", "schema_id",
                                                    "value"));
  EXPECT_EQ(j["topic"], "groningen.mobility.bike-counts");
  EXPECT_EQ(j["partition"], 2);
  EXPECT_EQ(j["offset"], 41);
  EXPECT_EQ(j["key"], "gn-herestraat-01");
  EXPECT_EQ(j["ce_id"], "id-2-41");
  EXPECT_EQ(j["ce_type"], "polder.test.mobility.v1.BikeCount");
  EXPECT_EQ(j["ce_time"], "2024-05-01T10:00:00Z");
  EXPECT_EQ(j["ce_source"], "/peers/groningen/datasets/mobility.bike-counts");
  EXPECT_EQ(j["schema_id"], kBikeId);
  EXPECT_EQ(j["value"],
            json::parse(R"({"counterId":"gn-herestraat-01","eventTime":"2024-05-01T10:00:00Z",)"
                        R"("count":"17","location":{"latitude":53.2,"longitude":6.56}})"));
  // Keys are printed in the documented order.
  EXPECT_EQ(
      line.rfind(R"({"topic":"groningen.mobility.bike-counts","partition":2,"offset":41,)", 0), 0u)
      << line;
}

TEST_F(TailTest, LegacyContentTypeWithoutDataSchemaIsRead) {
  kafka::ConsumedRecord r = Record(schemas_, 0, 1, wire::kLegacyContentType, "");
  ASSERT_OK_AND_ASSIGN(std::string line, RecordToJsonLine(r, &fake_));
  EXPECT_EQ(json::parse(line)["value"]["counterId"], "gn-herestraat-01");
}

TEST_F(TailTest, NewContentTypeWithoutDataSchemaIsRead) {
  kafka::ConsumedRecord r = Record(schemas_, 0, 1, wire::kConfluentProtobufContentType, "");
  EXPECT_OK(RecordToJsonLine(r, &fake_).status());
}

TEST_F(TailTest, ContradictingDataSchemaIsARecordError) {
  kafka::ConsumedRecord r = Record(schemas_, 0, 1, wire::kConfluentProtobufContentType,
                                   wire::DataSchemaUrn("nl-smartcity", 8));
  absl::StatusOr<std::string> line = RecordToJsonLine(r, &fake_);
  EXPECT_THAT(
      line.status(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("ce_dataschema names schema 8 but the value is framed with schema 7")));
  EXPECT_TRUE(IsRecordError(line.status()));
}

TEST_F(TailTest, OtherFederationIsRefusedOnlyWhenAsked) {
  kafka::ConsumedRecord r = NewRecord(0, 1);
  EXPECT_OK(RecordToJsonLine(r, &fake_, "").status());
  EXPECT_THAT(RecordToJsonLine(r, &fake_, "be-smartcity").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("federation 'nl-smartcity'")));
}

TEST_F(TailTest, RecordErrors) {
  kafka::ConsumedRecord no_type = Record(schemas_, 0, 1, "", "");
  EXPECT_THAT(RecordToJsonLine(no_type, &fake_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no content-type")));
  kafka::ConsumedRecord json_type = Record(schemas_, 0, 1, "application/json", "");
  EXPECT_THAT(RecordToJsonLine(json_type, &fake_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  kafka::ConsumedRecord bare = NewRecord(0, 1);
  bare.value =
      "\x0a\x03"
      "abc";  // bare Protobuf, no frame
  EXPECT_THAT(RecordToJsonLine(bare, &fake_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  kafka::ConsumedRecord garbage = NewRecord(0, 1);
  garbage.value = wire::Encode(kBikeId, {0}, "\xff\xff\xff");
  EXPECT_THAT(RecordToJsonLine(garbage, &fake_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("do not parse as polder.test.mobility.v1")));
  kafka::ConsumedRecord unknown = Record(schemas_, 0, 1, wire::kConfluentProtobufContentType, "");
  unknown.value = wire::Encode(12, {0}, "");
  absl::Status s = RecordToJsonLine(unknown, &fake_).status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(IsRecordError(s));
  fake_.unavailable = true;
  s = RecordToJsonLine(NewRecord(0, 1), &fake_).status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(IsRecordError(s));
}

TEST_F(TailTest, AbsentHeadersAndKeyAreNull) {
  kafka::ConsumedRecord r = Record(schemas_, 0, 1, wire::kLegacyContentType, "");
  r.headers = {{wire::kContentTypeHeader, wire::kLegacyContentType}};
  r.key.reset();
  ASSERT_OK_AND_ASSIGN(std::string line, RecordToJsonLine(r, &fake_));
  json j = json::parse(line);
  EXPECT_TRUE(j["key"].is_null());
  EXPECT_TRUE(j["ce_id"].is_null());
  EXPECT_TRUE(j["ce_time"].is_null());
}

// ---- the loop ----------------------------------------------------------------------------------

// Partitions as logs. A poll returns up to two records; once a partition's records are all
// delivered its position jumps to the end (past a commit marker that is never delivered).
class FakeConsumer : public TailConsumer {
 public:
  absl::StatusOr<int64_t> OffsetForTime(const std::string&, int32_t, absl::Time,
                                        absl::Duration) override {
    return absl::UnimplementedError("tail never looks up offsets by time");
  }
  absl::StatusOr<std::vector<int32_t>> Partitions(const std::string& topic,
                                                  absl::Duration) override {
    if (topic != "groningen.mobility.bike-counts") return absl::NotFoundError("no such topic");
    std::vector<int32_t> out;
    for (const auto& [p, h] : high) out.push_back(p);
    return out;
  }
  absl::StatusOr<std::pair<int64_t, int64_t>> QueryWatermarks(const std::string&, int32_t p,
                                                              absl::Duration) override {
    return std::make_pair(int64_t{0}, high[p]);
  }
  absl::Status Assign(const std::vector<kafka::TopicPartitionOffset>& partitions) override {
    assigned = partitions;
    for (const auto& tp : partitions) {
      int64_t start = tp.offset;
      if (tp.offset == kafka::kOffsetBeginning) start = 0;
      if (tp.offset == kafka::kOffsetEnd) start = high[tp.partition];
      position[tp.partition] = start;
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<kafka::ConsumedRecord>> Poll(absl::Duration,
                                                          int max_records) override {
    ++polls;
    if (stop_after_polls > 0 && polls >= stop_after_polls) stop->store(true);
    std::vector<kafka::ConsumedRecord> out;
    for (const auto& tp : assigned) {
      std::vector<kafka::ConsumedRecord>& log = logs[tp.partition];
      for (const kafka::ConsumedRecord& r : log) {
        if (out.size() >= 2) break;
        if (r.offset >= position[tp.partition]) {
          out.push_back(r);
          position[tp.partition] = r.offset + 1;
        }
      }
      if (!log.empty() && position[tp.partition] > log.back().offset) {
        position[tp.partition] = std::max(position[tp.partition], log.back().offset + 2);
      }
    }
    return out;
  }
  absl::StatusOr<int64_t> Position(const std::string&, int32_t p) override { return position[p]; }

  std::map<int32_t, int64_t> high;
  std::map<int32_t, std::vector<kafka::ConsumedRecord>> logs;
  std::map<int32_t, int64_t> position;
  std::vector<kafka::TopicPartitionOffset> assigned;
  int polls = 0;
  int stop_after_polls = 0;
  std::atomic<bool>* stop = nullptr;
};

class TailLoopTest : public TailTest {
 protected:
  void SetUp() override {
    TailTest::SetUp();
    // Partition 0: offsets 0..4, the last transaction's marker at 5, end 6; a record at 6
    // written after start. Partition 1: offsets 0..2 (1 is a record whose header lies), end 4.
    for (int64_t o = 0; o < 5; ++o) consumer_.logs[0].push_back(NewRecord(0, o));
    consumer_.logs[0].push_back(NewRecord(0, 6));
    consumer_.high[0] = 6;
    for (int64_t o = 0; o < 3; ++o) consumer_.logs[1].push_back(NewRecord(1, o));
    consumer_.logs[1][1].headers.back().value = "application/json";
    consumer_.high[1] = 4;
    options_.topic = "groningen.mobility.bike-counts";
    options_.poll_timeout = absl::Milliseconds(1);
  }
  std::vector<json> Lines() {
    std::vector<json> out;
    std::string line;
    std::istringstream in(out_.str());
    while (std::getline(in, line)) out.push_back(json::parse(line));
    return out;
  }
  FakeConsumer consumer_;
  TailOptions options_;
  std::ostringstream out_, err_;
  std::atomic<bool> stop_{false};
};

TEST_F(TailLoopTest, ReadsToTheEndObservedAtStartAndSkipsBadRecords) {
  ASSERT_OK_AND_ASSIGN(TailStats stats, RunTail(&consumer_, &fake_, options_, out_, err_, &stop_));
  EXPECT_EQ(stats.printed, 7);
  EXPECT_EQ(stats.skipped, 1);
  std::vector<json> lines = Lines();
  ASSERT_EQ(lines.size(), 7u);
  for (const json& l : lines) {
    EXPECT_FALSE(l["partition"] == 0 && l["offset"] == 6) << "read past the end observed at start";
    EXPECT_FALSE(l["partition"] == 1 && l["offset"] == 1) << "printed a bad record";
  }
  EXPECT_THAT(
      err_.str(),
      HasSubstr("skipped record: topic groningen.mobility.bike-counts partition 1 offset 1: "
                "content-type 'application/json' is not"));
}

TEST_F(TailLoopTest, StopsAfterMax) {
  options_.max_records = 3;
  ASSERT_OK_AND_ASSIGN(TailStats stats, RunTail(&consumer_, &fake_, options_, out_, err_, &stop_));
  EXPECT_EQ(stats.printed, 3);
  EXPECT_EQ(Lines().size(), 3u);
}

TEST_F(TailLoopTest, FromEndWithoutFollowReadsNothing) {
  options_.from_end = true;
  ASSERT_OK_AND_ASSIGN(TailStats stats, RunTail(&consumer_, &fake_, options_, out_, err_, &stop_));
  EXPECT_EQ(stats.printed, 0);
  EXPECT_EQ(consumer_.polls, 0);
}

TEST_F(TailLoopTest, FollowReadsNewRecordsUntilStopped) {
  options_.follow = true;
  consumer_.stop = &stop_;
  consumer_.stop_after_polls = 10;
  ASSERT_OK_AND_ASSIGN(TailStats stats, RunTail(&consumer_, &fake_, options_, out_, err_, &stop_));
  EXPECT_EQ(stats.printed, 8);  // with the record written after start
  EXPECT_GE(consumer_.polls, 10);
}

TEST_F(TailLoopTest, SchemaEndpointDownStopsTheRun) {
  fake_.unavailable = true;
  EXPECT_THAT(RunTail(&consumer_, &fake_, options_, out_, err_, &stop_).status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("partition 0 offset 0")));
}

TEST_F(TailLoopTest, UnknownTopic) {
  options_.topic = "groningen.nope";
  EXPECT_THAT(RunTail(&consumer_, &fake_, options_, out_, err_, &stop_).status(),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace polderctl
}  // namespace polder
