#include "services/node/federation/mirror_writer.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/audit/audit_index.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/status/status_matchers.h"
#include "common/testing/kafka_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/node/federation/wire_records.h"

namespace polder {
namespace node {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

class MirrorWriterTest : public testing::KafkaBrokerTest {
 protected:
  kafka::RdKafkaClientFactory kafka_;

  void SetUp() override {
    testing::KafkaBrokerTest::SetUp();
    mirror_ = CreateTopic("groningen.mobility.bike-counts", 3);
    cursors_ = CreateTopic("_polder.cursors", 1, {{"cleanup.policy", "compact"}});
    audit_ = CreateTopic("_polder.audit", 1);
    audit_index_ = CreateTopic("_polder.audit-index", 1, {{"cleanup.policy", "compact"}});
    subscription_ = UniqueTopic("amersfoort-from-groningen-bikes");
  }

  MirrorWriter::Options Options() {
    MirrorWriter::Options o;
    o.producer.client = ClientOptions();
    o.producer.client.request_timeout = absl::Seconds(3);
    o.producer.delivery_timeout = absl::Seconds(5);
    o.producer.transaction_timeout = absl::Seconds(10);
    o.consumer.client = ClientOptions();
    o.subscription = subscription_;
    o.mirror_topic = mirror_;
    o.cursors_topic = cursors_;
    o.audit_topic = audit_;
    o.audit_index_topic = audit_index_;
    o.timeout = absl::Seconds(6);
    return o;
  }

  static std::vector<kafka::ConsumedRecord> Records(const std::string& tag, int n,
                                                    int64_t first_offset = 0) {
    std::vector<kafka::ConsumedRecord> out;
    for (int i = 0; i < n; ++i) {
      kafka::ConsumedRecord r;
      r.offset = first_offset + i;
      r.key = absl::StrCat("counter-", i);
      r.value = absl::StrCat(tag, "-", i);
      r.headers = {{"ce_id", absl::StrCat(tag, "-", i)}};
      r.timestamp_ms = 1795000000000 + i;
      out.push_back(r);
    }
    return out;
  }

  static audit::AuditEntry Entry(int32_t partition, int64_t first, int64_t next, int64_t records) {
    audit::AuditEntry e;
    e.direction = "received";
    e.contract_hash = "sha256:abc";
    e.source = "groningen";
    e.destination = "amersfoort";
    e.dataset = "mobility.bike-counts";
    e.partition = partition;
    e.first_offset = first;
    e.next_offset = next;
    e.records = records;
    e.at = absl::FromUnixSeconds(1795000000);
    return e;
  }

  std::vector<audit::AuditLink> AuditLinks(size_t expected) {
    std::vector<audit::AuditLink> links;
    for (const auto& r : ReadRecords(audit_, 1, expected, absl::Seconds(10))) {
      auto link = audit::DecodeAuditRecord(r.value);
      EXPECT_OK(link.status());
      if (link.ok()) links.push_back(*link);
    }
    return links;
  }

