// The registry's Kafka store against a real broker: replicas rebuild the same state, only the
// primary writes, hand-over and take-over with fencing, concurrent registrations.
#include "services/registry/kafka_store.h"

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/status/status_matchers.h"
#include "common/testing/kafka_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/registry/errors.h"
#include "services/registry/registry.h"

namespace polder {
namespace registry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Version n of one evolving message: each adds a field, so successive versions are compatible.
std::string Schema(int n) {
  std::string fields;
  for (int k = 1; k <= n; ++k) absl::StrAppend(&fields, " int32 f", k, " = ", k + 2, ";");
  return absl::StrCat("syntax = \"proto3\"; package t; message M { string a = 1; int64 n = 2;",
                      fields, " }");
}

RegisterRequest Req(const std::string& subject, const std::string& schema) {
  RegisterRequest r;
  r.subject = subject;
  r.schema = schema;
  return r;
}

// One registry replica: its Registry and its store. The store's threads use the registry, so
// the store is declared last and destroyed first.
struct Replica {
  std::unique_ptr<Registry> registry;
  std::unique_ptr<KafkaSchemaStore> store;
};

class KafkaStoreTest : public testing::KafkaBrokerTest {
 protected:
  kafka::RdKafkaClientFactory kafka_;  // first: outlives the replicas

  void SetUp() override {
    testing::KafkaBrokerTest::SetUp();
    topic_ = UniqueTopic("_polder.schemas");
    federation_ = UniqueTopic("fed");
  }

  std::unique_ptr<Replica> StartReplica(const std::string& id, const std::string& primary = "a") {
    KafkaSchemaStore::Options o;
    o.client = ClientOptions();
    o.topic = topic_;
    o.replica_id = id;
    o.federation = federation_;
    o.initial_primary = primary;
    o.timeout = absl::Seconds(30);
    auto r = std::make_unique<Replica>();
    auto store = KafkaSchemaStore::Create(o, kafka_);
    EXPECT_TRUE(store.ok()) << store.status();
    r->store = std::move(*store);
    r->registry = std::make_unique<Registry>(r->store.get(), RegistryOptions{});
    r->store->Attach(r->registry.get());
    absl::Status s = r->store->Start();
    EXPECT_TRUE(s.ok()) << s;
    return r;
  }

  // Waits (bounded) until `r` has applied everything committed so far.
  static void CatchUp(Replica& r) { ASSERT_OK(r.store->WaitCaughtUp(absl::Seconds(30))); }

  static bool Eventually(const std::function<bool()>& cond) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if (cond()) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return cond();
  }

  std::string topic_;
  std::string federation_;
};

TEST_F(KafkaStoreTest, ReplicasShareStateAndOnlyThePrimaryWrites) {
  auto a = StartReplica("a");
  auto b = StartReplica("b");
  ASSERT_TRUE(a->store->is_primary());
  ASSERT_FALSE(b->store->is_primary());
  ASSERT_OK_AND_ASSIGN(RegisterResult r1, a->registry->Register(Req("s1", Schema(1))));
  ASSERT_OK_AND_ASSIGN(RegisterResult r2, a->registry->Register(Req("s1", Schema(2))));
  EXPECT_EQ(r1.id, 1);
  EXPECT_EQ(r2.id, 2);
  CatchUp(*b);
  ASSERT_OK_AND_ASSIGN(SchemaView seen,
                       b->registry->GetVersion("s1", 2, false, SchemaFormat::kDefault));
  EXPECT_EQ(seen.id, 2);
  absl::Status refused = b->registry->Register(Req("s1", Schema(3))).status();
  EXPECT_EQ(ConfluentErrorCode(refused), kNotPrimary);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("send writes to 'a'"));
}

