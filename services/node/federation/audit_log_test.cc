#include "services/node/federation/audit_log.h"

#include <functional>

#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/kafka/rdkafka_producer.h"
#include "common/status/status_matchers.h"
#include "common/testing/kafka_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace node {
namespace {

using ::polder::testing::StatusIs;

class AuditLogTest : public testing::KafkaBrokerTest {
 protected:
  // A log on fresh topics whose writes fail within seconds while the broker is paused.
  absl::StatusOr<std::unique_ptr<AuditLog>> NewLog() {
    kafka::ProducerOptions p;
    p.client = ClientOptions();
    p.client.request_timeout = absl::Seconds(2);
    p.delivery_timeout = absl::Seconds(4);
    kafka::ConsumerOptions c;
    c.client = ClientOptions();
    AuditLog::Options o;
    o.topic = CreateTopic("_polder.audit", 1);
    o.index_topic = CreateTopic("_polder.audit-index", 1, {{"cleanup.policy", "compact"}});
    return AuditLog::Create(kafka_, p, c, o);
  }

  kafka::RdKafkaClientFactory kafka_;
};

audit::AuditEntry Entry(const std::string& stream, int64_t first) {
  audit::AuditEntry e;
  e.transaction_id = stream;
  e.direction = "offered";
  e.source = "groningen";
  e.destination = "amersfoort";
  e.dataset = "mobility.bike-counts";
  e.first_offset = first;
  e.next_offset = first + 10;
  e.records = 10;
  e.at = absl::FromUnixSeconds(1795000000);
  return e;
}

TEST_F(AuditLogTest, RecordsBeforeSendingReadsBackAndRefusesWhenKafkaIsDown) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, NewLog());
  audit::AuditChain a("stream-a"), b("stream-b");
  for (int i = 0; i < 5; ++i) ASSERT_OK(log->Record(a, Entry("stream-a", 10 * i)).status());
  ASSERT_OK(log->Record(b, Entry("stream-b", 0)).status());
  ASSERT_OK_AND_ASSIGN(std::vector<audit::AuditLink> links,
                       log->Read("stream-a", 1, 100, absl::Seconds(10)));
  ASSERT_EQ(links.size(), 5u);
  EXPECT_OK(audit::VerifyChain("stream-a", links));
  ASSERT_OK_AND_ASSIGN(auto tail, log->Read("stream-a", 4, 100, absl::Seconds(10)));
  EXPECT_EQ(tail.size(), 2u);
  // Kafka down: the entry is not recorded, the chain does not advance (nothing may be sent).
  ASSERT_OK(broker().Pause());
  EXPECT_THAT(log->Record(a, Entry("stream-a", 50)), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(a.sequence(), 5u);
  ASSERT_OK(broker().Resume());
}

// Several batches offered at once: their entries are recorded together, in order, continuing the
// chain; the index finds the stream's first entry and its checkpoints as with one at a time; with
// Kafka down none is recorded and the chain stays where it was.
TEST_F(AuditLogTest, EntriesRecordedTogetherContinueTheChainInOrder) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AuditLog> log, NewLog());
  audit::AuditChain a("stream-a");
  ASSERT_OK(log->Record(a, Entry("stream-a", 0)).status());
  // Groups crossing a checkpoint (every kIndexCheckpointEvery entries).
  uint64_t expected = 1;
  for (int group = 0; group < 40; ++group) {
    std::vector<audit::AuditEntry> entries;
    for (int i = 0; i < 4; ++i) entries.push_back(Entry("stream-a", 10 * (4 * group + i + 1)));
    ASSERT_OK_AND_ASSIGN(std::vector<audit::AuditLink> links, log->RecordAll(a, entries));
    ASSERT_EQ(links.size(), entries.size());
    for (size_t i = 0; i < links.size(); ++i) {
      EXPECT_EQ(links[i].sequence, ++expected);
      EXPECT_THAT(links[i].canonical_json, ::testing::HasSubstr(absl::StrCat(
                                               "\"first_offset\":", entries[i].first_offset, ",")));
    }
    EXPECT_EQ(a.sequence(), expected);
    EXPECT_EQ(a.head(), links.back().hash);
  }
  ASSERT_GT(expected, audit::kIndexCheckpointEvery);
  ASSERT_OK_AND_ASSIGN(std::vector<audit::AuditLink> all,
                       log->Read("stream-a", 1, 1000, absl::Seconds(10)));
  ASSERT_EQ(all.size(), expected);
  EXPECT_OK(audit::VerifyChain("stream-a", all));
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_THAT(all[i].canonical_json,
                ::testing::HasSubstr(absl::StrCat("\"first_offset\":", 10 * i, ",")));
  }
  // From past the first checkpoint: found through the index.
  ASSERT_OK_AND_ASSIGN(
      std::vector<audit::AuditLink> tail,
      log->Read("stream-a", audit::kIndexCheckpointEvery + 1, 1000, absl::Seconds(10)));
  ASSERT_FALSE(tail.empty());
  EXPECT_EQ(tail.front().sequence, audit::kIndexCheckpointEvery + 1);
  EXPECT_EQ(tail.back().sequence, expected);
  // Kafka down: nothing of the group is recorded, the chain does not advance.
  ASSERT_OK(broker().Pause());
  EXPECT_THAT(log->RecordAll(a, {Entry("stream-a", 9000), Entry("stream-a", 9010)}),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(a.sequence(), expected);
  ASSERT_OK(broker().Resume());
}