  std::string mirror_, cursors_, audit_, audit_index_, subscription_;
};

TEST_F(MirrorWriterTest, WritesRecordsCursorAndAuditTogetherAndResumes) {
  {
    ASSERT_OK_AND_ASSIGN(auto w, MirrorWriter::Start(Options(), kafka_));
    EXPECT_TRUE(w->cursor().next_offsets.empty());
    w->BeginStream("s-1", "epoch-1");
    ASSERT_OK(w->Write(0, Records("a", 5), 5, Entry(0, 0, 5, 5)));
    ASSERT_OK(w->Write(1, Records("b", 6), 7, Entry(1, 0, 7, 6)));
    ASSERT_OK(w->Write(0, Records("c", 5, 5), 12, Entry(0, 5, 12, 5)));
  }
  // A new instance (the restarted subscriber) resumes from the committed cursor and chain head.
  ASSERT_OK_AND_ASSIGN(auto w, MirrorWriter::Start(Options(), kafka_));
  EXPECT_EQ(w->cursor().next_offsets, (std::map<int32_t, int64_t>{{0, 12}, {1, 7}}));
  EXPECT_EQ(w->cursor().epoch, "epoch-1");
  EXPECT_EQ(w->cursor().audit_sequence, 3u);
  w->BeginStream("s-1", "epoch-1");
  ASSERT_OK(w->Write(2, Records("d", 2), 2, Entry(2, 0, 2, 2)));
  EXPECT_EQ(ReadRecords(mirror_, 3, 18, absl::Seconds(10)).size(), 18u);
  std::vector<audit::AuditLink> links = AuditLinks(4);
  ASSERT_EQ(links.size(), 4u);
  EXPECT_OK(audit::VerifyChain("s-1", links));
}

TEST_F(MirrorWriterTest, ASecondInstanceFencesTheFirstAndAFailedTransactionWritesNothing) {
  ASSERT_OK_AND_ASSIGN(auto first, MirrorWriter::Start(Options(), kafka_));
  first->BeginStream("s-2", "epoch-1");
  ASSERT_OK(first->Write(0, Records("a", 3), 3, Entry(0, 0, 3, 3)));
  ASSERT_OK_AND_ASSIGN(auto second, MirrorWriter::Start(Options(), kafka_));
  EXPECT_EQ(second->cursor().next_offsets.at(0), 3);
  EXPECT_THAT(first->Write(0, Records("x", 3, 3), 6, Entry(0, 3, 6, 3)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("fenced")));
  EXPECT_TRUE(first->fenced());
  second->BeginStream("s-2", "epoch-1");
  ASSERT_OK(broker().Pause());
  EXPECT_THAT(second->Write(0, Records("b", 3, 3), 6, Entry(0, 3, 6, 3)),
              StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK(broker().Resume());
  // A failed write ends the stream: nothing more is written until the cursor is recovered.
  EXPECT_TRUE(second->needs_recovery());
  EXPECT_THAT(
      second->Write(0, Records("b", 3, 3), 6, Entry(0, 3, 6, 3)),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("restarts from the committed cursor")));
  absl::Status retry = absl::UnavailableError("not yet");
  for (int i = 0; i < 10 && !retry.ok(); ++i) {
    if (!second->EnsureRecovered().ok()) continue;
    second->BeginStream("s-2", "epoch-1");
    retry = second->Write(0, Records("b", 3, second->cursor().next_offsets.at(0)), 6,
                          Entry(0, 3, 6, 3));
  }
  ASSERT_OK(retry);
  EXPECT_EQ(second->cursor().next_offsets.at(0), 6);
  // A batch below the committed cursor is refused, not written twice.
  EXPECT_THAT(second->Write(0, Records("dup", 3, 3), 6, Entry(0, 3, 6, 3)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("below the committed cursor")));
  auto mirrored = ReadRecords(mirror_, 3, 6, absl::Seconds(10));
  EXPECT_EQ(mirrored.size(), 6u) << "a, then b once; nothing of x or of the failed attempt";
  for (const auto& r : mirrored) EXPECT_NE(r.value[0], 'x');
  std::vector<audit::AuditLink> links = AuditLinks(2);
  ASSERT_EQ(links.size(), 2u);
  EXPECT_OK(audit::VerifyChain("s-2", links));
}

// The audit index of received streams is written in the mirror transactions: a stream's record
// and every 64th link's checkpoint with offsets at or below where the entries landed, and the
// end of a stream with the next stream's first write; an aborted transaction leaves none.
TEST_F(MirrorWriterTest, WritesTheAuditIndexInItsTransactions) {
  ASSERT_OK_AND_ASSIGN(auto w, MirrorWriter::Start(Options(), kafka_));
  w->BeginStream("s-3", "epoch-1");
  std::vector<MirrorBatch> batches;
  for (int i = 0; i < 65; ++i) {
    MirrorBatch b;
    b.batch.set_partition(0);
    for (const kafka::ConsumedRecord& r : Records(absl::StrCat("r", i), 1, i)) {
      ToWireRecord(r, b.batch.add_records());
    }
    b.batch.set_next_offset(i + 1);
    b.entry = Entry(0, i, i + 1, 1);
    batches.push_back(std::move(b));
  }
  ASSERT_OK(w->WriteAll(batches));
  const std::string head_hash = w->cursor().audit_hash;
  w->BeginStream("s-4", "epoch-1");
  ASSERT_OK(w->Write(1, Records("n", 1), 1, Entry(1, 0, 1, 1)));
  // Where the entries landed.
  std::map<std::string, int64_t> landed;
  std::map<uint64_t, std::string> hashes;
  for (const auto& r : ReadRecords(audit_, 1, 66, absl::Seconds(10))) {
    landed[*r.key] = r.offset;
    auto link = audit::DecodeAuditRecord(r.value);
    if (link.ok() && absl::StartsWith(*r.key, "s-3/")) hashes[link->sequence] = link->hash;
  }
  ASSERT_EQ(landed.size(), 66u);
  std::map<std::string, audit::IndexRecord> index;
  for (const auto& r : ReadRecords(audit_index_, 1, 4, absl::Seconds(10))) {
    ASSERT_OK_AND_ASSIGN(audit::IndexRecord rec, audit::DecodeIndexRecord(*r.key, r.value));
    index[*r.key] = rec;
  }
  ASSERT_EQ(index.size(), 4u);
  ASSERT_TRUE(index.count("stream/s-3"));
  EXPECT_EQ(index["stream/s-3"].source, "groningen");
  EXPECT_EQ(index["stream/s-3"].destination, "amersfoort");
  EXPECT_EQ(index["stream/s-3"].direction, "received");
  EXPECT_LE(index["stream/s-3"].offset, landed["s-3/1"]);
  ASSERT_TRUE(index.count("checkpoint/s-3/64"));
  EXPECT_LE(index["checkpoint/s-3/64"].offset, landed["s-3/64"]);
  EXPECT_EQ(index["checkpoint/s-3/64"].hash, hashes[64]);
  ASSERT_TRUE(index.count("end/s-3"));
  EXPECT_EQ(index["end/s-3"].sequence, 65u);
  EXPECT_EQ(index["end/s-3"].hash, head_hash);
  ASSERT_TRUE(index.count("stream/s-4"));
  EXPECT_LE(index["stream/s-4"].offset, landed["s-4/1"]);
  EXPECT_GT(index["stream/s-4"].offset, landed["s-3/1"])
      << "a lower bound, but past what this writer committed";
  // A failed transaction writes no index record either.
  w->BeginStream("s-5", "epoch-1");
  ASSERT_OK(broker().Pause());
  EXPECT_THAT(w->Write(2, Records("x", 1), 1, Entry(2, 0, 1, 1)),
              StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK(broker().Resume());
  // The failed writer goes first, as its owner replaces it: while alive, its producer may still
  // finish an abort after the broker came back and fence a newer instance that raced it.
  w.reset();
  // Right after the broker resumes, its partitions may still be unknown to a new client for a
  // moment (UNKNOWN_PARTITION): the owner starts a writer again with backoff, and so does this.
  absl::StatusOr<std::unique_ptr<MirrorWriter>> started = MirrorWriter::Start(Options(), kafka_);
  for (absl::Time until = absl::Now() + absl::Seconds(30);
       !started.ok() && absl::Now() < until &&
       (absl::IsNotFound(started.status()) || absl::IsUnavailable(started.status()));) {
    absl::SleepFor(absl::Milliseconds(500));
    started = MirrorWriter::Start(Options(), kafka_);
  }
  ASSERT_OK(started.status());
  std::unique_ptr<MirrorWriter> after = *std::move(started);
  after->BeginStream("s-6", "epoch-1");
  ASSERT_OK(after->Write(2, Records("y", 1), 1, Entry(2, 0, 1, 1)));
  std::set<std::string> keys;
  for (const auto& r : ReadRecords(audit_index_, 1, 7, absl::Seconds(5))) keys.insert(*r.key);
  EXPECT_FALSE(keys.count("stream/s-5")) << "the aborted transaction's index record is not read";
  EXPECT_TRUE(keys.count("stream/s-6"));
  EXPECT_TRUE(keys.count("end/s-4")) << "the committed stream before it ended";
}

}  // namespace
}  // namespace node
}  // namespace polder
