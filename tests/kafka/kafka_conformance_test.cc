// The Kafka conformance suite (common/kafka/testing/conformance.h) against a real broker: the
// reference the fake is held to. One broker for the whole binary, started on first use.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/kafka/testing/conformance.h"
#include "common/status/status_matchers.h"
#include "tools/kafka/kafka_broker.h"

namespace polder {
namespace kafka {
namespace testing {
namespace {

kafka_testing::KafkaBroker* SharedBroker() {
  static absl::StatusOr<std::unique_ptr<kafka_testing::KafkaBroker>>* broker = [] {
    kafka_testing::KafkaBrokerOptions options;
    options.name = "conformance";
    return new absl::StatusOr<std::unique_ptr<kafka_testing::KafkaBroker>>(
        kafka_testing::KafkaBroker::Start(options));
  }();
  EXPECT_OK(broker->status()) << "the Kafka broker did not start";
  return broker->ok() ? broker->value().get() : nullptr;
}

class RealBrokerBackend : public ConformanceBackend {
 public:
  explicit RealBrokerBackend(kafka_testing::KafkaBroker* broker) : broker_(broker) {}
  ClientFactory& factory() override { return factory_; }
  ClientOptions client() override {
    ClientOptions o;
    o.bootstrap_servers = broker_->bootstrap_servers();
    o.properties["log_level"] = "3";
    return o;
  }
  std::string CreateTopic(absl::string_view prefix, int partitions) override {
    static int counter = 0;
    std::string name = absl::StrCat(prefix, "-", ++counter);
    absl::StatusOr<std::unique_ptr<Admin>> admin = factory_.NewAdmin(client());
    EXPECT_OK(admin.status());
    if (!admin.ok()) return name;
    TopicSpec spec;
    spec.name = name;
    spec.partitions = partitions;
    EXPECT_OK((*admin)->CreateTopic(spec, absl::Seconds(30)));
    return name;
  }

 private:
  kafka_testing::KafkaBroker* const broker_;
  RdKafkaClientFactory factory_;
};

std::unique_ptr<ConformanceBackend> MakeRealBroker() {
  kafka_testing::KafkaBroker* broker = SharedBroker();
  if (broker == nullptr) return nullptr;
  return std::make_unique<RealBrokerBackend>(broker);
}

INSTANTIATE_TEST_SUITE_P(Backends, KafkaConformanceTest,
                         ::testing::Values(ConformanceBackendMaker{"real_broker", &MakeRealBroker}),
                         ConformanceBackendName);
INSTANTIATE_TEST_SUITE_P(Backends, KafkaFullConformanceTest,
                         ::testing::Values(ConformanceBackendMaker{"real_broker", &MakeRealBroker}),
                         ConformanceBackendName);
INSTANTIATE_TEST_SUITE_P(Backends, KafkaGroupConformanceTest,
                         ::testing::Values(ConformanceBackendMaker{"real_broker", &MakeRealBroker}),
                         ConformanceBackendName);

}  // namespace
}  // namespace testing
}  // namespace kafka
}  // namespace polder
