// RoleGroup against the fake Kafka's consumer groups: every role held by exactly one replica,
// hand-over on leave, a zombie's roles fenced and stopped, lost roles stopped in the background.
#include "common/replica/role_group.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/kafka/errors.h"
#include "common/kafka/producer.h"
#include "common/kafka/testing/fake_kafka.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace replica {
namespace {

using ::polder::kafka::testing::FakeClientFactory;
using ::polder::kafka::testing::FakeKafka;

constexpr char kRoles[] = "_polder.roles";
constexpr char kOut[] = "out";
constexpr int32_t kPartitions = 8;

// A role that writes under its own transactional id: Start fences the previous holder.
class TestRole : public Role {
 public:
  TestRole(std::string name, kafka::ClientFactory& kafka) : name_(std::move(name)), kafka_(kafka) {}
  void Bind(RoleGroup* group) { group_ = group; }

  void Start() override {
    absl::MutexLock lock(&mu_);
    ++starts_;
    kafka::ProducerOptions o;
    o.client.bootstrap_servers = "fake:9092";
    o.transactional_id = absl::StrCat("role-", name_);
    auto p = kafka_.NewTransactionalProducer(o);
    ASSERT_TRUE(p.ok());
    producer_ = *std::move(p);
    ASSERT_TRUE(producer_->InitTransactions(absl::Seconds(5)).ok());
  }
  void Stop(bool lost) override {
    absl::MutexLock lock(&mu_);
    ++stops_;
    if (lost) ++lost_;
    producer_.reset();
  }
  // One transaction with one record; a fenced writer reports and stops.
  absl::Status Write(const std::string& value) {
    absl::MutexLock lock(&mu_);
    if (producer_ == nullptr) return absl::FailedPreconditionError("not running");
    absl::Status s = kafka::RunInTransaction(
        *producer_,
        [&]() -> absl::Status {
          kafka::ProducerRecord r;
          r.topic = kOut;
          r.partition = 0;
          r.key = name_;
          r.value = value;
          producer_->Send(r, [](absl::StatusOr<kafka::RecordMetadata>) {});
          return absl::OkStatus();
        },
        3, absl::Seconds(5));
    if (kafka::IsFenced(s)) {
      producer_.reset();
      mu_.Unlock();
      group_->Fenced(name_);
      mu_.Lock();
    }
    return s;
  }
  bool running() const {
    absl::MutexLock lock(&mu_);
    return producer_ != nullptr;
  }
  int starts() const {
    absl::MutexLock lock(&mu_);
    return starts_;
  }
  int stops() const {
    absl::MutexLock lock(&mu_);
    return stops_;
  }
  int lost() const {
    absl::MutexLock lock(&mu_);
    return lost_;
  }

 private:
  const std::string name_;
  kafka::ClientFactory& kafka_;
  RoleGroup* group_ = nullptr;
  mutable absl::Mutex mu_;
  std::unique_ptr<kafka::TransactionalProducer> producer_ ABSL_GUARDED_BY(mu_);
  int starts_ ABSL_GUARDED_BY(mu_) = 0;
  int stops_ ABSL_GUARDED_BY(mu_) = 0;
  int lost_ ABSL_GUARDED_BY(mu_) = 0;
};

const std::vector<std::string>& RoleNames() {
  static const auto* names =
      new std::vector<std::string>{"sub/amersfoort/air-quality", "sub/enschede/parking",
                                   "views/bicycle-counts", "views/parking", "audit-index"};
  return *names;
}

// One replica: its group and its own instance of every role.
struct Replica {
  std::map<std::string, std::unique_ptr<TestRole>> roles;
  std::unique_ptr<RoleGroup> group;  // destroyed first: it stops the roles it holds
};

class RoleGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kafka_.CreateTopic({kRoles, kPartitions, 1, {}}).ok());
    ASSERT_TRUE(kafka_.CreateTopic({kOut, 1, 1, {}}).ok());
  }

  std::unique_ptr<Replica> Join(const std::string& id, bool is_static = false) {
    auto r = std::make_unique<Replica>();
    RoleGroup::Options o;
    o.group.client.bootstrap_servers = "fake:9092";
    o.group.client.client_id = id;
    o.group.group_id = "polder-groningen-roles";
    if (is_static) o.group.instance_id = id;
    o.topic = kRoles;
    o.partitions = kPartitions;
    r->group = std::make_unique<RoleGroup>(o);
    for (const std::string& name : RoleNames()) {
      auto role = std::make_unique<TestRole>(name, clients_);
      role->Bind(r->group.get());
      r->group->Add(name, name.substr(0, name.find('/')), role.get());
      r->roles[name] = std::move(role);
    }
    EXPECT_TRUE(r->group->Join(clients_).ok());
    return r;
  }

  // Each role is running on exactly one of `replicas`, and that one's group says it holds it.
  void ExpectEachHeldOnce(const std::vector<Replica*>& replicas) {
    for (const std::string& name : RoleNames()) {
      int running = 0;
      for (Replica* r : replicas) {
        EXPECT_EQ(r->roles[name]->running(), r->group->Holds(name)) << name;
        running += r->roles[name]->running() ? 1 : 0;
      }
      EXPECT_EQ(running, 1) << name;
    }
  }

  FakeKafka kafka_;
  FakeClientFactory clients_{&kafka_};
};

