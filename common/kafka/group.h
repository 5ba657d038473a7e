// GroupMember: membership of a Kafka consumer group used to hold roles, not to consume (ADR 0021
// §1). Each replica of a node or aggregator joins a group by subscribing to a roles topic whose
// partitions are the roles; the group coordinator assigns every partition to exactly one member,
// and the member that holds a partition holds that role — writing only under the role's own
// transactional id, so a member that lost the role is fenced by the next holder.
//
// Classic protocol (librdkafka 2.0.2), `cooperative-sticky` assignor: a rebalance moves only the
// partitions that must move, and a partition is revoked from its old member before it is
// assigned to a new one (except when the old member's session expired: then it is "lost", and
// another member may hold it already — fencing, not the group, keeps the two apart). The member
// never fetches records: its partitions are paused as they are assigned, and it commits nothing.
//
//   class Roles : public kafka::GroupListener { ... };
//   GroupOptions options;
//   options.client.bootstrap_servers = broker;
//   options.group_id = "polder-groningen-keys";
//   options.topics = {"_polder.ingest-keys.v2"};
//   ASSIGN_OR_RETURN(std::unique_ptr<GroupMember> member, factory.NewGroupMember(options, &roles));
//   ...
//   member.reset();  // leaves the group: Revoked(everything), then LeaveGroup
#ifndef POLDER_COMMON_KAFKA_GROUP_H_
#define POLDER_COMMON_KAFKA_GROUP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/kafka/client_config.h"
#include "common/kafka/record.h"

namespace polder {
namespace kafka {

struct GroupOptions {
  ClientOptions client;
  std::string group_id;             // required
  std::vector<std::string> topics;  // required: the roles topics subscribed to
  // Static membership (group.instance.id, KIP-345), e.g. the replica id: a member restarted
  // under the same instance id takes its partitions back at once, without a rebalance and
  // without waiting for its old session to expire; a static member that closes does not leave
  // the group, so its partitions move only after session_timeout (or when it returns). Unique
  // within the group. "": a dynamic member (leaves on close).
  std::string instance_id;
  // A member whose heartbeats stop for this long leaves the group and its partitions move
  // (session.timeout.ms; the broker allows 6–300 s by default). The failover bound rests on it.
  absl::Duration session_timeout = absl::Seconds(8);
  absl::Duration heartbeat_interval = absl::Seconds(2);
  // A member whose thread stops polling for this long leaves (max.poll.interval.ms); the member
  // polls on its own thread, so only a listener blocking in a callback can reach it.
  absl::Duration max_poll_interval = absl::Minutes(5);
};

// What a member is told. Callbacks run on the member's own thread, one at a time, in the order
// the group decided; Revoked returns only once the partitions are no longer used (the coordinator
// hands them on after that, unless they were lost).
class GroupListener {
 public:
  virtual ~GroupListener() = default;
  // Partitions added to this member's assignment (possibly none: a rebalance completed).
  virtual void Assigned(const std::vector<TopicPartition>& partitions) = 0;
  // Partitions taken from this member. `lost`: its session expired (or it was fenced out of the
  // group) before it could hand them over, so another member may hold them already.
  virtual void Revoked(const std::vector<TopicPartition>& partitions, bool lost) = 0;
};

class GroupMember {
 public:
  // Leaves the group (revoking everything through the listener first).
  virtual ~GroupMember() = default;

  // The partitions assigned now.
  virtual std::vector<TopicPartition> Assignment() const = 0;
  // The member id the coordinator gave this member ("" before it joined).
  virtual std::string member_id() const = 0;
  // True once a rebalance has completed for this member (even with nothing assigned), until its
  // session is lost and until it joins again.
  virtual bool joined() const = 0;
  // Rebalances this member has taken part in (each completed assignment).
  virtual int64_t rebalances() const = 0;
};

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_GROUP_H_
