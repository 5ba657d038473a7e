#include "common/audit/trail.h"

#include <map>
#include <tuple>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace audit {
namespace {

using ::testing::HasSubstr;

struct B {
  int32_t partition;
  int64_t first, next, records, bytes;
};

std::vector<B> Batches() {
  std::vector<B> b;
  for (int i = 0; i < 6; ++i) b.push_back({i % 3, 100 * i, 100 * i + 50, 50, 50 * 437});
  return b;
}

std::vector<AuditLink> Chain(const std::string& direction, const std::vector<B>& batches,
                             const std::string& stream = "stream-1",
                             const std::string& source = "groningen",
                             const std::string& destination = "amersfoort",
                             const std::string& resumes = "",
                             const std::map<int32_t, int64_t>& cursor = {}) {
  AuditChain c(stream);
  std::vector<AuditLink> links;
  for (const B& b : batches) {
    AuditEntry e;
    if (links.empty()) {
      e.resumes = resumes;
      e.cursor = cursor;
    }
    e.transaction_id = stream;
    e.direction = direction;
    e.contract_hash = "sha256:abc";
    e.source = source;
    e.destination = destination;
    e.dataset = "mobility.bike-counts";
    e.partition = b.partition;
    e.first_offset = b.first;
    e.next_offset = b.next;
    e.records = b.records;
    e.bytes = b.bytes;
    e.at = absl::FromUnixSeconds(1795000000);
    e.purpose = "regional cycling dashboard";
    links.push_back(*c.Append(e));
  }
  return links;
}

class TrailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = std::make_unique<trust::PrivateKey>(*trust::PrivateKey::Generate());
    keys_ = [this](const std::string&, const std::string& kid) -> absl::StatusOr<trust::PublicKey> {
      if (kid != key_->public_key().kid()) return absl::PermissionDeniedError("key not listed");
      return key_->public_key();
    };
  }

  // A side's audit topic: its chain and the other side's receipt of the full chain.
  Trail Side(const std::vector<AuditLink>& mine, const std::string& other,
             const std::vector<AuditLink>& theirs, const trust::PrivateKey* signer = nullptr) {
    std::vector<std::pair<std::string, std::string>> records;
    for (const AuditLink& l : mine)
      records.push_back({AuditRecordKey("stream-1", l.sequence), EncodeAuditRecord(l)});
    Receipt r = *MakeReceipt("stream-1", other, theirs.size(), theirs.back().hash,
                             signer ? *signer : *key_, absl::FromUnixSeconds(1795000100));
    records.push_back({ReceiptRecordKey(r), EncodeReceipt(r)});
    return ReadTrail(records);
  }

  static std::vector<std::string> Kinds(const std::vector<Finding>& f) {
    std::vector<std::string> k;
    for (const Finding& x : f) k.push_back(absl::StrCat(x.kind, "@", x.link));
    return k;
  }

  std::unique_ptr<trust::PrivateKey> key_;
  KeyLookup keys_;
  const std::vector<AuditLink> offered_ = Chain("offered", Batches());
  const std::vector<AuditLink> received_ = Chain("received", Batches());
};

TEST_F(TrailTest, MatchingTrailsVerify) {
  Trail sub = Side(received_, "groningen", offered_);
  Trail prov = Side(offered_, "amersfoort", received_);
  EXPECT_TRUE(VerifyTrail(sub, keys_).empty());
  EXPECT_TRUE(VerifyTrail(prov, keys_).empty());
  EXPECT_TRUE(CompareStreams(sub, prov, "groningen").empty());
  EXPECT_TRUE(CheckReceiptsHeldBy(prov, sub, "amersfoort", keys_).empty());
  EXPECT_TRUE(CheckReceiptsHeldBy(sub, prov, "groningen", keys_).empty());
  // Fewer received than offered is normal (in flight when the stream broke).
  std::vector<AuditLink> prefix(received_.begin(), received_.begin() + 4);
  EXPECT_TRUE(CompareStreams(Side(prefix, "groningen", offered_), prov, "groningen").empty());
}

