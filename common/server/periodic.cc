#include "common/server/periodic.h"

#include <algorithm>

namespace polder {
namespace server {

void Periodic::Add(std::string name, absl::Duration interval, std::function<void()> task) {
  tasks_.push_back({std::move(name), interval, std::move(task), absl::InfiniteFuture()});
}

void Periodic::Start() {
  const absl::Time now = absl::Now();
  for (Task& t : tasks_) t.due = now + t.interval;
  thread_ = std::thread([this] { Loop(); });
}

void Periodic::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Periodic::Loop() {
  while (true) {
    absl::Time next = absl::InfiniteFuture();
    for (const Task& t : tasks_) next = std::min(next, t.due);
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithDeadline(absl::Condition(&stopping), next);
      if (stopping_) return;
    }
    const absl::Time now = absl::Now();
    for (Task& t : tasks_) {
      if (t.due > now) continue;
      t.run();
      // Falls due again one interval after this run, not in a burst to catch up.
      t.due = std::max(t.due + t.interval, absl::Now());
    }
  }
}

}  // namespace server
}  // namespace polder
