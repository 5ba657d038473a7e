#include "common/kafka/producer.h"

#include <algorithm>
#include <future>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/kafka/errors.h"
#include "common/status/status_macros.h"

namespace polder {
namespace kafka {

absl::StatusOr<RecordMetadata> SendAndWait(Producer& producer, ProducerRecord record) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<RecordMetadata>>>();
  auto future = promise->get_future();
  producer.Send(std::move(record),
                [promise](absl::StatusOr<RecordMetadata> r) { promise->set_value(std::move(r)); });
  return future.get();
}

namespace {

// librdkafka allows calling commit/abort again after a retriable failure (e.g. a timeout): the
// call resumes the operation in progress. Retries until done or `timeout` passed.
template <typename Op>
absl::Status RetryTxnOp(Op op, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::Status s;
  do {
    s = op(std::max(deadline - absl::Now(), absl::Milliseconds(100)));
  } while (!s.ok() && IsRetriable(s) && !IsFatal(s) && absl::Now() < deadline);
  return s;
}

// A transactional send refused because the transaction already failed: librdkafka answers
// sends in the abortable-error state with _STATE.
bool IsAbortable(const absl::Status& s) {
  return RequiresAbort(s) || (!IsFatal(s) && KafkaErrorName(s) == "_STATE");
}

}  // namespace

absl::Status RunInTransaction(TransactionalProducer& producer,
                              const std::function<absl::Status()>& fill, int max_attempts,
                              absl::Duration timeout) {
  if (max_attempts < 1) {
    return absl::InvalidArgumentError("RunInTransaction: max_attempts must be at least 1");
  }
  auto commit = [&](absl::Duration t) { return producer.CommitTransaction(t); };
  auto abort = [&](absl::Duration t) { return producer.AbortTransaction(t); };
  absl::Status last;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    RETURN_IF_ERROR(producer.BeginTransaction());
    absl::Status filled = fill();
    if (!filled.ok()) {
      RETURN_IF_ERROR(RetryTxnOp(abort, timeout));
      if (!IsAbortable(filled)) return filled;  // The caller's own error: not retried.
      last = filled;
      continue;
    }
    last = RetryTxnOp(commit, timeout);
    if (last.ok() || IsFatal(last)) return last;
    if (!RequiresAbort(last)) {
      // Still retriable at the deadline: the commit's outcome is not known yet, so it must not
      // be aborted or re-sent; the owner decides (retry the commit, or recreate the producer).
      return Prepend(last, "commit outcome unknown after the deadline: ");
    }
    RETURN_IF_ERROR(RetryTxnOp(abort, timeout));
  }
  return Prepend(last, absl::StrCat("transaction failed ", max_attempts, " time(s): "));
}

}  // namespace kafka
}  // namespace polder