TEST_F(KafkaStoreTest, RestartedReplicaRebuildsExactlyTheSameState) {
  auto a = StartReplica("a");
  ASSERT_OK(a->registry->Register(Req("s1", Schema(1))).status());
  ASSERT_OK(a->registry->Register(Req("s1", Schema(2))).status());
  ASSERT_OK(a->registry->Register(Req("s2", Schema(3))).status());
  ASSERT_OK(a->registry->DeleteVersion("s1", 1, false).status());
  ASSERT_OK(a->registry->SetCompatibility("s1", "FULL").status());
  ASSERT_OK(a->registry->SetMode("s2", "READONLY", false).status());
  ASSERT_OK(a->registry->Register(Req("gone", Schema(4))).status());
  ASSERT_OK(a->registry->DeleteSubject("gone", false).status());
  ASSERT_OK(a->registry->DeleteSubject("gone", true).status());
  Export before = a->registry->ExportAll();
  a.reset();

  auto again = StartReplica("a");
  Export after = again->registry->ExportAll();
  ASSERT_EQ(after.versions.size(), before.versions.size());
  for (size_t i = 0; i < before.versions.size(); ++i) {
    EXPECT_EQ(after.versions[i].subject, before.versions[i].subject);
    EXPECT_EQ(after.versions[i].version, before.versions[i].version);
    EXPECT_EQ(after.versions[i].id, before.versions[i].id);
    EXPECT_EQ(after.versions[i].deleted, before.versions[i].deleted);
  }
  EXPECT_EQ(after.subject_compatibility, before.subject_compatibility);
  EXPECT_EQ(*again->registry->GetMode("s2", false), "READONLY");
  EXPECT_EQ(again->registry->next_id(), 5) << "id 4 was used by the hard-deleted subject";
  ASSERT_OK_AND_ASSIGN(RegisterResult next, again->registry->Register(Req("s3", Schema(5))));
  EXPECT_EQ(next.id, 5);
}

TEST_F(KafkaStoreTest, HandOverMovesThePrimaryAndTheSequenceContinues) {
  auto a = StartReplica("a");
  auto b = StartReplica("b");
  ASSERT_OK(a->registry->Register(Req("s", Schema(1))).status());
  ASSERT_OK(a->store->MakePrimary("b"));
  EXPECT_FALSE(a->store->is_primary());
  ASSERT_TRUE(Eventually([&] { return b->store->is_primary(); }))
      << "b takes over when the record names it";
  ASSERT_OK_AND_ASSIGN(RegisterResult r, b->registry->Register(Req("s", Schema(2))));
  EXPECT_EQ(r.id, 2);
  EXPECT_EQ(ConfluentErrorCode(a->registry->Register(Req("s", Schema(3))).status()), kNotPrimary);
  CatchUp(*a);
  EXPECT_EQ(a->store->primary_replica(), "b");
}

TEST_F(KafkaStoreTest, TakeOverFencesTheOldPrimaryWhichStepsDownForGood) {
  auto a = StartReplica("a");
  auto c = StartReplica("c");
  ASSERT_OK(a->registry->Register(Req("s", Schema(1))).status());
  // c takes over without a hand-over (as after a crash of a): a is fenced.
  ASSERT_OK(c->store->MakePrimary("c"));
  ASSERT_TRUE(c->store->is_primary());
  absl::Status fenced = a->registry->Register(Req("s", Schema(2))).status();
  EXPECT_EQ(ConfluentErrorCode(fenced), kNotPrimary) << fenced;
  EXPECT_FALSE(a->store->is_primary());
  ASSERT_OK_AND_ASSIGN(RegisterResult r, c->registry->Register(Req("s", Schema(3))));
  EXPECT_EQ(r.id, 2) << "the refused registration took no id";
  absl::SleepFor(absl::Seconds(1));  // a's role loop runs several times meanwhile
  EXPECT_FALSE(a->store->is_primary()) << "a fenced primary does not take the role back";
  EXPECT_TRUE(c->store->is_primary());
}

TEST_F(KafkaStoreTest, ConcurrentRegistrationsOfOneSchemaGetOneId) {
  auto a = StartReplica("a");
  std::vector<std::thread> threads;
  std::vector<int32_t> ids(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto r = a->registry->Register(Req(absl::StrCat("subject-", t % 3), Schema(42)));
      ids[t] = r.ok() ? r->id : -1;
    });
  }
  for (auto& t : threads) t.join();
  for (int32_t id : ids) EXPECT_EQ(id, 1);
  EXPECT_THAT(a->registry->ListSubjects(false), ElementsAre("subject-0", "subject-1", "subject-2"));
}

}  // namespace
}  // namespace registry
}  // namespace polder
