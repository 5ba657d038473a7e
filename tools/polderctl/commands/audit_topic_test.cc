// ReadAuditTopic against the fake Kafka (common/kafka/testing): a node's audit topic read back as
// chains, receipts and unreadable records; read errors named with topic and bootstrap; and the
// consumer options of `--kafka-property`.
#include "tools/polderctl/commands/audit_topic.h"

#include <string>
#include <utility>
#include <vector>

#include "common/audit/audit_chain.h"
#include "common/kafka/producer.h"
#include "common/kafka/testing/fake_kafka.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/polderctl/commands/audit_testing.h"

namespace polder {
namespace polderctl {
namespace {

using ::polder::kafka::testing::FakeClientFactory;
using ::polder::kafka::testing::FakeKafka;
using ::polder::kafka::testing::FakeOp;
using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kTopic[] = "_polder.audit";

class AuditTopicTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(kafka_.CreateTopic({kTopic, 1, 1, {}})); }

  void Produce(const std::vector<std::pair<std::string, std::string>>& records) {
    kafka::ProducerOptions o;
    o.client.bootstrap_servers = "fake:9092";
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<kafka::Producer> producer, clients_.NewProducer(o));
    for (const auto& [key, value] : records) {
      kafka::ProducerRecord r;
      r.topic = kTopic;
      r.partition = 0;
      r.key = key;
      r.value = value;
      ASSERT_OK(kafka::SendAndWait(*producer, r).status());
    }
  }

  absl::StatusOr<audit::Trail> Read(absl::Duration timeout = absl::Seconds(10)) {
    absl::StatusOr<kafka::ConsumerOptions> o = AuditConsumerOptions("fake:9092", {});
    if (!o.ok()) return o.status();
    return ReadAuditTopic(clients_, *o, kTopic, timeout);
  }

  FakeKafka kafka_;
  FakeClientFactory clients_{&kafka_};
};

TEST_F(AuditTopicTest, ReadsChainsReceiptsAndUnreadableRecords) {
  const std::vector<audit::AuditLink> received = TestChain("stream-1", "received", 3);
  const std::vector<audit::AuditLink> offered =
      TestChain("stream-2", "offered", 2, "amersfoort", "groningen");
  ASSERT_OK_AND_ASSIGN(trust::PrivateKey key, trust::PrivateKey::Generate());
  ASSERT_OK_AND_ASSIGN(audit::Receipt receipt,
                       audit::MakeReceipt("stream-1", "groningen", 3, "abc", key, kAuditStart));
  std::vector<std::pair<std::string, std::string>> records =
      AuditRecords({{"stream-1", received}, {"stream-2", offered}}, {receipt});
  records.push_back({"stream-3/1", "not an audit record"});
  Produce(records);

  ASSERT_OK_AND_ASSIGN(audit::Trail trail, Read());
  ASSERT_THAT(trail.chains, SizeIs(2));
  ASSERT_THAT(trail.chains.at("stream-1"), SizeIs(3));
  EXPECT_EQ(trail.chains.at("stream-1")[2].hash, received[2].hash);
  EXPECT_THAT(trail.chains.at("stream-2"), SizeIs(2));
  EXPECT_EQ(trail.entries_head.at("stream-2").direction, "offered");
  ASSERT_THAT(trail.receipts, SizeIs(1));
  EXPECT_EQ(trail.receipts[0].peer, "groningen");
  ASSERT_THAT(trail.unreadable, SizeIs(1));
  EXPECT_THAT(trail.unreadable[0], StartsWith("stream-3/1: "));
}

TEST_F(AuditTopicTest, AnEmptyTopicIsAnEmptyTrail) {
  ASSERT_OK_AND_ASSIGN(audit::Trail trail, Read());
  EXPECT_THAT(trail.chains, IsEmpty());
  EXPECT_THAT(trail.receipts, IsEmpty());
  EXPECT_THAT(trail.unreadable, IsEmpty());
}

TEST_F(AuditTopicTest, AReadErrorNamesTopicAndBootstrapAndKeepsItsCode) {
  kafka_.FailNext(FakeOp::kQueryWatermarks, absl::UnavailableError("all brokers down"));
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kUnavailable,
                               "reading _polder.audit from fake:9092: all brokers down"));
  kafka_.FailNext(FakeOp::kNewClient, absl::InvalidArgumentError("bad property"));
  EXPECT_THAT(Read(), StatusIs(absl::StatusCode::kInvalidArgument,
                               "reading _polder.audit from fake:9092: bad property"));
}

TEST_F(AuditTopicTest, AMissingTopicIsAnError) {
  absl::StatusOr<kafka::ConsumerOptions> o = AuditConsumerOptions("fake:9092", {});
  ASSERT_OK(o.status());
  absl::StatusOr<audit::Trail> trail =
      ReadAuditTopic(clients_, *o, "_polder.other", absl::Seconds(2));
  EXPECT_FALSE(trail.ok());
  EXPECT_THAT(std::string(trail.status().message()),
              StartsWith("reading _polder.other from fake:9092: "));
}

TEST(AuditConsumerOptionsTest, TakesPropertiesAndKeepsTheLogLevel) {
  ASSERT_OK_AND_ASSIGN(
      kafka::ConsumerOptions o,
      AuditConsumerOptions("kafka:9093",
                           {"security.protocol=ssl", "ssl.ca.location=/ca=1.pem", "log_level=7"}));
  EXPECT_EQ(o.client.bootstrap_servers, "kafka:9093");
  EXPECT_EQ(o.client.client_id, "polderctl-audit");
  EXPECT_TRUE(o.read_committed);
  EXPECT_THAT(o.client.properties,
              ElementsAre(Pair("log_level", "3"), Pair("security.protocol", "ssl"),
                          Pair("ssl.ca.location", "/ca=1.pem")));
  EXPECT_THAT(AuditConsumerOptions("kafka:9093", {"security.protocol"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--kafka-property 'security.protocol': use k=v"));
}

}  // namespace
}  // namespace polderctl
}  // namespace polder
