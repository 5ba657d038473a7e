#include "common/kafka/testing/conformance.h"

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/kafka/errors.h"
#include "common/kafka/testing/fake_kafka.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"

namespace polder {
namespace kafka {
namespace testing {

void KafkaConformanceTest::SetUp() {
  backend_ = GetParam().make();
  ASSERT_NE(backend_, nullptr);
}

void KafkaConformanceTest::TearDown() { backend_.reset(); }

namespace {

using ::polder::testing::IsOk;
using ::testing::ElementsAre;

class FakeBackend : public ConformanceBackend {
 public:
  FakeBackend() : factory_(&kafka_) {}
  ClientFactory& factory() override { return factory_; }
  ClientOptions client() override {
    ClientOptions o;
    o.bootstrap_servers = "fake:9092";
    return o;
  }
  std::string CreateTopic(absl::string_view prefix, int partitions) override {
    std::string name = absl::StrCat(prefix, "-", ++topics_);
    TopicSpec spec;
    spec.name = name;
    spec.partitions = partitions;
    EXPECT_OK(kafka_.CreateTopic(spec));
    return name;
  }

 private:
  FakeKafka kafka_;
  FakeClientFactory factory_;
  int topics_ = 0;
};

ProducerOptions Producing(ConformanceBackend& b, const std::string& transactional_id = "") {
  ProducerOptions o;
  o.client = b.client();
  o.client.request_timeout = absl::Seconds(5);
  o.delivery_timeout = absl::Seconds(20);
  o.transactional_id = transactional_id;
  o.transaction_timeout = absl::Seconds(60);
  return o;
}

ConsumerOptions Consuming(ConformanceBackend& b, bool read_committed) {
  ConsumerOptions o;
  o.client = b.client();
  o.read_committed = read_committed;
  return o;
}

ProducerRecord Record(const std::string& topic, const std::string& value, int32_t partition = 0) {
  ProducerRecord r;
  r.topic = topic;
  r.partition = partition;
  r.key = "k";
  r.value = value;
  return r;
}

std::unique_ptr<TransactionalProducer> Transactional(ConformanceBackend& b, const std::string& id) {
  absl::StatusOr<std::unique_ptr<TransactionalProducer>> p =
      b.factory().NewTransactionalProducer(Producing(b, id));
  EXPECT_OK(p.status());
  if (!p.ok()) return nullptr;
  EXPECT_OK((*p)->InitTransactions(absl::Seconds(30)));
  return std::move(*p);
}

// Reads partition `partition` from `from` until `count` records arrived or `timeout` passed.
std::vector<ConsumedRecord> Read(ConformanceBackend& b, bool read_committed,
                                 const std::string& topic, int32_t partition, size_t count,
                                 absl::Duration timeout = absl::Seconds(15),
                                 int64_t from = kOffsetBeginning) {
  std::vector<ConsumedRecord> out;
  absl::StatusOr<std::unique_ptr<Consumer>> c =
      b.factory().NewConsumer(Consuming(b, read_committed));
  EXPECT_OK(c.status());
  if (!c.ok()) return out;
  EXPECT_OK((*c)->Assign({{topic, partition, from}}));
  const absl::Time deadline = absl::Now() + timeout;
  while (out.size() < count && absl::Now() < deadline) {
    absl::StatusOr<std::vector<ConsumedRecord>> batch = (*c)->Poll(absl::Milliseconds(200), 1000);
    EXPECT_OK(batch.status());
    if (!batch.ok()) break;
    out.insert(out.end(), batch->begin(), batch->end());
  }
  return out;
}

std::vector<int64_t> Offsets(const std::vector<ConsumedRecord>& records) {
  std::vector<int64_t> out;
  for (const ConsumedRecord& r : records) out.push_back(r.offset);
  return out;
}

int64_t High(ConformanceBackend& b, bool read_committed, const std::string& topic,
             int32_t partition = 0) {
  absl::StatusOr<std::unique_ptr<Consumer>> c =
      b.factory().NewConsumer(Consuming(b, read_committed));
  EXPECT_OK(c.status());
  if (!c.ok()) return -100;
  absl::StatusOr<std::pair<int64_t, int64_t>> marks =
      (*c)->QueryWatermarks(topic, partition, absl::Seconds(10));
  EXPECT_OK(marks.status());
  return marks.ok() ? marks->second : -100;
}

}  // namespace

std::unique_ptr<ConformanceBackend> MakeFakeBackend() { return std::make_unique<FakeBackend>(); }

TEST_P(KafkaConformanceTest, KeysLandOnTheJavaClientsPartition) {
  const std::string topic = backend_->CreateTopic("keys", 3);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Producer> p,
                       backend_->factory().NewProducer(Producing(*backend_)));
  std::set<int32_t> used;
  for (int i = 0; i < 20; ++i) {
    ProducerRecord r;
    r.topic = topic;
    r.key = absl::StrCat("gn-counter-", i);
    r.value = "v";
    ASSERT_OK_AND_ASSIGN(RecordMetadata md, SendAndWait(*p, r));
    EXPECT_EQ(md.partition, JavaPartition(*r.key, 3)) << *r.key;
    used.insert(md.partition);
  }
  EXPECT_EQ(used.size(), 3u) << "20 keys spread over all 3 partitions";
}

TEST_P(KafkaConformanceTest, RecordsReadBackWithKeysHeadersTimestampsAndTombstones) {
  const std::string topic = backend_->CreateTopic("round-trip", 1);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Producer> p,
                       backend_->factory().NewProducer(Producing(*backend_)));
  ProducerRecord full = Record(topic, std::string("bytes\0with nul", 14));
  full.headers = {{"ce_id", "id-1"}, {"ce_type", "t"}, {"ce_id", "repeated keys are kept"}};
  full.timestamp_ms = 1700000000123;
  ProducerRecord keyless = Record(topic, "");
  keyless.key.reset();
  ProducerRecord tombstone = Record(topic, "ignored");
  tombstone.tombstone = true;
  for (const ProducerRecord& r : {full, keyless, tombstone}) ASSERT_OK(SendAndWait(*p, r).status());
  std::vector<ConsumedRecord> read = Read(*backend_, true, topic, 0, 3);
  ASSERT_EQ(read.size(), 3u);
  EXPECT_EQ(read[0].key, std::optional<std::string>("k"));
  EXPECT_EQ(read[0].value, full.value);
  EXPECT_EQ(read[0].headers, full.headers);
  EXPECT_EQ(read[0].timestamp_ms, full.timestamp_ms);
  EXPECT_FALSE(read[0].tombstone);
  EXPECT_FALSE(read[1].key.has_value());
  EXPECT_EQ(read[1].value, "");
  EXPECT_FALSE(read[1].tombstone) << "an empty value is not a tombstone";
  EXPECT_TRUE(read[2].tombstone);
  EXPECT_EQ(read[2].value, "");
  EXPECT_THAT(Offsets(read), ElementsAre(0, 1, 2));
}

TEST_P(KafkaFullConformanceTest, CommitMarkersTakeOffsets) {
  const std::string topic = backend_->CreateTopic("markers", 1);
  auto p = Transactional(*backend_, topic + "-txn");
  ASSERT_NE(p, nullptr);
  ASSERT_OK(p->BeginTransaction());
  for (int i = 0; i < 3; ++i)
    p->Send(Record(topic, absl::StrCat("r", i)), [](absl::StatusOr<RecordMetadata>) {});
  ASSERT_OK(p->CommitTransaction(absl::Seconds(30)));
  std::vector<ConsumedRecord> read = Read(*backend_, true, topic, 0, 3);
  EXPECT_THAT(Offsets(read), ElementsAre(0, 1, 2));
  EXPECT_EQ(High(*backend_, false, topic), 4) << "the commit marker took offset 3";
  // The next transaction's records come after the marker.
  ASSERT_OK(p->BeginTransaction());
  p->Send(Record(topic, "r3"), [](absl::StatusOr<RecordMetadata>) {});
  ASSERT_OK(p->CommitTransaction(absl::Seconds(30)));
  read = Read(*backend_, true, topic, 0, 4);
  EXPECT_THAT(Offsets(read), ElementsAre(0, 1, 2, 4));
  EXPECT_EQ(High(*backend_, true, topic), 6);
}

// Enqueue: records with no report of their own, committed (or aborted) with their transaction;
// Flush waits for them too. Outside a transaction a record is refused at once.
TEST_P(KafkaFullConformanceTest, EnqueuedRecordsCommitAndAbortWithTheirTransaction) {
  const std::string topic = backend_->CreateTopic("enqueued", 1);
  auto p = Transactional(*backend_, topic + "-txn");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->Enqueue(Record(topic, "no transaction")).ok());
  ASSERT_OK(p->BeginTransaction());
  ASSERT_OK(p->Enqueue(Record(topic, "aborted")));
  ASSERT_OK(p->Flush(absl::Seconds(20)));
  ASSERT_OK(p->AbortTransaction(absl::Seconds(30)));
  ASSERT_OK(p->BeginTransaction());
  for (int i = 0; i < 3; ++i) ASSERT_OK(p->Enqueue(Record(topic, absl::StrCat("e", i))));
  ASSERT_OK(p->CommitTransaction(absl::Seconds(30)));
  std::vector<ConsumedRecord> read = Read(*backend_, true, topic, 0, 3);
  ASSERT_EQ(read.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(read[i].value, absl::StrCat("e", i));
  EXPECT_THAT(Offsets(read), ElementsAre(2, 3, 4)) << "0 aborted, 1 the abort marker";
}

TEST_P(KafkaFullConformanceTest, AbortedRecordsAreInvisibleToReadCommittedOnly) {
  const std::string topic = backend_->CreateTopic("aborted", 1);
  auto p = Transactional(*backend_, topic + "-txn");
  ASSERT_NE(p, nullptr);
  ASSERT_OK(p->BeginTransaction());
  p->Send(Record(topic, "aborted-0"), [](absl::StatusOr<RecordMetadata>) {});
  p->Send(Record(topic, "aborted-1"), [](absl::StatusOr<RecordMetadata>) {});
  ASSERT_OK(p->Flush(absl::Seconds(20)));
  ASSERT_OK(p->AbortTransaction(absl::Seconds(30)));
  ASSERT_OK(p->BeginTransaction());
  p->Send(Record(topic, "committed"), [](absl::StatusOr<RecordMetadata>) {});
  ASSERT_OK(p->CommitTransaction(absl::Seconds(30)));
  std::vector<ConsumedRecord> committed = Read(*backend_, true, topic, 0, 1);
  ASSERT_EQ(committed.size(), 1u);
  EXPECT_EQ(committed[0].value, "committed");
  EXPECT_EQ(committed[0].offset, 3) << "0, 1 aborted, 2 the abort marker";
  std::vector<ConsumedRecord> all = Read(*backend_, false, topic, 0, 3);
  EXPECT_THAT(Offsets(all), ElementsAre(0, 1, 3));
  EXPECT_EQ(High(*backend_, false, topic), 5);
}

TEST_P(KafkaFullConformanceTest, AnOpenTransactionHoldsTheLastStableOffset) {
  const std::string topic = backend_->CreateTopic("lso", 1);
  auto txn = Transactional(*backend_, topic + "-txn");
  ASSERT_NE(txn, nullptr);
  ASSERT_OK(txn->BeginTransaction());
  ASSERT_OK_AND_ASSIGN(RecordMetadata open, SendAndWait(*txn, Record(topic, "open")));
  EXPECT_EQ(open.offset, 0);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Producer> plain,
                       backend_->factory().NewProducer(Producing(*backend_)));
  ASSERT_OK_AND_ASSIGN(RecordMetadata after, SendAndWait(*plain, Record(topic, "after")));
  EXPECT_EQ(after.offset, 1);
  EXPECT_EQ(High(*backend_, true, topic), 0) << "read_committed: the LSO";
  EXPECT_EQ(High(*backend_, false, topic), 2) << "read_uncommitted: the log end";
  EXPECT_TRUE(Read(*backend_, true, topic, 0, 1, absl::Seconds(1)).empty())
      << "nothing past an open transaction is read_committed-visible, not even the plain record";
  ASSERT_OK(txn->CommitTransaction(absl::Seconds(30)));
  std::vector<ConsumedRecord> read = Read(*backend_, true, topic, 0, 2);
  EXPECT_THAT(Offsets(read), ElementsAre(0, 1));
  EXPECT_EQ(High(*backend_, true, topic), 3);
}

