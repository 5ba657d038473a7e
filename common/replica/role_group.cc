#include "common/replica/role_group.h"

#include <unistd.h>

#include <cctype>
#include <set>
#include <utility>

#include "common/kafka/partitioner.h"
#include "common/log/log.h"

namespace polder {
namespace replica {

RoleGroup::~RoleGroup() {
  Leave();
  std::vector<Entry*> entries;
  {
    absl::MutexLock lock(&mu_);
    for (auto& e : entries_) entries.push_back(e.get());
  }
  for (Entry* e : entries) {
    if (e->retiring.joinable()) e->retiring.join();
  }
}

std::string HostReplicaId() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::string id;
  for (const char* c = host; *c != '\0'; ++c) {
    const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(*c)));
    id.push_back((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') ? l : '-');
  }
  if (id.empty() || id[0] < 'a' || id[0] > 'z') id = "r-" + id;
  return id;
}

int32_t RoleGroup::PartitionOf(const std::string& name, int32_t partitions) {
  return kafka::JavaPartition(name, partitions);
}

void RoleGroup::Add(const std::string& name, const std::string& kind, Role* role) {
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->kind = kind;
  e->partition = PartitionOf(name, options_.partitions);
  e->role = role;
  absl::MutexLock lock(&mu_);
  fenced_.emplace(kind, 0);
  entries_.push_back(std::move(e));
}

absl::Status RoleGroup::Join(kafka::ClientFactory& kafka) {
  kafka::GroupOptions group = options_.group;
  group.topics = {options_.topic};
  absl::StatusOr<std::unique_ptr<kafka::GroupMember>> member = kafka.NewGroupMember(group, this);
  if (!member.ok()) return member.status();
  member_ = *std::move(member);
  return absl::OkStatus();
}

void RoleGroup::Leave() {
  // Leaving revokes every partition through Revoked (each role held commits and stops).
  member_.reset();
}

void RoleGroup::Fenced(const std::string& name) {
  absl::MutexLock lock(&mu_);
  for (auto& e : entries_) {
    if (e->name != name || !e->held) continue;
    e->fenced = true;
    ++fenced_[e->kind];
    log::Warning("role fenced: another replica holds it; waiting for the group",
                 {{"role", name}, {"kind", e->kind}});
  }
}

void RoleGroup::Assigned(const std::vector<kafka::TopicPartition>& partitions) {
  std::set<int32_t> added;
  for (const kafka::TopicPartition& tp : partitions) {
    if (tp.topic == options_.topic) added.insert(tp.partition);
  }
  std::vector<Entry*> starting;
  {
    absl::MutexLock lock(&mu_);
    for (auto& e : entries_) {
      if (added.count(e->partition) > 0 && !e->held) starting.push_back(e.get());
    }
  }
  for (Entry* e : starting) {
    // A role lost earlier and given back at once: its old run must have stopped first.
    if (e->retiring.joinable()) e->retiring.join();
    {
      absl::MutexLock lock(&mu_);
      e->held = true;
      e->fenced = false;
    }
    log::Info("role held", {{"role", e->name}, {"kind", e->kind}, {"partition", e->partition}});
    e->role->Start();
  }
  ++assignments_;
}

void RoleGroup::Revoked(const std::vector<kafka::TopicPartition>& partitions, bool lost) {
  std::set<int32_t> removed;
  for (const kafka::TopicPartition& tp : partitions) {
    if (tp.topic == options_.topic) removed.insert(tp.partition);
  }
  std::vector<Entry*> stopping;
  {
    absl::MutexLock lock(&mu_);
    for (auto& e : entries_) {
      if (removed.count(e->partition) == 0 || !e->held) continue;
      e->held = false;
      e->fenced = false;
      stopping.push_back(e.get());
    }
  }
  for (Entry* e : stopping) {
    log::Info("role given up", {{"role", e->name}, {"kind", e->kind}, {"lost", lost}});
    if (lost) {
      // Another replica may hold it already; whatever it still commits is fenced. It stops on
      // its own thread so this member rejoins now, not after its last commit attempts time out.
      if (e->retiring.joinable()) e->retiring.join();
      e->retiring = std::thread([e] { e->role->Stop(/*lost=*/true); });
    } else {
      e->role->Stop(/*lost=*/false);  // what is in flight is committed before the hand-over
    }
  }
}

std::vector<RoleGroup::RoleState> RoleGroup::Roles() const {
  std::vector<RoleState> out;
  absl::MutexLock lock(&mu_);
  for (const auto& e : entries_)
    out.push_back({e->name, e->kind, e->partition, e->held, e->fenced});
  return out;
}

bool RoleGroup::Holds(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  for (const auto& e : entries_) {
    if (e->name == name) return e->held && !e->fenced;
  }
  return false;
}

bool RoleGroup::joined() const {
  return member_ != nullptr && member_->joined() && assignments_.load() > 0;
}

int64_t RoleGroup::rebalances() const { return member_ == nullptr ? 0 : member_->rebalances(); }

std::map<std::string, int64_t> RoleGroup::fenced_counts() const {
  absl::MutexLock lock(&mu_);
  return fenced_;
}

std::map<std::string, int64_t> RoleGroup::held_counts() const {
  std::map<std::string, int64_t> out;
  absl::MutexLock lock(&mu_);
  for (const auto& e : entries_) out[e->kind] += (e->held && !e->fenced) ? 1 : 0;
  return out;
}

}  // namespace replica
}  // namespace polder
