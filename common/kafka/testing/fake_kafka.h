// An in-memory Kafka for unit tests: FakeKafka holds topics, partitions and transactions;
// FakeClientFactory hands out producers, consumers and admins over it through the ClientFactory
// interface every Polder class takes, so a test injects it where the binary passes
// RdKafkaClientFactory.
//
//   FakeKafka kafka;
//   ASSERT_OK(kafka.CreateTopic({.name = "gn.mobility.bike-counts", .partitions = 3}));
//   FakeClientFactory clients(&kafka);
//   auto publisher = Publisher::Create(options, clients);
//   kafka.FailCommit(CommitFault::kCrashBeforeCommit, "polder-ingest-gn");  // the next commit dies
//
// It behaves as read_committed readers see Kafka — the conformance suite
// (common/kafka/testing/conformance_test.cc, and the real-broker half in //tests/kafka) runs the
// same cases against it, librdkafka's mock cluster and a real broker; trust the fake only while
// that suite passes:
//   - every record takes an offset, and so does every transaction marker (commit or abort), one
//     per partition the transaction wrote;
//   - records of an open transaction hold the last stable offset (LSO) of their partition:
//     read_committed consumers read nothing at or past it, and their QueryWatermarks reports it
//     as the high watermark; aborted records are never visible to them; read_uncommitted
//     consumers see every data record up to the log end;
//   - InitTransactions of a transactional id bumps its epoch: the previous instance is fenced
//     (every later call fails with IsFenced, IsFatal) and its open transaction is aborted; a
//     transaction open longer than its transaction_timeout is aborted too (checked on every
//     operation), as the coordinator does;
//   - keys are partitioned as the Java client and librdkafka's murmur2_random do.
// Delivery callbacks run on a thread of the producer, in send order, never inside Send (except
// for records refused at once). Consumer groups hold roles (GroupMember: sticky, balanced,
// revocations before assignments; PauseMember makes a zombie). Not modelled: replication,
// retention, compaction, quotas, group offsets, sizes.
#ifndef POLDER_COMMON_KAFKA_TESTING_FAKE_KAFKA_H_
#define POLDER_COMMON_KAFKA_TESTING_FAKE_KAFKA_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/admin.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/partitioner.h"
#include "common/kafka/record.h"

namespace polder {
namespace kafka {
namespace testing {

// The partition the Java client (and librdkafka's murmur2_random) gives `key` among `partitions`.
using ::polder::kafka::JavaPartition;

// Operations a fault can be injected into (FakeKafka::FailNext).
enum class FakeOp {
  kSend,  // the record's callback gets the status; nothing is appended
  kInitTransactions,
  kBeginTransaction,
  kAbortTransaction,
  kPoll,
  kQueryWatermarks,
  kCreateTopic,
  kNewClient,  // the factory refuses to create a client
};

// What an injected commit fault does (FakeKafka::FailCommit).
enum class CommitFault {
  // CommitTransaction returns the status and commits nothing; the transaction stays open (retry
  // the commit if the status is retriable, or abort).
  kFailBeforeCommit,
  // The transaction commits, then CommitTransaction returns the status (an outcome the caller
  // cannot know: a timeout after the coordinator wrote the markers). Calling CommitTransaction
  // again returns OK, as librdkafka resumes a commit after a retriable error.
  kFailAfterCommit,
  // The process dies between produce and commit: CommitTransaction returns UNAVAILABLE
  // "crashed" (IsFatal), the producer is dead (every later call fails the same way), and its open
  // transaction stays open — holding the LSO — until a new instance with the same
  // transactional id initialises (which aborts it) or its transaction timeout passes.
  kCrashBeforeCommit,
};

class FakeKafka {
 public:
  FakeKafka();
  ~FakeKafka();
  FakeKafka(const FakeKafka&) = delete;
  FakeKafka& operator=(const FakeKafka&) = delete;

  // As Admin::CreateTopic.
  absl::Status CreateTopic(const TopicSpec& spec);

  // The next `times` calls of `op` by clients whose client id or transactional id contains
  // `who` ("" for any client) fail with `status` (make it with kafka::MakeKafkaError to give it
  // Kafka's flags, e.g. retriable or requires-abort).
  void FailNext(FakeOp op, absl::Status status, int times = 1, std::string who = "");
  // The next CommitTransaction of `transactional_id` ("" for any) fails as `fault` says;
  // `status` is what it returns (ignored for kCrashBeforeCommit).
  void FailCommit(CommitFault fault, std::string transactional_id = "",
                  absl::Status status = absl::UnavailableError("commit timed out (injected)"));
  // While down, sends fail with a retriable UNAVAILABLE (_TRANSPORT), transactional calls and
  // admin calls too, and consumers read nothing (a real consumer hides transport errors).
  void SetDown(bool down);
  // Fences the current instance of `transactional_id` as a newer instance would (and aborts its
  // open transaction), without creating one.
  void Fence(const std::string& transactional_id);

  // Consumer groups (GroupMember): membership changes rebalance at once, calling the members'
  // listeners on the thread that made the change (a listener must not join or leave a group from
  // its callback). The members of a group, by member id, in join order.
  std::vector<std::string> GroupMembers(const std::string& group_id);
  // The member's session expires as if its process were paused (SIGSTOP): the others take its
  // partitions at once while it is not told and still believes it holds them (a zombie).
  void PauseMember(const std::string& member_id);
  // The paused member wakes: it is told its partitions were lost, rejoins and is given a share.
  void ResumeMember(const std::string& member_id);
  // A static member (GroupOptions::instance_id) that closed does not leave: its partitions wait
  // for it to return. This is its session expiring: the others take them.
  void ExpireStaticMember(const std::string& group_id, const std::string& instance_id);
  // Rebalances the group again (after its topics gained partitions).
  void RebalanceGroup(const std::string& group_id);

  // Inspection: the records a read_committed reader of the partition sees, and the offsets.
  std::vector<ConsumedRecord> Committed(const std::string& topic, int32_t partition);
  int64_t EndOffset(const std::string& topic, int32_t partition);
  int64_t LastStableOffset(const std::string& topic, int32_t partition);
  int OpenTransactions();
  int Partitions(const std::string& topic);

  // The state and its lock (an implementation detail of this file's clients).
  class Impl;

 private:
  friend class FakeClientFactory;
  std::unique_ptr<Impl> impl_;
};

// Clients over a FakeKafka (which must outlive the factory and its clients).
class FakeClientFactory : public ClientFactory {
 public:
  explicit FakeClientFactory(FakeKafka* kafka) : kafka_(kafka) {}

  absl::StatusOr<std::unique_ptr<Producer>> NewProducer(const ProducerOptions& options) override;
  absl::StatusOr<std::unique_ptr<TransactionalProducer>> NewTransactionalProducer(
      const ProducerOptions& options) override;
  absl::StatusOr<std::unique_ptr<Consumer>> NewConsumer(const ConsumerOptions& options) override;
  absl::StatusOr<std::unique_ptr<Admin>> NewAdmin(const ClientOptions& options) override;
  absl::StatusOr<std::unique_ptr<GroupMember>> NewGroupMember(const GroupOptions& options,
                                                              GroupListener* listener) override;

  // Clients created so far (each kind).
  int producers_created() const;
  int consumers_created() const;

 private:
  FakeKafka* const kafka_;
  mutable absl::Mutex mu_;
  int producers_ ABSL_GUARDED_BY(mu_) = 0;
  int consumers_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace testing
}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_TESTING_FAKE_KAFKA_H_
