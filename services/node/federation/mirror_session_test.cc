// The subscriber's mirror session without gRPC or a broker: a ProviderStream in the same
// process serves it (federation_testing.h), both sides on fake Kafkas (held to a real broker by
// the conformance suite). The faults the kill tests produce by chance are made here on command:
// a crash between producing a group and committing it, a commit whose outcome is unknown, a
// fenced writer, and a provider that breaks the protocol. Every case counts the mirror.
#include "services/node/federation/mirror_session.h"

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/kafka/errors.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/node/federation/federation_testing.h"

namespace polder {
namespace node {
namespace {

namespace fv1 = ::polder::federation::v1;
using ::polder::kafka::testing::CommitFault;
using ::polder::testing::StatusIs;
using testing::FederationWorld;
using ::testing::HasSubstr;
using testing::InProcessProvider;
using testing::kPartitions;

constexpr char kTxnId[] = "polder-mirror-amersfoort-groningen-mobility.bike-counts";

class MirrorSessionTest : public ::testing::Test {
 protected:
  MirrorSessionTest()
      : world_(absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                            ::testing::UnitTest::GetInstance()->current_test_info()->name())) {}

  std::unique_ptr<MirrorWriter> NewWriter() {
    absl::StatusOr<std::unique_ptr<MirrorWriter>> w =
        MirrorWriter::Start(world_.WriterOptions(), world_.consumer_clients);
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? *std::move(w) : nullptr;
  }

  // Streams until the mirror holds `records` records (or 60 s passed), then stops the session.
  // Also waits for `also` if given.
  absl::Status StreamUntil(MirrorSession& session, MirrorWriter& writer, size_t records,
                           InProcessProvider* provider = nullptr,
                           std::function<bool()> also = nullptr) {
    InProcessProvider own(&world_);
    InProcessProvider& p = provider != nullptr ? *provider : own;
    std::atomic<bool> done{false};
    std::thread watcher([&] {
      const absl::Time until = absl::Now() + absl::Seconds(60);
      while (!done && absl::Now() < until &&
             (Count(world_.MirrorValues()) < records || (also && !also()))) {
        absl::SleepFor(absl::Milliseconds(10));
      }
      stop_ = true;
      p.CancelStream();
    });
    absl::Status end = session.StreamOnce(writer, p);
    done = true;
    watcher.join();
    stop_ = false;
    return end;
  }

  static size_t Count(const std::map<int32_t, std::vector<std::string>>& values) {
    size_t n = 0;
    for (const auto& [p, v] : values) n += v.size();
    return n;
  }

