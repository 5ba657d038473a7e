// SummarizeExchanges: per-stream totals and the filters of `polderctl audit query`, and the line
// and JSON each exchange is printed as.
#include "tools/polderctl/commands/audit_exchanges.h"

#include <string>
#include <vector>

#include "common/trust/document.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/polderctl/commands/audit_testing.h"

namespace polder {
namespace polderctl {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Streams(const std::vector<ExchangeSummary>& summaries) {
  std::vector<std::string> out;
  for (const ExchangeSummary& s : summaries) out.push_back(s.stream);
  return out;
}

// stream-a: groningen → amersfoort, bike counts, 3 batches from kAuditStart;
// stream-b: amersfoort → enschede, air quality, 2 batches a day later;
// stream-c: enschede → groningen, bike counts, 1 batch two days later.
audit::Trail Trail() {
  return TestTrail({
      {"stream-a", TestChain("stream-a", "offered", 3)},
      {"stream-b", TestChain("stream-b", "received", 2, "amersfoort", "enschede",
                             "environment.air-quality", kAuditStart + absl::Hours(24))},
      {"stream-c", TestChain("stream-c", "received", 1, "enschede", "groningen",
                             "mobility.bike-counts", kAuditStart + absl::Hours(48))},
  });
}

TEST(SummarizeExchangesTest, SumsEachStreamsEntries) {
  std::vector<ExchangeSummary> all = SummarizeExchanges(Trail(), {});
  ASSERT_THAT(Streams(all), ElementsAre("stream-a", "stream-b", "stream-c"));
  const ExchangeSummary& a = all[0];
  EXPECT_EQ(a.batches, 3);
  EXPECT_EQ(a.records, 150);
  EXPECT_EQ(a.bytes, 3 * 50 * 437);
  EXPECT_EQ(a.first, kAuditStart);
  EXPECT_EQ(a.last, kAuditStart + absl::Minutes(2));
  EXPECT_EQ(a.head.source, "groningen");
  EXPECT_EQ(a.head.destination, "amersfoort");
}

TEST(SummarizeExchangesTest, FiltersByPeerOnEitherSideAndByDataset) {
  ExchangeFilter f;
  f.peer = "groningen";
  EXPECT_THAT(Streams(SummarizeExchanges(Trail(), f)), ElementsAre("stream-a", "stream-c"));
  f.peer = "enschede";
  EXPECT_THAT(Streams(SummarizeExchanges(Trail(), f)), ElementsAre("stream-b", "stream-c"));
  f.dataset = "mobility.bike-counts";
  EXPECT_THAT(Streams(SummarizeExchanges(Trail(), f)), ElementsAre("stream-c"));
  f.peer = "";
  EXPECT_THAT(SummarizeExchanges(Trail(), f), IsEmpty()) << "an empty peer matches no one";
}

TEST(SummarizeExchangesTest, SinceAndUntilKeepTheExchangesActiveInTheWindow) {
  ExchangeFilter f;
  f.since = kAuditStart + absl::Minutes(2);  // stream-a's last entry: still active
  EXPECT_THAT(Streams(SummarizeExchanges(Trail(), f)),
              ElementsAre("stream-a", "stream-b", "stream-c"));
  f.since = kAuditStart + absl::Minutes(3);
  EXPECT_THAT(Streams(SummarizeExchanges(Trail(), f)), ElementsAre("stream-b", "stream-c"));
  f.until = kAuditStart + absl::Hours(24);  // stream-b's first entry: already active
  EXPECT_THAT(Streams(SummarizeExchanges(Trail(), f)), ElementsAre("stream-b"));
  f.until = kAuditStart + absl::Hours(24) - absl::Seconds(1);
  EXPECT_THAT(SummarizeExchanges(Trail(), f), IsEmpty());
}

TEST(SummarizeExchangesTest, UnreadableEntriesCountAsBatchesOnly) {
  audit::Trail trail = Trail();
  trail.chains["stream-a"][1].canonical_json = "{";
  std::vector<ExchangeSummary> all = SummarizeExchanges(trail, {});
  EXPECT_EQ(all[0].batches, 3);
  EXPECT_EQ(all[0].records, 100);
  for (audit::AuditLink& l : trail.chains["stream-a"]) l.canonical_json = "{";
  all = SummarizeExchanges(trail, {});
  EXPECT_EQ(all[0].records, 0);
  EXPECT_EQ(all[0].first, absl::InfiniteFuture());
  EXPECT_EQ(all[0].last, absl::InfinitePast());
  ExchangeFilter f;
  f.since = kAuditStart;
  EXPECT_THAT(Streams(SummarizeExchanges(trail, f)), ElementsAre("stream-b", "stream-c"));
}

TEST(ExchangeLineTest, PrintsWhoWhatAndTotals) {
  std::vector<ExchangeSummary> all = SummarizeExchanges(Trail(), {});
  EXPECT_EQ(ExchangeLine(all[0]),
            absl::StrCat("stream-a  offered  groningen -> amersfoort  mobility.bike-counts  3 "
                         "batches, 150 records, 65550 bytes, ",
                         trust::FormatRfc3339(kAuditStart), " .. ",
                         trust::FormatRfc3339(kAuditStart + absl::Minutes(2))));
  ExchangeSummary gap = all[0];
  gap.head.direction = "gap";
  gap.head.detail = "offsets 100..150 lost";
  EXPECT_THAT(ExchangeLine(gap), ::testing::EndsWith("  offsets 100..150 lost"));
}

TEST(ExchangeJsonTest, HasTheFieldsInKeyOrder) {
  std::vector<ExchangeSummary> all = SummarizeExchanges(Trail(), {});
  nlohmann::json j = ExchangeJson(all[1]);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_THAT(
      keys, ElementsAre("batches", "bytes", "contract_hash", "dataset", "destination", "direction",
                        "first", "last", "purpose", "records", "source", "stream"));
  EXPECT_EQ(j["stream"], "stream-b");
  EXPECT_EQ(j["dataset"], "environment.air-quality");
  EXPECT_EQ(j["batches"], 2);
  EXPECT_EQ(j["records"], 100);
  EXPECT_EQ(j["first"], trust::FormatRfc3339(kAuditStart + absl::Hours(24)));
}

}  // namespace
}  // namespace polderctl
}  // namespace polder
