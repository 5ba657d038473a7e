// The recover-then-write sequence over the fake Kafka (held to a real broker by the conformance
// suite): state read to its end after fencing the previous instance, incremental re-reads,
// a crashed instance's open transaction resolved, and what a failed or fenced write leaves.
#include "common/kafka/state_writer.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/kafka/errors.h"
#include "common/kafka/testing/fake_kafka.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace kafka {
namespace {

using ::polder::kafka::testing::CommitFault;
using ::polder::kafka::testing::FakeClientFactory;
using ::polder::kafka::testing::FakeKafka;
using ::polder::kafka::testing::FakeOp;
using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kData[] = "data";
constexpr char kState[] = "state";
constexpr char kTxnId[] = "writer-1";

class StateWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(kafka_.CreateTopic({kData, 2, 1, {}}));
    ASSERT_OK(kafka_.CreateTopic({kState, 1, 1, {{"cleanup.policy", "compact"}}}));
  }

  StateWriter::Options Options() {
    StateWriter::Options o;
    o.producer.client.bootstrap_servers = "fake:9092";
    o.producer.transactional_id = kTxnId;
    o.producer.transaction_timeout = absl::Seconds(30);
    o.consumer.client.bootstrap_servers = "fake:9092";
    o.state_topic = kState;
    o.timeout = absl::Seconds(5);
    return o;
  }

  // One transaction: a data record and the state record naming it.
  absl::Status Write(StateWriter& w, const std::string& value) {
    return w.Transact([&]() -> absl::Status {
      ProducerRecord data;
      data.topic = kData;
      data.partition = 0;
      data.value = value;
      w.producer()->Send(data, [](absl::StatusOr<RecordMetadata>) {});
      ProducerRecord state;
      state.topic = kState;
      state.partition = 0;
      state.key = "cursor";
      state.value = value;
      w.producer()->Send(state, [](absl::StatusOr<RecordMetadata>) {});
      return absl::OkStatus();
    });
  }

  // What a loader saw.
  StateWriter::Loader Collect(std::vector<std::string>* seen) {
    return [seen](const ConsumedRecord& r) {
      seen->push_back(r.value);
      return absl::OkStatus();
    };
  }

  std::vector<std::string> DataValues() {
    std::vector<std::string> out;
    for (const ConsumedRecord& r : kafka_.Committed(kData, 0)) out.push_back(r.value);
    return out;
  }

  FakeKafka kafka_;
  FakeClientFactory clients_{&kafka_};
};

TEST_F(StateWriterTest, RecoversTheStateThenWritesRecordsAndStateTogether) {
  StateWriter w(clients_, Options());
  EXPECT_TRUE(w.needs_recovery());
  EXPECT_THAT(Write(w, "x"), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("recover")));
  std::vector<std::string> seen;
  ASSERT_OK_AND_ASSIGN(int64_t end, w.Recover(Collect(&seen)));
  EXPECT_EQ(end, 0);
  EXPECT_TRUE(seen.empty());
  ASSERT_OK(Write(w, "a"));
  ASSERT_OK(Write(w, "b"));
  EXPECT_THAT(DataValues(), ElementsAre("a", "b"));

  // A new instance reads the state to its end (records and commit markers take offsets).
  StateWriter next(clients_, Options());
  std::vector<std::string> loaded;
  ASSERT_OK_AND_ASSIGN(int64_t position, next.Recover(Collect(&loaded)));
  EXPECT_THAT(loaded, ElementsAre("a", "b"));
  EXPECT_EQ(position, kafka_.EndOffset(kState, 0));
  EXPECT_EQ(next.recoveries(), 1);
  // ... and fenced the first one, which stays fenced.
  EXPECT_TRUE(IsFenced(Write(w, "c")));
  EXPECT_TRUE(w.fenced());
  EXPECT_THAT(w.Recover(Collect(&seen)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is fenced")));
  EXPECT_THAT(DataValues(), ElementsAre("a", "b"));
}

TEST_F(StateWriterTest, ASecondRecoveryReadsOnlyWhatCameAfterTheFirst) {
  StateWriter w(clients_, Options());
  std::vector<std::string> seen;
  ASSERT_OK(w.Recover(Collect(&seen)).status());
  ASSERT_OK(Write(w, "a"));
  w.Invalidate();
  EXPECT_TRUE(w.needs_recovery());
  std::vector<std::string> again;
  ASSERT_OK(w.Recover(Collect(&again)).status());
  EXPECT_THAT(again, ElementsAre("a"));
  ASSERT_OK(Write(w, "b"));
  w.Invalidate();
  std::vector<std::string> third;
  ASSERT_OK(w.Recover(Collect(&third)).status());
  EXPECT_THAT(third, ElementsAre("b"));  // from where the last read ended
}

TEST_F(StateWriterTest, ACrashedInstancesOpenTransactionIsResolvedBeforeTheStateIsRead) {
  {
    StateWriter crashed(clients_, Options());
    std::vector<std::string> seen;
    ASSERT_OK(crashed.Recover(Collect(&seen)).status());
    ASSERT_OK(Write(crashed, "kept"));
    kafka_.FailCommit(CommitFault::kCrashBeforeCommit, kTxnId);
    EXPECT_FALSE(Write(crashed, "lost").ok());
    EXPECT_EQ(kafka_.OpenTransactions(), 1);  // holds the last stable offset
  }
  StateWriter next(clients_, Options());
  std::vector<std::string> loaded;
  ASSERT_OK(next.Recover(Collect(&loaded)).status());
  EXPECT_EQ(kafka_.OpenTransactions(), 0);
  EXPECT_THAT(loaded, ElementsAre("kept"));
  ASSERT_OK(Write(next, "after"));
  EXPECT_THAT(DataValues(), ElementsAre("kept", "after"));
}

TEST_F(StateWriterTest, AFailedTransactionWritesNothingAndNeedsRecovery) {
  StateWriter w(clients_, Options());
  std::vector<std::string> seen;
  ASSERT_OK(w.Recover(Collect(&seen)).status());
  kafka_.FailCommit(CommitFault::kFailBeforeCommit, kTxnId,
                    MakeKafkaError(absl::StatusCode::kFailedPrecondition, "INVALID_TXN_STATE",
                                   "commit", "injected", {.fatal = true}));
  EXPECT_FALSE(Write(w, "x").ok());
  EXPECT_TRUE(w.needs_recovery());
  EXPECT_FALSE(w.fenced());
  EXPECT_THAT(Write(w, "y"), StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK(w.Recover(Collect(&seen)).status());
  ASSERT_OK(Write(w, "z"));
  EXPECT_THAT(DataValues(), ElementsAre("z"));
}

TEST_F(StateWriterTest, RecoveryErrorsNameTheStepAndLeaveNoProducer) {
  StateWriter w(clients_, Options());
  std::vector<std::string> seen;
  kafka_.FailNext(FakeOp::kNewClient, absl::UnavailableError("no client (injected)"), 1, kTxnId);
  EXPECT_THAT(w.Recover(Collect(&seen)),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("creating the transactional producer: no client")));
  kafka_.FailNext(FakeOp::kInitTransactions, absl::UnavailableError("coordinator away"), 1, kTxnId);
  EXPECT_THAT(w.Recover(Collect(&seen)),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("initialising transactions: coordinator away")));
  EXPECT_TRUE(w.needs_recovery());
  // A loader that refuses a record fails the recovery with its reason.
  ASSERT_OK(w.Recover(Collect(&seen)).status());
  ASSERT_OK(Write(w, "bad"));
  StateWriter next(clients_, Options());
  EXPECT_THAT(next.Recover([](const ConsumedRecord& r) {
    return absl::DataLossError(absl::StrCat("unreadable state at offset ", r.offset));
  }),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("reading state: unreadable state at offset 0")));
  EXPECT_TRUE(next.needs_recovery());
}

