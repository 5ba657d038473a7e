// MemoryRecordLog: a RecordLog kept in memory, for tests that drive a Registry without Kafka.
// Commits append to one ordered list (the offset of a record is its index) and can be made to
// fail, as a store that is not the primary or has lost its broker would.
#ifndef POLDER_SERVICES_REGISTRY_MEMORY_RECORD_LOG_H_
#define POLDER_SERVICES_REGISTRY_MEMORY_RECORD_LOG_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/registry/registry.h"
#include "services/registry/registry_state.h"

namespace polder {
namespace registry {

class MemoryRecordLog : public RecordLog {
 public:
  absl::StatusOr<int64_t> Commit(const std::vector<StoreRecord>& records) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Sync() override ABSL_LOCKS_EXCLUDED(mu_);

  // Every record committed so far, in order.
  std::vector<StoreRecord> records() const ABSL_LOCKS_EXCLUDED(mu_);
  // From now on Commit (or Sync) fails with `status` and stores nothing; OK restores it.
  void FailCommits(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  void FailSyncs(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  // How often Sync was called.
  int syncs() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::vector<StoreRecord> records_ ABSL_GUARDED_BY(mu_);
  absl::Status commit_failure_ ABSL_GUARDED_BY(mu_);
  absl::Status sync_failure_ ABSL_GUARDED_BY(mu_);
  int syncs_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_MEMORY_RECORD_LOG_H_