TEST_P(KafkaFullConformanceTest, InitTransactionsFencesThePreviousInstanceAndAbortsItsTransaction) {
  const std::string topic = backend_->CreateTopic("fence", 1);
  auto first = Transactional(*backend_, topic + "-txn");
  ASSERT_NE(first, nullptr);
  ASSERT_OK(first->BeginTransaction());
  ASSERT_OK(SendAndWait(*first, Record(topic, "from the first")).status());
  auto second = Transactional(*backend_, topic + "-txn");
  ASSERT_NE(second, nullptr);
  absl::Status s = first->CommitTransaction(absl::Seconds(30));
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(IsFenced(s) || IsFatal(s)) << s;
  ASSERT_OK(second->BeginTransaction());
  second->Send(Record(topic, "from the second"), [](absl::StatusOr<RecordMetadata>) {});
  ASSERT_OK(second->CommitTransaction(absl::Seconds(30)));
  std::vector<ConsumedRecord> read = Read(*backend_, true, topic, 0, 1);
  ASSERT_EQ(read.size(), 1u);
  EXPECT_EQ(read[0].value, "from the second");
  EXPECT_TRUE(Read(*backend_, true, topic, 0, 2, absl::Seconds(1)).size() == 1u)
      << "the first's record was aborted";
}

