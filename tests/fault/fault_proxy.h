// A TCP fault proxy for tests: listens on a free loopback port and forwards every connection to
// a target, and on command cuts links (closes every connection and refuses new ones until
// restored), stalls them (stops forwarding, keeps the sockets open) or slows them (a byte rate
// and a delay per chunk). Runs its own threads; thread-safe.
//
//   FaultProxy proxy("127.0.0.1", node_port);
//   ASSERT_OK(proxy.Start());                // proxy.port() is where clients connect
//   proxy.Cut();  ...  proxy.Restore();
//   proxy.Slow(64 * 1024, absl::Milliseconds(20));
#ifndef POLDER_TESTS_FAULT_FAULT_PROXY_H_
#define POLDER_TESTS_FAULT_FAULT_PROXY_H_

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace polder {
namespace fault {

class FaultProxy {
 public:
  FaultProxy(std::string target_host, int target_port);
  ~FaultProxy();

  absl::Status Start();
  int port() const { return port_; }
  // New connections go to `target_port` (e.g. a restarted server on another port).
  void Retarget(int target_port) { target_port_ = target_port; }
  // New connections go to each of `ports` in turn (a load balancer in front of replicas).
  void Alternate(std::vector<int> ports) {
    absl::MutexLock lock(&mu_);
    alternate_ = std::move(ports);
  }
  // Before Start: connect to the target from this local address (e.g. 127.0.0.42), so the
  // target sees clients from distinct sources.
  void set_source_address(std::string address) { source_address_ = std::move(address); }
  // Before Start: listen inside the network namespace at `path` (e.g. /run/netns/x; its
  // loopback), and/or connect to the target from inside one — a bridge between a process in a
  // test-made namespace and the host (tests/fault/netns.h). The listening port (0: any free).
  void set_listen_netns(std::string path) { listen_netns_ = std::move(path); }
  void set_connect_netns(std::string path) { connect_netns_ = std::move(path); }
  void set_listen_port(int port) { listen_port_ = port; }

  // Closes every open connection and refuses new ones (they are accepted and closed at once).
  void Cut();
  // Stops forwarding in both directions; connections stay open, data waits.
  void Stall();
  // Forwards at most `bytes_per_second` per direction and connection, sleeping `delay` per chunk.
  void Slow(int64_t bytes_per_second, absl::Duration delay);
  // Back to plain forwarding.
  void Restore();

  int64_t connections_accepted() const { return accepted_.load(); }
  int64_t bytes_forwarded() const { return forwarded_.load(); }

 private:
  enum class Mode { kPass, kCut, kStall, kSlow };
  void AcceptLoop();
  void Pump(int from, int to);
  void CloseAll() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string target_host_;
  std::string source_address_;
  std::string listen_netns_, connect_netns_;
  int listen_port_ = 0;
  std::atomic<int> target_port_;
  std::vector<int> alternate_ ABSL_GUARDED_BY(mu_);
  size_t next_alternate_ ABSL_GUARDED_BY(mu_) = 0;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> accepted_{0};
  std::atomic<int64_t> forwarded_{0};
  mutable absl::Mutex mu_;
  Mode mode_ ABSL_GUARDED_BY(mu_) = Mode::kPass;
  int64_t rate_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
  std::set<int> sockets_ ABSL_GUARDED_BY(mu_);
  std::thread acceptor_;
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fault
}  // namespace polder

#endif  // POLDER_TESTS_FAULT_FAULT_PROXY_H_
