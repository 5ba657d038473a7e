#include "tools/polderctl/commands/publish.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/schema/schema.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tools/polderctl/commands/publish_input.h"

namespace polder {
namespace polderctl {
namespace {

using nlohmann::json;
using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const std::string dir = absl::StrCat(
      ::testing::TempDir(), "/", ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::create_directories(dir);
  return absl::StrCat(dir, "/", name);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---- input files -------------------------------------------------------------------------------

TEST(NdjsonTest, OneRecordPerLineWithLineNumbers) {
  ASSERT_OK_AND_ASSIGN(std::vector<InputRecord> records,
                       ParseNdjson("bikes.ndjson", "{\"a\":1}\n\n  {\"b\":\"x\"}  \r\n{\"c\":{}}"));
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].line, 1);
  EXPECT_EQ(records[0].json, "{\"a\":1}");
  EXPECT_EQ(records[1].line, 3);
  EXPECT_EQ(records[1].json, "{\"b\":\"x\"}");
  EXPECT_EQ(records[2].line, 4);
}

TEST(NdjsonTest, BadLinesNameFileAndLine) {
  absl::Status s =
      ParseNdjson("bikes.ndjson", "{\"a\":1}\n{\"a\":\n[1,2]\n{\"ok\":true}\n\"text\"\n").status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bikes.ndjson:2: ")));
  EXPECT_THAT(s.message(), HasSubstr("bikes.ndjson:3: not a JSON object"));
  EXPECT_THAT(s.message(), HasSubstr("bikes.ndjson:5: not a JSON object"));
  EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("bikes.ndjson:4")));
}

TEST(CsvTest, ColumnsMapToJsonNamesAndNestedMessages) {
  const std::string csv =
      "counter_id,eventTime,count,location.latitude,location.longitude,note\r\n"
      "gn-01,2024-05-01T10:00:00Z,17,53.2,6.56,\r\n"
      "\r\n"
      "\"gn-02\",2024-05-01T10:15:00Z,,53.1,6.5,\"two\nlines, \"\"quoted\"\"\"\n"
      "gn-03,2024-05-01T10:30:00Z,3,,,x";
  ASSERT_OK_AND_ASSIGN(std::vector<InputRecord> records, ParseCsv("bikes.csv", csv));
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].line, 2);
  EXPECT_EQ(json::parse(records[0].json),
            json::parse(R"({"counterId":"gn-01","eventTime":"2024-05-01T10:00:00Z","count":"17",)"
                        R"("location":{"latitude":"53.2","longitude":"6.56"}})"));
  EXPECT_EQ(records[1].line, 4);
  EXPECT_EQ(
      json::parse(records[1].json),
      json::parse(
          R"({"counterId":"gn-02","eventTime":"2024-05-01T10:15:00Z",)"
          R"("location":{"latitude":"53.1","longitude":"6.5"},"note":"two\nlines, \"quoted\""})"));
  EXPECT_EQ(records[2].line, 6);  // the quoted field spanned line 5
  EXPECT_EQ(
      json::parse(records[2].json),
      json::parse(
          R"({"counterId":"gn-03","eventTime":"2024-05-01T10:30:00Z","count":"3","note":"x"})"));
}

