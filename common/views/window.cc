#include "common/views/window.h"

#include "absl/strings/str_cat.h"

namespace polder {
namespace views {

absl::StatusOr<WindowSize> ParseWindowSize(absl::string_view text) {
  if (text == "15m") return WindowSize::kQuarterHour;
  if (text == "1h") return WindowSize::kHour;
  if (text == "1d") return WindowSize::kDay;
  return absl::InvalidArgumentError(absl::StrCat("window '", text, "' is not one of 15m, 1h, 1d"));
}

std::string FormatInstant(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

absl::string_view WindowSizeName(WindowSize size) {
  switch (size) {
    case WindowSize::kQuarterHour:
      return "15m";
    case WindowSize::kHour:
      return "1h";
    case WindowSize::kDay:
      return "1d";
  }
  return "?";
}

absl::StatusOr<WindowClock> WindowClock::Amsterdam() { return ForZone("Europe/Amsterdam"); }

absl::StatusOr<WindowClock> WindowClock::ForZone(const std::string& name) {
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(name, &zone)) {
    return absl::FailedPreconditionError(
        absl::StrCat("time zone ", name,
                     " cannot be loaded from the tz database (install tzdata or set TZDIR): "
                     "day windows need it, and UTC is never used in its place"));
  }
  return WindowClock(zone);
}

namespace {

// The multiple of `length` since the epoch at or before `t` (also before 1970).
absl::Time FloorTo(absl::Time t, absl::Duration length) {
  const absl::Duration since = t - absl::UnixEpoch();
  absl::Duration rem;
  int64_t n = absl::IDivDuration(since, length, &rem);
  if (rem < absl::ZeroDuration()) --n;
  return absl::UnixEpoch() + n * length;
}

}  // namespace

Window WindowClock::WindowOf(WindowSize size, absl::Time t) const {
  switch (size) {
    case WindowSize::kQuarterHour: {
      const absl::Time s = FloorTo(t, absl::Minutes(15));
      return {s, s + absl::Minutes(15)};
    }
    case WindowSize::kHour: {
      const absl::Time s = FloorTo(t, absl::Hours(1));
      return {s, s + absl::Hours(1)};
    }
    case WindowSize::kDay: {
      const absl::CivilDay day = absl::ToCivilDay(t, zone_);
      // Midnight exists on every Dutch day (the changes are at 02:00 and 03:00); FromCivil
      // resolves a skipped or repeated local time to the earlier instant anyway.
      return {absl::FromCivil(day, zone_), absl::FromCivil(day + 1, zone_)};
    }
  }
  return {t, t};
}

Window WindowClock::WindowOfRecord(WindowSize size, absl::Time event_time,
                                   bool event_time_ends_interval) const {
  return WindowOf(size, event_time_ends_interval ? event_time - absl::Milliseconds(1) : event_time);
}

}  // namespace views
}  // namespace polder
