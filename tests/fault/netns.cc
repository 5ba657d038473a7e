#include "tests/fault/netns.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace polder {
namespace fault {
namespace {

constexpr char kIp[] = "/usr/sbin/ip";

// Runs `command` (a shell line of fixed words; no user input); its output on failure.
absl::Status Run(const std::string& command, std::string* out = nullptr) {
  FILE* p = popen(absl::StrCat(command, " 2>&1").c_str(), "r");
  if (p == nullptr) return absl::InternalError(absl::StrCat("cannot run: ", command));
  std::string text;
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) text += buf;
  const int rc = pclose(p);
  if (out != nullptr) *out = text;
  if (rc != 0) return absl::FailedPreconditionError(absl::StrCat(command, ": ", text));
  return absl::OkStatus();
}

}  // namespace

absl::Status Netns::CleanUpLeftovers() {
  std::string list;
  if (absl::Status s = Run(absl::StrCat(kIp, " netns list"), &list); !s.ok()) return s;
  for (absl::string_view line : absl::StrSplit(list, '\n')) {
    const std::string name(line.substr(0, line.find(' ')));
    if (absl::StartsWith(name, "polder-t-")) (void)Run(absl::StrCat(kIp, " netns del ", name));
  }
  std::string links;
  if (absl::Status s = Run(absl::StrCat(kIp, " -o link show type veth"), &links); !s.ok()) return s;
  for (absl::string_view line : absl::StrSplit(links, '\n')) {
    // "12: pt7h@if11: <...>"
    const std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(": ", 2));
    if (parts.size() < 2) continue;
    const std::string name = parts[1].substr(0, parts[1].find('@'));
    if (absl::StartsWith(name, "pt")) (void)Run(absl::StrCat(kIp, " link del ", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Netns>> Netns::Create(const std::string& tag, int subnet) {
  if (subnet < 1 || subnet > 254 || tag.empty() || tag.size() > 8) {
    return absl::InvalidArgumentError("Netns: a tag of 1-8 characters and a subnet of 1-254");
  }
  std::unique_ptr<Netns> n(new Netns());
  n->name_ = absl::StrCat("polder-t-", tag);
  n->host_link_ = absl::StrCat("pt", subnet, "h");
  n->inner_link_ = absl::StrCat("pt", subnet, "n");
  n->subnet_ = absl::StrCat("10.231.", subnet, ".0/24");
  n->host_ip_ = absl::StrCat("10.231.", subnet, ".1");
  n->inner_ip_ = absl::StrCat("10.231.", subnet, ".2");
  const std::string in = absl::StrCat(kIp, " netns exec ", n->name_, " ", kIp);
  for (const std::string& step : {
           absl::StrCat(kIp, " netns add ", n->name_),
           absl::StrCat(kIp, " link add ", n->host_link_, " type veth peer name ", n->inner_link_),
           absl::StrCat(kIp, " link set ", n->inner_link_, " netns ", n->name_),
           absl::StrCat(kIp, " addr add ", n->host_ip_, "/24 dev ", n->host_link_),
           absl::StrCat(kIp, " link set ", n->host_link_, " up"),
           absl::StrCat(in, " addr add ", n->inner_ip_, "/24 dev ", n->inner_link_),
           absl::StrCat(in, " link set ", n->inner_link_, " up"),
           absl::StrCat(in, " link set lo up"),
       }) {
    if (absl::Status s = Run(step); !s.ok()) return s;  // the destructor removes what was made
  }
  return n;
}

Netns::~Netns() {
  if (name_.empty()) return;
  (void)Run(absl::StrCat(kIp, " link del ", host_link_));  // removes its peer too
  (void)Run(absl::StrCat(kIp, " netns del ", name_));
}

std::vector<std::string> Netns::ExecPrefix() const { return {kIp, "netns", "exec", name_}; }

absl::Status Netns::Cut() {
  return Run(absl::StrCat(kIp, " netns exec ", name_, " ", kIp, " route del ", subnet_, " dev ",
                          inner_link_));
}

absl::Status Netns::Restore() {
  return Run(absl::StrCat(kIp, " netns exec ", name_, " ", kIp, " route add ", subnet_, " dev ",
                          inner_link_, " src ", inner_ip_));
}

}  // namespace fault
}  // namespace polder
