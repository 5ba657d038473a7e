// The provider's stream without gRPC or a broker (the fake Kafka, held to a real broker by the
// conformance suite): where a stream starts, what it sends and records, flow control on
// acknowledgements, and each way it ends.
#include "services/node/federation/provider_stream.h"

#include <deque>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/node/federation/federation_testing.h"

namespace polder {
namespace node {
namespace {

namespace fv1 = ::polder::federation::v1;
using ::polder::testing::StatusIs;
using testing::FederationWorld;
using ::testing::HasSubstr;
using testing::kPartitions;

// Records what the stream sends; can stop accepting (the subscriber went away), and lets a
// test wait for a number of batches.
class RecordingTransport : public ProviderStream::Transport {
 public:
  bool Send(const fv1::SubscribeResponse& message) override {
    absl::MutexLock lock(&mu_);
    if (gone_) return false;
    sent_.push_back(message);
    return true;
  }
  bool Cancelled() override {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }
  absl::Status RecheckPeer() override {
    absl::MutexLock lock(&mu_);
    return peer_;
  }
  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  void GoAway() {
    absl::MutexLock lock(&mu_);
    gone_ = true;
  }
  void RevokePeer(absl::Status s) {
    absl::MutexLock lock(&mu_);
    peer_ = std::move(s);
  }
  // Waits until `n` batches were sent (or 60 s passed); returns how many were.
  int WaitForBatches(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return Batches() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
    return Batches();
  }
  // Waits until `n` records were sent (or 60 s passed); returns how many were.
  int WaitForRecords(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return Records() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
    return Records();
  }
  bool WaitForHeartbeat() {
    absl::MutexLock lock(&mu_);
    auto any = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& m : sent_)
        if (m.has_heartbeat()) return true;
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&any), absl::Seconds(60));
  }
  std::vector<fv1::SubscribeResponse> sent() {
    absl::MutexLock lock(&mu_);
    return sent_;
  }
  std::vector<fv1::RecordBatch> batches() {
    std::vector<fv1::RecordBatch> out;
    for (const auto& m : sent())
      if (m.has_batch()) out.push_back(m.batch());
    return out;
  }

 private:
  int Records() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int n = 0;
    for (const auto& m : sent_) n += m.has_batch() ? m.batch().records_size() : 0;
    return n;
  }
  int Batches() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int n = 0;
    for (const auto& m : sent_) n += m.has_batch();
    return n;
  }
  absl::Mutex mu_;
  std::vector<fv1::SubscribeResponse> sent_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool gone_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status peer_ ABSL_GUARDED_BY(mu_);
};

class ProviderStreamTest : public ::testing::Test {
 protected:
  ProviderStreamTest()
      : world_(absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                            ::testing::UnitTest::GetInstance()->current_test_info()->name())) {}

  // Runs `stream` on a thread until the transport is cancelled; returns its end status.
  absl::Status RunUntilCancelled(ProviderStream& stream, RecordingTransport& transport,
                                 const std::function<void()>& while_running) {
    absl::Status end;
    std::thread t([&] { end = stream.Run(transport); });
    while_running();
    transport.Cancel();
    t.join();
    return end;
  }

  FederationWorld world_;
};

TEST_F(ProviderStreamTest, SendsEveryCommittedRecordOnceInBatchesRecordedBeforeSending) {
  std::vector<std::string> values = world_.Publish(25);
  ASSERT_OK_AND_ASSIGN(auto stream, world_.OpenStream(world_.Request()));
  RecordingTransport transport;
  absl::Status end =
      RunUntilCancelled(*stream, transport, [&] { EXPECT_EQ(transport.WaitForRecords(25), 25); });
  EXPECT_THAT(end, StatusIs(absl::StatusCode::kCancelled));
  std::vector<fv1::SubscribeResponse> sent = transport.sent();
  ASSERT_FALSE(sent.empty());
  ASSERT_TRUE(sent[0].has_opened());
  EXPECT_EQ(sent[0].opened().stream_id(), stream->id());
  EXPECT_EQ(sent[0].opened().partitions(), kPartitions);
  EXPECT_EQ(sent[0].opened().epoch(), "epoch-1");
  EXPECT_EQ(sent[0].opened().max_batch_records(), 10);
  // Every record once, per partition in source order, within the batch limit; each batch
  // carries the audit link recorded for it, sequence 1, 2, ...
  std::map<int32_t, std::vector<std::string>> got;
  uint64_t sequence = 0;
  for (const fv1::RecordBatch& b : transport.batches()) {
    EXPECT_LE(b.records_size(), 10);
    EXPECT_EQ(b.provider_audit().sequence(), ++sequence);
    EXPECT_THAT(b.schema_ids(), ::testing::ElementsAre(testing::kSchemaId));
    for (const fv1::Record& r : b.records()) got[b.partition()].push_back(r.value());
  }
  EXPECT_EQ(got, world_.SourceValues());
  ASSERT_OK_AND_ASSIGN(
      std::vector<audit::AuditLink> links,
      world_.provider_audit->Read(stream->id(), 1, 100, absl::Seconds(5), testing::kConsumer));
  ASSERT_EQ(links.size(), sequence);
  EXPECT_EQ(links.back().hash, stream->head().hash);
  EXPECT_FALSE(stream->open());
}

