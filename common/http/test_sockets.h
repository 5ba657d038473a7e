// Raw sockets for the HTTP server's tests: connections from a chosen loopback source address,
// requests written byte for byte, answers read until the server closes.
#ifndef POLDER_COMMON_HTTP_TEST_SOCKETS_H_
#define POLDER_COMMON_HTTP_TEST_SOCKETS_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace polder {
namespace http {

// A TCP connection from `source` (a loopback address) to 127.0.0.1:port; -1 on failure.
inline int Connect(int port, const std::string& source = "127.0.0.1") {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
    close(fd);
    return -1;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Whether the server closed `fd` within `timeout` (EOF or reset).
inline bool ClosedWithin(int fd, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  char buf[4096];
  while (absl::Now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return true;
  }
  return false;
}

// Sends `request` and reads the response until the server closes or `timeout`.
inline std::string Exchange(int fd, const std::string& request,
                            absl::Duration timeout = absl::Seconds(5)) {
  if (!request.empty() && write(fd, request.data(), request.size()) < 0) return "";
  std::string out;
  const absl::Time until = absl::Now() + timeout;
  char buf[4096];
  while (absl::Now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) {
      if (absl::StrContains(out, "\r\n\r\n")) {
        // A complete response with Content-Length: stop once its body is in.
        size_t at = out.find("Content-Length: ");
        size_t end = out.find("\r\n\r\n");
        if (at != std::string::npos && out.size() >= end + 4 + std::stoul(out.substr(at + 16)))
          break;
      }
      continue;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace http
}  // namespace polder

#endif  // POLDER_COMMON_HTTP_TEST_SOCKETS_H_
