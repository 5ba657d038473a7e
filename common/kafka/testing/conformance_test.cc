// The Kafka conformance suite (conformance.h) against the fake and librdkafka's mock cluster. The
// real-broker instantiation is in //tests/kafka:kafka_gate_test.
#include "common/kafka/testing/conformance.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_client_factory.h"

namespace polder {
namespace kafka {
namespace testing {
namespace {

// librdkafka's in-process mock cluster, owned by a dummy handle as rdkafka_mock.h documents.
class MockClusterBackend : public ConformanceBackend {
 public:
  MockClusterBackend() {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    cluster_ = rd_kafka_mock_cluster_new(rk_, 3);
  }
  ~MockClusterBackend() override {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(rk_);
  }
  ClientFactory& factory() override { return factory_; }
  ClientOptions client() override {
    ClientOptions o;
    o.bootstrap_servers = rd_kafka_mock_cluster_bootstraps(cluster_);
    o.properties["log_level"] = "0";
    return o;
  }
  std::string CreateTopic(absl::string_view prefix, int partitions) override {
    std::string name = absl::StrCat(prefix, "-", ++topics_);
    rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
    return name;
  }

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  RdKafkaClientFactory factory_;
  int topics_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Backends, KafkaConformanceTest,
                         ::testing::Values(ConformanceBackendMaker{"fake", &MakeFakeBackend},
                                           ConformanceBackendMaker{
                                               "mock_cluster",
                                               [] {
                                                 return std::unique_ptr<ConformanceBackend>(
                                                     new MockClusterBackend());
                                               }}),
                         ConformanceBackendName);

// The mock cluster does not model these (conformance.h): the fake here, a real broker in
// //tests/kafka.
INSTANTIATE_TEST_SUITE_P(Backends, KafkaFullConformanceTest,
                         ::testing::Values(ConformanceBackendMaker{"fake", &MakeFakeBackend}),
                         ConformanceBackendName);

}  // namespace
}  // namespace testing
}  // namespace kafka
}  // namespace polder
