#include "common/config/config.h"

#include <fstream>
#include <string>
#include <vector>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace config {
namespace {

using ::polder::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

struct Dataset {
  std::string id;
  int32_t partitions = 1;
  int64_t retention_bytes = -1;
};

struct NodeConfig {
  std::string peer_id;
  bool development_mode = false;
  uint16_t port = 8443;
  double sample_rate = 1.0;
  std::string bootstrap_servers;
  absl::Duration request_timeout = absl::Seconds(10);
  int64_t max_record_bytes = 1 << 20;
  std::vector<std::string> tags;
  std::map<std::string, std::string> properties;
  std::vector<Dataset> datasets;
};

absl::StatusOr<NodeConfig> Decode(const std::string& yaml) {
  auto doc = Document::FromString(yaml, "node.yaml");
  if (!doc.ok()) return doc.status();
  NodeConfig c;
  ObjectReader& root = doc->root();
  root.Required("peer_id", &c.peer_id)
      .Optional("development_mode", &c.development_mode)
      .Optional("port", &c.port)
      .Optional("sample_rate", &c.sample_rate)
      .Optional("tags", &c.tags);
  root.Check(c.peer_id.empty() || c.peer_id.size() >= 2, "peer_id",
             "must be at least 2 characters");
  ObjectReader kafka = root.Object("kafka", kRequired);
  kafka.Required("bootstrap_servers", &c.bootstrap_servers)
      .Optional("request_timeout", &c.request_timeout)
      .OptionalBytes("max_record_bytes", &c.max_record_bytes)
      .Optional("properties", &c.properties);
  kafka.Check(c.max_record_bytes <= (4 << 20), "max_record_bytes", "must be at most 4MiB");
  root.ObjectList<Dataset>("datasets", &c.datasets, [](ObjectReader& r, Dataset* d) {
    r.Required("id", &d->id).Optional("partitions", &d->partitions);
    r.OptionalBytes("retention_bytes", &d->retention_bytes);
    r.Check(d->partitions >= 1, "partitions", "must be at least 1");
  });
  return doc->Finish(c);
}

TEST(ConfigTest, DecodesTypedValuesAndKeepsDefaults) {
  ASSERT_OK_AND_ASSIGN(NodeConfig c, Decode(R"(
peer_id: groningen
port: 9443
sample_rate: 0.5
tags: [bikes, "north"]
kafka:
  bootstrap_servers: 127.0.0.1:9092
  max_record_bytes: 512KiB
  properties:
    security.protocol: ssl
datasets:
  - id: mobility.bike-counts
    partitions: 6
    retention_bytes: 1GiB
  - id: parking.occupancy
)"));
  EXPECT_EQ(c.peer_id, "groningen");
  EXPECT_FALSE(c.development_mode);
  EXPECT_EQ(c.port, 9443);
  EXPECT_DOUBLE_EQ(c.sample_rate, 0.5);
  EXPECT_EQ(c.tags, (std::vector<std::string>{"bikes", "north"}));
  EXPECT_EQ(c.bootstrap_servers, "127.0.0.1:9092");
  EXPECT_EQ(c.request_timeout, absl::Seconds(10)) << "default kept";
  EXPECT_EQ(c.max_record_bytes, 512 * 1024);
  EXPECT_EQ(c.properties.at("security.protocol"), "ssl");
  ASSERT_EQ(c.datasets.size(), 2u);
  EXPECT_EQ(c.datasets[0].partitions, 6);
  EXPECT_EQ(c.datasets[0].retention_bytes, int64_t{1} << 30);
  EXPECT_EQ(c.datasets[1].id, "parking.occupancy");
  EXPECT_EQ(c.datasets[1].partitions, 1);
}

TEST(ConfigTest, WrongTypesNameKeyLineAndValue) {
  auto r = Decode(R"(peer_id: groningen
port: 70000
development_mode: maybe
kafka:
  bootstrap_servers: x:1
  request_timeout: soon
  max_record_bytes: 12 parsecs
)");
  EXPECT_THAT(
      r,
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("node.yaml"), HasSubstr("4 errors"),
                     HasSubstr("port (line 2): expected an integer from 0 to 65535, got '70000'"),
                     HasSubstr("development_mode (line 3): expected true or false, got 'maybe'"),
                     HasSubstr("kafka.request_timeout (line 6): expected a duration"),
                     HasSubstr("got 'soon'"),
                     HasSubstr("kafka.max_record_bytes (line 7): expected a size"))));
}