TEST(CsvTest, StringCellsParseIntoTypedFields) {
  // The node parses the JSON with Protobuf's parser: strings for numbers, bools, enums and
  // Timestamps are accepted there.
  schema::ParseOptions o;
  auto parsed = schema::ParsedSchema::Parse(R"(
syntax = "proto3";
package t;
import "google/protobuf/timestamp.proto";
message Loc { double latitude = 1; }
enum Kind { KIND_UNSPECIFIED = 0; KIND_BIKE = 1; }
message R {
  string counter_id = 1; google.protobuf.Timestamp event_time = 2; int64 count = 3; int32 lanes = 4;
  bool open = 5; Kind kind = 6; Loc location = 7; float share = 8;
})",
                                            {}, o);
  ASSERT_OK(parsed.status());
  ASSERT_OK_AND_ASSIGN(
      std::vector<InputRecord> records,
      ParseCsv("r.csv",
               "counter_id,event_time,count,lanes,open,kind,location.latitude,share\n"
               "a,2024-05-01T10:00:00Z,17,2,true,KIND_BIKE,53.2,0.5\n"));
  const google::protobuf::Descriptor* d =
      (*parsed)->MessageByIndexes((*parsed)->IndexesOf("t.R").value()).value();
  ASSERT_EQ(d->name(), "R");
  auto m = (*parsed)->NewMessage(d);
  auto s = google::protobuf::util::JsonStringToMessage(records[0].json, m.get());
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::string back;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(*m, &back).ok());
  EXPECT_EQ(json::parse(back),
            json::parse(R"({"counterId":"a","eventTime":"2024-05-01T10:00:00Z","count":"17",)"
                        R"("lanes":2,"open":true,"kind":"KIND_BIKE","location":{"latitude":53.2},)"
                        R"("share":0.5})"));
}

TEST(CsvTest, BadRowsNameFileAndLine) {
  absl::Status s =
      ParseCsv("bikes.csv", "a,b,c\n1,2,3\n1,2\n1,2,3,4\n1,x\"y,3\n\"1\"x,2,3\n1,2,3\n").status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr("bikes.csv:3: 2 field(s), the header has 3")));
  EXPECT_THAT(s.message(), HasSubstr("bikes.csv:4: 4 field(s), the header has 3"));
  EXPECT_THAT(s.message(), HasSubstr("bikes.csv:5: a quote inside an unquoted field"));
  EXPECT_THAT(s.message(), HasSubstr("bikes.csv:6: text after a quoted field's closing quote"));
  EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("bikes.csv:7")));
}

