#include "common/audit/audit_chain.h"

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace audit {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

AuditEntry Entry(const std::string& stream, int64_t first, int64_t next) {
  AuditEntry e;
  e.transaction_id = stream;
  e.direction = "offered";
  e.contract_hash = std::string(64, 'a');
  e.source = "groningen";
  e.destination = "amersfoort";
  e.dataset = "mobility.bike-counts";
  e.partition = 1;
  e.first_offset = first;
  e.next_offset = next;
  e.records = next - first;
  e.bytes = 437 * (next - first);
  e.at = absl::FromUnixSeconds(1795000000);
  e.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  e.purpose = "regional cycling dashboard";
  return e;
}

std::vector<AuditLink> Chain(const std::string& stream, int n) {
  AuditChain chain(stream);
  std::vector<AuditLink> links;
  for (int i = 0; i < n; ++i) links.push_back(*chain.Append(Entry(stream, 100 * i, 100 * (i + 1))));
  return links;
}

TEST(AuditChainTest, AppendsVerifiesAndRoundTripsEntries) {
  std::vector<AuditLink> links = Chain("s-1", 5);
  EXPECT_EQ(links.back().sequence, 5u);
  EXPECT_OK(VerifyChain("s-1", links));
  ASSERT_OK_AND_ASSIGN(AuditEntry e, ParseEntry(links[2].canonical_json));
  EXPECT_EQ(e.first_offset, 200);
  EXPECT_EQ(e.purpose, "regional cycling dashboard");
  EXPECT_EQ(e.at, absl::FromUnixSeconds(1795000000));
  // Resuming from the last stored link continues the same chain.
  AuditChain resumed = AuditChain::Resume("s-1", links[2]);
  ASSERT_OK_AND_ASSIGN(AuditLink fourth, resumed.Append(Entry("s-1", 300, 400)));
  EXPECT_EQ(fourth.hash, links[3].hash);
}

TEST(AuditChainTest, AViewIsRecordedOnlyWhenSetSoOlderEntriesHashAsBefore) {
  AuditEntry plain = Entry("s-v", 0, 10);
  ASSERT_OK_AND_ASSIGN(std::string without, CanonicalJson(plain));
  EXPECT_THAT(without, ::testing::Not(HasSubstr("\"view\"")));
  AuditEntry viewed = plain;
  viewed.view = "quarter-municipality";
  ASSERT_OK_AND_ASSIGN(std::string with, CanonicalJson(viewed));
  EXPECT_THAT(with, HasSubstr(R"("view":"quarter-municipality")"));
  ASSERT_OK_AND_ASSIGN(AuditEntry back, ParseEntry(with));
  EXPECT_EQ(back.view, "quarter-municipality");
  ASSERT_OK_AND_ASSIGN(AuditEntry old, ParseEntry(without));
  EXPECT_EQ(old.view, "");
}

TEST(AuditChainTest, DetectsChangedMissingReorderedAndForeignLinks) {
  std::vector<AuditLink> links = Chain("s-1", 4);
  auto changed = links;
  changed[1].canonical_json = changed[1].canonical_json.replace(
      changed[1].canonical_json.find("\"records\":100"), 13, "\"records\":101");
  EXPECT_THAT(VerifyChain("s-1", changed),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("link 2 does not hash")));
  auto missing = links;
  missing.erase(missing.begin() + 1);
  EXPECT_THAT(VerifyChain("s-1", missing),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("link 2 has sequence 3")));
  EXPECT_THAT(VerifyChain("s-2", links),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("link 1 does not hash")));
  AuditChain chain("s-1");
  EXPECT_THAT(chain.Append(Entry("s-9", 0, 1)), StatusIs(absl::StatusCode::kInvalidArgument));
  AuditEntry bad = Entry("s-1", 0, 1);
  bad.direction = "sideways";
  EXPECT_THAT(chain.Append(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("offered, received or gap")));
}

