// The Kafka conformance suite: the behaviour Polder relies on, as read_committed readers see
// Kafka — partitioning, offsets taken by transaction markers, the last stable offset, aborted
// records, fencing, ReadToEnd, OffsetForTime, reading below the log start. Every ClientFactory
// Polder uses or tests with must pass it: the fake (common/kafka/testing/fake_kafka.h) is
// trusted only while it does. Instantiate it with the backends of a test binary:
//
//   INSTANTIATE_TEST_SUITE_P(Fake, KafkaConformanceTest,
//                            ::testing::Values(ConformanceBackendMaker{"fake", &MakeFakeBackend}),
//                            ConformanceBackendName);
//
// Two suites: KafkaConformanceTest for every backend, KafkaFullConformanceTest for the backends
// that model Kafka as read_committed readers see it — the fake and a real broker. librdkafka
// 2.0.2's mock cluster does not: it writes no transaction markers (offsets run on), shows
// aborted records to read_committed readers, reports no last stable offset, does not fence a
// previous transactional instance, answers ListOffsets by time with the log end, and has no
// admin API (DeleteRecords). That gap is why Polder has its own fake.
#ifndef POLDER_COMMON_KAFKA_TESTING_CONFORMANCE_H_
#define POLDER_COMMON_KAFKA_TESTING_CONFORMANCE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "common/kafka/client_factory.h"
#include "gtest/gtest.h"

namespace polder {
namespace kafka {
namespace testing {

class ConformanceBackend {
 public:
  virtual ~ConformanceBackend() = default;
  virtual ClientFactory& factory() = 0;
  // Client options reaching the backend's cluster.
  virtual ClientOptions client() = 0;
  // Creates a topic with a unique name starting with `prefix`; returns the name.
  virtual std::string CreateTopic(absl::string_view prefix, int partitions) = 0;
};

struct ConformanceBackendMaker {
  std::string name;
  std::function<std::unique_ptr<ConformanceBackend>()> make;
};

inline std::string ConformanceBackendName(
    const ::testing::TestParamInfo<ConformanceBackendMaker>& info) {
  return info.param.name;
}

class KafkaConformanceTest : public ::testing::TestWithParam<ConformanceBackendMaker> {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::unique_ptr<ConformanceBackend> backend_;
};

// Transactions as readers see them, ListOffsets by time, DeleteRecords.
class KafkaFullConformanceTest : public KafkaConformanceTest {};

// Consumer groups holding roles (group.h): the fake and a real broker.
class KafkaGroupConformanceTest : public KafkaConformanceTest {};

// The fake's backend (usable by any binary).
std::unique_ptr<ConformanceBackend> MakeFakeBackend();

}  // namespace testing
}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_TESTING_CONFORMANCE_H_
