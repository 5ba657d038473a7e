// Structured logging: one JSON object per line, never a secret.
//
//   polder::log::Info("topic created", {{"topic", name}, {"partitions", 3}});
//   polder::log::Warning("replication factor below production value",
//                        {{"dataset", id}, {"replication_factor", rf}, {"recommended", 3}});
//
// Each line carries "time" (RFC 3339, UTC, microseconds), "severity", "component" (the binary,
// set once with SetComponent) and "message", then the fields in the order given. Values are
// JSON (strings, numbers, booleans, arrays, objects).
//
// Secrets: a field whose key names a secret (password, passphrase, secret, token, private_key,
// authorization, cookie, ... — see IsSecretKey) is written as "[redacted]", whatever its value;
// so is any value wrapped in log::Secret. Polder passes secrets around as file paths, so there is
// rarely anything to redact; this is the safety net.
//
// Thread-safe: lines from concurrent threads never interleave.
#ifndef POLDER_COMMON_LOG_LOG_H_
#define POLDER_COMMON_LOG_LOG_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace log {

enum class Severity { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

// Wraps a value that must never reach a log.
struct Secret {
  std::string value;
};

// One key/value pair of a log line.
struct Field {
  Field(std::string k, nlohmann::json v) : key(std::move(k)), value(std::move(v)) {}
  Field(std::string k, const Secret&) : key(std::move(k)), value("[redacted]") {}
  Field(std::string k, const char* v) : key(std::move(k)), value(v) {}
  Field(std::string k, std::string v) : key(std::move(k)), value(std::move(v)) {}
  Field(std::string k, absl::string_view v) : key(std::move(k)), value(std::string(v)) {}
  std::string key;
  nlohmann::json value;
};

using Fields = std::initializer_list<Field>;

// True if a field of this name is redacted (case-insensitive match on secret-like words).
bool IsSecretKey(absl::string_view key);

// Name of the program in every line (default "polder").
void SetComponent(std::string component);
// Lines below this severity are dropped (default kInfo).
void SetMinSeverity(Severity severity);
// Where lines go (default: stderr). Tests capture lines here; pass nullptr to restore stderr.
void SetSinkForTesting(std::function<void(const std::string& line)> sink);

// Formats one line (without the newline). Exposed for tests.
std::string FormatLine(Severity severity, absl::string_view message, Fields fields);

void Write(Severity severity, absl::string_view message, Fields fields = {});
inline void Debug(absl::string_view message, Fields fields = {}) {
  Write(Severity::kDebug, message, fields);
}
inline void Info(absl::string_view message, Fields fields = {}) {
  Write(Severity::kInfo, message, fields);
}
inline void Warning(absl::string_view message, Fields fields = {}) {
  Write(Severity::kWarning, message, fields);
}
inline void Error(absl::string_view message, Fields fields = {}) {
  Write(Severity::kError, message, fields);
}

// Bounds how often one kind of line is written, so a flood of refused requests cannot flood the
// log (or the disk under it). Lets through `per_second` lines a second (bursts of as many);
// the first line let through after some were dropped carries their number.
//
//   static log::RateLimit limit(10);
//   if (int64_t dropped; limit.Allow(&dropped)) log::Warning("refused", {..., {"suppressed",
//   dropped}});
//
// Thread-safe.
class RateLimit {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit RateLimit(double per_second, Clock clock = nullptr);
  // True if this line may be written; `*suppressed` is then how many were dropped before it.
  bool Allow(int64_t* suppressed);

 private:
  const double per_second_;
  const Clock clock_;
  std::mutex mu_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
  int64_t dropped_ = 0;
};

}  // namespace log
}  // namespace polder

#endif  // POLDER_COMMON_LOG_LOG_H_