TEST_F(TrailTest, TamperingInPlaceIsFoundInTheChainItself) {
  std::vector<AuditLink> changed = received_;
  AuditEntry e = *ParseEntry(changed[2].canonical_json);
  e.records = 49;
  changed[2].canonical_json = *CanonicalJson(e);
  EXPECT_THAT(Kinds(VerifyTrail(Side(changed, "groningen", offered_), keys_)),
              ::testing::ElementsAre("changed@3"));

  std::vector<AuditLink> dropped = received_;
  dropped.erase(dropped.begin() + 2);
  EXPECT_THAT(Kinds(VerifyTrail(Side(dropped, "groningen", offered_), keys_)),
              ::testing::ElementsAre("dropped@3"));

  std::vector<AuditLink> inserted = received_;
  inserted.insert(inserted.begin() + 3, inserted[2]);
  EXPECT_THAT(Kinds(VerifyTrail(Side(inserted, "groningen", offered_), keys_)),
              ::testing::ElementsAre("inserted@4"));

  std::vector<AuditLink> reordered = received_;
  std::swap(reordered[2], reordered[3]);
  EXPECT_THAT(Kinds(VerifyTrail(Side(reordered, "groningen", offered_), keys_)),
              ::testing::ElementsAre("reordered@3"));
}

TEST_F(TrailTest, ConsistentRewritesAreFoundAgainstThePeer) {
  Trail prov = Side(offered_, "amersfoort", received_);  // holds Amersfoort's receipt of 6 links
  auto rewritten = [&](std::vector<B> batches) {
    return Side(Chain("received", batches), "groningen", offered_);
  };

  std::vector<B> changed = Batches();
  changed[2].records = 49;
  Trail c = rewritten(changed);
  EXPECT_TRUE(VerifyTrail(c, keys_).empty()) << "a rehashed chain is consistent in itself";
  EXPECT_THAT(Kinds(CompareStreams(c, prov, "groningen")), ::testing::ElementsAre("changed@3"));
  EXPECT_THAT(Kinds(CheckReceiptsHeldBy(prov, c, "amersfoort", keys_)),
              ::testing::ElementsAre("rewritten@6"));

  std::vector<B> dropped = Batches();
  dropped.erase(dropped.begin() + 2);
  Trail d = rewritten(dropped);
  EXPECT_THAT(Kinds(CompareStreams(d, prov, "groningen")), ::testing::ElementsAre("dropped@3"));
  EXPECT_THAT(Kinds(CheckReceiptsHeldBy(prov, d, "amersfoort", keys_)),
              ::testing::ElementsAre("truncated@6"));

  std::vector<B> inserted = Batches();
  inserted.insert(inserted.begin() + 3, B{1, 999, 1000, 1, 437});
  EXPECT_THAT(Kinds(CompareStreams(rewritten(inserted), prov, "groningen")),
              ::testing::ElementsAre("inserted@4"));

  std::vector<B> reordered = Batches();
  std::swap(reordered[2], reordered[3]);
  EXPECT_THAT(Kinds(CompareStreams(rewritten(reordered), prov, "groningen")),
              ::testing::ElementsAre("reordered@3"));

  std::vector<B> extra = Batches();
  extra.push_back({0, 600, 650, 50, 50 * 437});
  EXPECT_THAT(Kinds(CompareStreams(rewritten(extra), prov, "groningen")),
              ::testing::ElementsAre("inserted@7"));
}

TEST_F(TrailTest, TruncationAndBadReceipts) {
  Trail prov = Side(offered_, "amersfoort", received_);
  std::vector<AuditLink> cut(received_.begin(), received_.begin() + 4);
  std::vector<Finding> f =
      CheckReceiptsHeldBy(prov, Side(cut, "groningen", offered_), "amersfoort", keys_);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].kind, "truncated");
  EXPECT_THAT(f[0].ToString(), HasSubstr("stream-1: truncated at link 6"));
  // A receipt signed with a key the directory does not list for its peer.
  trust::PrivateKey stranger = *trust::PrivateKey::Generate();
  EXPECT_THAT(Kinds(VerifyTrail(Side(received_, "groningen", offered_, &stranger), keys_)),
              ::testing::ElementsAre("unsigned@6"));
  // Records that do not decode are named, not skipped silently.
  Trail junk = ReadTrail({{"stream-1/1", "not json"}, {"receipt/x/y/1", "{}"}});
  EXPECT_EQ(junk.unreadable.size(), 2u);
  EXPECT_THAT(Kinds(VerifyTrail(junk, keys_)),
              ::testing::ElementsAre("unreadable@0", "unreadable@0"));
}