TEST(ConfigTest, BadSizeIsReported) {
  EXPECT_THAT(
      Decode("peer_id: ab\nkafka:\n  bootstrap_servers: x\n  max_record_bytes: 12 parsecs\n"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("kafka.max_record_bytes (line 4): expected a size in bytes")));
}

TEST(ConfigTest, MissingRequiredKeysAndSectionsAreNamed) {
  EXPECT_THAT(Decode("port: 1\n"), StatusIs(absl::StatusCode::kInvalidArgument,
                                            AllOf(HasSubstr("peer_id: required key is missing"),
                                                  HasSubstr("kafka: required key is missing"))));
  EXPECT_THAT(
      Decode("peer_id: ab\nkafka: {}\n"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr(
                   "kafka.bootstrap_servers (in the mapping at line 2): required key is missing")));
}

TEST(ConfigTest, UnknownAndDuplicateKeysAreErrors) {
  EXPECT_THAT(Decode("peer_id: ab\nkafka:\n  bootstrap_servers: x\n  bootstrap_server: y\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("kafka.bootstrap_server (line 4): unknown key")));
  EXPECT_THAT(Decode("peer_id: ab\npeer_id: cd\nkafka:\n  bootstrap_servers: x\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("peer_id (line")));
  EXPECT_THAT(
      Decode(
          "peer_id: ab\nkafka:\n  bootstrap_servers: x\ndatasets:\n  - id: a\n    partitons: 3\n"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("datasets[0].partitons (line 6): unknown key")));
}

TEST(ConfigTest, ValidationChecksNameKeyAndValue) {
  EXPECT_THAT(
      Decode("peer_id: ab\nkafka:\n  bootstrap_servers: x\n  max_record_bytes: 8MiB\n"
             "datasets:\n  - id: a\n    partitions: 0\n"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("kafka.max_record_bytes (line 4): must be at most 4MiB, got '8MiB'"),
                     HasSubstr("datasets[0].partitions (line 7): must be at least 1, got '0'"))));
}

TEST(ConfigTest, StructureErrors) {
  EXPECT_THAT(Decode("peer_id: ab\nkafka: [1, 2]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("kafka (line 2): expected a mapping, got a list")));
  EXPECT_THAT(Decode("peer_id: ab\nkafka:\n  bootstrap_servers: x\ndatasets: {a: 1}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("datasets (line 4): expected a list of mappings")));
  EXPECT_THAT(Decode("peer_id: [a\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("YAML syntax error at line")));
  EXPECT_THAT(Decode("- just\n- a list\n"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                     HasSubstr("top level must be a mapping")));
  EXPECT_THAT(Decode("peer_id:\nkafka:\n  bootstrap_servers: x\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("peer_id (line 1): required key has no value")));
  EXPECT_THAT(Document::FromFile("/tmp"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a regular file")));
  EXPECT_THAT(Document::FromFile("/nonexistent/node.yaml"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/node.yaml")));
}

TEST(ConfigTest, ReadsFromFile) {
  std::string path =
      std::string(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") + "/c.yaml";
  std::ofstream(path) << "peer_id: amersfoort\nkafka:\n  bootstrap_servers: 127.0.0.1:1\n";
  ASSERT_OK_AND_ASSIGN(auto doc, Document::FromFile(path));
  std::string peer, bootstrap;
  doc.root().Required("peer_id", &peer);
  doc.root().Object("kafka").Required("bootstrap_servers", &bootstrap);
  ASSERT_OK(doc.Finish());
  EXPECT_EQ(peer, "amersfoort");
}

TEST(ParseBytesTest, AcceptsUnitsAndRejectsJunk) {
  EXPECT_EQ(*ParseBytes("1048576"), 1048576);
  EXPECT_EQ(*ParseBytes("1MiB"), 1048576);
  EXPECT_EQ(*ParseBytes("2 KiB"), 2048);
  EXPECT_EQ(*ParseBytes("3MB"), 3000000);
  EXPECT_THAT(ParseBytes("-1"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseBytes("1 TiB"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseBytes("99999999999GiB"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace config
}  // namespace polder