// Waits (bounded) until `done` holds; false if it never did.
bool Eventually(const std::function<bool()>& done, absl::Duration within = absl::Seconds(30)) {
  for (absl::Time until = absl::Now() + within; absl::Now() < until;
       absl::SleepFor(absl::Milliseconds(50))) {
    if (done()) return true;
  }
  return done();
}

// The persisted index (ADR 0011 §8): a restarted log loads it and tails the audit topic only from
// the last mark; an entry whose index record was lost (written, then the node died) is still
// found and its index record repaired; a stream's head comes from its end record, or from its
// last checkpoint and a short read when the stream has none.
TEST_F(AuditLogTest, RestartLoadsThePersistedIndexAndTailsOnlyFromItsLastMark) {
  const std::string topic = CreateTopic("_polder.audit", 1);
  const std::string index = CreateTopic("_polder.audit-index", 1, {{"cleanup.policy", "compact"}});
  kafka::ProducerOptions p;
  p.client = ClientOptions();
  kafka::ConsumerOptions c;
  c.client = ClientOptions();
  AuditLog::Options o;
  o.topic = topic;
  o.index_topic = index;
  o.mark_interval = absl::Milliseconds(200);
  audit::AuditChain a("stream-a"), b("stream-b");
  {
    ASSERT_OK_AND_ASSIGN(auto log, AuditLog::Create(kafka_, p, c, o));
    for (int i = 0; i < 130; ++i) ASSERT_OK(log->Record(a, Entry("stream-a", 10 * i)).status());
    log->EndStream(a);
    ASSERT_OK(log->Record(b, Entry("stream-b", 0)).status());
    ASSERT_TRUE(Eventually([&] {
      AuditLog::IndexStats s = log->index_stats();
      return s.indexed_to >= 131 && s.marks_written >= 1 && s.index_records_written >= 0 &&
             ReadRecords(index, 1, 100, absl::Seconds(3)).size() >= 6;
    })) << "the first log indexes the topic and writes a mark: indexed_to "
        << log->index_stats().indexed_to << ", marks " << log->index_stats().marks_written
        << ", written " << log->index_stats().index_records_written << ", index topic "
        << ReadRecords(index, 1, 100, absl::Seconds(3)).size();
    // Wait for a mark covering every entry.
    ASSERT_TRUE(Eventually([&] {
      for (const auto& r : ReadRecords(index, 1, 100, absl::Seconds(3))) {
        auto rec = audit::DecodeIndexRecord(r.key.value_or(""), r.value);
        if (rec.ok() && rec->kind == audit::IndexRecord::Kind::kThrough && rec->offset >= 131)
          return true;
      }
      return false;
    }));
  }
  // The node dies between an acknowledged entry and its index record: stream-c's entry is in the
  // audit topic, not in the index. And a record in the index that does not decode.
  {
    ASSERT_OK_AND_ASSIGN(auto raw, kafka::IdempotentProducer::Create(p));
    audit::AuditChain chain("stream-c");
    audit::AuditEntry e = Entry("stream-c", 0);
    e.destination = "enschede";
    ASSERT_OK_AND_ASSIGN(audit::AuditLink link, chain.Append(e));
    kafka::ProducerRecord r;
    r.topic = topic;
    r.partition = 0;
    r.key = audit::AuditRecordKey("stream-c", 1);
    r.value = audit::EncodeAuditRecord(link);
    ASSERT_OK(kafka::SendAndWait(*raw, std::move(r)).status());
    kafka::ProducerRecord junk;
    junk.topic = index;
    junk.partition = 0;
    junk.key = "stream/stream-x";
    junk.value = std::string(5000, '[');
    ASSERT_OK(kafka::SendAndWait(*raw, std::move(junk)).status());
  }
  ASSERT_OK_AND_ASSIGN(auto log, AuditLog::Create(kafka_, p, c, o));
  ASSERT_OK_AND_ASSIGN(std::vector<audit::AuditLink> c_links,
                       log->Read("stream-c", 1, 10, absl::Seconds(20), "enschede"));
  ASSERT_EQ(c_links.size(), 1u)
      << "an entry the index lost is found: the log tails from the last mark";
  AuditLog::IndexStats stats = log->index_stats();
  EXPECT_TRUE(stats.loaded);
  EXPECT_GE(stats.loaded_from, 131) << "tailing starts at the last mark, not at offset 0";
  EXPECT_LT(stats.records_tailed, 10) << "the 131 entries below the mark are not read again";
  EXPECT_EQ(stats.unreadable, 1);
  EXPECT_GE(stats.streams, 3);
  // Reads seek to the checkpoint at or before the asked sequence.
  ASSERT_OK_AND_ASSIGN(std::vector<audit::AuditLink> tail,
                       log->Read("stream-a", 100, 1000, absl::Seconds(20)));
  ASSERT_EQ(tail.size(), 31u);
  EXPECT_EQ(tail.front().sequence, 100u);
  EXPECT_EQ(tail.back().hash, a.head());
  EXPECT_THAT(log->Read("stream-a", 1, 10, absl::Seconds(20), "utrecht"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(log->Read("stream-zzz", 1, 10, absl::Seconds(20)),
              StatusIs(absl::StatusCode::kNotFound));
  // Heads: stream-a from its end record, stream-b (no end record) from a short read.
  ASSERT_OK_AND_ASSIGN(AuditLog::StreamHead ha,
                       log->Head("stream-a", absl::Seconds(20), "amersfoort"));
  EXPECT_EQ(ha.sequence, 130u);
  EXPECT_EQ(ha.hash, a.head());
  EXPECT_EQ(ha.direction, "offered");
  ASSERT_OK_AND_ASSIGN(AuditLog::StreamHead hb, log->Head("stream-b", absl::Seconds(20)));
  EXPECT_EQ(hb.sequence, 1u);
  EXPECT_EQ(hb.hash, b.head());
  ASSERT_OK_AND_ASSIGN(AuditLog::StreamHead hc, log->Head("stream-c", absl::Seconds(20)));
  EXPECT_EQ(hc.sequence, 1u);
  EXPECT_THAT(log->Head("stream-a", absl::Seconds(20), "utrecht"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // The lost index record is repaired with the next mark.
  EXPECT_TRUE(Eventually([&] {
    for (const auto& r : ReadRecords(index, 1, 1000, absl::Seconds(3))) {
      if (r.key == "stream/stream-c") return true;
    }
    return false;
  })) << "the index reader writes the stream record the dead writer did not";
}

// Replicas (ADR 0021 §3): every replica tails the audit topic and repairs missing index records,
// but only the holder of the audit-index role writes `through` marks.
TEST_F(AuditLogTest, OnlyTheMarkWriterWritesMarksWhileEveryReplicaRepairsTheIndex) {
  const std::string topic = CreateTopic("_polder.audit", 1);
  const std::string index = CreateTopic("_polder.audit-index", 1, {{"cleanup.policy", "compact"}});
  kafka::ProducerOptions p;
  p.client = ClientOptions();
  kafka::ConsumerOptions c;
  c.client = ClientOptions();
  AuditLog::Options o;
  o.topic = topic;
  o.index_topic = index;
  o.mark_interval = absl::Milliseconds(200);
  ASSERT_OK_AND_ASSIGN(auto writer, AuditLog::Create(kafka_, p, c, o));
  ASSERT_OK_AND_ASSIGN(auto other, AuditLog::Create(kafka_, p, c, o));
  other->SetMarkWriter(false);
  // An entry whose index record nobody wrote (its writer died): both find it by tailing.
  ASSERT_OK_AND_ASSIGN(auto raw, kafka::IdempotentProducer::Create(p));
  audit::AuditChain chain("stream-r");
  ASSERT_OK_AND_ASSIGN(audit::AuditLink link, chain.Append(Entry("stream-r", 0)));
  kafka::ProducerRecord r;
  r.topic = topic;
  r.partition = 0;
  r.key = audit::AuditRecordKey("stream-r", 1);
  r.value = audit::EncodeAuditRecord(link);
  ASSERT_OK(kafka::SendAndWait(*raw, std::move(r)).status());
  ASSERT_TRUE(Eventually([&] {
    return writer->index_stats().marks_written >= 1 &&
           other->index_stats().index_records_written >= 1;
  })) << "writer marks "
      << writer->index_stats().marks_written << ", other's repairs "
      << other->index_stats().index_records_written;
  EXPECT_EQ(other->index_stats().marks_written, 0);
  // Handing the role over: the other replica writes marks from now on.
  writer->SetMarkWriter(false);
  other->SetMarkWriter(true);
  audit::AuditChain more("stream-s");
  ASSERT_OK(other->Record(more, Entry("stream-s", 0)).status());
  ASSERT_TRUE(Eventually([&] { return other->index_stats().marks_written >= 1; }));
  const int64_t writer_marks = writer->index_stats().marks_written;  // none in flight now
  absl::SleepFor(absl::Milliseconds(600));                           // three mark intervals
  EXPECT_EQ(writer->index_stats().marks_written, writer_marks);
}

}  // namespace
}  // namespace node
}  // namespace polder
