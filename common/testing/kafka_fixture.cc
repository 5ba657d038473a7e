#include "common/testing/kafka_fixture.h"

#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_admin.h"
#include "common/kafka/rdkafka_consumer.h"

namespace polder {
namespace testing {

std::unique_ptr<kafka_testing::KafkaBroker> KafkaBrokerTest::broker_;
absl::Status KafkaBrokerTest::start_status_;
int KafkaBrokerTest::topic_counter_ = 0;

void KafkaBrokerTest::SetUpTestSuite() {
  kafka_testing::KafkaBrokerOptions options;
  options.name = "test";
  auto broker = kafka_testing::KafkaBroker::Start(options);
  if (broker.ok()) {
    broker_ = std::move(*broker);
    start_status_ = absl::OkStatus();
  } else {
    start_status_ = broker.status();
  }
}

void KafkaBrokerTest::TearDownTestSuite() { broker_.reset(); }

void KafkaBrokerTest::SetUp() {
  ASSERT_TRUE(start_status_.ok()) << "Kafka broker did not start: " << start_status_;
  ASSERT_NE(broker_, nullptr);
  if (broker_->paused()) {
    ASSERT_TRUE(broker_->Resume().ok());
  }
  if (!broker_->running()) {
    absl::Status s = broker_->Restart();
    ASSERT_TRUE(s.ok()) << "restarting the broker a previous test left down: " << s;
  }
}

kafka::ClientOptions KafkaBrokerTest::ClientOptions() {
  kafka::ClientOptions o;
  o.bootstrap_servers = broker_ != nullptr ? broker_->bootstrap_servers() : "";
  o.client_id = "polder-test";
  // Connection errors while a test kills the broker are expected; keep the log to real errors.
  o.properties["log_level"] = "3";
  return o;
}

std::string KafkaBrokerTest::UniqueTopic(absl::string_view prefix) {
  return absl::StrCat(prefix, "-", ++topic_counter_);
}

std::string KafkaBrokerTest::CreateTopic(absl::string_view prefix, int partitions,
                                         std::map<std::string, std::string> configs) {
  std::string name = UniqueTopic(prefix);
  auto admin = kafka::KafkaAdmin::Create(ClientOptions());
  EXPECT_TRUE(admin.ok()) << admin.status();
  if (!admin.ok()) return name;
  kafka::TopicSpec spec;
  spec.name = name;
  spec.partitions = partitions;
  spec.configs = std::move(configs);
  absl::Status s = (*admin)->CreateTopic(spec, absl::Seconds(30));
  EXPECT_TRUE(s.ok()) << s;
  return name;
}

std::vector<kafka::ConsumedRecord> KafkaBrokerTest::ReadRecords(const std::string& topic,
                                                                int partitions, size_t count,
                                                                absl::Duration timeout,
                                                                bool read_committed) {
  std::vector<kafka::ConsumedRecord> out;
  kafka::ConsumerOptions options;
  options.client = ClientOptions();
  options.read_committed = read_committed;
  auto consumer = kafka::KafkaConsumer::Create(options);
  EXPECT_TRUE(consumer.ok()) << consumer.status();
  if (!consumer.ok()) return out;
  std::vector<kafka::TopicPartitionOffset> assignment;
  for (int p = 0; p < partitions; ++p) assignment.push_back({topic, p, kafka::kOffsetBeginning});
  absl::Status s = (*consumer)->Assign(assignment);
  EXPECT_TRUE(s.ok()) << s;
  absl::Time deadline = absl::Now() + timeout;
  while (out.size() < count && absl::Now() < deadline) {
    auto batch =
        (*consumer)->Poll(std::min(absl::Milliseconds(500), deadline - absl::Now()), 10000);
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok()) break;
    out.insert(out.end(), batch->begin(), batch->end());
  }
  return out;
}

}  // namespace testing
}  // namespace polder
