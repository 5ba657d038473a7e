// The one place where librdkafka error codes become absl::Status (with errors.h's payload).
#ifndef POLDER_COMMON_KAFKA_RDKAFKA_ERRORS_H_
#define POLDER_COMMON_KAFKA_RDKAFKA_ERRORS_H_

#include <librdkafka/rdkafka.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/kafka/errors.h"

namespace polder {
namespace kafka {

// The absl::StatusCode for a librdkafka error code (kOk for RD_KAFKA_RESP_ERR_NO_ERROR).
absl::StatusCode KafkaErrorToCode(rd_kafka_resp_err_t err);

// A status for `err` with message "<context>: <librdkafka description> (<name>)". OK for
// RD_KAFKA_RESP_ERR_NO_ERROR. `flags.fatal` makes it FAILED_PRECONDITION and
// `flags.txn_requires_abort` ABORTED, as for rd_kafka_error_t below.
absl::Status KafkaStatus(rd_kafka_resp_err_t err, absl::string_view context,
                         KafkaErrorFlags flags = {});

// A status for an rd_kafka_error_t (transactional and admin APIs), honouring its fatal,
// retriable and txn_requires_abort flags: fatal → FAILED_PRECONDITION, requires abort →
// ABORTED, otherwise as KafkaErrorToCode (retriable codes are UNAVAILABLE). Does not take
// ownership. OK for nullptr.
absl::Status KafkaStatus(const rd_kafka_error_t* error, absl::string_view context);

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_RDKAFKA_ERRORS_H_
