// Kafka errors as absl::Status: the payload that classifies them and the predicates over it.
// librdkafka's error codes become such statuses in one place, rdkafka_errors.h.
//
// Every Kafka error status carries a payload (type URL kKafkaErrorPayload) with the librdkafka
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
  // A newer instance with the same transactional id took over (or bumped the epoch).
  bool fenced = false;
};

// A status carrying the Kafka error payload: `code` and message "<context>: <description>
// (<name>)", `name` being the Kafka or librdkafka error name (e.g. "PRODUCER_FENCED",
// "_MSG_TIMED_OUT"). rdkafka_errors.h makes these from librdkafka's errors; fakes make them
// directly, so callers see one vocabulary.
absl::Status MakeKafkaError(absl::StatusCode code, absl::string_view name,
                            absl::string_view context, absl::string_view description,
                            const KafkaErrorFlags& flags);

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
