#include "common/status/status_macros.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace polder {
namespace {

absl::Status WithMessage(const absl::Status& status, std::string message) {
  if (status.ok()) return status;
  absl::Status out(status.code(), message);
  status.ForEachPayload([&out](absl::string_view type_url, const absl::Cord& payload) {
    out.SetPayload(type_url, payload);
  });
  return out;
}

}  // namespace

absl::Status Prepend(const absl::Status& status, absl::string_view prefix) {
  return WithMessage(status, absl::StrCat(prefix, status.message()));
}

absl::Status Append(const absl::Status& status, absl::string_view suffix) {
  return WithMessage(status, absl::StrCat(status.message(), suffix));
}

namespace status_internal {

void CheckFailed(const char* file, int line, const char* condition, const std::string& message) {
  std::fprintf(
      stderr,
      "{\"severity\":\"FATAL\",\"file\":\"%s\",\"line\":%d,\"check\":\"%s\",\"message\":\"%s\"}\n",
      file, line, condition, message.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace status_internal
}  // namespace polder
