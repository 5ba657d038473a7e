// FanOut against a real broker: streams at the live edge share one tail and see exactly what
// their own SourceReader would (committed records only, in order, cursors past markers); streams
// behind it catch up within the pool's bound, oldest first, and join the tail; a stream that
// falls off the ring catches up without a gap.
#include "services/node/federation/fan_out.h"

#include <malloc.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/kafka/producer.h"
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
using ::testing::HasSubstr;

constexpr int kPartitions = 3;

class FanOutTest : public testing::KafkaBrokerTest {
 protected:
  kafka::RdKafkaClientFactory kafka_;

  FanOut::Options Options() {
    FanOut::Options o;
    o.consumer.client = ClientOptions();
    o.kafka_timeout = absl::Seconds(10);
    o.tail_poll = absl::Milliseconds(50);
    o.prefetch_bytes = 1 << 20;
    return o;
  }

  // Transactions over the partitions: `committed` records committed, then `aborted` records
  // aborted, values "<tag>-<i>".
  void Publish(const std::string& topic, const std::string& tag, int committed, int aborted) {
    kafka::ProducerOptions o;
    o.client = ClientOptions();
    o.delivery_timeout = absl::Seconds(10);
    o.transactional_id = UniqueTopic("fan-out-txn");
    ASSERT_OK_AND_ASSIGN(auto producer, kafka::KafkaTransactionalProducer::Create(o));
    ASSERT_OK(producer->InitTransactions(absl::Seconds(30)));
    auto txn = [&](const std::string& prefix, int n, bool commit) {
      ASSERT_OK(producer->BeginTransaction());
      for (int i = 0; i < n; ++i) {
        kafka::ProducerRecord r;
        r.topic = topic;
        r.partition = i % kPartitions;
        r.key = absl::StrCat("k", i);
        r.value = absl::StrCat(prefix, "-", i, "-", std::string(100, 'v'));
        producer->Send(std::move(r), [](absl::StatusOr<kafka::RecordMetadata>) {});
      }
      if (commit) {
        ASSERT_OK(producer->CommitTransaction(absl::Seconds(30)));
      } else {
        ASSERT_OK(producer->Flush(absl::Seconds(30)));
        ASSERT_OK(producer->AbortTransaction(absl::Seconds(30)));
      }
    };
    txn(tag, committed, true);
    if (aborted > 0) txn(absl::StrCat(tag, "-aborted"), aborted, false);
  }

  SourceTopic Source(const std::string& topic) { return {topic, kPartitions, "epoch-1"}; }

  static StreamStart At(const std::string& position) {
    StreamStart s;
    s.requested_position = position;
    s.contract_id = "contract-1";
    s.contract_position = "earliest";
    return s;
  }

  // What a stream reads: per partition, (offset, value) in order; batches checked on the way.
  struct Read {
    std::map<int32_t, std::vector<std::pair<int64_t, std::string>>> records;
    std::map<int32_t, int64_t> next;  // the last batch's next offset per partition
  };

  // Reads until `count` records arrived (or a minute passed), then reads on until an empty poll.
  static void Drain(StreamSource& source, size_t count, const BatchLimits& limits, Read* read) {
    size_t got = 0;
    for (const auto& [p, rs] : read->records) got += rs.size();
    const absl::Time deadline = absl::Now() + absl::Minutes(1);
    while (absl::Now() < deadline) {
      absl::StatusOr<std::optional<SourceBatch>> b = source.Next(absl::Milliseconds(300));
      ASSERT_OK(b.status());
      if (!b->has_value()) {
        if (got >= count) return;
        continue;
      }
      const SourceBatch& batch = **b;
      ASSERT_FALSE(batch.records.empty());
      EXPECT_LE(static_cast<int32_t>(batch.records.size()), limits.max_records);
      EXPECT_GT(batch.next_offset, batch.records.back().offset);
      if (read->next.count(batch.partition) > 0) {
        EXPECT_GE(batch.records.front().offset, read->next[batch.partition])
            << "partition " << batch.partition << " read twice";
      }
      read->next[batch.partition] = batch.next_offset;
      for (const kafka::ConsumedRecord& r : batch.records) {
        EXPECT_EQ(r.partition, batch.partition);
        read->records[batch.partition].push_back({r.offset, r.value});
      }
      got += batch.records.size();
    }
    ADD_FAILURE() << "read " << got << " of " << count << " records within a minute";
  }

  // The reference: the topic read from `start` by a SourceReader of its own.
  Read Reference(const std::string& topic, std::map<int32_t, int64_t> start, size_t count) {
    Read read;
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    absl::StatusOr<std::unique_ptr<SourceReader>> reader = SourceReader::Create(
        kafka_, o, topic, std::move(start), {1000, 1 << 20}, absl::Seconds(10));
    EXPECT_OK(reader.status());
    if (reader.ok()) Drain(**reader, count, {1000, 1 << 20}, &read);
    return read;
  }