TEST(CsvTest, UnclosedQuoteNamesTheLineItOpensOn) {
  EXPECT_THAT(ParseCsv("bikes.csv", "a,b\n1,2\n3,\"four\n5,6\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("bikes.csv:3: a quoted field is not closed")));
}

TEST(CsvTest, BadHeaders) {
  EXPECT_THAT(ParseCsv("h.csv", "a,,b\n1,2,3\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("h.csv:1: column '' is not a field name")));
  EXPECT_THAT(ParseCsv("h.csv", "a,loc..x\n1,2\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("column 'loc..x'")));
  EXPECT_THAT(
      ParseCsv("h.csv", "counter_id,counterId\n1,2\n").status(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("columns 'counter_id' and 'counterId' name the same field counterId")));
  EXPECT_THAT(
      ParseCsv("h.csv", "location,location.latitude\n1,2\n").status(),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          HasSubstr(
              "column 'location' is a field, but 'location.latitude' treats it as a message")));
  EXPECT_THAT(ParseCsv("h.csv", "a,b\n1,\xff\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("h.csv:2: not UTF-8")));
}

TEST(CsvTest, JsonNames) {
  EXPECT_EQ(ToJsonName("counter_id"), "counterId");
  EXPECT_EQ(ToJsonName("eventTime"), "eventTime");
  EXPECT_EQ(ToJsonName("pm2_5"), "pm25");
  EXPECT_EQ(ToJsonName("a_b_c"), "aBC");
}

TEST(FormatTest, ByFlagOrExtension) {
  EXPECT_EQ(FormatFor("x.CSV", "auto").value(), InputFormat::kCsv);
  EXPECT_EQ(FormatFor("x.jsonl", "").value(), InputFormat::kNdjson);
  EXPECT_EQ(FormatFor("x.txt", "csv").value(), InputFormat::kCsv);
  EXPECT_THAT(FormatFor("x.txt", "auto").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--format")));
}

// ---- batches and keys --------------------------------------------------------------------------

InputFile MakeFile(const std::string& path, int records, const std::string& salt = "") {
  InputFile f;
  f.path = path;
  std::string text;
  for (int i = 0; i < records; ++i) {
    f.records.push_back({i + 1, absl::StrCat("{\"n\":", i, "}")});
    absl::StrAppend(&text, f.records.back().json, "\n");
  }
  f.sha256_hex = Sha256Hex(text + salt);
  return f;
}

TEST(BatchTest, SizesAndDeterministicKeys) {
  InputFile f = MakeFile("a.ndjson", 1201);
  std::vector<Batch> a = MakeBatches(f, "mobility.bike-counts", 500);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].count, 500u);
  EXPECT_EQ(a[1].first, 500u);
  EXPECT_EQ(a[2].count, 201u);
  EXPECT_EQ(a[1].idempotency_key,
            absl::StrCat("polderctl-publish/mobility.bike-counts/", f.sha256_hex, "/1/500"));
  // Same content, same keys; other content, batch size or dataset: other keys.
  std::vector<Batch> again = MakeBatches(MakeFile("b.ndjson", 1201), "mobility.bike-counts", 500);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].idempotency_key, again[i].idempotency_key);
  std::set<std::string> keys;
  for (const auto& b : a) keys.insert(b.idempotency_key);
  for (const auto& b : MakeBatches(MakeFile("a.ndjson", 1201, "x"), "mobility.bike-counts", 500)) {
    keys.insert(b.idempotency_key);
  }
  for (const auto& b : MakeBatches(f, "mobility.bike-counts", 400)) keys.insert(b.idempotency_key);
  for (const auto& b : MakeBatches(f, "parking.occupancy", 500)) keys.insert(b.idempotency_key);
  EXPECT_EQ(keys.size(), 3u + 3u + 4u + 3u);
  EXPECT_LE(BatchKey(std::string(300, 'd'), f.sha256_hex, 1, 500).size(), 200u);
}

// ---- the run -----------------------------------------------------------------------------------

// A node: remembers acknowledged keys (answering duplicate=true for them), and can be told to
// fail a batch index with a status.
class FakeNode : public BatchSender {
 public:
  absl::StatusOr<SendResult> Send(const std::string& dataset, int32_t schema_id,
                                  const std::string& key,
                                  const std::vector<const InputRecord*>& records) override {
    calls.push_back({key, schema_id, records.size()});
    // Keys end in "/<batch index>/<batch size>".
    const std::vector<std::string> parts = absl::StrSplit(key, '/');
    const int64_t index = std::stoll(parts[parts.size() - 2]);
    auto f = failures.find(index);
    if (f != failures.end() && !f->second.empty()) {
      absl::Status s = f->second.front();
      f->second.erase(f->second.begin());
      return s;
    }
    SendResult r;
    r.schema_id = latest_schema;
    r.records = static_cast<int32_t>(records.size());
    r.topic = absl::StrCat("groningen.", dataset);
    r.duplicate = !committed.insert(key).second;
    return r;
  }
  struct Call {
    std::string key;
    int32_t schema_id;
    size_t records;
  };
  std::vector<Call> calls;
  std::set<std::string> committed;
  std::map<int64_t, std::vector<absl::Status>> failures;
  int32_t latest_schema = 4;
};

class PublishRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = MakeFile(TempPath("bikes.ndjson"), 1201);
    options_.dataset = "mobility.bike-counts";
    options_.batch_records = 500;
    options_.sleep = [this](absl::Duration d) { sleeps_.push_back(d); };
    state_path_ = DefaultStateFile(file_.path);
    std::filesystem::remove(state_path_);
  }
  InputFile file_;
  PublishOptions options_;
  FakeNode node_;
  PublishSummary summary_;
  std::vector<absl::Duration> sleeps_;
  std::string state_path_;
};

TEST_F(PublishRunTest, SendsEveryBatchAndSavesTheState) {
  ASSERT_OK(RunPublish(file_, &node_, options_, &summary_, nullptr));
  ASSERT_EQ(node_.calls.size(), 3u);
  EXPECT_EQ(node_.calls[2].records, 201u);
  EXPECT_EQ(node_.calls[0].schema_id, 0);  // the subject's latest ...
  EXPECT_EQ(node_.calls[1].schema_id, 4);  // ... then the schema the first batch was validated with
  EXPECT_EQ(summary_.batches_sent, 3);
  EXPECT_EQ(summary_.records_written, 1201);
  EXPECT_EQ(summary_.duplicate_batches, 0);
  EXPECT_EQ(summary_.topic, "groningen.mobility.bike-counts");
  ASSERT_OK_AND_ASSIGN(PublishState state, LoadState(state_path_));
  EXPECT_EQ(state.batches_acknowledged, 3);
  EXPECT_EQ(state.records_acknowledged, 1201);
  EXPECT_EQ(state.schema_id, 4);
  EXPECT_EQ(state.sha256, file_.sha256_hex);
  EXPECT_THAT(SummaryLine(summary_, true),
              HasSubstr("3 batch(es) acknowledged, 1201 record(s) written"));
  // A second run finds everything acknowledged and sends nothing.
  ASSERT_OK(RunPublish(file_, &node_, options_, &summary_, nullptr));
  EXPECT_EQ(node_.calls.size(), 3u);
  EXPECT_EQ(summary_.batches_resumed, 3);
}

TEST_F(PublishRunTest, ABadRecordStopsWithFileAndLineAndKeepsWhatWasAcknowledged) {
  file_.records[500 + 7].line = 512;  // e.g. after blank lines
  node_.failures[1] = {absl::InvalidArgumentError(
      "record 7: eventTime: 2020-01-01T00:00:00Z is outside the window")};
  absl::Status s = RunPublish(file_, &node_, options_, &summary_, nullptr);
  EXPECT_THAT(
      s, StatusIs(absl::StatusCode::kInvalidArgument,
                  HasSubstr(absl::StrCat(file_.path,
                                         ":512: eventTime: 2020-01-01T00:00:00Z is outside the "
                                         "window (batch 1)"))));
  EXPECT_EQ(summary_.batches_acknowledged, 1);
  EXPECT_THAT(SummaryLine(summary_, false), HasSubstr("stopped, 1 of 3 batch(es) acknowledged"));
  ASSERT_OK_AND_ASSIGN(PublishState state, LoadState(state_path_));
  EXPECT_EQ(state.batches_acknowledged, 1);
  EXPECT_EQ(state.records_acknowledged, 500);

  // Resumed (the node's error cleared): batch 0 is not sent again.
  node_.calls.clear();
  ASSERT_OK(RunPublish(file_, &node_, options_, &summary_, nullptr));
  ASSERT_EQ(node_.calls.size(), 2u);
  EXPECT_EQ(node_.calls[0].key, MakeBatches(file_, options_.dataset, 500)[1].idempotency_key);
  EXPECT_EQ(node_.calls[0].schema_id, 4);  // pinned by the state file
  EXPECT_EQ(summary_.batches_resumed, 1);
  EXPECT_EQ(summary_.batches_sent, 2);
  EXPECT_EQ(summary_.records_written, 701);
}

TEST_F(PublishRunTest, ABatchAcknowledgedButNotSavedAnswersDuplicate) {
  ASSERT_OK(RunPublish(file_, &node_, options_, &summary_, nullptr));
  // A crash after batch 1 was committed but before the state said so.
  ASSERT_OK_AND_ASSIGN(PublishState state, LoadState(state_path_));
  state.batches_acknowledged = 1;
  state.records_acknowledged = 500;
  ASSERT_OK(SaveState(state_path_, state));
  node_.committed.erase(MakeBatches(file_, options_.dataset, 500)[2].idempotency_key);
  ASSERT_OK(RunPublish(file_, &node_, options_, &summary_, nullptr));
  EXPECT_EQ(summary_.batches_sent, 2);
  EXPECT_EQ(summary_.duplicate_batches, 1);
  EXPECT_EQ(summary_.duplicate_records, 500);
  EXPECT_EQ(summary_.records_written, 201);
  EXPECT_THAT(SummaryLine(summary_, true),
              HasSubstr("1 duplicate batch(es) (500 record(s) already written)"));
}

TEST_F(PublishRunTest, RetryableErrorsAreRetriedWithTheSameKey) {
  node_.failures[0] = {absl::UnavailableError("connection reset"),
                       absl::UnavailableError("connection reset")};
  ASSERT_OK(RunPublish(file_, &node_, options_, &summary_, nullptr));
  ASSERT_GE(node_.calls.size(), 3u);
  EXPECT_EQ(node_.calls[0].key, node_.calls[1].key);
  EXPECT_EQ(node_.calls[1].key, node_.calls[2].key);
  EXPECT_THAT(sleeps_, ElementsAre(absl::Seconds(1), absl::Seconds(2)));
  options_.max_attempts = 2;
  std::filesystem::remove(state_path_);
  node_.failures[0] = {absl::UnavailableError("down"), absl::UnavailableError("down")};
  EXPECT_THAT(RunPublish(file_, &node_, options_, &summary_, nullptr),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr(absl::StrCat(file_.path, ":1-500 (batch 0): down"))));
  EXPECT_THAT(LoadState(state_path_).status(), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(PublishRunTest, CorruptStateFileIsAnErrorNotARestart) {
  for (
      const std::string& text :
      {std::string("{\"version\":1,\"file\":"), std::string("[]"),
       absl::StrCat(
           R"({"version":1,"file":"f","sha256":")", file_.sha256_hex,
           R"(","dataset":"mobility.bike-counts","batch_records":500,"batches_total":3,)"
           R"("batches_acknowledged":9,"records_acknowledged":0,"duplicate_batches":0,"schema_id":0})"),
       absl::StrCat(
           R"({"version":1,"file":"f","sha256":")", file_.sha256_hex,
           R"(","dataset":"mobility.bike-counts","batch_records":500,"batches_total":3})")}) {
    std::ofstream(state_path_) << text;
    absl::Status s = RunPublish(file_, &node_, options_, &summary_, nullptr);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss,
                            HasSubstr(absl::StrCat("state file '", state_path_, "' is corrupt"))))
        << text;
    EXPECT_THAT(s.message(), HasSubstr("remove it to publish from the first batch"));
    EXPECT_TRUE(node_.calls.empty()) << text;
    EXPECT_EQ(Slurp(state_path_), text);  // left as it was
  }
}

