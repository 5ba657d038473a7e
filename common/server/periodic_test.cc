#include "common/server/periodic.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace polder {
namespace server {
namespace {

TEST(PeriodicTest, RunsEachTaskRepeatedlyUntilStopped) {
  std::atomic<int> fast{0}, slow{0};
  absl::Notification fast_ran_thrice;
  Periodic p;
  p.Add("fast", absl::Milliseconds(5), [&] {
    if (++fast == 3) fast_ran_thrice.Notify();
  });
  p.Add("slow", absl::Hours(1), [&] { ++slow; });
  p.Start();
  ASSERT_TRUE(fast_ran_thrice.WaitForNotificationWithTimeout(absl::Seconds(60)));
  p.Stop();
  const int after_stop = fast;
  EXPECT_GE(after_stop, 3);
  EXPECT_EQ(slow, 0);  // not due yet: the first run is one interval after Start
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_EQ(fast, after_stop);  // nothing runs after Stop
  p.Stop();                     // idempotent
}

TEST(PeriodicTest, StopWithoutStartAndWithoutTasks) {
  Periodic never_started;
  never_started.Stop();
  Periodic empty;
  empty.Start();
  empty.Stop();  // returns although no task is ever due
  SUCCEED();
}

}  // namespace
}  // namespace server
}  // namespace polder
