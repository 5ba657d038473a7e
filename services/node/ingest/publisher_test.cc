// The ingest publisher against a real broker (the same behaviour against the fake, with injected
// faults, is publisher_unit_test.cc): commit, deduplication by key (also across a new
// instance), key reuse refused, a broker outage answered within the deadline and recovered,
// fencing by a second instance, and concurrent batches committed exactly once.
#include "services/node/ingest/publisher.h"

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/status/status_matchers.h"
#include "common/testing/kafka_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/node/ingest/keyed_publisher.h"
#include "services/node/ingest/publisher_testing.h"

namespace polder {
namespace node {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

class PublisherTest : public testing::KafkaBrokerTest {
 protected:
  void SetUp() override {
    testing::KafkaBrokerTest::SetUp();
    topic_ = CreateTopic("groningen.mobility.bike-counts", 3);
    keys_ = CreateTopic("_polder.ingest-keys", 1);
    txn_id_ = UniqueTopic("polder-node-groningen-ingest");
  }

  Publisher::Options Options() {
    Publisher::Options o;
    o.producer.client = ClientOptions();
    o.producer.client.request_timeout = absl::Seconds(3);
    o.producer.transactional_id = txn_id_;
    o.producer.delivery_timeout = absl::Seconds(5);
    o.producer.transaction_timeout = absl::Seconds(10);
    o.keys_consumer.client = ClientOptions();
    o.keys_topic = keys_;
    o.publish_timeout = absl::Seconds(6);
    return o;
  }

  PublishBatch Batch(const std::string& key, int n, const std::string& tag = "a") {
    return TestBatch(topic_, key, n, tag);
  }

  // ce_id → how many times it is in the topic (read_committed).
  std::map<std::string, int> CeIds(size_t expected) {
    std::map<std::string, int> ids;
    for (const kafka::ConsumedRecord& r : ReadRecords(topic_, 3, expected, absl::Seconds(20))) {
      for (const kafka::Header& h : r.headers) {
        if (h.key == "ce_id") ++ids[h.value];
      }
    }
    return ids;
  }

  std::string topic_, keys_, txn_id_;
  kafka::RdKafkaClientFactory kafka_;
};

TEST_F(PublisherTest, CommitsOnceAndAnswersARetryFromTheKeys) {
  ASSERT_OK_AND_ASSIGN(auto publisher, Publisher::Start(Options(), kafka_));
  ASSERT_OK_AND_ASSIGN(PublishOutcome first, publisher->Publish(Batch("k1", 10)));
  EXPECT_EQ(first.records, 10);
  EXPECT_FALSE(first.duplicate);
  ASSERT_OK_AND_ASSIGN(PublishOutcome again, publisher->Publish(Batch("k1", 10)));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.records, 10);
  EXPECT_THAT(publisher->Publish(Batch("k1", 3, "other")),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("was used at")));
  ASSERT_OK(publisher->Publish(Batch("", 4)).status())
      << "no key: no deduplication, still committed";
  auto ids = CeIds(14);
  EXPECT_EQ(ids.size(), 14u);
  for (const auto& [id, n] : ids) EXPECT_EQ(n, 1) << id;

  // A new instance (a restarted node) knows the committed key from the keys topic.
  publisher.reset();
  ASSERT_OK_AND_ASSIGN(auto restarted, Publisher::Start(Options(), kafka_));
  ASSERT_OK_AND_ASSIGN(PublishOutcome after_restart, restarted->Publish(Batch("k1", 10)));
  EXPECT_TRUE(after_restart.duplicate);
  EXPECT_EQ(CeIds(14).size(), 14u);
}

