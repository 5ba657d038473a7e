#include "services/node/replica/peer_limits.h"

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/kafka/partitioner.h"
#include "common/log/log.h"

namespace polder {
namespace node {

class ReplicaAdmission::Slot final : public PeerSlot {
 public:
  Slot(ReplicaAdmission* owner, std::string ticket) : owner_(owner), ticket_(std::move(ticket)) {}
  ~Slot() override { owner_->Release(ticket_); }

 private:
  ReplicaAdmission* const owner_;
  const std::string ticket_;
};

ReplicaAdmission::ReplicaAdmission(Options options, Routing routing, SlotRemote* remote)
    : options_(std::move(options)), routing_(std::move(routing)), remote_(remote) {
  thread_ = std::thread([this] { Loop(); });
}

ReplicaAdmission::~ReplicaAdmission() {
  {
    absl::MutexLock lock(&stop_mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

int32_t ReplicaAdmission::PartitionOf(const std::string& peer) const {
  return kafka::JavaPartition(absl::StrCat("peer\n", peer), options_.partitions);
}

absl::StatusOr<std::unique_ptr<PeerSlot>> ReplicaAdmission::Admit(const std::string& peer,
                                                                  const std::string& kind,
                                                                  int limit) {
  static absl::Mutex gen_mu;
  static absl::BitGen* gen = new absl::BitGen();
  SlotRecord slot{peer, kind, ""};
  {
    absl::MutexLock lock(&gen_mu);
    slot.ticket = absl::StrFormat("%s-%016x%016x", options_.replica, absl::Uniform<uint64_t>(*gen),
                                  absl::Uniform<uint64_t>(*gen));
  }
  const int32_t k = PartitionOf(peer);
  absl::Status s;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (routing_.holds(k)) {
      s = AdmitHeld(k, options_.replica, slot, limit);
    } else if (std::optional<std::string> holder = routing_.holder(k); holder.has_value()) {
      s = remote_->Admit(*holder, k, options_.replica, slot, limit, options_.timeout);
    } else {
      s = absl::UnavailableError(absl::StrCat("no holder of key partition ", k, " is known"));
    }
    // A holder that just gave k up, or a directory not yet updated: ask again shortly.
    if (s.code() != absl::StatusCode::kFailedPrecondition) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  if (s.code() == absl::StatusCode::kResourceExhausted) return s;
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the slots of '", peer, "' (counted by the holder of key partition ", k,
                     ") cannot be consulted; nothing is opened without them: ", s.message()));
  }
  {
    absl::MutexLock lock(&held_mu_);
    held_[slot.ticket] = slot;
  }
  return std::unique_ptr<PeerSlot>(new Slot(this, slot.ticket));
}

void ReplicaAdmission::Release(const std::string& ticket) {
  SlotRecord slot;
  {
    absl::MutexLock lock(&held_mu_);
    auto it = held_.find(ticket);
    if (it == held_.end()) return;
    slot = std::move(it->second);
    held_.erase(it);
  }
  const int32_t k = PartitionOf(slot.peer);
  // Best effort: a release that does not arrive ends with the slot's lease.
  if (routing_.holds(k)) {
    (void)ReleaseHeld(k, slot);
  } else if (std::optional<std::string> holder = routing_.holder(k); holder.has_value()) {
    absl::Status s = remote_->Release(*holder, k, slot, options_.timeout);
    if (!s.ok()) {
      log::Warning("peer slot not released at its holder (its lease ends it)",
                   {{"peer", slot.peer}, {"kind", slot.kind}, {"error", std::string(s.message())}});
    }
  }
}

absl::Status ReplicaAdmission::AdmitHeld(int32_t partition, const std::string& replica,
                                         const SlotRecord& slot, int limit) {
  if (!routing_.holds(partition)) {
    return absl::FailedPreconditionError(
        absl::StrCat("replica '", options_.replica, "' does not hold key partition ", partition));
  }
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&book_mu_);
  std::map<std::string, CountedSlot>& slots = book_[{slot.peer, slot.kind}];
  for (auto it = slots.begin(); it != slots.end();) {
    it = it->second.expires <= now ? slots.erase(it) : std::next(it);
  }
  if (static_cast<int>(slots.size()) >= limit) return PeerLimitReached(slot.peer, slot.kind, limit);
  slots[slot.ticket] = {partition, replica, now + options_.lease};
  return absl::OkStatus();
}

absl::Status ReplicaAdmission::RenewHeld(int32_t partition, const std::string& replica,
                                         const std::vector<SlotRecord>& slots) {
  if (!routing_.holds(partition)) {
    return absl::FailedPreconditionError(
        absl::StrCat("replica '", options_.replica, "' does not hold key partition ", partition));
  }
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&book_mu_);
  for (const SlotRecord& s : slots) {
    book_[{s.peer, s.kind}][s.ticket] = {partition, replica, now + options_.lease};
  }
  return absl::OkStatus();
}

absl::Status ReplicaAdmission::ReleaseHeld(int32_t partition, const SlotRecord& slot) {
  (void)partition;
  absl::MutexLock lock(&book_mu_);
  auto it = book_.find({slot.peer, slot.kind});
  if (it == book_.end()) return absl::OkStatus();
  it->second.erase(slot.ticket);
  if (it->second.empty()) book_.erase(it);
  return absl::OkStatus();
}

std::map<std::pair<std::string, std::string>, int> ReplicaAdmission::Counted() const {
  const absl::Time now = absl::Now();
  std::map<std::pair<std::string, std::string>, int> out;
  absl::MutexLock lock(&book_mu_);
  for (const auto& [key, slots] : book_) {
    for (const auto& [ticket, c] : slots) {
      if (c.expires > now) ++out[key];
    }
  }
  return out;
}

void ReplicaAdmission::RenewNow() { Renew(/*only_moved=*/false); }

void ReplicaAdmission::Renew(bool only_moved) {
  std::map<int32_t, std::vector<SlotRecord>> by_partition;
  std::map<int32_t, std::string> reported;
  {
    absl::MutexLock lock(&held_mu_);
    for (const auto& [ticket, slot] : held_) by_partition[PartitionOf(slot.peer)].push_back(slot);
    reported = reported_to_;
    if (!only_moved) last_renew_ = absl::Now();
  }
  for (const auto& [k, slots] : by_partition) {
    const bool here = routing_.holds(k);
    std::optional<std::string> holder = here ? std::optional<std::string>("") : routing_.holder(k);
    if (!holder.has_value()) continue;  // no holder known: reported once one is
    auto last = reported.find(k);
    if (only_moved && last != reported.end() && last->second == *holder) continue;
    const absl::Status s =
        here ? RenewHeld(k, options_.replica, slots)
             : remote_->Renew(*holder, k, options_.replica, slots, options_.timeout);
    absl::MutexLock lock(&held_mu_);
    if (s.ok()) {
      reported_to_[k] = *holder;
    } else {
      reported_to_.erase(k);  // tried again next tick
    }
  }
}

void ReplicaAdmission::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&stop_mu_);
      if (stop_mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.tick)) return;
    }
    bool due;
    {
      absl::MutexLock lock(&held_mu_);
      due = absl::Now() - last_renew_ >= options_.renew_interval;
    }
    Renew(/*only_moved=*/!due);
    // The book keeps only what this replica counts now: slots past their lease, and those of
    // partitions it no longer holds (their new holder is told by the replicas), go.
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&book_mu_);
    for (auto it = book_.begin(); it != book_.end();) {
      for (auto s = it->second.begin(); s != it->second.end();) {
        s = s->second.expires <= now || !routing_.holds(s->second.partition) ? it->second.erase(s)
                                                                             : std::next(s);
      }
      it = it->second.empty() ? book_.erase(it) : std::next(it);
    }
  }
}

}  // namespace node
}  // namespace polder