  std::map<int32_t, int64_t> LastStable(const std::string& topic) {
    std::map<int32_t, int64_t> out;
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    auto consumer = kafka_.NewConsumer(o);
    EXPECT_OK(consumer.status());
    for (int32_t p = 0; p < kPartitions; ++p) {
      auto marks = (*consumer)->QueryWatermarks(topic, p, absl::Seconds(10));
      EXPECT_OK(marks.status());
      if (marks.ok()) out[p] = marks->second;
    }
    return out;
  }

  static void WaitFor(const FanOut& fan_out, const std::function<bool(const FanOut::Stats&)>& ok) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (!ok(fan_out.stats()) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
    ASSERT_TRUE(ok(fan_out.stats()));
  }
};

TEST_F(FanOutTest, LiveStreamsShareOneTailAndReadExactlyWhatTheirOwnReaderWould) {
  const std::string topic = CreateTopic("groningen.mobility.bike-counts", kPartitions);
  Publish(topic, "before", 6, 0);  // before the streams: never theirs
  FanOut fan_out(Options(), kafka_);
  const BatchLimits limits{4, 1 << 20};
  std::vector<std::unique_ptr<StreamSource>> streams;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(auto s, fan_out.Open(Source(topic), At("latest"), limits));
    streams.push_back(std::move(s));
  }
  WaitFor(fan_out, [](const FanOut::Stats& s) { return s.tails == 1 && s.live == 5; });
  const std::map<int32_t, int64_t> start = streams[0]->positions();
  Publish(topic, "first", 30, 15);
  Publish(topic, "second", 9, 0);
  const Read reference = Reference(topic, start, 39);
  size_t total = 0;
  for (const auto& [p, rs] : reference.records) total += rs.size();
  ASSERT_EQ(total, 39u) << "30 + 9 committed records after the streams opened";
  const std::map<int32_t, int64_t> end = LastStable(topic);
  for (auto& stream : streams) {
    Read read;
    Drain(*stream, 39, limits, &read);
    EXPECT_EQ(read.records, reference.records);
    // Past the transaction markers: at the last stable offsets.
    EXPECT_EQ(stream->positions(), end);
    // Heartbeats: the watermarks the tail last fetched, without a broker call.
    ASSERT_OK_AND_ASSIGN(auto marks, stream->HighWatermarks(absl::Seconds(10)));
    EXPECT_EQ(marks, end);
  }
  const FanOut::Stats stats = fan_out.stats();
  EXPECT_EQ(stats.tails, 1);
  EXPECT_EQ(stats.live, 5);
  EXPECT_EQ(stats.catching_up, 0);
  EXPECT_EQ(stats.fell_behind, 0);
  EXPECT_GT(stats.tail_bytes, 0);
  streams.clear();
  EXPECT_EQ(fan_out.stats().tails, 0) << "a tail no stream holds stops";
  EXPECT_EQ(fan_out.stats().live, 0);
}

TEST_F(FanOutTest, StreamsBehindTheTailCatchUpWithinThePoolOldestFirstAndJoinIt) {
  const std::string topic = CreateTopic("groningen.parking.occupancy", kPartitions);
  Publish(topic, "backlog", 30, 6);
  FanOut::Options o = Options();
  o.max_catchup_readers = 1;
  FanOut fan_out(o, kafka_);
  const BatchLimits limits{5, 1 << 20};
  // The tail starts at the end; three streams from the beginning are behind it.
  ASSERT_OK_AND_ASSIGN(auto first, fan_out.Open(Source(topic), At("latest"), limits));
  WaitFor(fan_out, [](const FanOut::Stats& s) { return s.tails == 1; });
  std::vector<std::unique_ptr<StreamSource>> streams;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto s, fan_out.Open(Source(topic), At("earliest"), limits));
    streams.push_back(std::move(s));
  }
  FanOut::Stats stats = fan_out.stats();
  EXPECT_EQ(stats.live, 1);
  EXPECT_EQ(stats.waiting, 3);
  EXPECT_EQ(stats.waited, 2) << "the first of three found the one reader free, two queued";
  // One reader: the oldest stream reads, the others wait.
  std::vector<Read> reads(3);
  auto next = [&](size_t i) {
    absl::StatusOr<std::optional<SourceBatch>> b = streams[i]->Next(absl::Milliseconds(300));
    ASSERT_OK(b.status());
    if (!b->has_value()) return;
    for (const kafka::ConsumedRecord& r : (*b)->records) {
      reads[i].records[r.partition].push_back({r.offset, r.value});
    }
    reads[i].next[(*b)->partition] = (*b)->next_offset;
  };
  for (size_t i = 0; i < streams.size(); ++i) next(i);
  stats = fan_out.stats();
  EXPECT_EQ(stats.catching_up, 1);
  EXPECT_EQ(stats.waiting, 2);
  const Read reference = Reference(topic, {{0, 0}, {1, 0}, {2, 0}}, 30);
  Drain(*streams[0], 30, limits, &reads[0]);
  // The first has joined the tail and returned its reader; the youngest asks first but the
  // older one is next.
  next(2);
  stats = fan_out.stats();
  EXPECT_EQ(stats.catching_up, 0);
  EXPECT_EQ(stats.waiting, 2);
  next(1);
  EXPECT_EQ(fan_out.stats().catching_up, 1);
  for (size_t i = 1; i < streams.size(); ++i) {
    Drain(*streams[i], 30, limits, &reads[i]);
    EXPECT_LE(fan_out.stats().catching_up, 1);
  }
  for (size_t i = 0; i < streams.size(); ++i) EXPECT_EQ(reads[i].records, reference.records);
  WaitFor(fan_out, [](const FanOut::Stats& s) {
    return s.live == 4 && s.catching_up == 0 && s.waiting == 0;
  });
  // Once joined, what comes next reaches every stream from the tail.
  Publish(topic, "later", 9, 0);
  for (auto& s : streams) {
    Read more;
    Drain(*s, 9, limits, &more);
    size_t n = 0;
    for (const auto& [p, rs] : more.records) n += rs.size();
    EXPECT_EQ(n, 9u);
  }
  EXPECT_EQ(fan_out.stats().catching_up, 0);
}

