#include "services/node/federation/audit_log.h"

#include "common/status/status_matchers.h"
#include "common/testing/kafka_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace node {
namespace {

using ::polder::testing::StatusIs;

class AuditLogTest : public testing::KafkaBrokerTest {};

audit::AuditEntry Entry(const std::string& stream, int64_t first) {
  audit::AuditEntry e;
  e.transaction_id = stream;
  e.direction = "offered";
  e.source = "groningen";
  e.destination = "amersfoort";
  e.dataset = "mobility.bike-counts";
  e.first_offset = first;
  e.next_offset = first + 10;
  e.records = 10;
  e.at = absl::FromUnixSeconds(1795000000);
  return e;
}

TEST_F(AuditLogTest, RecordsBeforeSendingReadsBackAndRefusesWhenKafkaIsDown) {
  const std::string topic = CreateTopic("_polder.audit", 1);
  kafka::ProducerOptions p;
  p.client = ClientOptions();
  p.client.request_timeout = absl::Seconds(2);
  p.delivery_timeout = absl::Seconds(4);
  kafka::ConsumerOptions c;
  c.client = ClientOptions();
  ASSERT_OK_AND_ASSIGN(auto log, AuditLog::Create(p, c, topic));
  audit::AuditChain a("stream-a"), b("stream-b");
  for (int i = 0; i < 5; ++i) ASSERT_OK(log->Record(a, Entry("stream-a", 10 * i)).status());
  ASSERT_OK(log->Record(b, Entry("stream-b", 0)).status());
  ASSERT_OK_AND_ASSIGN(std::vector<audit::AuditLink> links, log->Read("stream-a", 1, 100, absl::Seconds(10)));
  ASSERT_EQ(links.size(), 5u);
  EXPECT_OK(audit::VerifyChain("stream-a", links));
  ASSERT_OK_AND_ASSIGN(auto tail, log->Read("stream-a", 4, 100, absl::Seconds(10)));
  EXPECT_EQ(tail.size(), 2u);
  // Kafka down: the entry is not recorded, the chain does not advance (nothing may be sent).
  ASSERT_OK(broker().Pause());
  EXPECT_THAT(log->Record(a, Entry("stream-a", 50)), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(a.sequence(), 5u);
  ASSERT_OK(broker().Resume());
}

}  // namespace
}  // namespace node
}  // namespace polder