// Verifying against the provider's service (GetAuditEntries): only the streams received from it
// are served, so the receipts kept of streams this side provided, and streams received from other
// providers, are not compared — while a provider's short or missing entries still are.
TEST_F(TrailTest, AgainstTheProviderOnlyTheStreamsReceivedFromIt) {
  auto records_of = [](const std::string& stream, const std::vector<AuditLink>& links) {
    std::vector<std::pair<std::string, std::string>> r;
    for (const AuditLink& l : links)
      r.push_back({AuditRecordKey(stream, l.sequence), EncodeAuditRecord(l)});
    return r;
  };
  // Amersfoort's trail: stream-1 received from Groningen (Groningen's receipt kept), stream-2
  // provided to Groningen (Groningen's receipt of its own chain kept), stream-3 received from
  // Enschede.
  std::vector<std::pair<std::string, std::string>> mine = records_of("stream-1", received_);
  const std::vector<AuditLink> provided =
      Chain("offered", Batches(), "stream-2", "amersfoort", "groningen");
  const std::vector<AuditLink> from_enschede =
      Chain("received", Batches(), "stream-3", "enschede", "amersfoort");
  for (auto& r : records_of("stream-2", provided)) mine.push_back(r);
  for (auto& r : records_of("stream-3", from_enschede)) mine.push_back(r);
  for (const auto& [stream, n, hash] : std::vector<std::tuple<std::string, uint64_t, std::string>>{
           {"stream-1", offered_.size(), offered_.back().hash},
           {"stream-2", 6, "sha256:groningens-own-chain"}}) {
    Receipt r =
        *MakeReceipt(stream, "groningen", n, hash, *key_, absl::FromUnixSeconds(1795000100));
    mine.push_back({ReceiptRecordKey(r), EncodeReceipt(r)});
  }
  const Trail amersfoort = ReadTrail(mine);
  EXPECT_TRUE(VerifyTrail(amersfoort, keys_).empty());

  const Trail served = ReadTrail(records_of("stream-1", offered_));
  EXPECT_TRUE(CheckAgainstProvider(amersfoort, served, "groningen", keys_).empty());
  // The same trail checked with CheckReceiptsHeldBy alone would blame stream-2.
  EXPECT_THAT(Kinds(CheckReceiptsHeldBy(amersfoort, served, "groningen", keys_)),
              ::testing::ElementsAre("truncated@0"));

  // Groningen serves its entries cut short, or none.
  const std::vector<AuditLink> cut(offered_.begin(), offered_.begin() + 4);
  EXPECT_THAT(Kinds(CheckAgainstProvider(amersfoort, ReadTrail(records_of("stream-1", cut)),
                                         "groningen", keys_)),
              ::testing::UnorderedElementsAre("truncated@6", "inserted@5"));
  EXPECT_THAT(Kinds(CheckAgainstProvider(amersfoort, ReadTrail({}), "groningen", keys_)),
              ::testing::UnorderedElementsAre("truncated@0", "dropped@0"));
}

