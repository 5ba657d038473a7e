// The ingest publisher against the fake Kafka (common/kafka/testing, held to a real broker by
// the conformance suite), with the faults a real broker can only produce by chance: a commit
// whose outcome is unknown, a process that dies between produce and commit, a record refused
// inside a transaction, fencing, an outage. Every case counts what a read_committed reader sees.
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/kafka/errors.h"
#include "common/kafka/testing/fake_kafka.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/node/ingest/publisher.h"
#include "services/node/ingest/publisher_testing.h"

namespace polder {
namespace node {
namespace {

using ::polder::kafka::testing::CommitFault;
using ::polder::kafka::testing::FakeClientFactory;
using ::polder::kafka::testing::FakeKafka;
using ::polder::kafka::testing::FakeOp;
using ::polder::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTopic[] = "groningen.mobility.bike-counts";
constexpr char kKeys[] = "_polder.ingest-keys";
constexpr char kTxnId[] = "polder-node-groningen-ingest";

class PublisherUnitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(kafka_.CreateTopic({kTopic, 3, 1, {}}));
    ASSERT_OK(kafka_.CreateTopic({kKeys, 1, 1, {{"cleanup.policy", "compact"}}}));
  }

  Publisher::Options Options() {
    Publisher::Options o;
    o.producer.client.bootstrap_servers = "fake:9092";
    o.producer.transactional_id = kTxnId;
    o.producer.delivery_timeout = absl::Seconds(5);
    o.producer.transaction_timeout = absl::Seconds(10);
    o.keys_consumer.client.bootstrap_servers = "fake:9092";
    o.keys_topic = kKeys;
    o.publish_timeout = absl::Seconds(2);
    return o;
  }

  PublishBatch Batch(const std::string& key, int n, const std::string& tag = "a") {
    return TestBatch(kTopic, key, n, tag);
  }

  // ce_id → how many times a read_committed reader sees it.
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

  FakeKafka kafka_;
  FakeClientFactory clients_{&kafka_};
};

TEST_F(PublisherUnitTest, CommitsOnceAndANewInstanceAnswersTheKeyFromTheKeysTopic) {
  ASSERT_OK_AND_ASSIGN(auto publisher, Publisher::Start(Options(), clients_));
  ASSERT_OK_AND_ASSIGN(PublishOutcome first, publisher->Publish(Batch("k1", 10)));
  EXPECT_FALSE(first.duplicate);
  ASSERT_OK_AND_ASSIGN(PublishOutcome again, publisher->Publish(Batch("k1", 10)));
  EXPECT_TRUE(again.duplicate);
  EXPECT_THAT(publisher->Publish(Batch("k1", 3, "other")),
              StatusIs(absl::StatusCode::kAlreadyExists));
  ExpectEachOnce(10);
  EXPECT_EQ(kafka_.Committed(kKeys, 0).size(), 1u) << "one key entry, in the same transaction";
  publisher.reset();
  ASSERT_OK_AND_ASSIGN(auto restarted, Publisher::Start(Options(), clients_));
  ASSERT_OK_AND_ASSIGN(PublishOutcome after, restarted->Publish(Batch("k1", 10)));
  EXPECT_TRUE(after.duplicate);
  ExpectEachOnce(10);
}

TEST_F(PublisherUnitTest,
       ACommitWhoseOutcomeIsUnknownIsAnsweredUnavailableAndTheRetryIsADuplicate) {
  ASSERT_OK_AND_ASSIGN(auto publisher, Publisher::Start(Options(), clients_));
  // The coordinator wrote the markers, but the answer was lost (not retriable: no resume).
  kafka_.FailCommit(
      CommitFault::kFailAfterCommit, kTxnId,
      kafka::MakeKafkaError(absl::StatusCode::kUnavailable, "_TIMED_OUT", "committing transaction",
                            "Local: timed out (injected)", {}));
  EXPECT_THAT(publisher->Publish(Batch("lost-answer", 4)),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("retry it with the same idempotency key")));
  ExpectEachOnce(4);  // it did commit
  ASSERT_OK_AND_ASSIGN(PublishOutcome retry, publisher->Publish(Batch("lost-answer", 4)));
  EXPECT_TRUE(retry.duplicate) << "recovery re-read the keys topic and found the committed key";
  ExpectEachOnce(4);
  EXPECT_GE(publisher->stats().producer_recreations, 2);
}

// Without an idempotency key nothing can tell a retry from a new batch: the answer must not
// claim that a retry is safe or that nothing was committed.
TEST_F(PublisherUnitTest, AnUnknownOutcomeWithoutAKeySaysThatARetryMayStoreTheBatchTwice) {
  ASSERT_OK_AND_ASSIGN(auto publisher, Publisher::Start(Options(), clients_));
  kafka_.FailCommit(
      CommitFault::kFailAfterCommit, kTxnId,
      kafka::MakeKafkaError(absl::StatusCode::kUnavailable, "_TIMED_OUT", "committing transaction",
                            "Local: timed out (injected)", {}));
  absl::StatusOr<PublishOutcome> lost = publisher->Publish(Batch("", 3));
  EXPECT_THAT(lost, StatusIs(absl::StatusCode::kUnavailable,
                             HasSubstr("the batch may have been committed")));
  EXPECT_THAT(lost,
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("a retry may store it twice")));
  EXPECT_THAT(lost.status().message(), Not(HasSubstr("nothing of the batch was committed")));
  ExpectEachOnce(3);  // it did commit: the warning was true
}

