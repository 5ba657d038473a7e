// Keyed ingest across replicas (ADR 0021 §2) against the fake Kafka, whose consumer groups and
// fencing the conformance suite holds to a real broker: partitions split between replicas, keys
// forwarded to their holder and committed exactly once, a zombie replica fenced, unkeyed batches
// under a held partition, a replica leaving. Every case counts what a read_committed reader sees.
#include "services/node/ingest/keyed_publisher.h"

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/kafka/partitioner.h"
#include "common/kafka/testing/fake_kafka.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/node/ingest/publisher_testing.h"

namespace polder {
namespace node {
namespace {

using ::polder::kafka::testing::FakeClientFactory;
using ::polder::kafka::testing::FakeKafka;
using ::polder::testing::StatusIs;

constexpr char kTopic[] = "groningen.mobility.bike-counts";
constexpr char kKeys[] = "_polder.ingest-keys.v2";
constexpr char kLegacyKeys[] = "_polder.ingest-keys";
constexpr char kReplicas[] = "_polder.replicas";
constexpr int kPartitions = 4;

// Replicas reach each other by endpoint name, in process.
class LoopbackForwarder : public ReplicaForwarder {
 public:
  void Add(const std::string& endpoint, KeyedPublisher* p) {
    absl::MutexLock lock(&mu_);
    replicas_[endpoint] = p;
  }
  void Remove(const std::string& endpoint) {
    absl::MutexLock lock(&mu_);
    replicas_.erase(endpoint);
  }
  absl::StatusOr<PublishOutcome> ForwardPublish(const std::string& endpoint, int32_t partition,
                                                const PublishBatch& batch,
                                                absl::Duration) override {
    KeyedPublisher* target;
    {
      absl::MutexLock lock(&mu_);
      auto it = replicas_.find(endpoint);
      if (it == replicas_.end()) return absl::UnavailableError("connection refused");
      target = it->second;
      ++calls_;
    }
    return target->PublishHeld(partition, batch);
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, KeyedPublisher*> replicas_;
  int calls_ = 0;
};

class KeyedPublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(kafka_.CreateTopic({kTopic, 3, 1, {}}));
    ASSERT_OK(kafka_.CreateTopic({kKeys, kPartitions, 1, {{"cleanup.policy", "compact"}}}));
    ASSERT_OK(kafka_.CreateTopic({kReplicas, 1, 1, {{"cleanup.policy", "compact"}}}));
  }

  std::unique_ptr<KeyedPublisher> Replica(const std::string& id) {
    KeyedPublisher::Options o;
    o.publisher.producer.client.bootstrap_servers = "fake:9092";
    o.publisher.producer.client.client_id = id;
    o.publisher.producer.delivery_timeout = absl::Seconds(5);
    o.publisher.producer.transaction_timeout = absl::Seconds(10);
    o.publisher.keys_consumer.client.bootstrap_servers = "fake:9092";
    o.publisher.publish_timeout = absl::Seconds(5);
    o.city = "groningen";
    o.replica_id = id;
    o.internal_endpoint = id + ":7443";
    o.keys_topic = kKeys;
    o.partitions = kPartitions;
    o.replicas_topic = kReplicas;
    o.legacy_keys_topic = legacy_;
    o.legacy_transactional_id = "polder-node-groningen-ingest";
    o.group.client.bootstrap_servers = "fake:9092";
    o.group.client.client_id = id;
    absl::StatusOr<std::unique_ptr<KeyedPublisher>> p = KeyedPublisher::Start(o, clients_, &net_);
    EXPECT_OK(p.status());
    if (!p.ok()) return nullptr;
    net_.Add(o.internal_endpoint, p->get());
    return *std::move(p);
  }