// Three cities: Groningen provides stream-1 to Amersfoort and receives stream-9 from Enschede.
// Comparing Amersfoort's trail with Groningen's (either way round) looks only at the streams
// between the two: stream-9 is none of Amersfoort's business and no finding.
TEST_F(TrailTest, ComparingTwoTrailsIgnoresStreamsWithThirdParties) {
  auto records_of = [](const std::string& stream, const std::vector<AuditLink>& links) {
    std::vector<std::pair<std::string, std::string>> r;
    for (const AuditLink& l : links)
      r.push_back({AuditRecordKey(stream, l.sequence), EncodeAuditRecord(l)});
    return r;
  };
  const Trail amersfoort = ReadTrail(records_of("stream-1", received_));
  std::vector<std::pair<std::string, std::string>> gr = records_of("stream-1", offered_);
  for (auto& r :
       records_of("stream-9", Chain("received", Batches(), "stream-9", "enschede", "groningen"))) {
    gr.push_back(r);
  }
  const Trail groningen = ReadTrail(gr);
  EXPECT_TRUE(CompareStreams(amersfoort, groningen, "groningen").empty());
  EXPECT_TRUE(CompareStreams(groningen, amersfoort, "amersfoort").empty())
      << "Groningen's stream from Enschede is not compared with Amersfoort's trail";
  // Real differences between the two are still found, both ways round.
  const Trail groningen_lost = ReadTrail(
      records_of("stream-9", Chain("received", Batches(), "stream-9", "enschede", "groningen")));
  EXPECT_THAT(Kinds(CompareStreams(amersfoort, groningen_lost, "groningen")),
              ::testing::ElementsAre("dropped@0"));
  std::vector<AuditLink> cut(offered_.begin(), offered_.begin() + 3);
  EXPECT_THAT(
      Kinds(CompareStreams(amersfoort, ReadTrail(records_of("stream-1", cut)), "groningen")),
      ::testing::ElementsAre("inserted@4"));
  // Enschede's side of stream-9 compared with Groningen's: only that stream.
  const Trail enschede = ReadTrail(
      records_of("stream-9", Chain("offered", Batches(), "stream-9", "enschede", "groningen")));
  EXPECT_TRUE(CompareStreams(groningen, enschede, "enschede").empty());
  EXPECT_TRUE(CompareStreams(enschede, groningen, "groningen").empty());
}

// A gap entry (the subscriber's one-entry chain "gap-<subscriber>-<provider>-…") is kept by both
// sides: the provider holds the subscriber's signed head, the subscriber the provider's
// countersignature. Deleting the entry on the subscriber's side shows on either check.
TEST_F(TrailTest, ACountersignedGapEntryCannotBeDeletedUnnoticed) {
  const std::string gap = "gap-amersfoort-groningen-mobility.bike-counts-1795000000000";
  const std::vector<AuditLink> chain =
      Chain("gap", {B{0, 0, 0, 0, 0}}, gap, "groningen", "amersfoort");
  Receipt subscribers =
      *MakeReceipt(gap, "amersfoort", 1, chain[0].hash, *key_, absl::FromUnixSeconds(1795000100));
  Receipt countersigned =
      *MakeReceipt(gap, "groningen", 1, chain[0].hash, *key_, absl::FromUnixSeconds(1795000101));
  std::vector<std::pair<std::string, std::string>> with_gap = {
      {AuditRecordKey(gap, 1), EncodeAuditRecord(chain[0])},
      {ReceiptRecordKey(countersigned), EncodeReceipt(countersigned)}};
  const Trail amersfoort = ReadTrail(with_gap);
  const Trail deleted = ReadTrail({with_gap[1]});  // the countersignature kept, the entry gone
  const Trail groningen = ReadTrail({{ReceiptRecordKey(subscribers), EncodeReceipt(subscribers)}});
  EXPECT_TRUE(VerifyTrail(amersfoort, keys_).empty());
  // Amersfoort's own check against Groningen's served entries (none of a gap chain).
  EXPECT_TRUE(CheckAgainstProvider(amersfoort, ReadTrail({}), "groningen", keys_).empty());
  EXPECT_TRUE(CheckReceiptsHeldBy(amersfoort, ReadTrail({}), "groningen", keys_).empty());
  // Groningen's check of Amersfoort's trail with the receipt it holds.
  EXPECT_TRUE(CheckReceiptsHeldBy(groningen, amersfoort, "amersfoort", keys_).empty());
  EXPECT_THAT(Kinds(CheckReceiptsHeldBy(groningen, deleted, "amersfoort", keys_)),
              ::testing::ElementsAre("truncated@0"));
  // And Amersfoort's held countersignature names its own missing entry.
  std::vector<Finding> f = CheckReceiptsHeldBy(deleted, ReadTrail({}), "groningen", keys_);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_THAT(f[0].ToString(), HasSubstr("countersigned this gap entry"));
  // A countersignature of another hash: the entry was rewritten.
  Receipt other = *MakeReceipt(gap, "groningen", 1, std::string(64, 'e'), *key_,
                               absl::FromUnixSeconds(1795000102));
  const Trail rewritten = ReadTrail({with_gap[0], {ReceiptRecordKey(other), EncodeReceipt(other)}});
  EXPECT_THAT(Kinds(CheckAgainstProvider(rewritten, ReadTrail({}), "groningen", keys_)),
              ::testing::ElementsAre("rewritten@1"));
}

