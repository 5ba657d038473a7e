// RoleGroup: work that must have one writer at a time — a subscription's mirror, a view set, the
// audit index, a national job — held by one replica of a node or aggregator (ADR 0021 §3).
//
// Each role is named ("sub/amersfoort/air-quality", "views/bicycle-counts", "audit-index") and
// lives in partition murmur2(name) % R of a roles topic (`_polder.roles`, R = 64); the replicas
// are members of one consumer group subscribed to that topic, so the group coordinator gives
// every partition — and so every role in it — to one replica. The replica holding a role starts
// it; the role writes only under its own transactional id, so a replica that lost it is fenced by
// the next holder's InitTransactions. A role that finds itself fenced stops and reports it
// (Fenced()); it is not started again until the group assigns it anew.
//
//   RoleGroup::Options o;  o.group = ...;  o.topic = "_polder.roles";
//   RoleGroup roles(o);
//   roles.Add("views/bicycle-counts", "views", &bicycle_views);  // a Role
//   RETURN_IF_ERROR(roles.Join(kafka));
//   ...
//   roles.Leave();  // stops every role held (what is in flight is committed), leaves the group
#ifndef POLDER_COMMON_REPLICA_ROLE_GROUP_H_
#define POLDER_COMMON_REPLICA_ROLE_GROUP_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/group.h"

namespace polder {
namespace replica {

// One piece of single-writer work. Start and Stop are called by the RoleGroup only, one at a
// time per role, alternately (Start, Stop, Start, ...).
class Role {
 public:
  virtual ~Role() = default;
  // Starts the role on its own threads and returns at once (its InitTransactions, recovery and
  // work run there).
  virtual void Start() = 0;
  // Stops the role and returns once it writes nothing more. `lost`: the group took the role
  // without a hand-over (this replica's session expired), so another replica may hold it already
  // and what the role still commits will be fenced: stop without waiting for commits to finish.
  virtual void Stop(bool lost) = 0;
};

// The default replica id: the host name (a StatefulSet pod's name, e.g. groningen-node-0) made
// a peer-id-like name (lowercase letters, digits and '-', starting with a letter).
std::string HostReplicaId();

class RoleGroup : public kafka::GroupListener {
 public:
  struct Options {
    // Membership: client, group id, instance id, session timeout, heartbeat (topics are set
    // here to {topic}).
    kafka::GroupOptions group;
    std::string topic = "_polder.roles";
    int32_t partitions = 64;
  };

  explicit RoleGroup(Options options) : options_(std::move(options)) {}
  ~RoleGroup() override;

  // The partition of the roles topic a role named `name` lives in (Kafka's default partitioner).
  static int32_t PartitionOf(const std::string& name, int32_t partitions);

  // Adds a role before Join(). `kind` labels it in status and metrics ("subscription", "views",
  // "audit-index", "job"). `role` must outlive the group.
  void Add(const std::string& name, const std::string& kind, Role* role);
  // Joins the group; roles start as partitions are assigned, on the member's thread.
  absl::Status Join(kafka::ClientFactory& kafka);
  // Stops every role held (each commits what is in flight) and leaves the group.
  void Leave();

  // A role reports that its writer was fenced: it has stopped. Counted; the role stays stopped
  // until the group assigns it again (it is then Stopped and Started as usual).
  void Fenced(const std::string& name);

  struct RoleState {
    std::string name, kind;
    int32_t partition = 0;
    bool held = false;    // started here and not stopped since
    bool fenced = false;  // held, but its writer was fenced: waiting for the group
  };
  std::vector<RoleState> Roles() const;
  bool Holds(const std::string& name) const;
  // Joined the group and completed at least one assignment.
  bool joined() const;
  int64_t rebalances() const;
  // Roles fenced since start, per kind.
  std::map<std::string, int64_t> fenced_counts() const;
  // Roles held now, per kind (every kind added appears, with 0 when none is held).
  std::map<std::string, int64_t> held_counts() const;

  // kafka::GroupListener (the member's thread).
  void Assigned(const std::vector<kafka::TopicPartition>& partitions) override;
  void Revoked(const std::vector<kafka::TopicPartition>& partitions, bool lost) override;

 private:
  struct Entry {
    std::string name, kind;
    int32_t partition = 0;
    Role* role = nullptr;
    bool held = false;
    bool fenced = false;
    // The role stopping in the background after a lost assignment (joined before it starts
    // again, and by the destructor).
    std::thread retiring;
  };

  const Options options_;
  std::unique_ptr<kafka::GroupMember> member_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> fenced_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> assignments_{0};
};

}  // namespace replica
}  // namespace polder

#endif  // POLDER_COMMON_REPLICA_ROLE_GROUP_H_