  // Waits until the directory of `p` names a holder for every partition.
  void AwaitOwners(const KeyedPublisher& p, const std::set<std::string>& holders) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      std::set<std::string> seen;
      auto owners = p.owners();
      for (const auto& [k, a] : owners) seen.insert(a.replica);
      if (owners.size() == kPartitions && seen == holders) return;
      absl::SleepFor(absl::Milliseconds(10));
    }
    ADD_FAILURE() << "the directory did not show the holders";
  }

  std::map<std::string, int> CeIds() {
    std::map<std::string, int> ids;
    for (int p = 0; p < 3; ++p) {
      for (const kafka::ConsumedRecord& r : kafka_.Committed(kTopic, p)) {
        for (const kafka::Header& h : r.headers) {
          if (h.key == "ce_id") ++ids[h.value];
        }
      }
    }
    return ids;
  }

  void ExpectEachOnce(size_t expected) {
    std::map<std::string, int> ids = CeIds();
    EXPECT_EQ(ids.size(), expected);
    for (const auto& [id, n] : ids) EXPECT_EQ(n, 1) << id;
  }

  // A key whose partition is `partition`.
  std::string KeyIn(int32_t partition, int n = 0) {
    for (int i = 0;; ++i) {
      std::string key = absl::StrCat("key-", partition, "-", n, "-", i);
      if (kafka::JavaPartition(absl::StrCat("gateway-1\n", key), kPartitions) == partition) {
        return key;
      }
    }
  }

  FakeKafka kafka_;
  FakeClientFactory clients_{&kafka_};
  LoopbackForwarder net_;
  std::string legacy_;
};

TEST_F(KeyedPublisherTest, OneReplicaHoldsEveryPartitionAndWritesEachUnderItsOwnId) {
  auto a = Replica("a");
  ASSERT_NE(a, nullptr);
  EXPECT_THAT(a->held(), ::testing::ElementsAre(0, 1, 2, 3));
  AwaitOwners(*a, {"a"});
  EXPECT_TRUE(a->ready());
  for (int k = 0; k < kPartitions; ++k) {
    ASSERT_OK_AND_ASSIGN(PublishOutcome first, a->Publish(TestBatch(kTopic, KeyIn(k), 5)));
    EXPECT_FALSE(first.duplicate);
    ASSERT_OK_AND_ASSIGN(PublishOutcome again, a->Publish(TestBatch(kTopic, KeyIn(k), 5)));
    EXPECT_TRUE(again.duplicate);
    EXPECT_THAT(a->Publish(TestBatch(kTopic, KeyIn(k), 3, "other")),
                StatusIs(absl::StatusCode::kAlreadyExists));
    ASSERT_EQ(kafka_.Committed(kKeys, k).size(), 1u) << "the key entry is in its own partition";
    EXPECT_EQ(*kafka_.Committed(kKeys, k)[0].key, absl::StrCat("gateway-1\n", KeyIn(k)));
  }
  ExpectEachOnce(4 * 5);
  EXPECT_EQ(a->TransactionalIdOf(3), "polder-ingest-groningen-k3");
  // A second start of the same transactional id fences the holder.
  EXPECT_EQ(a->stats().partitions_held, 4);
}

