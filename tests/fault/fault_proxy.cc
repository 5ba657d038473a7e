#include "tests/fault/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace polder {
namespace fault {

namespace {

// Runs `f` on a thread that entered the network namespace at `path` ("" : this one) and returns
// its result; sockets it creates belong to that namespace and are usable from any thread.
template <typename F>
auto InNetns(const std::string& path, F f) -> decltype(f()) {
  if (path.empty()) return f();
  decltype(f()) result{};
  std::thread t([&] {
    const int ns = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
      if (ns >= 0) close(ns);
      result = decltype(f()){};
      return;
    }
    close(ns);
    result = f();
  });
  t.join();
  return result;
}

}  // namespace

FaultProxy::FaultProxy(std::string target_host, int target_port)
    : target_host_(std::move(target_host)), target_port_(target_port) {}

FaultProxy::~FaultProxy() {
  stop_ = true;
  if (listen_fd_ >= 0) {
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> pumps;
  {
    absl::MutexLock lock(&mu_);
    CloseAll();
    pumps.swap(pumps_);
  }
  for (auto& t : pumps) {
    if (t.joinable()) t.join();
  }
}

absl::Status FaultProxy::Start() {
  // Made inside listen_netns_ if set: it listens on that namespace's loopback.
  listen_fd_ = InNetns(listen_netns_, [] { return socket(AF_INET, SOCK_STREAM, 0) + 1; }) - 1;
  if (listen_fd_ < 0) {
    return absl::InternalError(
        absl::StrCat("socket (namespace '", listen_netns_, "'): ", strerror(errno)));
  }
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(listen_port_));
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 64) != 0) {
    return absl::UnavailableError(absl::StrCat("fault proxy cannot listen: ", strerror(errno)));
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void FaultProxy::CloseAll() {
  for (int fd : sockets_) shutdown(fd, SHUT_RDWR);  // pumps close them
}

void FaultProxy::Cut() {
  absl::MutexLock lock(&mu_);
  mode_ = Mode::kCut;
  CloseAll();
}

void FaultProxy::Stall() {
  absl::MutexLock lock(&mu_);
  mode_ = Mode::kStall;
}

void FaultProxy::Slow(int64_t bytes_per_second, absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  mode_ = Mode::kSlow;
  rate_ = bytes_per_second;
  delay_ = delay;
}

void FaultProxy::Restore() {
  absl::MutexLock lock(&mu_);
  mode_ = Mode::kPass;
}

void FaultProxy::AcceptLoop() {
  while (!stop_) {
    int client = accept(listen_fd_, nullptr, nullptr);
    if (client < 0) {
      if (stop_) return;
      continue;
    }
    ++accepted_;
    {
      absl::MutexLock lock(&mu_);
      if (mode_ == Mode::kCut) {
        close(client);
        continue;
      }
    }
    // Made inside connect_netns_ if set: it reaches the target there.
    int upstream = InNetns(connect_netns_, [] { return socket(AF_INET, SOCK_STREAM, 0) + 1; }) - 1;
    if (upstream < 0) {
      close(client);
      continue;
    }
    if (!source_address_.empty()) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      inet_pton(AF_INET, source_address_.c_str(), &local.sin_addr);
      if (bind(upstream, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
        close(upstream);
        close(client);
        continue;
      }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    int target = target_port_.load();
    {
      absl::MutexLock lock(&mu_);
      if (!alternate_.empty()) target = alternate_[next_alternate_++ % alternate_.size()];
    }
    addr.sin_port = htons(static_cast<uint16_t>(target));
    inet_pton(AF_INET, target_host_ == "localhost" ? "127.0.0.1" : target_host_.c_str(),
              &addr.sin_addr);
    if (connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(upstream);
      close(client);
      continue;
    }
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    absl::MutexLock lock(&mu_);
    sockets_.insert(client);
    sockets_.insert(upstream);
    // The second pump to finish closes both sockets (neither uses a closed descriptor).
    auto remaining = std::make_shared<std::atomic<int>>(2);
    auto finish = [this, client, upstream, remaining] {
      if (--*remaining > 0) return;
      absl::MutexLock l(&mu_);
      sockets_.erase(client);
      sockets_.erase(upstream);
      close(client);
      close(upstream);
    };
    pumps_.emplace_back([this, client, upstream, finish] {
      Pump(client, upstream);
      finish();
    });
    pumps_.emplace_back([this, client, upstream, finish] {
      Pump(upstream, client);
      finish();
    });
  }
}

void FaultProxy::Pump(int from, int to) {
  char buf[16384];
  while (!stop_) {
    pollfd p{from, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    // The mode is read after data arrived, so a stall holds everything sent after it.
    Mode mode;
    int64_t rate;
    absl::Duration delay;
    {
      absl::MutexLock lock(&mu_);
      mode = mode_;
      rate = rate_;
      delay = delay_;
    }
    if (mode == Mode::kStall) {
      absl::SleepFor(absl::Milliseconds(20));
      continue;
    }
    size_t want = sizeof buf;
    if (mode == Mode::kSlow && rate > 0)
      want = std::min<size_t>(want, std::max<int64_t>(1, rate / 20));
    ssize_t n = recv(from, buf, want, 0);
    if (n <= 0) break;
    if (mode == Mode::kSlow) {
      absl::SleepFor(
          delay + (rate > 0 ? absl::Seconds(static_cast<double>(n) / rate) : absl::ZeroDuration()));
    }
    ssize_t off = 0;
    while (off < n) {
      ssize_t w = send(to, buf + off, n - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += w;
    }
    if (off < n) break;
    forwarded_ += n;
  }
  // One side ended: end both, so the peer sees the link drop.
  shutdown(from, SHUT_RDWR);
  shutdown(to, SHUT_RDWR);
}

}  // namespace fault
}  // namespace polder