TEST_F(FanOutTest, AStreamThatFallsOffTheRingCatchesUpWithoutAGap) {
  const std::string topic = CreateTopic("amersfoort.air.quality", kPartitions);
  FanOut::Options o = Options();
  o.tail_bytes = 2048;  // about seven of these records
  FanOut fan_out(o, kafka_);
  const BatchLimits limits{10, 1 << 20};
  ASSERT_OK_AND_ASSIGN(auto slow, fan_out.Open(Source(topic), At("latest"), limits));
  WaitFor(fan_out, [](const FanOut::Stats& s) { return s.tails == 1 && s.live == 1; });
  const std::map<int32_t, int64_t> start = slow->positions();
  Publish(topic, "burst", 60, 9);
  Publish(topic, "more", 30, 0);
  // The ring holds only the last records by now.
  WaitFor(fan_out, [](const FanOut::Stats& s) { return s.tail_bytes > 0; });
  const Read reference = Reference(topic, start, 90);
  Read read;
  Drain(*slow, 90, limits, &read);
  EXPECT_EQ(read.records, reference.records);
  EXPECT_EQ(slow->positions(), LastStable(topic));
  const FanOut::Stats stats = fan_out.stats();
  EXPECT_GE(stats.fell_behind, 1);
  EXPECT_LE(stats.tail_bytes, 2048);
}

TEST_F(FanOutTest, CursorsOutsideTheSourceAreRefused) {
  const std::string topic = CreateTopic("enschede.centre.visitors", kPartitions);
  Publish(topic, "r", 6, 0);
  FanOut fan_out(Options(), kafka_);
  StreamStart start = At("");
  start.cursor = {{0, 0}, {1, 999}, {2, 0}};
  EXPECT_THAT(fan_out.Open(Source(topic), start, {}),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("partition 1 of " + topic)));
  start.cursor = {{0, 0}, {1, 0}};
  EXPECT_THAT(fan_out.Open(Source(topic), start, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("names 2 partitions")));
  start.cursor = {{0, 0}, {1, 0}, {2, 0}};
  start.cursor_epoch = "epoch-0";
  EXPECT_THAT(fan_out.Open(Source(topic), start, {}),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("re-created")));
}

// The ring's bound is a bound on the heap: what HeldBytes counts for records shaped as a city's
// (short keys, values of 60-260 bytes, CloudEvents headers) is the heap malloc reports they take,
// within 10 %.
TEST(FanOutHeldBytes, CountsTheHeapRecordsTake) {
  constexpr int kRecords = 20000;
  std::vector<std::shared_ptr<const kafka::ConsumedRecord>> kept;
  kept.reserve(kRecords);
  int64_t counted = 0;
  const size_t before = mallinfo2().uordblks;
  for (int i = 0; i < kRecords; ++i) {
    kafka::ConsumedRecord r;
    r.partition = i % 3;
    r.offset = i;
    r.key = absl::StrCat("gn-counter-", i % 9);
    r.value = std::string(60 + i % 200, 'v');
    r.headers = {{"ce_id", absl::StrCat("batch-", i / 20, "-", i % 20)},
                 {"ce_type", "polder.datasets.mobility.v1.BikeCount"},
                 {"ce_source", "groningen"}};
    auto held = std::make_shared<const kafka::ConsumedRecord>(std::move(r));
    counted += FanOut::HeldBytes(*held);
    kept.push_back(std::move(held));
  }
  const int64_t heap = static_cast<int64_t>(mallinfo2().uordblks - before);
  ASSERT_GT(heap, 0);
  const double ratio = static_cast<double>(counted) / static_cast<double>(heap);
  EXPECT_GT(ratio, 0.9) << "counted " << counted << " of " << heap << " heap bytes";
  EXPECT_LT(ratio, 1.1) << "counted " << counted << " of " << heap << " heap bytes";
}

}  // namespace
}  // namespace node
}  // namespace polder
