// Unit tests of the producers and the consumer against librdkafka's in-process mock cluster.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/kafka/rdkafka_errors.h"
#include "common/kafka/rdkafka_producer.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace kafka {
namespace {

using ::polder::testing::IsOk;
using ::polder::testing::StatusIs;
using ::testing::Each;
using ::testing::HasSubstr;

// A mock cluster owned by a dummy handle, as rdkafka_mock.h documents.
class MockCluster {
 public:
  explicit MockCluster(int brokers) {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    cluster_ = rd_kafka_mock_cluster_new(rk_, brokers);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(rk_);
  }
  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }
  void CreateTopic(const std::string& name, int partitions) {
    rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
  }
  void SetBrokerDown(bool down) {
    if (down) {
      rd_kafka_mock_broker_set_down(cluster_, 1);
    } else {
      rd_kafka_mock_broker_set_up(cluster_, 1);
    }
  }

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

ProducerOptions OptionsFor(const std::string& bootstrap) {
  ProducerOptions o;
  o.client.bootstrap_servers = bootstrap;
  o.client.properties["log_level"] = "2";
  o.client.request_timeout = absl::Seconds(5);
  o.delivery_timeout = absl::Seconds(10);
  o.linger = absl::Milliseconds(1);
  return o;
}

// Collects delivery outcomes.
class Outcomes {
 public:
  Producer::DeliveryCallback Callback() {
    return [this](absl::StatusOr<RecordMetadata> r) {
      absl::MutexLock lock(&mu_);
      results_.push_back(std::move(r));
    };
  }
  bool WaitFor(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return results_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  std::vector<absl::StatusOr<RecordMetadata>> results() {
    absl::MutexLock lock(&mu_);
    return results_;
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::StatusOr<RecordMetadata>> results_ ABSL_GUARDED_BY(mu_);
};

TEST(ProducerPropertiesTest, PolderGuaranteesCannotBeOverridden) {
  ProducerOptions o = OptionsFor("127.0.0.1:9");
  o.client.properties["acks"] = "0";
  o.client.properties["enable.idempotence"] = "false";
  o.client.properties["partitioner"] = "consistent_random";
  ASSERT_OK_AND_ASSIGN(auto props, ProducerProperties(o, false));
  EXPECT_EQ(props["acks"], "all");
  EXPECT_EQ(props["enable.idempotence"], "true");
  EXPECT_EQ(props["partitioner"], "murmur2_random");
  EXPECT_EQ(props["message.timeout.ms"], "10000");
  EXPECT_EQ(props.count("transactional.id"), 0u);
}

TEST(ProducerPropertiesTest, InvalidOptionsNameTheProblem) {
  ProducerOptions o = OptionsFor("");
  EXPECT_THAT(IdempotentProducer::Create(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bootstrap_servers")));
  o = OptionsFor("127.0.0.1:9");
  o.batch_bytes = o.max_request_bytes + 1;
  EXPECT_THAT(IdempotentProducer::Create(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("batch_bytes")));
  o = OptionsFor("127.0.0.1:9");
  o.client.request_timeout = absl::Seconds(60);
  EXPECT_THAT(IdempotentProducer::Create(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("request_timeout")));
  o = OptionsFor("127.0.0.1:9");
  o.client.properties["no.such.property"] = "1";
  EXPECT_THAT(IdempotentProducer::Create(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'no.such.property' = '1'")));
  o = OptionsFor("127.0.0.1:9");
  EXPECT_THAT(KafkaTransactionalProducer::Create(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("transactional_id")));
  o.transactional_id = "t";
  o.transaction_timeout = absl::Seconds(5);
  EXPECT_THAT(KafkaTransactionalProducer::Create(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("transaction_timeout")));
}

TEST(IdempotentProducerTest, DeliversAndConsumerReadsBack) {
  MockCluster cluster(1);
  cluster.CreateTopic("t", 2);
  ASSERT_OK_AND_ASSIGN(auto producer, IdempotentProducer::Create(OptionsFor(cluster.bootstraps())));
  Outcomes outcomes;
  for (int i = 0; i < 20; ++i) {
    producer->Send({"t",
                    kAnyPartition,
                    absl::StrCat("k", i % 4),
                    absl::StrCat("v", i),
                    {{"ce_id", absl::StrCat("id-", i)}},
                    0},
                   outcomes.Callback());
  }
  ASSERT_OK(producer->Flush(absl::Seconds(30)));
  ASSERT_EQ(outcomes.results().size(), 20u);
  for (const auto& r : outcomes.results()) {
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->topic, "t");
    EXPECT_GE(r->offset, 0);
  }

  ConsumerOptions copts;
  copts.client.bootstrap_servers = cluster.bootstraps();
  copts.client.properties["log_level"] = "2";
  ASSERT_OK_AND_ASSIGN(auto consumer, KafkaConsumer::Create(copts));
  ASSERT_OK(consumer->Assign({{"t", 0, kOffsetBeginning}, {"t", 1, kOffsetBeginning}}));
  std::vector<ConsumedRecord> got;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (got.size() < 20 && absl::Now() < deadline) {
    ASSERT_OK_AND_ASSIGN(auto batch, consumer->Poll(absl::Milliseconds(500), 100));
    got.insert(got.end(), batch.begin(), batch.end());
  }
  ASSERT_EQ(got.size(), 20u);
  for (const auto& r : got) {
    ASSERT_TRUE(r.key.has_value());
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0].key, "ce_id");
  }
}

TEST(IdempotentProducerTest, FatalErrorFailsInFlightWithUnavailableAndRecreates) {
  MockCluster cluster(1);
  cluster.CreateTopic("t", 1);
  ASSERT_OK_AND_ASSIGN(auto producer, IdempotentProducer::Create(OptionsFor(cluster.bootstraps())));
  // Warm up so the producer has its id, then take the broker away so records stay in flight.
  ASSERT_OK(SendAndWait(*producer, {"t", 0, std::string("k"), "warm-up", {}, 0}).status());
  cluster.SetBrokerDown(true);
  Outcomes outcomes;
  for (int i = 0; i < 5; ++i) {
    producer->Send({"t", 0, std::string("k"), absl::StrCat("v", i), {}, 0}, outcomes.Callback());
  }
  EXPECT_EQ(producer->InFlight(), 5);
  ASSERT_OK(producer->InjectFatalErrorForTesting());
  ASSERT_TRUE(outcomes.WaitFor(5, absl::Seconds(30)));
  for (const auto& r : outcomes.results()) {
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("fatal")));
  }
  // A record leaves the in-flight count just after its callback has run.
  absl::Time drained = absl::Now() + absl::Seconds(30);
  while (producer->InFlight() > 0 && absl::Now() < drained) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(producer->InFlight(), 0);

  cluster.SetBrokerDown(false);
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (producer->recreations() < 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(producer->recreations(), 1);
  auto after = SendAndWait(*producer, {"t", 0, std::string("k"), "after", {}, 0});
  EXPECT_THAT(after, IsOk()) << "the recreated producer delivers again";
}

TEST(IdempotentProducerTest, FullQueueIsResourceExhaustedAtOnce) {
  MockCluster cluster(1);
  cluster.CreateTopic("t", 1);
  cluster.SetBrokerDown(true);
  ProducerOptions o = OptionsFor(cluster.bootstraps());
  o.max_buffered_records = 2;
  ASSERT_OK_AND_ASSIGN(auto producer, IdempotentProducer::Create(o));
  Outcomes outcomes;
  for (int i = 0; i < 3; ++i)
    producer->Send({"t", 0, std::nullopt, "v", {}, 0}, outcomes.Callback());
  // The third is refused before Send returns; the first two wait for the broker.
  ASSERT_EQ(outcomes.results().size(), 1u);
  EXPECT_THAT(outcomes.results()[0], StatusIs(absl::StatusCode::kResourceExhausted));
  cluster.SetBrokerDown(false);
  ASSERT_OK(producer->Flush(absl::Seconds(30)));
  EXPECT_EQ(outcomes.results().size(), 3u);
}

TEST(IdempotentProducerTest, DestroyReportsUnacknowledgedRecordsAsCancelled) {
  MockCluster cluster(1);
  cluster.CreateTopic("t", 1);
  cluster.SetBrokerDown(true);
  Outcomes outcomes;
  {
    ASSERT_OK_AND_ASSIGN(auto producer,
                         IdempotentProducer::Create(OptionsFor(cluster.bootstraps())));
    producer->Send({"t", 0, std::nullopt, "v", {}, 0}, outcomes.Callback());
  }
  ASSERT_EQ(outcomes.results().size(), 1u);
  EXPECT_THAT(outcomes.results()[0], StatusIs(absl::StatusCode::kCancelled));
}

TEST(TransactionalProducerTest, CommitsAgainstMockCluster) {
  MockCluster cluster(1);
  cluster.CreateTopic("t", 1);
  ProducerOptions o = OptionsFor(cluster.bootstraps());
  o.transactional_id = "unit-txn";
  ASSERT_OK_AND_ASSIGN(auto producer, KafkaTransactionalProducer::Create(o));
  ASSERT_OK(producer->InitTransactions(absl::Seconds(30)));
  ASSERT_OK(producer->BeginTransaction());
  Outcomes outcomes;
  producer->Send({"t", 0, std::string("k"), "in-txn", {}, 0}, outcomes.Callback());
  ASSERT_OK(producer->CommitTransaction(absl::Seconds(30)));
  ASSERT_TRUE(outcomes.WaitFor(1, absl::Seconds(5)));
  EXPECT_THAT(outcomes.results()[0], IsOk());
  // Committing with no open transaction is a state error, not a crash.
  EXPECT_THAT(producer->CommitTransaction(absl::Seconds(5)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

// Scripted commit outcomes, to test RunInTransaction's decisions without a broker.
class FakeTransactionalProducer : public TransactionalProducer {
 public:
  explicit FakeTransactionalProducer(std::vector<absl::Status> commits)
      : commits_(std::move(commits)) {}
  void Send(const ProducerRecord&, DeliveryCallback done) override { done(RecordMetadata{}); }
  absl::Status Enqueue(const ProducerRecord& r) override {
    enqueued.push_back(r.value);
    return r.value == "refused" ? absl::ResourceExhaustedError("queue full") : absl::OkStatus();
  }
  std::vector<std::string> enqueued;
  absl::Status Flush(absl::Duration) override { return absl::OkStatus(); }
  int64_t InFlight() const override { return 0; }
  absl::Status InitTransactions(absl::Duration) override { return absl::OkStatus(); }
  absl::Status BeginTransaction() override {
    ++begins;
    return absl::OkStatus();
  }
  absl::Status CommitTransaction(absl::Duration) override {
    absl::Status s = commits_.at(commits++);
    return s;
  }
  absl::Status AbortTransaction(absl::Duration) override {
    ++aborts;
    return absl::OkStatus();
  }
  int begins = 0;
  size_t commits = 0;
  int aborts = 0;

 private:
  std::vector<absl::Status> commits_;
};

absl::Status Abortable() {
  KafkaErrorFlags f;
  f.txn_requires_abort = true;
  return KafkaStatus(RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "commit", f);
}

absl::Status Fenced() {
  KafkaErrorFlags f;
  f.fatal = true;
  return KafkaStatus(RD_KAFKA_RESP_ERR__FENCED, "commit", f);
}

// TransactionRecords keeps the first refusal and enqueues nothing after it.
TEST(TransactionRecordsTest, KeepsTheFirstRefusalAndSkipsTheRest) {
  FakeTransactionalProducer p({});
  TransactionRecords txn(&p);
  for (const char* v : {"a", "refused", "b"}) {
    ProducerRecord r;
    r.value = v;
    txn.Enqueue(r);
  }
  EXPECT_THAT(txn.status(), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(p.enqueued, (std::vector<std::string>{"a", "refused"}));
}

TEST(RunInTransactionTest, RetriesAbortableErrorsAndCommitsOnce) {
  FakeTransactionalProducer p({Abortable(), Abortable(), absl::OkStatus()});
  int fills = 0;
  EXPECT_OK(RunInTransaction(
      p,
      [&] {
        ++fills;
        return absl::OkStatus();
      },
      3, absl::Seconds(1)));
  EXPECT_EQ(fills, 3);
  EXPECT_EQ(p.aborts, 2);
  EXPECT_EQ(p.commits, 3u);
}

TEST(RunInTransactionTest, GivesUpAfterMaxAttempts) {
  FakeTransactionalProducer p({Abortable(), Abortable()});
  EXPECT_THAT(RunInTransaction(
                  p, [] { return absl::OkStatus(); }, 2, absl::Seconds(1)),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("failed 2 time(s)")));
  EXPECT_EQ(p.aborts, 2);
}

TEST(RunInTransactionTest, FatalErrorsAreReturnedAtOnce) {
  FakeTransactionalProducer p({Fenced(), absl::OkStatus()});
  absl::Status s = RunInTransaction(
      p, [] { return absl::OkStatus(); }, 3, absl::Seconds(1));
  EXPECT_TRUE(IsFenced(s)) << s;
  EXPECT_EQ(p.commits, 1u);
  EXPECT_EQ(p.aborts, 0) << "a fenced producer must not try to abort and go on";
}

TEST(RunInTransactionTest, RetriableCommitIsResumedNotAborted) {
  FakeTransactionalProducer p(
      {KafkaStatus(RD_KAFKA_RESP_ERR__TIMED_OUT, "commit"), absl::OkStatus()});
  EXPECT_OK(RunInTransaction(
      p, [] { return absl::OkStatus(); }, 1, absl::Seconds(5)));
  EXPECT_EQ(p.commits, 2u);
  EXPECT_EQ(p.aborts, 0);
  EXPECT_EQ(p.begins, 1);
}

TEST(RunInTransactionTest, SendRefusedInFailedTransactionIsRetried) {
  FakeTransactionalProducer p({absl::OkStatus()});
  int fills = 0;
  EXPECT_OK(RunInTransaction(
      p,
      [&] {
        return ++fills == 1 ? KafkaStatus(RD_KAFKA_RESP_ERR__STATE, "producing") : absl::OkStatus();
      },
      2, absl::Seconds(1)));
  EXPECT_EQ(fills, 2);
  EXPECT_EQ(p.aborts, 1);
}

TEST(RunInTransactionTest, FillErrorAbortsAndIsReturned) {
  FakeTransactionalProducer p({});
  EXPECT_THAT(
      RunInTransaction(
          p, [] { return absl::InvalidArgumentError("record 3 bad"); }, 3, absl::Seconds(1)),
      StatusIs(absl::StatusCode::kInvalidArgument, "record 3 bad"));
  EXPECT_EQ(p.aborts, 1);
  EXPECT_EQ(p.commits, 0u);
}

}  // namespace
}  // namespace kafka
}  // namespace polder
