// Start-up topic checks against a real broker: missing topics are created as configured,
// existing ones are described and reported on, never altered.
#include "services/node/topics.h"

#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_admin.h"
#include "common/status/status_matchers.h"
#include "common/testing/kafka_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace node {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

class TopicsTest : public testing::KafkaBrokerTest {
 protected:
  NodeConfig Config(const std::string& peer) {
    NodeConfig c;
    c.peer_id = peer;
    c.keys_topic = absl::StrCat("_polder.ingest-keys-", peer);
    c.feed_quality_topic = absl::StrCat("_polder.feed-quality-", peer);
    c.replicas_topic = absl::StrCat("_polder.replicas-", peer);
    c.roles_topic = absl::StrCat("_polder.roles-", peer);
    c.internal_replication_factor = 1;
    c.production_replication_factor = 3;
    c.production_min_insync_replicas = 2;
    DatasetConfig bikes;
    bikes.id = "mobility.bike-counts";
    bikes.subject = "polder.datasets.mobility.v1.BikeCount";
    bikes.partitions = 3;
    bikes.replication_factor = 1;
    bikes.retention = absl::Hours(48);
    DatasetConfig parking = bikes;
    parking.id = "parking.occupancy";
    parking.partitions = 2;
    c.datasets = {bikes, parking};
    return c;
  }
};

TEST_F(TopicsTest, CreatesMissingTopicsAsConfigured) {
  NodeConfig c = Config("create");
  ASSERT_OK_AND_ASSIGN(auto admin, kafka::KafkaAdmin::Create(ClientOptions()));
  ASSERT_OK_AND_ASSIGN(TopicReport report, EnsureTopics(*admin, c, absl::Seconds(10)));
  EXPECT_THAT(report.created, ::testing::UnorderedElementsAre(
                                  "create.mobility.bike-counts", "create.parking.occupancy",
                                  "_polder.ingest-keys-create", "_polder.feed-quality-create",
                                  "_polder.replicas-create", "_polder.roles-create"));
  EXPECT_TRUE(report.errors.empty()) << report.errors[0];
  EXPECT_THAT(report.warnings,
              Contains(HasSubstr("replication factor 1, below the production value 3")));
  ASSERT_OK_AND_ASSIGN(kafka::TopicDescription d,
                       admin->DescribeTopic("create.mobility.bike-counts", absl::Seconds(10)));
  EXPECT_EQ(d.partitions, 3);
  EXPECT_EQ(d.configs["retention.ms"].value, std::to_string(48 * 3600 * 1000));
  EXPECT_EQ(d.configs["max.message.bytes"].value, std::to_string((1 << 20) + 1024));
  ASSERT_OK_AND_ASSIGN(kafka::TopicDescription keys,
                       admin->DescribeTopic("_polder.ingest-keys-create", absl::Seconds(10)));
  EXPECT_EQ(keys.partitions, 12) << "kafka.keys_partitions' default";
  ASSERT_OK_AND_ASSIGN(kafka::TopicDescription replicas,
                       admin->DescribeTopic("_polder.replicas-create", absl::Seconds(10)));
  EXPECT_EQ(replicas.partitions, 1);
  EXPECT_EQ(replicas.configs["cleanup.policy"].value, "compact");
  ASSERT_OK_AND_ASSIGN(kafka::TopicDescription roles,
                       admin->DescribeTopic("_polder.roles-create", absl::Seconds(10)));
  EXPECT_EQ(roles.partitions, NodeConfig::kRolesPartitions);
  // A second start finds them and creates nothing.
  ASSERT_OK_AND_ASSIGN(TopicReport again, EnsureTopics(*admin, c, absl::Seconds(10)));
  EXPECT_TRUE(again.created.empty());
  EXPECT_TRUE(again.errors.empty());
}

TEST_F(TopicsTest, ReportsMismatchesOfExistingTopicsWithoutAlteringThem) {
  NodeConfig c = Config("exist");
  ASSERT_OK_AND_ASSIGN(auto admin, kafka::KafkaAdmin::Create(ClientOptions()));
  ASSERT_OK(admin->CreateTopic(
      {"exist.mobility.bike-counts", 5, 1, {{"max.message.bytes", "500000"}}}, absl::Seconds(10)));
  ASSERT_OK(admin->CreateTopic({"exist.parking.occupancy", 2, 1, {{"cleanup.policy", "compact"}}},
                               absl::Seconds(10)));
  ASSERT_OK_AND_ASSIGN(TopicReport report, EnsureTopics(*admin, c, absl::Seconds(10)));
  EXPECT_THAT(report.warnings,
              Contains(HasSubstr("exist.mobility.bike-counts has 5 partitions, configured 3")));
  EXPECT_THAT(report.errors,
              Contains(HasSubstr("exist.mobility.bike-counts has max.message.bytes=500000")));
  EXPECT_THAT(report.errors,
              Contains(HasSubstr("exist.parking.occupancy has cleanup.policy=compact")));
  ASSERT_OK_AND_ASSIGN(kafka::TopicDescription d,
                       admin->DescribeTopic("exist.mobility.bike-counts", absl::Seconds(10)));
  EXPECT_EQ(d.partitions, 5) << "not altered";
  EXPECT_EQ(d.configs["max.message.bytes"].value, "500000") << "not altered";
}