TEST_F(KeyedPublisherTest, TwoReplicasSplitThePartitionsAndForwardKeysToTheirHolder) {
  auto a = Replica("a");
  auto b = Replica("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->held().size() + b->held().size(), static_cast<size_t>(kPartitions));
  EXPECT_EQ(a->held().size(), 2u);
  AwaitOwners(*a, {"a", "b"});
  AwaitOwners(*b, {"a", "b"});
  // Every key is sent to both replicas, from two threads at once.
  std::vector<std::string> keys;
  for (int k = 0; k < kPartitions; ++k) {
    for (int n = 0; n < 5; ++n) keys.push_back(KeyIn(k, n));
  }
  std::vector<int> fresh(keys.size(), 0);
  auto send = [&](KeyedPublisher* p, int slot) {
    for (size_t i = 0; i < keys.size(); ++i) {
      absl::StatusOr<PublishOutcome> r = p->Publish(TestBatch(kTopic, keys[i], 3));
      ASSERT_OK(r.status());
      if (!r->duplicate) __atomic_add_fetch(&fresh[i], 1, __ATOMIC_SEQ_CST);
      (void)slot;
    }
  };
  std::thread ta(send, a.get(), 0), tb(send, b.get(), 1);
  ta.join();
  tb.join();
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(fresh[i], 1) << keys[i] << " committed once";
  ExpectEachOnce(keys.size() * 3);
  EXPECT_GT(net_.calls(), 0);
  EXPECT_GT(a->stats().forwarded_ok + b->stats().forwarded_ok, 0);
}

TEST_F(KeyedPublisherTest, AZombieReplicaIsFencedAndItsBatchesReachTheNewHolder) {
  auto a = Replica("a");
  auto b = Replica("b");
  AwaitOwners(*b, {"a", "b"});
  const std::vector<int32_t> a_held = a->held();
  ASSERT_FALSE(a_held.empty());
  const std::string key = KeyIn(a_held[0]);
  // a's session expires (paused): b takes every partition; a still believes it holds its own.
  const std::vector<std::string> members = kafka_.GroupMembers("polder-groningen-keys");
  ASSERT_EQ(members.size(), 2u);
  kafka_.PauseMember(members[0]);
  EXPECT_EQ(b->held().size(), static_cast<size_t>(kPartitions));
  EXPECT_EQ(a->held(), a_held) << "a zombie, not told";
  AwaitOwners(*b, {"b"});
  // A batch sent to the zombie: its commit is fenced, so it reaches b; committed once.
  ASSERT_OK_AND_ASSIGN(PublishOutcome first, a->Publish(TestBatch(kTopic, key, 4)));
  EXPECT_FALSE(first.duplicate);
  ASSERT_OK_AND_ASSIGN(PublishOutcome again, b->Publish(TestBatch(kTopic, key, 4)));
  EXPECT_TRUE(again.duplicate);
  ExpectEachOnce(4);
  // It wakes: told the partitions were lost, it rejoins and takes a share under new ids' epochs.
  kafka_.ResumeMember(members[0]);
  EXPECT_EQ(a->held().size() + b->held().size(), static_cast<size_t>(kPartitions));
  EXPECT_FALSE(a->held().empty());
  ASSERT_OK_AND_ASSIGN(PublishOutcome third, a->Publish(TestBatch(kTopic, key, 4)));
  EXPECT_TRUE(third.duplicate);
  ExpectEachOnce(4);
}

TEST_F(KeyedPublisherTest, UnkeyedBatchesAreCommittedUnderAHeldPartitionOrForwarded) {
  ASSERT_OK(kafka_.CreateTopic({"_polder.roles", 1, 1, {}}));
  auto a = Replica("a");
  ASSERT_OK(a->Publish(TestBatch(kTopic, "", 2, "u1")).status());
  ASSERT_OK(a->Publish(TestBatch(kTopic, "", 2, "u2")).status());
  ExpectEachOnce(4);
  // A replica holding nothing (its session expired and nobody woke it) forwards unkeyed batches.
  auto b = Replica("b");
  AwaitOwners(*a, {"a", "b"});
  const std::vector<std::string> members = kafka_.GroupMembers("polder-groningen-keys");
  kafka_.PauseMember(members[1]);
  kafka_.ResumeMember(members[1]);
  EXPECT_FALSE(b->held().empty());
  ASSERT_OK(b->Publish(TestBatch(kTopic, "", 2, "u3")).status());
  ExpectEachOnce(6);
}

TEST_F(KeyedPublisherTest, AReplicaLeavingHandsItsPartitionsOverAndKeysStayAnswered) {
  auto a = Replica("a");
  auto b = Replica("b");
  AwaitOwners(*a, {"a", "b"});
  std::vector<std::string> keys;
  for (int k = 0; k < kPartitions; ++k) keys.push_back(KeyIn(k));
  for (const std::string& key : keys) ASSERT_OK(b->Publish(TestBatch(kTopic, key, 2)).status());
  net_.Remove("b:7443");
  b.reset();  // a static member: its partitions wait for it until its session expires
  EXPECT_EQ(a->held().size(), static_cast<size_t>(kPartitions) / 2);
  kafka_.ExpireStaticMember("polder-groningen-keys", "b");
  EXPECT_EQ(a->held().size(), static_cast<size_t>(kPartitions));
  for (const std::string& key : keys) {
    ASSERT_OK_AND_ASSIGN(PublishOutcome r, a->Publish(TestBatch(kTopic, key, 2)));
    EXPECT_TRUE(r.duplicate) << key << ": the new holder read the partition's keys";
  }
  ExpectEachOnce(keys.size() * 2);
}

TEST_F(KeyedPublisherTest, AReplicaRestartedUnderItsIdTakesItsPartitionsBack) {
  auto a = Replica("a");
  auto b = Replica("b");
  AwaitOwners(*a, {"a", "b"});
  const std::vector<int32_t> b_held = b->held();
  net_.Remove("b:7443");
  b.reset();
  b = Replica("b");
  EXPECT_EQ(b->held(), b_held) << "no rebalance: the same partitions";
  const std::string key = KeyIn(b_held[0]);
  ASSERT_OK(a->Publish(TestBatch(kTopic, key, 2)).status());
  ASSERT_OK_AND_ASSIGN(PublishOutcome again, b->Publish(TestBatch(kTopic, key, 2)));
  EXPECT_TRUE(again.duplicate);
  ExpectEachOnce(2);
}

TEST_F(KeyedPublisherTest, KeysOfTheSinglePartitionTopicAnswerRetriesAfterTheUpgrade) {
  ASSERT_OK(kafka_.CreateTopic({kLegacyKeys, 1, 1, {{"cleanup.policy", "compact"}}}));
  // The single node committed key "old" before the upgrade.
  {
    Publisher::Options o;
    o.producer.client.bootstrap_servers = "fake:9092";
    o.producer.transactional_id = "polder-node-groningen-ingest";
    o.keys_consumer.client.bootstrap_servers = "fake:9092";
    o.keys_topic = kLegacyKeys;
    ASSERT_OK_AND_ASSIGN(auto single, Publisher::Start(o, clients_));
    ASSERT_OK(single->Publish(TestBatch(kTopic, "old", 3)).status());
  }
  legacy_ = kLegacyKeys;
  auto a = Replica("a");
  ASSERT_OK_AND_ASSIGN(PublishOutcome r, a->Publish(TestBatch(kTopic, "old", 3)));
  EXPECT_TRUE(r.duplicate) << "answered from the single-partition topic";
  ExpectEachOnce(3);
}

TEST_F(KeyedPublisherTest, WithNoHolderABatchIsUnavailableAfterThePublishTimeout) {
  auto a = Replica("a");
  const std::vector<std::string> members = kafka_.GroupMembers("polder-groningen-keys");
  // Its session expired and nobody holds anything (no other member): the directory still names
  // a, whose publishers are fenced once a... here nobody fenced them, so pause and do not wake.
  kafka_.PauseMember(members[0]);
  // a still holds its partitions as a zombie and commits (nobody fenced it): the fence comes
  // only with a new holder. That is the guarantee: a write happens under a live epoch or not at
  // all.
  ASSERT_OK(a->Publish(TestBatch(kTopic, KeyIn(0), 1)).status());
  for (int k = 0; k < kPartitions; ++k) kafka_.Fence(a->TransactionalIdOf(k));
  absl::StatusOr<PublishOutcome> r = a->Publish(TestBatch(kTopic, KeyIn(1), 1));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable));
  ExpectEachOnce(1);
}

}  // namespace
}  // namespace node
}  // namespace polder
