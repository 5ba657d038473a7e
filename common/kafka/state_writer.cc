#include "common/kafka/state_writer.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/kafka/errors.h"
#include "common/status/status_macros.h"

namespace polder {
namespace kafka {

absl::StatusOr<int64_t> StateWriter::Recover(const Loader& load) {
  producer_.reset();
  if (fenced_) {
    return absl::FailedPreconditionError(absl::StrCat("transactional id ",
                                                      options_.producer.transactional_id,
                                                      " is fenced: another instance took over"));
  }
  absl::StatusOr<std::unique_ptr<TransactionalProducer>> producer =
      kafka_.NewTransactionalProducer(options_.producer);
  if (!producer.ok()) return Prepend(producer.status(), "creating the transactional producer: ");
  if (absl::Status s = (*producer)->InitTransactions(options_.timeout); !s.ok()) {
    return Prepend(s, "initialising transactions: ");
  }
  if (!options_.state_topic.empty()) {
    ConsumerOptions consumer = options_.consumer;
    consumer.read_committed = true;
    absl::StatusOr<int64_t> end =
        ReadToEnd(kafka_, consumer, options_.state_topic, options_.state_partition,
                  next_state_offset_, options_.timeout, load);
    if (!end.ok()) {
      return Prepend(end.status(), absl::StrCat("reading ", options_.state_topic, ": "));
    }
    next_state_offset_ = *end;
  }
  producer_ = *std::move(producer);
  ++recoveries_;
  return next_state_offset_;
}

absl::Status StateWriter::Transact(const std::function<absl::Status()>& fill) {
  if (fenced_) {
    return absl::FailedPreconditionError(absl::StrCat("transactional id ",
                                                      options_.producer.transactional_id,
                                                      " is fenced: another instance took over"));
  }
  if (producer_ == nullptr) {
    return absl::UnavailableError("a previous transaction failed: recover before writing again");
  }
  if (const absl::Duration wait = next_transaction_at() - absl::Now();
      wait > absl::ZeroDuration()) {
    absl::SleepFor(wait);
  }
  absl::Status s = RunInTransaction(*producer_, fill, options_.max_attempts, options_.timeout);
  transaction_ended_ = absl::Now();
  if (s.ok()) return s;
  if (IsFenced(s)) fenced_ = true;
  producer_.reset();
  return s;
}

}  // namespace kafka
}  // namespace polder
