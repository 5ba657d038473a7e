// Per-peer limits of the provider side — live streams (federation.max_streams_per_peer) and audit
// reads in progress (max_audit_reads_per_peer) — counted where they must hold: across every
// replica of the node, not per process (ADR 0021 §3). FederationService asks a PeerAdmission
// before opening a stream or reading audit entries and releases the slot when done.
// LocalAdmission counts in this process (a node without replicas, unit tests); the replicas'
// implementation asks the holder of the peer's key partition (services/node/replica/peer_limits.h).
#ifndef POLDER_SERVICES_NODE_FEDERATION_PEER_ADMISSION_H_
#define POLDER_SERVICES_NODE_FEDERATION_PEER_ADMISSION_H_

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace polder {
namespace node {

// A slot held; destroying it gives the slot back.
class PeerSlot {
 public:
  virtual ~PeerSlot() = default;
};

class PeerAdmission {
 public:
  virtual ~PeerAdmission() = default;
  // A slot of `kind` ("stream", "audit-read") for `peer` while fewer than `limit` are held
  // across the node; RESOURCE_EXHAUSTED naming the limit when not, UNAVAILABLE when the count
  // cannot be consulted (fails closed: nothing is opened).
  virtual absl::StatusOr<std::unique_ptr<PeerSlot>> Admit(const std::string& peer,
                                                          const std::string& kind, int limit) = 0;
};

// RESOURCE_EXHAUSTED for `peer` at `limit` of `kind`.
inline absl::Status PeerLimitReached(const std::string& peer, const std::string& kind, int limit) {
  return absl::ResourceExhaustedError(
      kind == "stream"
          ? absl::StrCat("'", peer, "' has ", limit, " streams open already (the limit)")
          : absl::StrCat("'", peer, "' has ", limit, " audit reads in progress (the limit)"));
}

// Counts in this process.
class LocalAdmission final : public PeerAdmission {
 public:
  absl::StatusOr<std::unique_ptr<PeerSlot>> Admit(const std::string& peer, const std::string& kind,
                                                  int limit) override {
    absl::MutexLock lock(&mu_);
    int& held = held_[{peer, kind}];
    if (held >= limit) return PeerLimitReached(peer, kind, limit);
    ++held;
    return std::unique_ptr<PeerSlot>(new Slot(this, {peer, kind}));
  }

 private:
  class Slot final : public PeerSlot {
   public:
    Slot(LocalAdmission* owner, std::pair<std::string, std::string> key)
        : owner_(owner), key_(std::move(key)) {}
    ~Slot() override {
      absl::MutexLock lock(&owner_->mu_);
      if (--owner_->held_[key_] == 0) owner_->held_.erase(key_);
    }

   private:
    LocalAdmission* const owner_;
    const std::pair<std::string, std::string> key_;
  };

  absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, int> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_PEER_ADMISSION_H_