TEST_F(RoleGroupTest, OneReplicaHoldsEveryRoleAndCountsThemByKind) {
  auto a = Join("a");
  EXPECT_TRUE(a->group->joined());
  ExpectEachHeldOnce({a.get()});
  EXPECT_EQ(a->group->held_counts(),
            (std::map<std::string, int64_t>{{"audit-index", 1}, {"sub", 2}, {"views", 2}}));
  for (const RoleGroup::RoleState& s : a->group->Roles()) {
    EXPECT_EQ(s.partition, RoleGroup::PartitionOf(s.name, kPartitions));
    EXPECT_TRUE(s.held);
  }
  for (const auto& [name, role] : a->roles) EXPECT_TRUE(role->Write("x").ok()) << name;
}

TEST_F(RoleGroupTest, TwoReplicasShareTheRolesAndALeavingOneHandsItsRolesOver) {
  auto a = Join("a");
  auto b = Join("b");
  ExpectEachHeldOnce({a.get(), b.get()});
  // Both hold some partitions (8 over 2 members); which roles depends on the hash.
  EXPECT_EQ(kafka_.GroupMembers("polder-groningen-roles").size(), 2u);
  // b leaves: each role it held was stopped (not lost) and now runs on a.
  std::map<std::string, bool> b_held;
  for (const std::string& name : RoleNames()) b_held[name] = b->group->Holds(name);
  std::map<std::string, TestRole*> b_roles;
  for (auto& [name, role] : b->roles) b_roles[name] = role.get();
  b->group->Leave();
  for (const std::string& name : RoleNames()) {
    EXPECT_FALSE(b_roles[name]->running()) << name;
    EXPECT_EQ(b_roles[name]->lost(), 0) << name;
    EXPECT_TRUE(a->roles[name]->running()) << name;
    EXPECT_TRUE(a->roles[name]->Write("after").ok()) << name;
    // a held everything alone, handed b's share over when b joined, and took it back.
    EXPECT_EQ(a->roles[name]->starts(), b_held[name] ? 2 : 1) << name;
    EXPECT_EQ(a->roles[name]->stops(), b_held[name] ? 1 : 0) << name;
  }
}

TEST_F(RoleGroupTest, AZombieIsFencedStopsAndStartsOnlyWhenTheGroupGivesItARoleAgain) {
  auto a = Join("a");
  auto b = Join("b");
  const std::vector<std::string> members = kafka_.GroupMembers("polder-groningen-roles");
  ASSERT_EQ(members.size(), 2u);
  std::vector<std::string> a_held;
  for (const std::string& name : RoleNames()) {
    if (a->group->Holds(name)) a_held.push_back(name);
  }
  ASSERT_FALSE(a_held.empty()) << "the hash put every role on b; change the names";
  // a's session expires (paused): b takes its roles and fences a's writers; a is not told.
  kafka_.PauseMember(members[0]);
  for (const std::string& name : RoleNames()) EXPECT_TRUE(b->roles[name]->running()) << name;
  for (const std::string& name : a_held) {
    EXPECT_TRUE(a->group->Holds(name)) << "a zombie, not told";
    const absl::Status s = a->roles[name]->Write("zombie");
    EXPECT_TRUE(kafka::IsFenced(s)) << name << ": " << s;
    EXPECT_FALSE(a->roles[name]->running());
    EXPECT_FALSE(a->group->Holds(name)) << "fenced: waiting for the group";
  }
  EXPECT_EQ(a->group->fenced_counts()["views"] + a->group->fenced_counts()["sub"] +
                a->group->fenced_counts()["audit-index"],
            static_cast<int64_t>(a_held.size()));
  // Nothing the zombie tried was committed; b's writes were.
  for (const std::string& name : RoleNames()) ASSERT_TRUE(b->roles[name]->Write("b").ok());
  for (const kafka::ConsumedRecord& r : kafka_.Committed(kOut, 0)) EXPECT_EQ(r.value, "b");
  EXPECT_EQ(kafka_.Committed(kOut, 0).size(), RoleNames().size());
  // a wakes: told its roles were lost (stopped in the background), it rejoins; each role runs
  // once again, on whichever replica the new assignment names.
  kafka_.ResumeMember(members[0]);
  a->group.reset();  // joins the retiring threads; the roles it held were stopped as lost
  for (const std::string& name : a_held) EXPECT_GE(a->roles[name]->lost(), 1) << name;
  ExpectEachHeldOnce({b.get()});
}

TEST_F(RoleGroupTest, AStaticReplicaRestartedUnderItsIdTakesItsRolesBack) {
  auto a = Join("a", /*is_static=*/true);
  auto b = Join("b", /*is_static=*/true);
  std::map<std::string, bool> a_held;
  for (const std::string& name : RoleNames()) a_held[name] = a->group->Holds(name);
  a->group->Leave();  // a static member that closes keeps its partitions until it returns
  for (const std::string& name : RoleNames()) {
    if (a_held[name]) {
      EXPECT_FALSE(b->roles[name]->running()) << name << " waits for a";
    }
  }
  auto a2 = Join("a", /*is_static=*/true);
  ExpectEachHeldOnce({a2.get(), b.get()});
  for (const std::string& name : RoleNames()) EXPECT_EQ(a2->group->Holds(name), a_held[name]);
  // Its session expiring instead hands them to b.
  a2->group->Leave();
  kafka_.ExpireStaticMember("polder-groningen-roles", "a");
  ExpectEachHeldOnce({b.get()});
}

}  // namespace
}  // namespace replica
}  // namespace polder
