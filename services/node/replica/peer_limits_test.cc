// Per-peer limits across replicas (ADR 0021 §3): two replicas' ReplicaAdmission, the holder of
// each key partition chosen by the test, calls between them in process.
#include "services/node/replica/peer_limits.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace node {
namespace {

using ::polder::testing::StatusIs;

// The replicas by endpoint; a missing or "down" endpoint answers UNAVAILABLE.
class Loopback : public SlotRemote {
 public:
  void Add(const std::string& endpoint, ReplicaAdmission* a) {
    absl::MutexLock lock(&mu_);
    replicas_[endpoint] = a;
  }
  void Down(const std::string& endpoint) {
    absl::MutexLock lock(&mu_);
    replicas_.erase(endpoint);
  }
  absl::Status Admit(const std::string& endpoint, int32_t partition, const std::string& replica,
                     const SlotRecord& slot, int limit, absl::Duration) override {
    ReplicaAdmission* a = Find(endpoint);
    if (a == nullptr) return absl::UnavailableError("connection refused");
    return a->AdmitHeld(partition, replica, slot, limit);
  }
  absl::Status Renew(const std::string& endpoint, int32_t partition, const std::string& replica,
                     const std::vector<SlotRecord>& slots, absl::Duration) override {
    ReplicaAdmission* a = Find(endpoint);
    if (a == nullptr) return absl::UnavailableError("connection refused");
    ++renewals_;
    return a->RenewHeld(partition, replica, slots);
  }
  absl::Status Release(const std::string& endpoint, int32_t partition, const SlotRecord& slot,
                       absl::Duration) override {
    ReplicaAdmission* a = Find(endpoint);
    if (a == nullptr) return absl::UnavailableError("connection refused");
    return a->ReleaseHeld(partition, slot);
  }
  std::atomic<int> renewals_{0};

 private:
  ReplicaAdmission* Find(const std::string& endpoint) {
    absl::MutexLock lock(&mu_);
    auto it = replicas_.find(endpoint);
    return it == replicas_.end() ? nullptr : it->second;
  }
  absl::Mutex mu_;
  std::map<std::string, ReplicaAdmission*> replicas_ ABSL_GUARDED_BY(mu_);
};

class PeerLimitsTest : public ::testing::Test {
 protected:
  std::unique_ptr<ReplicaAdmission> Replica(const std::string& id,
                                            absl::Duration lease = absl::Seconds(20)) {
    ReplicaAdmission::Options o;
    o.replica = id;
    o.partitions = 4;
    o.lease = lease;
    o.renew_interval = absl::Hours(1);  // renewals: RenewNow, or a moved holder (each tick)
    o.tick = absl::Milliseconds(20);
    ReplicaAdmission::Routing r;
    r.holds = [this, id](int32_t) {
      absl::MutexLock lock(&mu_);
      return holder_ == id;
    };
    r.holder = [this](int32_t) -> std::optional<std::string> {
      absl::MutexLock lock(&mu_);
      return holder_;
    };
    auto a = std::make_unique<ReplicaAdmission>(o, r, &net_);
    net_.Add(id, a.get());
    return a;
  }
  void SetHolder(const std::string& id) {
    absl::MutexLock lock(&mu_);
    holder_ = id;
  }
  // Waits (bounded) until `f`.
  template <typename F>
  static bool Eventually(F f) {
    for (absl::Time until = absl::Now() + absl::Seconds(10); absl::Now() < until;) {
      if (f()) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return f();
  }

  absl::Mutex mu_;
  std::string holder_ ABSL_GUARDED_BY(mu_) = "a";  // every partition's holder
  Loopback net_;
};

TEST_F(PeerLimitsTest, TheLimitHoldsAcrossReplicasNotPerReplica) {
  auto a = Replica("a");
  auto b = Replica("b");
  std::vector<std::unique_ptr<PeerSlot>> held;
  ASSERT_OK_AND_ASSIGN(auto s1, a->Admit("amersfoort", "stream", 3));
  ASSERT_OK_AND_ASSIGN(auto s2, b->Admit("amersfoort", "stream", 3));
  ASSERT_OK_AND_ASSIGN(auto s3, b->Admit("amersfoort", "stream", 3));
  EXPECT_THAT(a->Admit("amersfoort", "stream", 3),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       ::testing::HasSubstr("'amersfoort' has 3 streams open already")));
  EXPECT_THAT(b->Admit("amersfoort", "stream", 3), StatusIs(absl::StatusCode::kResourceExhausted));
  // Other peers and other kinds are counted apart.
  ASSERT_OK(b->Admit("enschede", "stream", 3).status());
  ASSERT_OK_AND_ASSIGN(auto r1, b->Admit("amersfoort", "audit-read", 1));
  EXPECT_THAT(a->Admit("amersfoort", "audit-read", 1),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       ::testing::HasSubstr("audit reads in progress")));
  EXPECT_EQ((a->Counted()[{"amersfoort", "stream"}]), 3);
  // A slot given back on one replica frees one for the other.
  s2.reset();
  ASSERT_OK(a->Admit("amersfoort", "stream", 3).status());
}

