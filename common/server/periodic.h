// Background upkeep of a server (probes, refreshes, health), each task at its own interval on
// one thread. Stop() wakes the thread at once instead of waiting out a sleep.
//
//   Periodic upkeep;
//   upkeep.Add("kafka probe", absl::Seconds(2), [&] { ... });
//   upkeep.Start();
//   ...
//   upkeep.Stop();
#ifndef POLDER_COMMON_SERVER_PERIODIC_H_
#define POLDER_COMMON_SERVER_PERIODIC_H_

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace polder {
namespace server {

class Periodic {
 public:
  Periodic() = default;
  Periodic(const Periodic&) = delete;
  Periodic& operator=(const Periodic&) = delete;
  ~Periodic() { Stop(); }

  // Runs `task` every `interval`, the first time `interval` after Start(). Tasks run one at a
  // time, in the order they fall due; a slow task delays the others. Add before Start().
  void Add(std::string name, absl::Duration interval, std::function<void()> task);
  void Start();
  // Returns once the running task (if any) has finished; no task runs after. Idempotent.
  void Stop();

 private:
  struct Task {
    std::string name;
    absl::Duration interval;
    std::function<void()> run;
    absl::Time due;
  };
  void Loop();

  std::vector<Task> tasks_;  // set before Start(), then only the loop thread touches them
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace server
}  // namespace polder

#endif  // POLDER_COMMON_SERVER_PERIODIC_H_
