// The fault proxy over real sockets: it forwards, cuts (open links drop, new ones are refused
// until restored), stalls and slows an echo server's traffic.
#include "tests/fault/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "common/status/status_matchers.h"
#include "gtest/gtest.h"

namespace polder {
namespace fault {
namespace {

// A loopback echo server.
class Echo {
 public:
  Echo() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 16);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        workers_.emplace_back([c] {
          char buf[4096];
          ssize_t n;
          while ((n = recv(c, buf, sizeof buf, 0)) > 0) send(c, buf, n, MSG_NOSIGNAL);
          close(c);
        });
      }
    });
  }
  ~Echo() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (auto& w : workers_) w.join();
  }
  int port() const { return port_; }

 private:
  int fd_, port_;
  std::thread thread_;
  std::vector<std::thread> workers_;
};

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// Reads up to `n` bytes within `timeout`.
std::string ReadN(int fd, size_t n, absl::Duration timeout) {
  std::string got;
  const absl::Time deadline = absl::Now() + timeout;
  while (got.size() < n && absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t r = recv(fd, buf, std::min(sizeof buf, n - got.size()), 0);
    if (r <= 0) return got;
    got.append(buf, r);
  }
  return got;
}

// Sends `text` and reads the echo within `timeout`; "" if the link is gone or silent.
std::string RoundTrip(int fd, const std::string& text, absl::Duration timeout) {
  if (send(fd, text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size()))
    return "";
  std::string got;
  const absl::Time deadline = absl::Now() + timeout;
  while (got.size() < text.size() && absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return got;
    got.append(buf, n);
  }
  return got;
}

TEST(FaultProxyTest, ForwardsCutsStallsAndSlows) {
  Echo echo;
  FaultProxy proxy("127.0.0.1", echo.port());
  ASSERT_OK(proxy.Start());
  int a = Connect(proxy.port());
  EXPECT_EQ(RoundTrip(a, "hello", absl::Seconds(5)), "hello");

  proxy.Cut();
  EXPECT_EQ(RoundTrip(a, "lost", absl::Seconds(2)), "") << "an open link drops";
  close(a);
  int refused = Connect(proxy.port());
  EXPECT_EQ(RoundTrip(refused, "refused", absl::Seconds(1)), "") << "new links are closed at once";
  close(refused);
  proxy.Restore();
  int b = Connect(proxy.port());
  EXPECT_EQ(RoundTrip(b, "again", absl::Seconds(5)), "again");

  proxy.Stall();
  EXPECT_EQ(RoundTrip(b, "held", absl::Milliseconds(500)), "") << "stalled: nothing arrives";
  proxy.Restore();
  EXPECT_EQ(ReadN(b, 4, absl::Seconds(5)), "held") << "held data arrives after the stall";

  // 8 KiB at 16 KiB/s each way takes at least ~1 s (bounded below, not above).
  proxy.Slow(16 * 1024, absl::Milliseconds(1));
  const absl::Time start = absl::Now();
  std::string big(8 * 1024, 'x');
  EXPECT_EQ(RoundTrip(b, big, absl::Seconds(30)), big);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(500));
  close(b);
  EXPECT_GE(proxy.connections_accepted(), 3);
}

}  // namespace
}  // namespace fault
}  // namespace polder
