// What a configuration needs of Kafka (ADR 0022 §4): the topics EnsureTopics would create or
// check, the transactional ids and the consumer groups — the list a chart's KafkaTopics and
// KafkaUser ACLs are checked against.
#include <algorithm>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/node/topics.h"

namespace polder {
namespace node {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

NodeConfig Amersfoort() {
  NodeConfig c;
  c.peer_id = "amersfoort";
  c.transactional_id = "polder-node-amersfoort-ingest";
  DatasetConfig air;
  air.id = "environment.air-quality";
  air.subject = "polder.datasets.environment.v1.AirQualityObserved";
  air.partitions = 6;
  air.replication_factor = 3;
  air.retention = absl::Hours(48);
  c.datasets = {air};
  c.sharing.enabled = true;
  SubscriptionConfig bikes;
  bikes.provider = "groningen";
  bikes.endpoint = "groningen.example:7445";
  bikes.dataset = "mobility.bike-counts";
  bikes.contract = "gr-am-1";
  bikes.partitions = 3;
  SubscriptionConfig view = bikes;
  view.view = "quarter-municipality";
  view.partitions = 1;
  c.sharing.subscriptions = {bikes, view};
  return c;
}

const WantedTopic* Find(const KafkaNeeds& needs, const std::string& name) {
  for (const WantedTopic& w : needs.topics) {
    if (w.spec.name == name) return &w;
  }
  return nullptr;
}

TEST(KafkaNeedsTest, OwnInternalAndMirrorTopicsWithWhoCreatesThem) {
  const KafkaNeeds needs = KafkaNeedsOf(Amersfoort());
  const WantedTopic* air = Find(needs, "amersfoort.environment.air-quality");
  ASSERT_NE(air, nullptr);
  EXPECT_EQ(air->spec.partitions, 6);
  EXPECT_EQ(air->spec.configs.at("retention.ms"), "172800000");
  EXPECT_EQ(air->spec.configs.at("cleanup.policy"), "delete");
  EXPECT_FALSE(air->mirror);
  for (const char* internal :
       {"_polder.ingest-keys.v2", "_polder.replicas", "_polder.roles", "_polder.feed-quality",
        "_polder.cursors", "_polder.audit", "_polder.audit-index"}) {
    const WantedTopic* w = Find(needs, internal);
    ASSERT_NE(w, nullptr) << internal;
    EXPECT_FALSE(w->mirror) << internal;
  }
  EXPECT_EQ(Find(needs, "_polder.ingest-keys.v2")->spec.partitions, 12);
  EXPECT_EQ(Find(needs, "_polder.roles")->spec.partitions, NodeConfig::kRolesPartitions);
  EXPECT_EQ(Find(needs, "_polder.audit")->spec.configs.at("retention.ms"), "-1");
  const WantedTopic* mirror = Find(needs, "groningen.mobility.bike-counts");
  ASSERT_NE(mirror, nullptr);
  EXPECT_TRUE(mirror->mirror);
  EXPECT_TRUE(mirror->exact_partitions);
  EXPECT_EQ(mirror->spec.partitions, 3);
  const WantedTopic* view = Find(needs, "groningen.mobility.bike-counts.view.quarter-municipality");
  ASSERT_NE(view, nullptr);
  EXPECT_TRUE(view->mirror);
  // Without federation: no mirror, cursor or audit topic.
  NodeConfig alone = Amersfoort();
  alone.sharing.enabled = false;
  const KafkaNeeds own = KafkaNeedsOf(alone);
  EXPECT_EQ(Find(own, "_polder.audit"), nullptr);
  EXPECT_EQ(Find(own, "groningen.mobility.bike-counts"), nullptr);
}

TEST(KafkaNeedsTest, TransactionalIdsAndGroupsAreTheOnesTheWritersUse) {
  const NodeConfig c = Amersfoort();
  const KafkaNeeds needs = KafkaNeedsOf(c);
  EXPECT_THAT(
      needs.transactional_ids,
      UnorderedElementsAre(
          "polder-node-amersfoort-ingest",
          "polder-mirror-amersfoort-groningen-mobility.bike-counts",
          "polder-mirror-amersfoort-groningen-mobility.bike-counts.view.quarter-municipality"));
  EXPECT_EQ(c.MirrorTransactionalIdOf(c.sharing.subscriptions[0]),
            "polder-mirror-amersfoort-groningen-mobility.bike-counts");
  EXPECT_THAT(needs.transactional_id_prefixes, ElementsAre("polder-ingest-amersfoort-k"));
  EXPECT_THAT(needs.groups, ElementsAre("polder-amersfoort-keys", "polder-amersfoort-roles"));
}

TEST(KafkaNeedsTest, JsonCarriesEveryTopicAndWhoCreatesIt) {
  const KafkaNeeds needs = KafkaNeedsOf(Amersfoort());
  const nlohmann::json j = nlohmann::json::parse(KafkaNeedsJson(needs));
  ASSERT_EQ(j["topics"].size(), needs.topics.size());
  int by_node = 0;
  for (const nlohmann::json& t : j["topics"]) {
    if (t["created_by"] == "node") ++by_node;
    EXPECT_TRUE(t["configs"].contains("max.message.bytes")) << t.dump();
  }
  EXPECT_EQ(by_node, 2);
  EXPECT_EQ(j["groups"].size(), 2u);
  EXPECT_EQ(j["transactional_id_prefixes"][0], "polder-ingest-amersfoort-k");
}

}  // namespace
}  // namespace node
}  // namespace polder