TEST_P(KafkaFullConformanceTest, ReadToEndReadsEveryCommittedRecordAndStopsAtTheEnd) {
  const std::string topic = backend_->CreateTopic("to-end", 1);
  auto p = Transactional(*backend_, topic + "-txn");
  ASSERT_NE(p, nullptr);
  for (int t = 0; t < 3; ++t) {
    ASSERT_OK(p->BeginTransaction());
    for (int i = 0; i < 5; ++i)
      p->Send(Record(topic, absl::StrCat(t, "-", i)), [](absl::StatusOr<RecordMetadata>) {});
    if (t == 1) {
      ASSERT_OK(p->Flush(absl::Seconds(20)));
      ASSERT_OK(p->AbortTransaction(absl::Seconds(30)));
    } else {
      ASSERT_OK(p->CommitTransaction(absl::Seconds(30)));
    }
  }
  std::vector<std::string> values;
  absl::StatusOr<int64_t> end = ReadToEnd(backend_->factory(), Consuming(*backend_, true), topic, 0,
                                          0, absl::Seconds(30), [&](const ConsumedRecord& r) {
                                            values.push_back(r.value);
                                            return absl::OkStatus();
                                          });
  ASSERT_OK(end.status());
  EXPECT_EQ(*end, 18) << "15 records and 3 markers";
  ASSERT_EQ(values.size(), 10u);
  EXPECT_EQ(values.front(), "0-0");
  EXPECT_EQ(values.back(), "2-4");
  // From the end: nothing more, at once.
  values.clear();
  ASSERT_OK_AND_ASSIGN(int64_t again,
                       ReadToEnd(backend_->factory(), Consuming(*backend_, true), topic, 0, *end,
                                 absl::Seconds(30), [&](const ConsumedRecord& r) {
                                   values.push_back(r.value);
                                   return absl::OkStatus();
                                 }));
  EXPECT_EQ(again, 18);
  EXPECT_TRUE(values.empty());
}