TEST_F(PublisherUnitTest,
       ACrashBetweenProduceAndCommitLeavesNothingVisibleAndTheRestartCommitsOnce) {
  ASSERT_OK_AND_ASSIGN(auto publisher, Publisher::Start(Options(), clients_));
  ASSERT_OK(publisher->Publish(Batch("before", 2)).status());
  kafka_.FailCommit(CommitFault::kCrashBeforeCommit, kTxnId);
  EXPECT_THAT(publisher->Publish(Batch("crashed", 5)), StatusIs(absl::StatusCode::kUnavailable));
  // The dead producer's records are invisible to readers (its transaction stays open until a
  // new instance aborts it — the publisher's own idle recovery, or the restart below).
  ExpectEachOnce(2);
  // The process restarts: a new instance with the same transactional id aborts it.
  publisher.reset();
  ASSERT_OK_AND_ASSIGN(auto restarted, Publisher::Start(Options(), clients_));
  EXPECT_EQ(kafka_.OpenTransactions(), 0);
  ASSERT_OK_AND_ASSIGN(PublishOutcome retry, restarted->Publish(Batch("crashed", 5)));
  EXPECT_FALSE(retry.duplicate) << "the crashed attempt never committed";
  ExpectEachOnce(7);
}

TEST_F(PublisherUnitTest, ARecordRefusedInsideATransactionAbortsItAndTheRetryCommitsOnce) {
  ASSERT_OK_AND_ASSIGN(auto publisher, Publisher::Start(Options(), clients_));
  kafka::KafkaErrorFlags abortable;
  abortable.txn_requires_abort = true;
  const absl::Status refused = kafka::MakeKafkaError(absl::StatusCode::kAborted, "_STATE",
                                                     "producing", "refused (injected)", abortable);
  // One refused record: the transaction is aborted and run again, invisibly to readers.
  kafka_.FailNext(FakeOp::kSend, refused, 1);
  ASSERT_OK_AND_ASSIGN(PublishOutcome once, publisher->Publish(Batch("once", 3)));
  EXPECT_FALSE(once.duplicate);
  ExpectEachOnce(3);
  EXPECT_EQ(publisher->stats().failed_transactions, 0);
  // Refused in every attempt (3 attempts × 3 records and the key entry): the batch fails and
  // nothing of it shows.
  kafka_.FailNext(FakeOp::kSend, refused, 12);
  EXPECT_THAT(publisher->Publish(Batch("refused", 3)), StatusIs(absl::StatusCode::kUnavailable));
  ExpectEachOnce(3);
  EXPECT_EQ(kafka_.OpenTransactions(), 0) << "every attempt was aborted";
  ASSERT_OK_AND_ASSIGN(PublishOutcome retry, publisher->Publish(Batch("refused", 3)));
  EXPECT_FALSE(retry.duplicate);
  ExpectEachOnce(6);
}

TEST_F(PublisherUnitTest, FencedByAnotherInstanceItStopsAndTheOtherCommits) {
  ASSERT_OK_AND_ASSIGN(auto first, Publisher::Start(Options(), clients_));
  ASSERT_OK(first->Publish(Batch("one", 2)).status());
  ASSERT_OK_AND_ASSIGN(auto second, Publisher::Start(Options(), clients_));
  EXPECT_THAT(first->Publish(Batch("two", 2)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("fenced")));
  EXPECT_TRUE(first->fenced());
  EXPECT_FALSE(first->ready());
  ASSERT_OK(second->Publish(Batch("two", 2)).status());
  ExpectEachOnce(4);
}

TEST_F(PublisherUnitTest, AnOutageIsUnavailableAndReadinessReturnsWhenKafkaDoes) {
  ASSERT_OK_AND_ASSIGN(auto publisher, Publisher::Start(Options(), clients_));
  kafka_.SetDown(true);
  EXPECT_THAT(publisher->Publish(Batch("during", 3)),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("retry it with the same idempotency key")));
  EXPECT_FALSE(publisher->ready());
  ExpectEachOnce(0);
  kafka_.SetDown(false);
  absl::StatusOr<PublishOutcome> retry = publisher->Publish(Batch("during", 3));
  for (int i = 0; i < 5 && !retry.ok(); ++i) retry = publisher->Publish(Batch("during", 3));
  ASSERT_OK(retry.status());
  EXPECT_TRUE(publisher->ready());
  ExpectEachOnce(3);
}

TEST_F(PublisherUnitTest, AProducerThatCannotBeCreatedFailsTheStartWithItsReason) {
  kafka_.FailNext(FakeOp::kNewClient,
                  absl::InvalidArgumentError("Kafka client property 'x' = 'y': bad"));
  EXPECT_THAT(Publisher::Start(Options(), clients_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'x'")));
  Publisher::Options no_id = Options();
  no_id.producer.transactional_id.clear();
  EXPECT_THAT(Publisher::Start(no_id, clients_), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace node
}  // namespace polder