TEST_F(StateWriterTest, WithoutAStateTopicOnlyTheProducerIsRecovered) {
  StateWriter::Options o = Options();
  o.state_topic.clear();
  StateWriter w(clients_, o);
  ASSERT_OK_AND_ASSIGN(int64_t end, w.Recover(nullptr));
  EXPECT_EQ(end, 0);
  ASSERT_OK(Write(w, "a"));
  EXPECT_THAT(DataValues(), ElementsAre("a"));
}

TEST_F(StateWriterTest, TransactionsAreSpacedByTheProducersTransactionSpacing) {
  StateWriter::Options o = Options();
  o.producer.transaction_spacing = absl::Milliseconds(200);
  StateWriter w(clients_, o);
  ASSERT_OK(w.Recover(nullptr).status());
  // Nothing to wait for before the first transaction.
  EXPECT_LE(w.next_transaction_at(), absl::Now());
  absl::Time started[2];
  absl::Time ended[2];
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK(w.Transact([&]() -> absl::Status {
      started[i] = absl::Now();
      ProducerRecord data;
      data.topic = kData;
      data.partition = 0;
      data.value = absl::StrCat("v", i);
      w.producer()->Send(data, [](absl::StatusOr<RecordMetadata>) {});
      return absl::OkStatus();
    }));
    ended[i] = absl::Now();
    // The next one may start no earlier than the spacing after this one ended.
    EXPECT_LE(w.next_transaction_at(), ended[i] + o.producer.transaction_spacing);
    EXPECT_GT(w.next_transaction_at(), started[i] + o.producer.transaction_spacing);
  }
  // The second transaction waited: its records were sent at least the spacing after the first
  // transaction's end (a lower bound — sleeping never ends early).
  EXPECT_GE(started[1] - ended[0], o.producer.transaction_spacing - absl::Milliseconds(1));
  EXPECT_THAT(DataValues(), ElementsAre("v0", "v1"));

  // A failed transaction is spaced from too (its abort also completes after the answer).
  kafka_.FailCommit(CommitFault::kFailBeforeCommit, kTxnId,
                    MakeKafkaError(absl::StatusCode::kFailedPrecondition, "INVALID_TXN_STATE",
                                   "commit", "injected", {.fatal = true}));
  const absl::Time before_failure = absl::Now();
  EXPECT_FALSE(Write(w, "lost").ok());
  EXPECT_GE(w.next_transaction_at(), before_failure + o.producer.transaction_spacing);
  EXPECT_THAT(DataValues(), ElementsAre("v0", "v1"));
}

TEST_F(StateWriterTest, WithoutSpacingTheNextTransactionMayStartAtOnce) {
  StateWriter w(clients_, Options());
  ASSERT_OK(w.Recover(nullptr).status());
  ASSERT_OK(Write(w, "a"));
  EXPECT_LE(w.next_transaction_at(), absl::Now());
}

}  // namespace
}  // namespace kafka
}  // namespace polder