TEST(AuditChainTest, ReceiptsBindTheOtherSideToItsChain) {
  std::vector<AuditLink> links = Chain("s-1", 6);
  ASSERT_OK_AND_ASSIGN(trust::PrivateKey key, trust::PrivateKey::Generate());
  ASSERT_OK_AND_ASSIGN(trust::PrivateKey other, trust::PrivateKey::Generate());
  ASSERT_OK_AND_ASSIGN(Receipt r,
                       MakeReceipt("s-1", "groningen", 4, links[3].hash, key, absl::Now()));
  EXPECT_OK(CheckReceipt(links, r, key.public_key()));
  EXPECT_THAT(CheckReceipt(links, r, other.public_key()),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // The provider cannot later truncate below or rewrite what it receipted.
  std::vector<AuditLink> truncated(links.begin(), links.begin() + 3);
  EXPECT_THAT(CheckReceipt(truncated, r, key.public_key()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("has only 3 (truncated?)")));
  AuditChain rewritten("s-1");
  std::vector<AuditLink> forged;
  for (int i = 0; i < 6; ++i)
    forged.push_back(*rewritten.Append(Entry("s-1", 100 * i, 100 * (i + 1) - (i == 2))));
  EXPECT_OK(VerifyChain("s-1", forged)) << "a rewritten chain is internally consistent...";
  EXPECT_THAT(
      CheckReceipt(forged, r, key.public_key()),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("differs from what groningen receipted")))
      << "...but not with the other side's receipt";
  Receipt tampered = r;
  tampered.sequence = 5;
  EXPECT_THAT(CheckReceipt(links, tampered, key.public_key()),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(AuditChainTest, GapEntriesAndStoredReceiptsRoundTrip) {
  AuditEntry gap = Entry("gap-amersfoort-1", 0, 0);
  gap.direction = "gap";
  gap.detail = "partition 1: offset 500 is below the log start 900";
  ASSERT_OK_AND_ASSIGN(std::string canonical, CanonicalJson(gap));
  EXPECT_THAT(canonical, HasSubstr("\"detail\":\"partition 1"));
  ASSERT_OK_AND_ASSIGN(AuditEntry back, ParseEntry(canonical));
  EXPECT_EQ(back.detail, gap.detail);
  // Entries without a detail hash as they did before the field existed.
  ASSERT_OK_AND_ASSIGN(std::string plain, CanonicalJson(Entry("s-1", 0, 100)));
  EXPECT_THAT(plain, ::testing::Not(HasSubstr("detail")));
  AuditEntry bad = Entry("s-1", 0, 100);
  bad.direction = "sideways";
  EXPECT_THAT(CanonicalJson(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("offered, received or gap")));

  ASSERT_OK_AND_ASSIGN(trust::PrivateKey key, trust::PrivateKey::Generate());
  std::vector<AuditLink> links = Chain("s-1", 3);
  ASSERT_OK_AND_ASSIGN(Receipt r,
                       MakeReceipt("s-1", "amersfoort", 3, links[2].hash, key, absl::Now()));
  EXPECT_EQ(ReceiptRecordKey(r), "receipt/s-1/amersfoort/3");
  ASSERT_OK_AND_ASSIGN(Receipt stored, DecodeReceipt(EncodeReceipt(r)));
  EXPECT_OK(CheckReceipt(links, stored, key.public_key()));
  ASSERT_OK_AND_ASSIGN(std::string kid, ReceiptSigner(stored));
  EXPECT_EQ(kid, key.public_key().kid());
  EXPECT_THAT(DecodeReceipt("{\"stream_id\": 1}"), StatusIs(absl::StatusCode::kDataLoss));
  Receipt unsigned_receipt = r;
  unsigned_receipt.jws = "not-a-jws";
  EXPECT_THAT(ReceiptSigner(unsigned_receipt), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace audit
}  // namespace polder