TEST_F(TopicsTest, AKeysTopicWithAnotherPartitionCountIsRefused) {
  NodeConfig c = Config("keys");
  ASSERT_OK_AND_ASSIGN(auto admin, kafka::KafkaAdmin::Create(ClientOptions()));
  ASSERT_OK(admin->CreateTopic({"_polder.ingest-keys-keys", 6, 1, {}}, absl::Seconds(10)));
  ASSERT_OK_AND_ASSIGN(TopicReport report, EnsureTopics(*admin, c, absl::Seconds(10)));
  EXPECT_THAT(report.errors, Contains(HasSubstr("_polder.ingest-keys-keys has 6 partitions, "
                                                "kafka.keys_partitions is 12")));
  c.keys_partitions = 6;
  ASSERT_OK_AND_ASSIGN(TopicReport again, EnsureTopics(*admin, c, absl::Seconds(10)));
  for (const std::string& e : again.errors) EXPECT_THAT(e, Not(HasSubstr("keys_partitions")));
}

TEST_F(TopicsTest, ARolesTopicWithAnotherPartitionCountIsRefused) {
  NodeConfig c = Config("roles");
  ASSERT_OK_AND_ASSIGN(auto admin, kafka::KafkaAdmin::Create(ClientOptions()));
  ASSERT_OK(admin->CreateTopic({"_polder.roles-roles", 8, 1, {}}, absl::Seconds(10)));
  ASSERT_OK_AND_ASSIGN(TopicReport report, EnsureTopics(*admin, c, absl::Seconds(10)));
  EXPECT_THAT(report.errors, Contains(HasSubstr("_polder.roles-roles has 8 partitions; the roles "
                                                "topic has 64")));
}

TEST_F(TopicsTest, FederationAddsMirrorCursorAndAuditTopicsAndRefusesAPartitionMismatch) {
  NodeConfig c = Config("fed");
  c.sharing.enabled = true;
  c.sharing.cursors_topic = "_polder.cursors-fed";
  c.sharing.audit_topic = "_polder.audit-fed";
  c.sharing.audit_index_topic = "_polder.audit-fed-index";
  c.sharing.subscriptions.push_back(
      {"groningen", "localhost:7445", "mobility.bike-counts", "gr-am-1", 3, 1});
  c.sharing.subscriptions.push_back(
      {"enschede", "localhost:7445", "economy.footfall", "en-am-1", 2, 1});
  ASSERT_OK_AND_ASSIGN(auto admin, kafka::KafkaAdmin::Create(ClientOptions()));
  ASSERT_OK(admin->CreateTopic({"enschede.economy.footfall", 4, 1, {}}, absl::Seconds(10)));
  ASSERT_OK_AND_ASSIGN(TopicReport report, EnsureTopics(*admin, c, absl::Seconds(10)));
  EXPECT_THAT(report.created,
              ::testing::IsSupersetOf({"groningen.mobility.bike-counts", "_polder.cursors-fed",
                                       "_polder.audit-fed", "_polder.audit-fed-index"}));
  EXPECT_THAT(report.errors,
              Contains(HasSubstr(
                  "mirror topic enschede.economy.footfall has 4 partitions; the source has 2")));
  ASSERT_OK_AND_ASSIGN(kafka::TopicDescription audit,
                       admin->DescribeTopic("_polder.audit-fed", absl::Seconds(10)));
  EXPECT_EQ(audit.configs["retention.ms"].value, "-1")
      << "no time-based deletion of the audit trail";
  ASSERT_OK_AND_ASSIGN(kafka::TopicDescription cursors,
                       admin->DescribeTopic("_polder.cursors-fed", absl::Seconds(10)));
  EXPECT_EQ(cursors.configs["cleanup.policy"].value, "compact");
  ASSERT_OK_AND_ASSIGN(kafka::TopicDescription index,
                       admin->DescribeTopic("_polder.audit-fed-index", absl::Seconds(10)));
  EXPECT_EQ(index.configs["cleanup.policy"].value, "compact")
      << "the audit index keeps the latest record per key";
}

}  // namespace
}  // namespace node
}  // namespace polder
