#include "services/registry/memory_record_log.h"

#include <utility>

namespace polder {
namespace registry {

absl::StatusOr<int64_t> MemoryRecordLog::Commit(const std::vector<StoreRecord>& records) {
  absl::MutexLock lock(&mu_);
  if (!commit_failure_.ok()) return commit_failure_;
  records_.insert(records_.end(), records.begin(), records.end());
  return static_cast<int64_t>(records_.size()) - 1;
}

absl::Status MemoryRecordLog::Sync() {
  absl::MutexLock lock(&mu_);
  ++syncs_;
  return sync_failure_;
}

std::vector<StoreRecord> MemoryRecordLog::records() const {
  absl::MutexLock lock(&mu_);
  return records_;
}

void MemoryRecordLog::FailCommits(absl::Status status) {
  absl::MutexLock lock(&mu_);
  commit_failure_ = std::move(status);
}

void MemoryRecordLog::FailSyncs(absl::Status status) {
  absl::MutexLock lock(&mu_);
  sync_failure_ = std::move(status);
}

int MemoryRecordLog::syncs() const {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

}  // namespace registry
}  // namespace polder