TEST_F(PeerLimitsTest, ANewHolderLearnsTheCountFromTheReplicasReports) {
  auto a = Replica("a");
  auto b = Replica("b");
  ASSERT_OK_AND_ASSIGN(auto s1, a->Admit("amersfoort", "stream", 2));
  ASSERT_OK_AND_ASSIGN(auto s2, b->Admit("amersfoort", "stream", 2));
  // The key partitions move to b (a rebalance): both replicas report their slots to it at once.
  SetHolder("b");
  ASSERT_TRUE(Eventually([&] {
    return (b->Counted()[{"amersfoort", "stream"}]) == 2;
  })) << "b counts "
      << (b->Counted()[{"amersfoort", "stream"}]);
  EXPECT_THAT(a->Admit("amersfoort", "stream", 2), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_TRUE(Eventually([&] { return a->Counted().empty(); })) << "a no longer counts";
}

TEST_F(PeerLimitsTest, ADeadReplicasSlotsEndWithTheirLease) {
  auto a = Replica("a", absl::Milliseconds(300));
  auto b = Replica("b", absl::Milliseconds(300));
  ASSERT_OK_AND_ASSIGN(auto s1, b->Admit("amersfoort", "stream", 1));
  EXPECT_THAT(a->Admit("amersfoort", "stream", 1), StatusIs(absl::StatusCode::kResourceExhausted));
  // b dies without releasing (its slot object is leaked on purpose: a kill -9).
  net_.Down("b");
  (void)s1.release();
  b.reset();
  // a keeps renewing its own; b's is gone after the lease.
  ASSERT_TRUE(Eventually([&] { return a->Admit("amersfoort", "stream", 1).ok(); }));
}

TEST_F(PeerLimitsTest, AnUnreachableHolderRefusesInsteadOfOpening) {
  auto a = Replica("a");
  auto b = Replica("b");
  net_.Down("a");
  EXPECT_THAT(b->Admit("amersfoort", "stream", 8),
              StatusIs(absl::StatusCode::kUnavailable,
                       ::testing::HasSubstr("nothing is opened without them")));
  SetHolder("");  // no holder known (a rebalance in progress)
  EXPECT_THAT(b->Admit("amersfoort", "stream", 8), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(PeerLimitsTest, SlotsStayCountedWhileRenewed) {
  auto a = Replica("a", absl::Milliseconds(300));
  auto b = Replica("b", absl::Milliseconds(300));
  ASSERT_OK_AND_ASSIGN(auto s1, b->Admit("amersfoort", "stream", 1));
  for (int i = 0; i < 10; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    b->RenewNow();
    EXPECT_THAT(a->Admit("amersfoort", "stream", 1), StatusIs(absl::StatusCode::kResourceExhausted))
        << "renewed slots outlive their first lease (" << i << ")";
  }
  EXPECT_GT(net_.renewals_.load(), 0);
}

}  // namespace
}  // namespace node
}  // namespace polder