TEST_P(KafkaFullConformanceTest, OffsetForTimeFindsTheFirstRecordAtOrAfter) {
  const std::string topic = backend_->CreateTopic("times", 1);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Producer> p,
                       backend_->factory().NewProducer(Producing(*backend_)));
  const int64_t t0 = absl::ToUnixMillis(absl::Now()) - 3600 * 1000;
  for (int i = 0; i < 3; ++i) {
    ProducerRecord r = Record(topic, absl::StrCat("t", i));
    r.timestamp_ms = t0 + i * 10000;
    ASSERT_OK(SendAndWait(*p, r).status());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Consumer> c,
                       backend_->factory().NewConsumer(Consuming(*backend_, true)));
  auto at = [&](int64_t ms) -> int64_t {
    absl::StatusOr<int64_t> o =
        c->OffsetForTime(topic, 0, absl::FromUnixMillis(ms), absl::Seconds(10));
    EXPECT_OK(o.status());
    return o.ok() ? *o : -100;
  };
  EXPECT_EQ(at(t0 - 1), 0);
  EXPECT_EQ(at(t0 + 5000), 1);
  EXPECT_EQ(at(t0 + 20000), 2);
  EXPECT_EQ(at(t0 + 60000), 3) << "past the last: the high watermark";
}

TEST_P(KafkaFullConformanceTest, ReadingBelowTheLogStartIsOutOfRange) {
  const std::string topic = backend_->CreateTopic("log-start", 1);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Producer> p,
                       backend_->factory().NewProducer(Producing(*backend_)));
  for (int i = 0; i < 3; ++i)
    ASSERT_OK(SendAndWait(*p, Record(topic, absl::StrCat("r", i))).status());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Admin> admin,
                       backend_->factory().NewAdmin(backend_->client()));
  ASSERT_OK(admin->DeleteRecords(topic, {{0, 2}}, absl::Seconds(10)));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Consumer> c,
                       backend_->factory().NewConsumer(Consuming(*backend_, true)));
  ASSERT_OK_AND_ASSIGN(auto marks, c->QueryWatermarks(topic, 0, absl::Seconds(10)));
  EXPECT_EQ(marks.first, 2);
  ASSERT_OK(c->Assign({{topic, 0, 0}}));
  absl::Status error;
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (error.ok() && absl::Now() < deadline) {
    absl::StatusOr<std::vector<ConsumedRecord>> batch = c->Poll(absl::Milliseconds(200), 100);
    if (!batch.ok())
      error = batch.status();
    else
      EXPECT_TRUE(batch->empty()) << "read " << batch->front().offset << " below the log start";
  }
  EXPECT_EQ(error.code(), absl::StatusCode::kOutOfRange) << error;
  // From the log start it reads.
  EXPECT_THAT(Offsets(Read(*backend_, true, topic, 0, 1)), ElementsAre(2));
}