TEST_F(ProviderStreamTest, FullWindowWaitsForAnAcknowledgementBeforeSendingMore) {
  world_.Publish(60);
  fv1::SubscribeRequest request = world_.Request();
  request.set_max_batch_records(10);
  // A window of one batch: a second batch waits for the first to be acknowledged.
  request.set_max_unacknowledged_bytes(1);
  ASSERT_OK_AND_ASSIGN(auto stream, world_.OpenStream(request));
  EXPECT_EQ(stream->window(), 1);
  RecordingTransport transport;
  absl::Status end = RunUntilCancelled(*stream, transport, [&] {
    ASSERT_EQ(transport.WaitForBatches(1), 1);
    // Heartbeats go on while the window is full; no second batch is sent.
    ASSERT_TRUE(transport.WaitForHeartbeat());
    EXPECT_EQ(transport.batches().size(), 1u);
    EXPECT_GT(stream->unacknowledged_bytes(), 0);
    const fv1::RecordBatch first = transport.batches()[0];
    stream->Acknowledge({{first.partition(), first.next_offset()}});
    EXPECT_EQ(stream->unacknowledged_bytes(), 0);
    EXPECT_EQ(transport.WaitForBatches(2), 2);
  });
  EXPECT_THAT(end, StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(ProviderStreamTest, StartsFromTheCursorAndRefusesOneOfAnotherEpochOrPartitionCount) {
  world_.Publish(30);
  std::map<int32_t, std::vector<std::string>> source = world_.SourceValues();
  fv1::SubscribeRequest request = world_.Request();
  request.mutable_cursor()->set_epoch("epoch-1");
  for (int32_t p = 0; p < kPartitions; ++p)
    (*request.mutable_cursor()->mutable_next_offsets())[p] = 2;
  ASSERT_OK_AND_ASSIGN(auto stream, world_.OpenStream(request));
  RecordingTransport transport;
  EXPECT_THAT(RunUntilCancelled(*stream, transport, [&] { transport.WaitForBatches(kPartitions); }),
              StatusIs(absl::StatusCode::kCancelled));
  for (const fv1::RecordBatch& b : transport.batches()) {
    ASSERT_GT(b.records_size(), 0);
    EXPECT_EQ(b.records(0).source_offset(), 2) << "partition " << b.partition();
    EXPECT_EQ(b.records(0).value(), source[b.partition()][2]);
  }

  request.mutable_cursor()->set_epoch("epoch-0");
  EXPECT_THAT(world_.OpenStream(request),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("is now epoch epoch-1")));
  request.mutable_cursor()->set_epoch("epoch-1");
  (*request.mutable_cursor()->mutable_next_offsets())[7] = 0;
  EXPECT_THAT(world_.OpenStream(request),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("names partition 7")));
  request.mutable_cursor()->mutable_next_offsets()->erase(7);
  request.mutable_cursor()->mutable_next_offsets()->erase(2);
  EXPECT_THAT(world_.OpenStream(request),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("names 2 partitions")));
  (*request.mutable_cursor()->mutable_next_offsets())[2] = 1000;
  EXPECT_THAT(world_.OpenStream(request),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("re-created or truncated")));
}

TEST_F(ProviderStreamTest, ACursorBeforeTheContractsStartIsRefusedNotClamped) {
  world_.Publish(9);
  // A contract that starts now: everything published so far is before it.
  world_.WriteContract(
      "from-now",
      absl::FormatTime(absl::RFC3339_sec, absl::Now() + absl::Seconds(1), absl::UTCTimeZone()));
  fv1::SubscribeRequest request = world_.Request();
  request.set_contract_id("from-now");
  request.mutable_cursor()->set_epoch("epoch-1");
  for (int32_t p = 0; p < kPartitions; ++p)
    (*request.mutable_cursor()->mutable_next_offsets())[p] = 0;
  EXPECT_THAT(world_.OpenStream(request),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("reaches before the start of contract from-now")));
  // Without a cursor the stream starts at the contract's start: nothing old is sent.
  request.clear_cursor();
  ASSERT_OK_AND_ASSIGN(auto stream, world_.OpenStream(request));
  RecordingTransport transport;
  EXPECT_THAT(
      RunUntilCancelled(*stream, transport, [&] { ASSERT_TRUE(transport.WaitForHeartbeat()); }),
      StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(transport.batches().empty());
  request.set_start_position("yesterday");
  EXPECT_THAT(world_.OpenStream(request),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'yesterday' is not earliest, latest or an RFC 3339 time")));
}

TEST_F(ProviderStreamTest, EndsWithPermissionDeniedWhenThePeerOrTheContractNoLongerHolds) {
  world_.Publish(3);
  ASSERT_OK_AND_ASSIGN(auto stream, world_.OpenStream(world_.Request()));
  RecordingTransport transport;
  transport.RevokePeer(absl::PermissionDeniedError("certificate serial 0a is revoked"));
  EXPECT_THAT(stream->Run(transport), StatusIs(absl::StatusCode::kPermissionDenied,
                                               "stream ended: certificate serial 0a is revoked"));

  ASSERT_OK_AND_ASSIGN(auto second, world_.OpenStream(world_.Request(), "stream-2"));
  RecordingTransport ok_peer;
  std::thread revoke([&] {
    ok_peer.WaitForBatches(1);
    std::filesystem::remove(
        absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                     ::testing::UnitTest::GetInstance()->current_test_info()->name(), "/contracts/",
                     testing::kContractId, ".json"));
  });
  absl::Status end = second->Run(ok_peer);
  revoke.join();
  EXPECT_THAT(end, StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("stream ended: ")));
}

