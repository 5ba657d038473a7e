#include "services/node/federation/source_reader.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
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

class SourceReaderTest : public testing::KafkaBrokerTest {
 protected:
  kafka::RdKafkaClientFactory kafka_;

  // Three transactions over 3 partitions: 30 committed, 15 aborted, 9 committed records.
  void Fill(const std::string& topic) {
    kafka::ProducerOptions o;
    o.client = ClientOptions();
    o.client.request_timeout = absl::Seconds(5);
    o.delivery_timeout = absl::Seconds(10);
    o.transactional_id = UniqueTopic("source-reader-txn");
    auto producer = kafka::KafkaTransactionalProducer::Create(o);
    ASSERT_OK(producer.status());
    ASSERT_OK((*producer)->InitTransactions(absl::Seconds(30)));
    auto txn = [&](const std::string& tag, int n, bool commit) {
      ASSERT_OK((*producer)->BeginTransaction());
      for (int i = 0; i < n; ++i) {
        kafka::ProducerRecord r;
        r.topic = topic;
        r.partition = i % 3;
        r.key = absl::StrCat("k", i);
        r.value = absl::StrCat(tag, "-", i, "-", std::string(100, 'v'));
        (*producer)->Send(std::move(r), [](absl::StatusOr<kafka::RecordMetadata>) {});
      }
      if (commit) {
        ASSERT_OK((*producer)->CommitTransaction(absl::Seconds(30)));
      } else {
        ASSERT_OK((*producer)->Flush(absl::Seconds(30)));
        ASSERT_OK((*producer)->AbortTransaction(absl::Seconds(30)));
      }
    };
    txn("first", 30, true);
    txn("aborted", 15, false);
    txn("second", 9, true);
  }

  kafka::ConsumerOptions Options() {
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    return o;
  }

  // Reads until two empty polls in a row; returns partition → values in order.
  std::map<int32_t, std::vector<std::string>> Drain(SourceReader& reader, int max_records,
                                                    int* batches) {
    std::map<int32_t, std::vector<std::string>> out;
    int empty = 0;
    while (empty < 3) {
      absl::StatusOr<std::optional<SourceBatch>> b = reader.Next(absl::Milliseconds(300));
      EXPECT_OK(b.status());
      if (!b.ok() || !b->has_value()) {
        ++empty;
        continue;
      }
      empty = 0;
      ++*batches;
      EXPECT_LE(static_cast<int>((*b)->records.size()), max_records);
      EXPECT_GT((*b)->next_offset, (*b)->records.back().offset);
      for (const auto& r : (*b)->records)
        out[(*b)->partition].push_back(r.value.substr(0, r.value.find('-', 7)));
    }
    return out;
  }
};

TEST_F(SourceReaderTest, OffersCommittedRecordsInBatchesAndCursorsPastMarkers) {
  const std::string topic = CreateTopic("groningen.mobility.bike-counts", 3);
  Fill(topic);
  ASSERT_OK_AND_ASSIGN(auto reader,
                       SourceReader::Create(kafka_, Options(), topic, {{0, 0}, {1, 0}, {2, 0}},
                                            {4, 1 << 20}, absl::Seconds(10)));
  int batches = 0;
  auto read = Drain(*reader, 4, &batches);
  int total = 0;
  for (const auto& [p, values] : read) {
    total += static_cast<int>(values.size());
    EXPECT_EQ(values.size(), 13u) << "partition " << p << ": 10 + 3 committed";
    for (const std::string& v : values) EXPECT_FALSE(absl::StartsWith(v, "aborted")) << v;
  }
  EXPECT_EQ(total, 39);
  EXPECT_GE(batches, 12) << "4 records per batch at most";
  // The cursor ends past the transaction markers: at the last stable offsets.
  ASSERT_OK_AND_ASSIGN(auto marks, reader->HighWatermarks(absl::Seconds(10)));
  EXPECT_EQ(reader->positions(), marks);
  // Resuming from a cursor in the middle continues without repeating.
  ASSERT_OK_AND_ASSIGN(auto first,
                       SourceReader::Create(kafka_, Options(), topic, {{0, 0}, {1, 0}, {2, 0}},
                                            {5, 1 << 20}, absl::Seconds(10)));
  ASSERT_OK_AND_ASSIGN(std::optional<SourceBatch> one, first->Next(absl::Seconds(5)));
  ASSERT_TRUE(one.has_value());
  std::map<int32_t, int64_t> cursor = {{0, 0}, {1, 0}, {2, 0}};
  cursor[one->partition] = one->next_offset;
  ASSERT_OK_AND_ASSIGN(auto resumed, SourceReader::Create(kafka_, Options(), topic, cursor,
                                                          {5, 1 << 20}, absl::Seconds(10)));
  int more = 0;
  auto rest = Drain(*resumed, 5, &more);
  EXPECT_EQ(rest[one->partition].size(), 13u - one->records.size());
}