  FederationWorld world_;
  SubscriptionState state_;
  std::atomic<bool> stop_{false};
};

TEST_F(MirrorSessionTest, MirrorsEveryRecordOnceWithReceiptsAndAuditEntries) {
  world_.Publish(40);
  std::unique_ptr<MirrorWriter> writer = NewWriter();
  MirrorSession session(world_.SessionOptions(), &state_, &stop_);
  InProcessProvider provider(&world_);
  absl::Status end =
      StreamUntil(session, *writer, 40, &provider, [&] { return state_.snapshot().receipts > 0; });
  EXPECT_THAT(end, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(world_.MirrorValues(), world_.SourceValues());
  SubscriptionCounters c = state_.snapshot();
  EXPECT_EQ(c.status, SubscriptionStatus::kStreaming);
  EXPECT_EQ(c.records, 40);
  EXPECT_GT(c.batches, 0);
  // The committed cursor is past each partition's last record and not past its end (the commit
  // marker after it takes an offset too); the received chain has one entry per batch, and the
  // provider receipted it.
  for (int32_t p = 0; p < kPartitions; ++p) {
    const std::vector<kafka::ConsumedRecord> source =
        world_.provider_kafka.Committed(testing::kSourceTopic, p);
    ASSERT_FALSE(source.empty());
    EXPECT_GE(writer->cursor().next_offsets.at(p), source.back().offset + 1);
    EXPECT_LE(writer->cursor().next_offsets.at(p),
              world_.provider_kafka.LastStableOffset(testing::kSourceTopic, p));
  }
  EXPECT_GT(provider.exchanges(), 0);
  EXPECT_GT(c.receipts, 0);
  ASSERT_OK_AND_ASSIGN(
      std::vector<audit::AuditLink> received,
      world_.consumer_audit->Read(writer->cursor().stream_id, 1, 100, absl::Seconds(5)));
  EXPECT_EQ(static_cast<int64_t>(received.size()), c.batches);
  for (const audit::AuditLink& l : received) {
    ASSERT_OK_AND_ASSIGN(audit::AuditEntry e, audit::ParseEntry(l.canonical_json));
    EXPECT_EQ(e.direction, "received");
    EXPECT_EQ(e.source, testing::kProvider);
    EXPECT_EQ(e.destination, testing::kConsumer);
    EXPECT_EQ(e.purpose, "");  // no contract lookup configured: the options' (empty) purpose
  }
}

// A stream's first entry names the stream it resumes — the last one that committed a batch,
// not one that opened and committed nothing — and the cursor asked for (ADR 0021 §4).
TEST_F(MirrorSessionTest, AStreamNamesTheStreamItResumesAndItsCursor) {
  world_.Publish(20);
  std::unique_ptr<MirrorWriter> writer = NewWriter();
  MirrorSession session(world_.SessionOptions(), &state_, &stop_);
  EXPECT_THAT(StreamUntil(session, *writer, 20), StatusIs(absl::StatusCode::kCancelled));
  const std::string first = writer->cursor().stream_id;
  const std::map<int32_t, int64_t> cursor = writer->cursor().next_offsets;
  // A stream that opens and ends without a batch (nothing new to send).
  {
    InProcessProvider empty(&world_);
    std::thread stopper([&] {
      absl::SleepFor(absl::Milliseconds(300));
      stop_ = true;
      empty.CancelStream();
    });
    (void)session.StreamOnce(*writer, empty);
    stopper.join();
    stop_ = false;
  }
  EXPECT_NE(writer->cursor().stream_id, first) << "the empty stream began";
  EXPECT_EQ(writer->resumable_stream(), first);
  world_.Publish(5, "later");
  EXPECT_THAT(StreamUntil(session, *writer, 25), StatusIs(absl::StatusCode::kCancelled));
  const std::string third = writer->cursor().stream_id;
  ASSERT_NE(third, first);
  ASSERT_OK_AND_ASSIGN(std::vector<audit::AuditLink> links,
                       world_.consumer_audit->Read(third, 1, 1, absl::Seconds(5)));
  ASSERT_EQ(links.size(), 1u);
  ASSERT_OK_AND_ASSIGN(audit::AuditEntry e, audit::ParseEntry(links[0].canonical_json));
  EXPECT_EQ(e.resumes, first);
  EXPECT_EQ(e.cursor, cursor);
}

TEST_F(MirrorSessionTest, ACrashBeforeCommitLosesAndDuplicatesNothing) {
  world_.Publish(30);
  {
    std::unique_ptr<MirrorWriter> writer = NewWriter();
    MirrorSession session(world_.SessionOptions(), &state_, &stop_);
    // The writer's first group reaches the broker; the process dies before it commits.
    world_.consumer_kafka.FailCommit(CommitFault::kCrashBeforeCommit, kTxnId);
    EXPECT_THAT(StreamUntil(session, *writer, 30), StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_TRUE(Count(world_.MirrorValues()) == 0);
    EXPECT_EQ(world_.consumer_kafka.OpenTransactions(), 1);  // held open, as a dead process's
  }
  // A new instance: its writer aborts what the dead one left open and resumes from the cursor.
  std::unique_ptr<MirrorWriter> writer = NewWriter();
  MirrorSession session(world_.SessionOptions(), &state_, &stop_);
  world_.Publish(10, "after");
  EXPECT_THAT(StreamUntil(session, *writer, 40), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(world_.MirrorValues(), world_.SourceValues());
  EXPECT_EQ(world_.consumer_kafka.OpenTransactions(), 0);
}

TEST_F(MirrorSessionTest, ACommitOfUnknownOutcomeIsResolvedBeforeTheNextStream) {
  world_.Publish(30);
  std::unique_ptr<MirrorWriter> writer = NewWriter();
  MirrorSession session(world_.SessionOptions(), &state_, &stop_);
  // The group commits, but the writer hears a timeout: the stream must end.
  world_.consumer_kafka.FailCommit(
      CommitFault::kFailAfterCommit, kTxnId,
      kafka::MakeKafkaError(absl::StatusCode::kUnavailable, "_TIMED_OUT", "commit",
                            "injected: the outcome is unknown", {}));
  EXPECT_THAT(StreamUntil(session, *writer, 30), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(writer->needs_recovery());
  // The next stream starts from what was actually committed: nothing twice.
  EXPECT_THAT(StreamUntil(session, *writer, 30), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(world_.MirrorValues(), world_.SourceValues());
}

TEST_F(MirrorSessionTest, AFencedWriterEndsTheSessionForGood) {
  world_.Publish(5);
  std::unique_ptr<MirrorWriter> writer = NewWriter();
  MirrorSession session(world_.SessionOptions(), &state_, &stop_);
  world_.consumer_kafka.Fence(kTxnId);
  EXPECT_THAT(StreamUntil(session, *writer, 5),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("fenced")));
  EXPECT_TRUE(writer->fenced());
  EXPECT_EQ(Count(world_.MirrorValues()), 0u);
}

TEST_F(MirrorSessionTest, RefusesASourceWithAnotherPartitionCount) {
  world_.Publish(5);
  std::unique_ptr<MirrorWriter> writer = NewWriter();
  MirrorSession::Options o = world_.SessionOptions();
  o.mirror_partitions = 2;
  MirrorSession session(o, &state_, &stop_);
  EXPECT_THAT(StreamUntil(session, *writer, 5),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "the source has 3 partitions, the mirror 2: refusing to mirror"));
  EXPECT_EQ(Count(world_.MirrorValues()), 0u);
}

TEST_F(MirrorSessionTest, ABatchOfAPartitionTheMirrorDoesNotHaveEndsTheStream) {
  std::unique_ptr<MirrorWriter> writer = NewWriter();
  MirrorSession session(world_.SessionOptions(), &state_, &stop_);
  InProcessProvider provider(&world_);
  fv1::SubscribeResponse bad;
  bad.mutable_batch()->set_partition(9);
  bad.mutable_batch()->set_next_offset(1);
  provider.Inject(bad);
  EXPECT_THAT(StreamUntil(session, *writer, 1, &provider),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("a batch of partition 9; the mirror has 3 partitions")));
}

TEST_F(MirrorSessionTest, AProviderThatIgnoresFlowControlEndsItsStream) {
  std::unique_ptr<MirrorWriter> writer = NewWriter();
  MirrorSession::Options o = world_.SessionOptions();
  o.max_unacknowledged_bytes = 1024;
  o.signer = nullptr;  // no receipts: nothing is ever acknowledged
  MirrorSession session(o, &state_, &stop_);
  InProcessProvider provider(&world_);
  // 2 windows + 8 MiB of slack, then more: in batches of 1 MiB.
  for (int i = 0; i < 12; ++i) {
    fv1::SubscribeResponse m;
    m.mutable_batch()->set_partition(0);
    fv1::Record* r = m.mutable_batch()->add_records();
    r->set_value(std::string(1 << 20, 'x'));
    r->set_source_offset(i);
    m.mutable_batch()->set_next_offset(i + 1);
    provider.Inject(m);
  }
  EXPECT_THAT(StreamUntil(session, *writer, 100, &provider),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("the provider ignored flow control")));
}

TEST_F(MirrorSessionTest, AGapIsRecordedOnceAndNotarisedBeforeTheNextStream) {
  MirrorSession session(world_.SessionOptions(), &state_, &stop_);
  const absl::Status gap =
      absl::OutOfRangeError("partition 0 of groningen.mobility.bike-counts holds offsets 5 to 9");
  session.RecordGap(gap);
  session.RecordGap(gap);  // reported again on retry: the same gap
  EXPECT_EQ(state_.snapshot().gaps, 1);
  // The next stream first has the provider countersign the gap entry.
  world_.Publish(3);
  std::unique_ptr<MirrorWriter> writer = NewWriter();
  InProcessProvider provider(&world_);
  EXPECT_THAT(StreamUntil(session, *writer, 3, &provider), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_GE(provider.exchanges(), 1);
  EXPECT_GE(state_.snapshot().receipts, 1);
  session.RecordGap(absl::OutOfRangeError("another gap"));
  EXPECT_EQ(state_.snapshot().gaps, 2);
}

TEST(SubscriptionStatusTest, NamesAsShownOnStatusz) {
  EXPECT_EQ(SubscriptionStatusName(SubscriptionStatus::kStarting), "starting");
  EXPECT_EQ(SubscriptionStatusName(SubscriptionStatus::kStreaming), "streaming");
  EXPECT_EQ(SubscriptionStatusName(SubscriptionStatus::kReconnecting), "reconnecting");
  EXPECT_EQ(SubscriptionStatusName(SubscriptionStatus::kRefused), "refused");
  EXPECT_EQ(SubscriptionStatusName(SubscriptionStatus::kNoCredentials), "no-credentials");
  EXPECT_EQ(SubscriptionStatusName(SubscriptionStatus::kFenced), "fenced");
  EXPECT_EQ(SubscriptionStatusName(SubscriptionStatus::kStopped), "stopped");
}

TEST(CancelSlotTest, CancelsTheArmedCallAndRefusesLaterOnes) {
  CancelSlot slot;
  int cancelled = 0;
  ASSERT_TRUE(slot.Arm([&] { ++cancelled; }));
  slot.Cancel();
  EXPECT_EQ(cancelled, 1);
  EXPECT_FALSE(slot.Arm([&] { ++cancelled; }));
  EXPECT_EQ(cancelled, 1);
}

}  // namespace
}  // namespace node
}  // namespace polder