TEST_F(PublishRunTest, StateOfAnotherFileOrBatchSizeIsRefused) {
  node_.failures[1] = {absl::InvalidArgumentError("record 0: bad")};
  ASSERT_FALSE(RunPublish(file_, &node_, options_, &summary_, nullptr).ok());
  node_.calls.clear();
  InputFile changed = MakeFile(file_.path, 1201, "edited");
  EXPECT_THAT(
      RunPublish(changed, &node_, options_, &summary_, nullptr),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("another content of the file")));
  options_.batch_records = 400;
  EXPECT_THAT(RunPublish(file_, &node_, options_, &summary_, nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--batch-records 500")));
  options_.batch_records = 500;
  options_.dataset = "parking.occupancy";
  EXPECT_THAT(
      RunPublish(file_, &node_, options_, &summary_, nullptr),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("dataset mobility.bike-counts")));
  EXPECT_TRUE(node_.calls.empty());
}

TEST_F(PublishRunTest, ReadInputFileHashesTheBytes) {
  const std::string path = TempPath("in.csv");
  std::ofstream(path) << "a,b\n1,2\n3,x\"\n";
  EXPECT_THAT(
      ReadInputFile(path, InputFormat::kCsv).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(absl::StrCat(path, ":3: a quote"))));
  std::ofstream(path) << "a,b\n1,2\n";
  ASSERT_OK_AND_ASSIGN(InputFile f, ReadInputFile(path, InputFormat::kCsv));
  EXPECT_EQ(f.sha256_hex, Sha256Hex("a,b\n1,2\n"));
  EXPECT_EQ(f.records.size(), 1u);
  std::ofstream(path) << "a,b\n";
  EXPECT_THAT(ReadInputFile(path, InputFormat::kCsv).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no records")));
}

}  // namespace
}  // namespace polderctl
}  // namespace polder