TEST_F(SourceReaderTest, ByteLimitsAndGaps) {
  const std::string topic = CreateTopic("groningen.parking.occupancy", 3);
  Fill(topic);
  ASSERT_OK_AND_ASSIGN(auto reader,
                       SourceReader::Create(kafka_, Options(), topic, {{0, 0}, {1, 0}, {2, 0}},
                                            {100, 250}, absl::Seconds(10)));
  ASSERT_OK_AND_ASSIGN(std::optional<SourceBatch> b, reader->Next(absl::Seconds(5)));
  ASSERT_TRUE(b.has_value());
  EXPECT_LE(b->bytes, 250);
  EXPECT_EQ(b->records.size(), 2u) << "~115-byte records, 250 bytes per batch";
  EXPECT_THAT(SourceReader::Create(kafka_, Options(), topic, {{0, 0}, {1, 9999}, {2, 0}}, {},
                                   absl::Seconds(10)),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("partition 1 of " + topic)));
}

// A busy partition must not hold back a quiet one: under a steady flow into partition 0, the few
// records of partition 1 are offered at once, not when they would fill a batch.
TEST_F(SourceReaderTest, QuietPartitionIsNotHeldBehindABusyOne) {
  const std::string topic = CreateTopic("groningen.mobility.bike-counts", 2);
  kafka::ProducerOptions o;
  o.client = ClientOptions();
  o.linger = absl::Milliseconds(1);
  ASSERT_OK_AND_ASSIGN(auto producer, kafka::IdempotentProducer::Create(o));
  auto send = [&](int32_t partition, int n) {
    for (int i = 0; i < n; ++i) {
      kafka::ProducerRecord r;
      r.topic = topic;
      r.partition = partition;
      r.value = absl::StrCat("p", partition, "-", i);
      producer->Send(std::move(r), [](absl::StatusOr<kafka::RecordMetadata>) {});
    }
    ASSERT_OK(producer->Flush(absl::Seconds(10)));
  };
  // Both partitions fetched once, so the fetcher serves both from here on.
  send(0, 1);
  send(1, 1);
  ASSERT_OK_AND_ASSIGN(auto reader, SourceReader::Create(kafka_, Options(), topic, {{0, 0}, {1, 0}},
                                                         {100, 1 << 20}, absl::Seconds(10)));
  std::set<int32_t> seen;
  for (int i = 0; i < 20 && seen.size() < 2; ++i) {
    ASSERT_OK_AND_ASSIGN(std::optional<SourceBatch> b, reader->Next(absl::Milliseconds(500)));
    if (b.has_value()) seen.insert(b->partition);
  }
  ASSERT_EQ(seen.size(), 2u);
  send(1, 3);
  send(0, 3);
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<int32_t> order;
  for (int i = 0; i < 6 && std::count(order.begin(), order.end(), 1) == 0; ++i) {
    ASSERT_OK_AND_ASSIGN(std::optional<SourceBatch> b, reader->Next(absl::Seconds(5)));
    if (b.has_value()) order.push_back(b->partition);
    // Partition 0 keeps receiving, and the reader has fetched it before its next batch.
    send(0, 2);
    absl::SleepFor(absl::Milliseconds(300));
  }
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(std::count(order.begin(), order.end(), 1), 1)
      << "partition 1's 3 records were not offered within " << order.size()
      << " batches while partition 0 kept receiving";
  EXPECT_LE(order.size(), 2u) << "partition 1 waited behind more than one batch of partition 0";
}

}  // namespace
}  // namespace node
}  // namespace polder
