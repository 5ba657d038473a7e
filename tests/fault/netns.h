// A test-made network namespace joined to the host by a veth pair, for partition tests (ADR 0021
// §6): the host end gets 10.231.<n>.1/24, the namespace end 10.231.<n>.2/24. A process started
// with ExecPrefix() runs inside; services on the host bound to host_ip() (e.g. a Kafka cluster
// via its launcher's bind address) are reachable from it over the veth pair until Cut() deletes
// the namespace's route to the host's subnet, and again after Restore().
//
//   ASSERT_OK(Netns::CleanUpLeftovers());          // a killed earlier run's namespace and links
//   ASSERT_OK_AND_ASSIGN(std::unique_ptr<Netns> net, Netns::Create("rep", 7));
//   cluster_options.node.bind_address = net->host_ip();
//   process.SetCommandPrefix(net->ExecPrefix());
//   net->Cut();  ...  net->Restore();
//
// Needs root (CAP_NET_ADMIN) and iproute2; names start with "polder-t-" (namespaces) and "pt"
// (links), and the destructor removes both.
#ifndef POLDER_TESTS_FAULT_NETNS_H_
#define POLDER_TESTS_FAULT_NETNS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace polder {
namespace fault {

class Netns {
 public:
  // `tag`: a short name (letters and digits); `subnet`: n in 10.231.n.0/24 (1–254).
  static absl::StatusOr<std::unique_ptr<Netns>> Create(const std::string& tag, int subnet);
  // Removes every "polder-t-*" namespace and "pt*" veth link an earlier run left behind.
  static absl::Status CleanUpLeftovers();
  ~Netns();

  const std::string& name() const { return name_; }
  // /run/netns/<name>: for FaultProxy's namespace options.
  std::string path() const { return "/run/netns/" + name_; }
  const std::string& host_ip() const { return host_ip_; }
  const std::string& inner_ip() const { return inner_ip_; }
  // ip netns exec <name>: prepended to a command to run it inside.
  std::vector<std::string> ExecPrefix() const;

  // The partition: the namespace loses its route to the host's subnet (every connection over
  // the veth pair times out); Restore adds it back.
  absl::Status Cut();
  absl::Status Restore();

 private:
  Netns() = default;
  std::string name_, host_link_, inner_link_, host_ip_, inner_ip_, subnet_;
};

}  // namespace fault
}  // namespace polder

#endif  // POLDER_TESTS_FAULT_NETNS_H_
