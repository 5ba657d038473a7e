#include "common/log/log.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace polder {
namespace log {
namespace {

struct State {
  std::mutex mu;
  std::string component = "polder";
  Severity min = Severity::kInfo;
  std::function<void(const std::string&)> sink;
};

State& GetState() {
  static State* state = new State();
  return *state;
}

const char* Name(Severity s) {
  switch (s) {
    case Severity::kDebug:
      return "DEBUG";
    case Severity::kInfo:
      return "INFO";
    case Severity::kWarning:
      return "WARNING";
    case Severity::kError:
      return "ERROR";
    case Severity::kFatal:
      return "FATAL";
  }
  return "INFO";
}

}  // namespace

bool IsSecretKey(absl::string_view key) {
  std::string k = absl::AsciiStrToLower(key);
  for (const char* word :
       {"password", "passwd", "passphrase", "secret", "token", "private_key", "privatekey",
        "private-key", "authorization", "cookie", "credential", "api_key", "apikey", "bearer"}) {
    if (absl::StrContains(k, word)) {
      // "*_file" / "*_path" keys hold where a secret lives, which is fine to log.
      if (absl::EndsWith(k, "_file") || absl::EndsWith(k, "_path") || absl::EndsWith(k, "_dir")) {
        return false;
      }
      return true;
    }
  }
  return false;
}

void SetComponent(std::string component) {
  State& s = GetState();
  std::lock_guard<std::mutex> lock(s.mu);
  s.component = std::move(component);
}

void SetMinSeverity(Severity severity) {
  State& s = GetState();
  std::lock_guard<std::mutex> lock(s.mu);
  s.min = severity;
}

void SetSinkForTesting(std::function<void(const std::string&)> sink) {
  State& s = GetState();
  std::lock_guard<std::mutex> lock(s.mu);
  s.sink = std::move(sink);
}

std::string FormatLine(Severity severity, absl::string_view message, Fields fields) {
  std::string component;
  {
    State& s = GetState();
    std::lock_guard<std::mutex> lock(s.mu);
    component = s.component;
  }
  nlohmann::ordered_json line;
  line["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
  line["severity"] = Name(severity);
  line["component"] = component;
  line["message"] = std::string(message);
  for (const Field& f : fields) {
    if (f.key == "time" || f.key == "severity" || f.key == "component" || f.key == "message") {
      line["field_" + f.key] = IsSecretKey(f.key) ? nlohmann::json("[redacted]") : f.value;
      continue;
    }
    line[f.key] = IsSecretKey(f.key) ? nlohmann::json("[redacted]") : f.value;
  }
  // Invalid UTF-8 in a value is replaced rather than throwing: a log line must never fail.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void Write(Severity severity, absl::string_view message, Fields fields) {
  State& s = GetState();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (severity < s.min) return;
  }
  std::string line = FormatLine(severity, message, fields);
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.sink) {
    s.sink(line);
  } else {
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }
}

RateLimit::RateLimit(double per_second, Clock clock)
    : per_second_(per_second),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })),
      tokens_(per_second),
      last_(clock_()) {}

bool RateLimit::Allow(int64_t* suppressed) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = clock_();
  tokens_ = std::min(per_second_,
                     tokens_ + per_second_ * std::chrono::duration<double>(now - last_).count());
  last_ = now;
  if (tokens_ < 1) {
    ++dropped_;
    return false;
  }
  tokens_ -= 1;
  *suppressed = dropped_;
  dropped_ = 0;
  return true;
}

}  // namespace log
}  // namespace polder
