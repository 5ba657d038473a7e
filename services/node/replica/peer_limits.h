// Per-peer limits across a node's replicas (ADR 0021 §3): the slots a peer holds — live streams,
// audit reads in progress — are counted by one replica, the holder of the peer's key partition
// k = murmur2("peer\n" + peer) % P (the same group that spreads ingest keys, so no new
// coordination). A replica that serves a stream asks that holder for a slot (locally if it holds k
// itself, else over the internal port) and gives it back when the stream ends.
//
// Slots are leases: each replica re-reports every slot it holds to the current holder of its
// partition every `renew_interval`, and at once when the holder changes (a rebalance moved k);
// a slot not reported for `lease` is dropped — so a replica that died stops counting within one
// lease, and a new holder learns the count within about a second of taking k over. Until then a
// peer may open more than its limit by what the others had not re-reported yet (bounded by one
// report tick). A holder that cannot be reached refuses (UNAVAILABLE): nothing is opened
// without a count.
#ifndef POLDER_SERVICES_NODE_REPLICA_PEER_LIMITS_H_
#define POLDER_SERVICES_NODE_REPLICA_PEER_LIMITS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/node/federation/peer_admission.h"

namespace polder {
namespace node {

// A slot as replicas report it.
struct SlotRecord {
  std::string peer, kind, ticket;
};

// Calls the holder of a key partition over the internal port.
class SlotRemote {
 public:
  virtual ~SlotRemote() = default;
  // FAILED_PRECONDITION: the addressee does not hold `partition` (nothing done).
  virtual absl::Status Admit(const std::string& endpoint, int32_t partition,
                             const std::string& replica, const SlotRecord& slot, int limit,
                             absl::Duration timeout) = 0;
  virtual absl::Status Renew(const std::string& endpoint, int32_t partition,
                             const std::string& replica, const std::vector<SlotRecord>& slots,
                             absl::Duration timeout) = 0;
  virtual absl::Status Release(const std::string& endpoint, int32_t partition,
                               const SlotRecord& slot, absl::Duration timeout) = 0;
};

class ReplicaAdmission final : public PeerAdmission {
 public:
  struct Options {
    std::string replica;  // this replica's id
    int32_t partitions = 12;
    absl::Duration lease = absl::Seconds(20);
    absl::Duration renew_interval = absl::Seconds(5);
    absl::Duration timeout = absl::Seconds(5);  // per call to a holder
    absl::Duration tick = absl::Milliseconds(500);
  };
  // Where partition k's count is kept: `holds(k)` here, else at `holder(k)` (its internal
  // endpoint, or nullopt while no holder is known).
  struct Routing {
    std::function<bool(int32_t)> holds;
    std::function<std::optional<std::string>(int32_t)> holder;
  };

  // `remote` must outlive this object. Starts the renewal thread.
  ReplicaAdmission(Options options, Routing routing, SlotRemote* remote);
  ~ReplicaAdmission() override;

  absl::StatusOr<std::unique_ptr<PeerSlot>> Admit(const std::string& peer, const std::string& kind,
                                                  int limit) override;

  // The holder's side of the internal calls: FAILED_PRECONDITION unless this replica holds
  // `partition`.
  absl::Status AdmitHeld(int32_t partition, const std::string& replica, const SlotRecord& slot,
                         int limit);
  absl::Status RenewHeld(int32_t partition, const std::string& replica,
                         const std::vector<SlotRecord>& slots);
  absl::Status ReleaseHeld(int32_t partition, const SlotRecord& slot);

  int32_t PartitionOf(const std::string& peer) const;
  // Slots this replica counts as holder, per (peer, kind) (status, tests).
  std::map<std::pair<std::string, std::string>, int> Counted() const;
  // Reports every slot held to the holders now (tests; the thread does it every renew_interval).
  void RenewNow();

 private:
  class Slot;
  struct CountedSlot {
    int32_t partition = 0;
    std::string replica;
    absl::Time expires;
  };
  void Loop();
  void Release(const std::string& ticket);
  // Sends this replica's slots of each partition to its holder; `only_moved`: only partitions
  // whose holder changed since the last report.
  void Renew(bool only_moved);

  const Options options_;
  const Routing routing_;
  SlotRemote* const remote_;

  // The holder's book: (peer, kind) → ticket → counted.
  mutable absl::Mutex book_mu_;
  std::map<std::pair<std::string, std::string>, std::map<std::string, CountedSlot>> book_
      ABSL_GUARDED_BY(book_mu_);

  // The slots this replica holds: ticket → slot; and the holder each partition was last
  // reported to.
  mutable absl::Mutex held_mu_;
  std::map<std::string, SlotRecord> held_ ABSL_GUARDED_BY(held_mu_);
  std::map<int32_t, std::string> reported_to_ ABSL_GUARDED_BY(held_mu_);
  absl::Time last_renew_ ABSL_GUARDED_BY(held_mu_);

  absl::Mutex stop_mu_;
  bool stop_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread thread_;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_REPLICA_PEER_LIMITS_H_