// A subscription's streams chain (ADR 0021 §4): a stream's first entry names the stream it
// resumes and the cursor it asked for; a verifier finds a gap between them, a batch received
// twice, or a resumed stream gone.
TEST_F(TrailTest, StreamsThatResumeAnotherAreCheckedAgainstWhereItEnded) {
  // stream-1 ended at partition 0: 350, 1: 450, 2: 550 (Batches()).
  auto trail = [](const std::vector<AuditLink>& first, const std::vector<AuditLink>& second) {
    std::vector<std::pair<std::string, std::string>> records;
    for (const AuditLink& l : first)
      records.push_back({AuditRecordKey("stream-1", l.sequence), EncodeAuditRecord(l)});
    for (const AuditLink& l : second)
      records.push_back({AuditRecordKey("stream-2", l.sequence), EncodeAuditRecord(l)});
    return ReadTrail(records);
  };
  const std::vector<B> next = {{0, 350, 400, 50, 50 * 437}};
  const std::map<int32_t, int64_t> exact = {{0, 350}, {1, 450}, {2, 550}};
  auto resumed = [&](const std::string& direction, const std::map<int32_t, int64_t>& cursor,
                     const std::string& resumes = "stream-1") {
    return Chain(direction, next, "stream-2", "groningen", "amersfoort", resumes, cursor);
  };
  // Exactly where it ended: nothing to report, on either side.
  EXPECT_TRUE(VerifyTrail(trail(received_, resumed("received", exact)), keys_).empty());
  EXPECT_TRUE(VerifyTrail(trail(offered_, resumed("offered", exact)), keys_).empty());
  // The provider offered more than the subscriber committed: it resumes before its end.
  EXPECT_TRUE(
      VerifyTrail(trail(offered_, resumed("offered", {{0, 300}, {1, 450}, {2, 550}})), keys_)
          .empty());
  // A gap: partition 1 resumed past where the stream ended.
  const std::vector<Finding> gap =
      CheckResumes(trail(received_, resumed("received", {{0, 350}, {1, 470}, {2, 550}})));
  ASSERT_EQ(gap.size(), 1u);
  EXPECT_EQ(gap[0].kind, "gap");
  EXPECT_THAT(gap[0].detail, HasSubstr("offsets [450, 470) were never received"));
  EXPECT_THAT(Kinds(CheckResumes(trail(offered_, resumed("offered", {{0, 351}})))),
              ::testing::Contains("gap@1"));
  // The subscriber resuming before its committed end: received twice.
  EXPECT_THAT(
      Kinds(CheckResumes(trail(received_, resumed("received", {{0, 300}, {1, 450}, {2, 550}})))),
      ::testing::ElementsAre("inserted@1"));
  // The resumed stream is gone from the trail.
  EXPECT_THAT(Kinds(CheckResumes(trail({}, resumed("received", exact)))),
              ::testing::ElementsAre("dropped@1"));
  // A first stream (resumes nothing) is not checked.
  EXPECT_TRUE(CheckResumes(trail({}, resumed("received", {}, ""))).empty());
  // The fields survive the canonical form (and change the hash only when set).
  absl::StatusOr<AuditEntry> e = ParseEntry(resumed("received", exact)[0].canonical_json);
  ASSERT_OK(e.status());
  EXPECT_EQ(e->resumes, "stream-1");
  EXPECT_EQ(e->cursor, exact);
  EXPECT_EQ(Chain("received", next, "stream-2")[0].hash,
            Chain("received", next, "stream-2", "groningen", "amersfoort", "", {})[0].hash);
}

}  // namespace
}  // namespace audit
}  // namespace polder
