#include "common/server/host_port.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace polder {
namespace server {

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address, absl::string_view field) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, field.empty() ? "" : ": ", "expected host:port, got '", address, "'"));
  }
  HostPort out;
  out.host = std::string(address.substr(0, colon));
  out.port = port;
  return out;
}

bool IsLoopbackHost(absl::string_view host) {
  return host == "127.0.0.1" || host == "localhost" || host == "[::1]" || host == "::1";
}

}  // namespace server
}  // namespace polder
