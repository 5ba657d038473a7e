#include "common/kafka/errors.h"

#include "common/kafka/rdkafka_errors.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace kafka {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

TEST(KafkaErrorsTest, MapsErrorFamiliesToCanonicalCodes) {
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR_NO_ERROR), absl::StatusCode::kOk);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR__TRANSPORT), absl::StatusCode::kUnavailable);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT), absl::StatusCode::kUnavailable);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN), absl::StatusCode::kUnavailable);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR__QUEUE_FULL), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART), absl::StatusCode::kNotFound);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR__SSL), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR_PRODUCER_FENCED),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR__DESTROY), absl::StatusCode::kCancelled);
  EXPECT_EQ(KafkaErrorToCode(RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION),
            absl::StatusCode::kUnimplemented);
}

TEST(KafkaErrorsTest, StatusCarriesContextNameAndFlags) {
  absl::Status s = KafkaStatus(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, "delivering record");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("delivering record: ")));
  EXPECT_THAT(std::string(s.message()), HasSubstr("(_MSG_TIMED_OUT)"));
  EXPECT_EQ(KafkaErrorName(s), "_MSG_TIMED_OUT");
  EXPECT_TRUE(IsRetriable(s));
  EXPECT_FALSE(IsFatal(s));
  EXPECT_FALSE(IsFenced(s));
  EXPECT_OK(KafkaStatus(RD_KAFKA_RESP_ERR_NO_ERROR, "ignored"));
}

TEST(KafkaErrorsTest, FencingIsRecognisedFromAnyOfItsCodes) {
  KafkaErrorFlags fatal;
  fatal.fatal = true;
  for (auto code : {RD_KAFKA_RESP_ERR__FENCED, RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
                    RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH}) {
    absl::Status s = KafkaStatus(code, "commit", fatal);
    EXPECT_TRUE(IsFenced(s)) << s;
    EXPECT_TRUE(IsFatal(s)) << s;
    EXPECT_FALSE(IsRetriable(s)) << s;
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_FALSE(IsFenced(KafkaStatus(RD_KAFKA_RESP_ERR__TRANSPORT, "x")));
}

TEST(KafkaErrorsTest, FlagsDecideTheCodeOfTransactionalErrors) {
  KafkaErrorFlags abort;
  abort.txn_requires_abort = true;
  absl::Status s = KafkaStatus(RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "commit", abort);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(RequiresAbort(s));
  EXPECT_FALSE(IsFatal(s));
  KafkaErrorFlags fatal;
  fatal.fatal = true;
  s = KafkaStatus(RD_KAFKA_RESP_ERR__TRANSPORT, "commit", fatal);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(IsRetriable(s)) << "a fatal error is never retried on the same instance";
}

TEST(KafkaErrorsTest, ErrorObjectsAreClassifiedByTheirFlags) {
  // rd_kafka_error_new makes plain errors; the transactional flags are set by librdkafka itself,
  // so here only the non-transactional path and nullptr are checked. The fatal/abortable
  // classification is exercised against a real broker in //tests/kafka:kafka_gate_test.
  rd_kafka_error_t* e =
      rd_kafka_error_new(RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, "exists %s", "x");
  absl::Status s = KafkaStatus(e, "creating topic");
  rd_kafka_error_destroy(e);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("creating topic: exists x")));
  EXPECT_FALSE(RequiresAbort(s));
  EXPECT_OK(KafkaStatus(static_cast<const rd_kafka_error_t*>(nullptr), "nothing"));
}

TEST(KafkaErrorsTest, StatusesWithoutPayloadFallBackToTheirCode) {
  EXPECT_TRUE(IsRetriable(absl::UnavailableError("x")));
  EXPECT_FALSE(IsRetriable(absl::InvalidArgumentError("x")));
  EXPECT_EQ(KafkaErrorName(absl::UnavailableError("x")), "");
}

}  // namespace
}  // namespace kafka
}  // namespace polder
