// GoogleTest fixture with one real Kafka broker per test suite (see tools/kafka/kafka_broker.h).
//
//   class MyTest : public polder::testing::KafkaBrokerTest {};
//   TEST_F(MyTest, Publishes) {
//     std::string topic = CreateTopic("bikes", 3);
//     kafka::ProducerOptions o;
//     o.client = ClientOptions();
//     ...
//     broker().Kill(); broker().Restart();
//   }
//
// The broker starts once in SetUpTestSuite (a JVM start costs seconds on 2 cores) and stops in
// TearDownTestSuite; every test gets fresh topic names from UniqueTopic/CreateTopic. A test that
// kills or pauses the broker must leave it running (Restart/Resume) for the next test; SetUp
// restarts it if a failed test did not. If the broker cannot start, every test fails with the
// launcher's error (broker log included) — it is never skipped.
#ifndef POLDER_COMMON_TESTING_KAFKA_FIXTURE_H_
#define POLDER_COMMON_TESTING_KAFKA_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kafka/admin.h"
#include "common/kafka/client_config.h"
#include "common/kafka/consumer.h"
#include "gtest/gtest.h"
#include "tools/kafka/kafka_broker.h"

namespace polder {
namespace testing {

class KafkaBrokerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;

  static kafka_testing::KafkaBroker& broker() { return *broker_; }
  // Client options pointing at the suite's broker, with quiet librdkafka logging.
  static kafka::ClientOptions ClientOptions();
  // A topic name unique within the suite's broker: "<prefix>-<n>".
  static std::string UniqueTopic(absl::string_view prefix);
  // Creates a unique topic and returns its name; fails the test on error.
  static std::string CreateTopic(absl::string_view prefix, int partitions,
                                 std::map<std::string, std::string> configs = {});
  // Reads `partitions` of `topic` from the beginning until `count` records arrived or
  // `timeout` passed; returns what was read.
  static std::vector<kafka::ConsumedRecord> ReadRecords(const std::string& topic, int partitions,
                                                        size_t count, absl::Duration timeout,
                                                        bool read_committed = true);

 private:
  static std::unique_ptr<kafka_testing::KafkaBroker> broker_;
  static absl::Status start_status_;
  static int topic_counter_;
};

}  // namespace testing
}  // namespace polder

#endif  // POLDER_COMMON_TESTING_KAFKA_FIXTURE_H_
