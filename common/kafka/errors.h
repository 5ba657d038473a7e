// The one place where librdkafka error codes become absl::Status.
//
// Every status made here carries a payload (type URL kKafkaErrorPayload) with the librdkafka
// error name and its retriable / fatal / abortable flags, so callers can tell a fenced producer
// from a broker that is down without parsing messages:
//
//   absl::Status s = producer->CommitTransaction(timeout);
//   if (IsFenced(s)) { /* another instance took over: stop this role */ }
//   else if (RequiresAbort(s)) { /* abort the transaction and retry the batch */ }
//
// Code choice (absl/status/status.h semantics): transport problems and timeouts → UNAVAILABLE
// (retry); bad requests → INVALID_ARGUMENT; a fenced or fatally failed producer →
// FAILED_PRECONDITION (do not retry with this instance); a transaction that must be aborted →
// ABORTED (retry at a higher level); authorisation → PERMISSION_DENIED; TLS/SASL →
// UNAUTHENTICATED; unknown topic/partition → NOT_FOUND; offsets outside the log → OUT_OF_RANGE.
#ifndef POLDER_COMMON_KAFKA_ERRORS_H_
#define POLDER_COMMON_KAFKA_ERRORS_H_

#include <librdkafka/rdkafka.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace polder {
namespace kafka {

inline constexpr char kKafkaErrorPayload[] = "type.polder.nl/polder.kafka.Error";

// Flags recorded in the payload beside the error name.
struct KafkaErrorFlags {
  bool retriable = false;
  bool fatal = false;
  bool txn_requires_abort = false;
};

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

// The librdkafka error name recorded in `status` (e.g. "_MSG_TIMED_OUT"), or "" if none.
std::string KafkaErrorName(const absl::Status& status);

// True if `status` reports that this producer was fenced by a newer instance with the same
// transactional id (or its epoch was bumped): the instance must stop, not re-initialise.
bool IsFenced(const absl::Status& status);

// True if `status` reports a fatal producer error: the producer instance is unusable.
bool IsFatal(const absl::Status& status);

// True if the current transaction must be aborted (and may then be retried).
bool RequiresAbort(const absl::Status& status);

// True if the operation may be retried as is.
bool IsRetriable(const absl::Status& status);

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_ERRORS_H_