TEST_F(ProviderStreamTest, ARecordThatIsNotPolderOrOfAnotherSchemaVersionStopsTheStream) {
  world_.PublishGarbage(1);
  ASSERT_OK_AND_ASSIGN(auto stream, world_.OpenStream(world_.Request()));
  RecordingTransport transport;
  EXPECT_THAT(stream->Run(transport),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("partition 1 offset 0: not a Polder record")));
  EXPECT_TRUE(transport.batches().empty());  // nothing past the bad record was sent

  // A contract that allows schema version 2 only: version 1 records are not served.
  world_.WriteContract("v2-only", "earliest", {2});
  FederationWorld& w = world_;
  w.Publish(2);
  fv1::SubscribeRequest request = w.Request();
  request.set_contract_id("v2-only");
  request.mutable_cursor()->set_epoch("epoch-1");
  for (int32_t p = 0; p < kPartitions; ++p) {
    (*request.mutable_cursor()->mutable_next_offsets())[p] = p == 1 ? 1 : 0;
  }
  ASSERT_OK_AND_ASSIGN(auto v2, w.OpenStream(request, "stream-v2"));
  RecordingTransport second;
  EXPECT_THAT(v2->Run(second), StatusIs(absl::StatusCode::kFailedPrecondition,
                                        HasSubstr("schema version 1 of mobility.bike-counts is "
                                                  "not allowed by contract v2-only")));
}

TEST_F(ProviderStreamTest, ASubscriberThatGoesAwayEndsTheStreamAsCancelled) {
  world_.Publish(5);
  ASSERT_OK_AND_ASSIGN(auto stream, world_.OpenStream(world_.Request()));
  RecordingTransport transport;
  transport.GoAway();
  EXPECT_THAT(stream->Run(transport),
              StatusIs(absl::StatusCode::kCancelled, "the subscriber went away"));
  EXPECT_FALSE(stream->open());
  EXPECT_EQ(stream->unacknowledged_bytes(), 0);
}

TEST_F(ProviderStreamTest, ReceiptsAdvanceOnlyForward) {
  ASSERT_OK_AND_ASSIGN(auto stream, world_.OpenStream(world_.Request()));
  EXPECT_TRUE(stream->ReceiptAdvances(0));
  stream->ReceiptKept(3);
  EXPECT_FALSE(stream->ReceiptAdvances(3));
  EXPECT_FALSE(stream->ReceiptAdvances(2));
  EXPECT_TRUE(stream->ReceiptAdvances(4));
}

TEST_F(ProviderStreamTest, HeartbeatsCarryTheHighWatermarksWhileIdle) {
  world_.Publish(6);
  fv1::SubscribeRequest request = world_.Request();
  request.set_start_position("latest");
  ASSERT_OK_AND_ASSIGN(auto stream, world_.OpenStream(request));
  RecordingTransport transport;
  EXPECT_THAT(
      RunUntilCancelled(*stream, transport, [&] { ASSERT_TRUE(transport.WaitForHeartbeat()); }),
      StatusIs(absl::StatusCode::kCancelled));
  for (const fv1::SubscribeResponse& m : transport.sent()) {
    if (!m.has_heartbeat()) continue;
    int64_t total = 0;
    for (const auto& [p, hw] : m.heartbeat().high_watermarks()) total += hw;
    // Six records and one commit marker per partition written.
    EXPECT_GE(total, 6);
    EXPECT_EQ(m.heartbeat().high_watermarks().size(), static_cast<size_t>(kPartitions));
  }
  EXPECT_TRUE(transport.batches().empty());
}

}  // namespace
}  // namespace node
}  // namespace polder
