// Tumbling windows of aggregate views (ADR 0016 §2): half-open [start, end), epoch-aligned for
// 15 minutes and 1 hour, and Europe/Amsterdam calendar days for 1 day — 23 hours on the last
// Sunday of March, 25 on the last Sunday of October. Windows are instants (absl::Time); only
// day windows need the zone.
//
//   absl::StatusOr<WindowClock> clock = WindowClock::Amsterdam();  // fails if tzdata is missing
//   Window w = clock->WindowOf(WindowSize::kDay, event_time);
#ifndef POLDER_COMMON_VIEWS_WINDOW_H_
#define POLDER_COMMON_VIEWS_WINDOW_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace polder {
namespace views {

enum class WindowSize { kQuarterHour, kHour, kDay };

// "15m", "1h" or "1d"; anything else is INVALID_ARGUMENT naming what was given.
absl::StatusOr<WindowSize> ParseWindowSize(absl::string_view text);
// The config spelling: "15m", "1h", "1d".
absl::string_view WindowSizeName(WindowSize size);

// An instant as RFC 3339 in UTC with the fraction it has ("2026-12-03T11:15:00Z",
// "…T11:14:59.999Z"): window bounds in cells, logs and /statusz.
std::string FormatInstant(absl::Time t);

struct Window {
  absl::Time start;  // inclusive
  absl::Time end;    // exclusive

  bool Contains(absl::Time t) const { return start <= t && t < end; }
  absl::Duration length() const { return end - start; }
  friend bool operator==(const Window& a, const Window& b) {
    return a.start == b.start && a.end == b.end;
  }
  friend bool operator!=(const Window& a, const Window& b) { return !(a == b); }
  friend bool operator<(const Window& a, const Window& b) {
    return a.start < b.start || (a.start == b.start && a.end < b.end);
  }
};

// Assigns event times to windows. Day windows follow the zone it was made with.
class WindowClock {
 public:
  // The zone of Dutch calendar days, from the system's tz database. Fails (FAILED_PRECONDITION,
  // naming the zone) when it cannot be loaded: absl would otherwise fall back to UTC, which
  // would cut every Dutch day at 01:00 or 02:00 local time.
  static absl::StatusOr<WindowClock> Amsterdam();
  // Any named zone, with the same refusal; for tests and other calendars.
  static absl::StatusOr<WindowClock> ForZone(const std::string& name);

  // The window of `size` that holds `t`. Quarter hours and hours start at multiples of their
  // length since the Unix epoch (as Kafka Streams' TimeWindows); days at local midnight.
  Window WindowOf(WindowSize size, absl::Time t) const;
  // The window a record belongs to: the one holding its event time, or — for datasets whose
  // event time is the exclusive end of a counting interval — the one holding the interval's
  // last instant (t − 1 ms), so a count of 10:00–10:15 falls in the 10:00 quarter.
  Window WindowOfRecord(WindowSize size, absl::Time event_time,
                        bool event_time_ends_interval) const;
  // The window right after `w` (same size).
  Window Next(WindowSize size, const Window& w) const { return WindowOf(size, w.end); }

  const absl::TimeZone& zone() const { return zone_; }

 private:
  explicit WindowClock(absl::TimeZone zone) : zone_(zone) {}
  absl::TimeZone zone_;
};

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_WINDOW_H_