// Consumer groups as roles (group.h).

namespace {

struct GroupEvent {
  std::string member;
  bool assigned = false;
  bool lost = false;
  std::vector<TopicPartition> partitions;
};

// What every member was told, in one order.
class GroupJournal {
 public:
  void Add(GroupEvent e) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(e));
  }
  std::vector<GroupEvent> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<GroupEvent> events_;
};

class Roles : public GroupListener {
 public:
  Roles(std::string name, GroupJournal* journal) : name_(std::move(name)), journal_(journal) {}
  void Assigned(const std::vector<TopicPartition>& partitions) override {
    absl::MutexLock lock(&mu_);
    held_.insert(partitions.begin(), partitions.end());
    journal_->Add({name_, true, false, partitions});
  }
  void Revoked(const std::vector<TopicPartition>& partitions, bool lost) override {
    absl::MutexLock lock(&mu_);
    for (const auto& tp : partitions) held_.erase(tp);
    journal_->Add({name_, false, lost, partitions});
  }
  std::set<TopicPartition> held() const {
    absl::MutexLock lock(&mu_);
    return held_;
  }

 private:
  const std::string name_;
  GroupJournal* const journal_;
  mutable absl::Mutex mu_;
  std::set<TopicPartition> held_;
};

GroupOptions Grouping(ConformanceBackend& b, const std::string& group, const std::string& topic) {
  GroupOptions o;
  o.client = b.client();
  o.group_id = group;
  o.topics = {topic};
  o.session_timeout = absl::Seconds(6);  // the broker's smallest by default
  o.heartbeat_interval = absl::Seconds(1);
  return o;
}

// Waits up to a minute for `done`.
bool Eventually(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

// Replays the journal: no partition is ever held by two members at once when nothing was lost.
void ExpectOneHolderAtATime(const std::vector<GroupEvent>& events) {
  std::map<TopicPartition, std::string> holder;
  for (const GroupEvent& e : events) {
    for (const TopicPartition& tp : e.partitions) {
      if (e.assigned) {
        EXPECT_EQ(holder.count(tp), 0u) << tp.topic << "[" << tp.partition << "] assigned to "
                                        << e.member << " while " << holder[tp] << " held it";
        holder[tp] = e.member;
      } else {
        EXPECT_EQ(holder[tp], e.member) << "revoked from a member that did not hold it";
        holder.erase(tp);
      }
    }
  }
}

}  // namespace

