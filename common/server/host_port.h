// Listener and endpoint addresses: `host:port`, `[v6]:port`. One parser for every service's
// configuration and flags, so each refuses the same malformed input with the same message.
#ifndef POLDER_COMMON_SERVER_HOST_PORT_H_
#define POLDER_COMMON_SERVER_HOST_PORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace polder {
namespace server {

struct HostPort {
  std::string host;  // as written, brackets of an IPv6 literal included ("[::1]")
  int port = 0;      // 0..65535; 0 lets the listener pick a free port
};

// INVALID_ARGUMENT "<field>: expected host:port, got '<address>'" when the host is empty or the
// port is not a number in 0..65535. `field` names the setting in the message ("" for none).
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address, absl::string_view field = "");

// localhost, 127.0.0.1 or ::1 (with or without brackets): the hosts the development mode may
// listen on.
bool IsLoopbackHost(absl::string_view host);

}  // namespace server
}  // namespace polder

#endif  // POLDER_COMMON_SERVER_HOST_PORT_H_