TEST_F(PublisherTest, BrokerOutageIsUnavailableWithinTheDeadlineThenTheRetryCommitsOnce) {
  Publisher::Options o = Options();
  ASSERT_OK_AND_ASSIGN(auto publisher, Publisher::Start(o, kafka_));
  ASSERT_OK(publisher->Publish(Batch("before", 5)).status());
  ASSERT_OK(broker().Pause());
  const absl::Time start = absl::Now();
  absl::StatusOr<PublishOutcome> during = publisher->Publish(Batch("during", 5));
  const absl::Duration took = absl::Now() - start;
  EXPECT_THAT(during, StatusIs(absl::StatusCode::kUnavailable,
                               HasSubstr("retry it with the same idempotency key")));
  // Deadline bounded by configuration: publish_timeout (+2 s answer margin), with 3× slack.
  EXPECT_LT(took, 3 * (o.publish_timeout + absl::Seconds(2)));
  // The failed transaction takes the publisher out of readiness (bounded: 3× its deadline).
  const absl::Time until = absl::Now() + 3 * (o.publish_timeout + absl::Seconds(2));
  while (publisher->ready() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(publisher->ready());
  ASSERT_OK(broker().Resume());
  // The client retries with the same key until it is committed; it is written once.
  absl::StatusOr<PublishOutcome> retry = publisher->Publish(Batch("during", 5));
  for (int i = 0; i < 5 && !retry.ok(); ++i) retry = publisher->Publish(Batch("during", 5));
  ASSERT_OK(retry.status());
  auto ids = CeIds(10);
  EXPECT_EQ(ids.size(), 10u);
  for (const auto& [id, n] : ids) EXPECT_EQ(n, 1) << id;
  EXPECT_TRUE(publisher->ready());
}

TEST_F(PublisherTest, ASecondInstanceFencesTheFirst) {
  ASSERT_OK_AND_ASSIGN(auto first, Publisher::Start(Options(), kafka_));
  ASSERT_OK(first->Publish(Batch("one", 2)).status());
  ASSERT_OK_AND_ASSIGN(auto second, Publisher::Start(Options(), kafka_));
  EXPECT_THAT(first->Publish(Batch("two", 2)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("fenced")));
  EXPECT_TRUE(first->fenced());
  EXPECT_FALSE(first->ready());
  EXPECT_THAT(first->Publish(Batch("three", 2)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("fenced")));
  ASSERT_OK_AND_ASSIGN(PublishOutcome moved, second->Publish(Batch("two", 2)));
  EXPECT_FALSE(moved.duplicate);
  EXPECT_EQ(CeIds(4).size(), 4u);
}

TEST_F(PublisherTest, ConcurrentBatchesShareTransactionsAndCommitExactlyOnce) {
  ASSERT_OK_AND_ASSIGN(auto publisher, Publisher::Start(Options(), kafka_));
  constexpr int kThreads = 6, kBatches = 40, kRecords = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        // Every batch is sent twice, as a client retrying after a lost answer would.
        std::string key = absl::StrCat("t", t, "-b", b);
        if (!publisher->Publish(Batch(key, kRecords)).ok()) ++failures;
        absl::StatusOr<PublishOutcome> again = publisher->Publish(Batch(key, kRecords));
        if (!again.ok() || !again->duplicate) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto ids = CeIds(kThreads * kBatches * kRecords);
  EXPECT_EQ(ids.size(), static_cast<size_t>(kThreads * kBatches * kRecords));
  for (const auto& [id, n] : ids) EXPECT_EQ(n, 1) << id;
  Publisher::Stats s = publisher->stats();
  EXPECT_LT(s.transactions, kThreads * kBatches) << "concurrent batches share transactions";
  EXPECT_EQ(s.known_keys, kThreads * kBatches);
}

// Keyed ingest across two replicas on a real broker: partitions split by the group, every key
// sent to both replicas committed once, the second replica's batches forwarded (in process).
class InProcessForwarder : public ReplicaForwarder {
 public:
  std::map<std::string, KeyedPublisher*> replicas;
  absl::StatusOr<PublishOutcome> ForwardPublish(const std::string& endpoint, int32_t partition,
                                                const PublishBatch& batch,
                                                absl::Duration) override {
    auto it = replicas.find(endpoint);
    if (it == replicas.end()) return absl::UnavailableError("no such replica");
    return it->second->PublishHeld(partition, batch);
  }
};

TEST_F(PublisherTest, TwoKeyedReplicasCommitEachKeyOnce) {
  const std::string keys_v2 = CreateTopic("_polder.ingest-keys.v2", 12);
  const std::string replicas_topic = CreateTopic("_polder.replicas", 1);
  InProcessForwarder net;
  auto start = [&](const std::string& id) {
    KeyedPublisher::Options o;
    o.publisher = Options();
    o.publisher.data_topics = {topic_};
    o.city = UniqueTopic("gn");
    o.replica_id = id;
    o.internal_endpoint = id;
    o.keys_topic = keys_v2;
    o.replicas_topic = replicas_topic;
    o.group.client = ClientOptions();
    o.group.session_timeout = absl::Seconds(6);
    o.group.heartbeat_interval = absl::Seconds(1);
    return o;
  };
  KeyedPublisher::Options oa = start("a");
  ASSERT_OK_AND_ASSIGN(auto a, KeyedPublisher::Start(oa, kafka_, &net));
  net.replicas["a"] = a.get();
  ASSERT_TRUE(a->AwaitReady(absl::Seconds(60)));
  for (int i = 0; i < 40; ++i) ASSERT_OK(a->Publish(Batch(absl::StrCat("solo-", i), 3)).status());
  KeyedPublisher::Options ob = oa;
  ob.replica_id = "b";
  ob.internal_endpoint = "b";
  ASSERT_OK_AND_ASSIGN(auto b, KeyedPublisher::Start(ob, kafka_, &net));
  net.replicas["b"] = b.get();
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while ((a->held().size() != 6 || b->held().size() != 6) && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(a->held().size() + b->held().size(), 12u);
  ASSERT_EQ(b->held().size(), 6u);
  std::atomic<int> fresh{0};
  auto send = [&](KeyedPublisher* p) {
    for (int i = 0; i < 40; ++i) {
      absl::StatusOr<PublishOutcome> r = p->Publish(Batch(absl::StrCat("pair-", i), 3));
      ASSERT_OK(r.status());
      if (!r->duplicate) ++fresh;
    }
  };
  std::thread ta(send, a.get()), tb(send, b.get());
  ta.join();
  tb.join();
  EXPECT_EQ(fresh.load(), 40);
  std::map<std::string, int> ids = CeIds(80 * 3);
  EXPECT_EQ(ids.size(), 80u * 3);
  for (const auto& [id, n] : ids) EXPECT_EQ(n, 1) << id;
  EXPECT_GT(a->stats().forwarded_ok + b->stats().forwarded_ok, 0);
}

}  // namespace
}  // namespace node
}  // namespace polder