TEST_P(KafkaGroupConformanceTest, MembersSplitPartitionsAndHandThemOverOneHolderAtATime) {
  const std::string topic = backend_->CreateTopic("roles", 6);
  const std::string group = absl::StrCat("polder-test-", topic);
  GroupJournal journal;
  Roles a_roles("a", &journal), b_roles("b", &journal);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<GroupMember> a,
      backend_->factory().NewGroupMember(Grouping(*backend_, group, topic), &a_roles));
  ASSERT_TRUE(Eventually([&] { return a_roles.held().size() == 6; }));
  EXPECT_TRUE(a->joined());
  EXPECT_FALSE(a->member_id().empty());
  EXPECT_EQ(a->Assignment().size(), 6u);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<GroupMember> b,
      backend_->factory().NewGroupMember(Grouping(*backend_, group, topic), &b_roles));
  ASSERT_TRUE(Eventually([&] { return a_roles.held().size() == 3 && b_roles.held().size() == 3; }))
      << "a holds " << a_roles.held().size() << ", b " << b_roles.held().size();
  std::set<TopicPartition> all = a_roles.held();
  for (const auto& tp : b_roles.held()) EXPECT_TRUE(all.insert(tp).second) << "held twice";
  EXPECT_EQ(all.size(), 6u);
  EXPECT_NE(a->member_id(), b->member_id());
  EXPECT_GE(b->rebalances(), 1);
  // b leaves (a clean close): a takes everything back without waiting for a session timeout.
  b.reset();
  ASSERT_TRUE(Eventually([&] { return a_roles.held().size() == 6; }));
  EXPECT_TRUE(b_roles.held().empty());
  ExpectOneHolderAtATime(journal.events());
  for (const GroupEvent& e : journal.events()) EXPECT_FALSE(e.lost) << e.member << " lost";
}

TEST_P(KafkaGroupConformanceTest, AMemberWithNothingAssignedHasJoined) {
  const std::string topic = backend_->CreateTopic("roles", 1);
  const std::string group = absl::StrCat("polder-test-", topic);
  GroupJournal journal;
  Roles a_roles("a", &journal), b_roles("b", &journal);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<GroupMember> a,
      backend_->factory().NewGroupMember(Grouping(*backend_, group, topic), &a_roles));
  ASSERT_TRUE(Eventually([&] { return a_roles.held().size() == 1; }));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<GroupMember> b,
      backend_->factory().NewGroupMember(Grouping(*backend_, group, topic), &b_roles));
  ASSERT_TRUE(Eventually([&] { return b->joined(); }));
  EXPECT_TRUE(b_roles.held().empty());
  EXPECT_TRUE(b->Assignment().empty());
  EXPECT_EQ(a_roles.held().size(), 1u) << "the partition stays where it was (sticky)";
}

TEST_P(KafkaGroupConformanceTest, AStaticMemberRestartedTakesItsPartitionsBack) {
  const std::string topic = backend_->CreateTopic("roles", 4);
  const std::string group = absl::StrCat("polder-test-", topic);
  GroupJournal journal;
  Roles a_roles("a", &journal), a2_roles("a2", &journal), b_roles("b", &journal);
  GroupOptions a_options = Grouping(*backend_, group, topic);
  a_options.instance_id = "replica-a";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GroupMember> a,
                       backend_->factory().NewGroupMember(a_options, &a_roles));
  ASSERT_TRUE(Eventually([&] { return a_roles.held().size() == 4; }));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<GroupMember> b,
      backend_->factory().NewGroupMember(Grouping(*backend_, group, topic), &b_roles));
  ASSERT_TRUE(Eventually([&] { return a_roles.held().size() == 2 && b_roles.held().size() == 2; }));
  const std::set<TopicPartition> a_held = a_roles.held();
  // a closes (a restart): a static member does not leave, so b does not take its partitions.
  a.reset();
  EXPECT_TRUE(a_roles.held().empty()) << "revoked locally on close";
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(b_roles.held().size(), 2u) << "a's partitions wait for a (within its session)";
  // Back under the same instance id: the same partitions, b's untouched.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GroupMember> a2,
                       backend_->factory().NewGroupMember(a_options, &a2_roles));
  ASSERT_TRUE(Eventually([&] { return a2_roles.held().size() == 2; }));
  EXPECT_EQ(a2_roles.held(), a_held);
  EXPECT_EQ(b_roles.held().size(), 2u);
  ExpectOneHolderAtATime(journal.events());
}

TEST_P(KafkaGroupConformanceTest, BadOptionsAreRefused) {
  GroupJournal journal;
  Roles roles("a", &journal);
  GroupOptions no_topics = Grouping(*backend_, "polder-test-none", "x");
  no_topics.topics.clear();
  EXPECT_EQ(backend_->factory().NewGroupMember(no_topics, &roles).status().code(),
            absl::StatusCode::kInvalidArgument);
  GroupOptions no_group = Grouping(*backend_, "", "x");
  EXPECT_EQ(backend_->factory().NewGroupMember(no_group, &roles).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace testing
}  // namespace kafka
}  // namespace polder
