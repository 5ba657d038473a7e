// The provider's contract checks: each refusal names what is missing; files are re-read.
#include "services/node/federation/contracts.h"

#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "common/trust/keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace node {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

class ContractsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ + "/contracts");
    std::filesystem::create_directories(dir_ + "/revocations");
    auto d = std::make_shared<trust::Directory>();
    d->federation = "nl-smartcity";
    d->serial = 1;
    d->valid_from = now_ - absl::Hours(1);
    d->valid_until = now_ + absl::Hours(24);
    for (const char* peer : {"groningen", "amersfoort", "enschede"}) {
      keys_.emplace(peer, *trust::PrivateKey::Generate());
      const trust::PublicKey& pub = keys_.at(peer).public_key();
      d->peers.push_back({peer,
                          std::string(peer) + ".example:7443",
                          {},
                          {{pub.kid(), pub.RawBase64Url(), d->valid_from, d->valid_until}}});
    }
    directory_ = d;
    book_ = std::make_unique<ContractBook>("groningen", dir_ + "/contracts", dir_ + "/revocations",
                                           [this] { return directory_; });
  }

  trust::SignedContract Contract(const std::string& id, const std::string& dataset,
                                 trust::Access access, absl::Time from, absl::Time until,
                                 bool both = true,
                                 std::optional<trust::ViewGrant> view = std::nullopt) {
    trust::SignedContract c;
    c.contract.id = id;
    c.contract.federation = "nl-smartcity";
    c.contract.provider = "groningen";
    c.contract.consumer = "amersfoort";
    c.contract.dataset = dataset;
    c.contract.schema_versions = {1, 2};
    c.contract.purpose = "regional dashboard";
    c.contract.access = access;
    c.contract.valid_from = from;
    c.contract.valid_until = until;
    c.contract.view = std::move(view);
    EXPECT_OK(trust::SignContract(&c, "groningen", keys_.at("groningen"), from));
    if (both) {
      EXPECT_OK(trust::SignContract(&c, "amersfoort", keys_.at("amersfoort"), from));
    }
    std::ofstream(absl::StrCat(dir_, "/contracts/", id, ".json")) << c.ToFileText();
    return c;
  }

  const absl::Time now_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  std::string dir_;
  std::map<std::string, trust::PrivateKey> keys_;
  std::shared_ptr<const trust::Directory> directory_;
  std::unique_ptr<ContractBook> book_;
};

TEST_F(ContractsTest, AllowsAValidContractAndNamesWhatIsMissingOtherwise) {
  Contract("bikes-1", "mobility.bike-counts", trust::Access::kRaw, now_ - absl::Hours(1),
           now_ + absl::Hours(5));
  Contract("parking-agg", "parking.occupancy", trust::Access::kAggregateOnly, now_ - absl::Hours(1),
           now_ + absl::Hours(5));
  Contract("old", "mobility.bike-counts", trust::Access::kRaw, now_ - absl::Hours(10),
           now_ - absl::Hours(2));
  Contract("half", "mobility.bike-counts", trust::Access::kRaw, now_ - absl::Hours(1),
           now_ + absl::Hours(5), false);

  ASSERT_OK_AND_ASSIGN(trust::Contract c, book_->ForSubscribe("amersfoort", "mobility.bike-counts",
                                                              "bikes-1", true, now_));
  EXPECT_OK(ContractBook::CheckSchemaVersion(c, 2));
  EXPECT_THAT(ContractBook::CheckSchemaVersion(c, 3),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("schema version 3 of mobility.bike-counts is not allowed by "
                                 "contract bikes-1 (allowed: 1, 2)")));
  struct Case {
    const char* consumer;
    const char* dataset;
    const char* id;
    bool raw;
    const char* reason;
  } cases[] = {
      {"amersfoort", "mobility.bike-counts", "nope", true,
       "no contract 'nope' is known to 'groningen'"},
      {"enschede", "mobility.bike-counts", "bikes-1", true,
       "is for consumer 'amersfoort', not 'enschede'"},
      {"amersfoort", "parking.occupancy", "bikes-1", true,
       "covers dataset mobility.bike-counts, not parking.occupancy"},
      {"amersfoort", "parking.occupancy", "parking-agg", true, "allows aggregates only"},
      {"amersfoort", "mobility.bike-counts", "old", true, "contract old:"},
      {"amersfoort", "mobility.bike-counts", "half", true,
       "not signed by the consumer 'amersfoort'"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.id);
    EXPECT_THAT(book_->ForSubscribe(k.consumer, k.dataset, k.id, k.raw, now_),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr(k.reason)));
  }
  EXPECT_OK(
      book_->ForSubscribe("amersfoort", "parking.occupancy", "parking-agg", false, now_).status())
      << "aggregates under an aggregate-only contract";
  std::vector<trust::Contract> listed = book_->ForConsumer("amersfoort", now_);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_TRUE(book_->ForConsumer("enschede", now_).empty());
}

TEST_F(ContractsTest, AViewNeedsAnAggregateOnlyContractNamingItAndItsDefinition) {
  const std::string current(64, 'c'), old(64, 'b');
  Contract("bikes-view", "mobility.bike-counts", trust::Access::kAggregateOnly,
           now_ - absl::Hours(1), now_ + absl::Hours(5), true,
           trust::ViewGrant{"quarter-municipality", {old, current}});
  Contract("bikes-agg", "mobility.bike-counts", trust::Access::kAggregateOnly,
           now_ - absl::Hours(1), now_ + absl::Hours(5));
  Contract("bikes-raw", "mobility.bike-counts", trust::Access::kRaw, now_ - absl::Hours(1),
           now_ + absl::Hours(5));
  EXPECT_OK(book_
                ->ForView("amersfoort", "mobility.bike-counts", "quarter-municipality", current,
                          "bikes-view", now_)
                .status());
  EXPECT_THAT(
      book_->ForView("amersfoort", "mobility.bike-counts", "day-city", current, "bikes-view", now_),
      StatusIs(absl::StatusCode::kPermissionDenied,
               HasSubstr("grants view 'quarter-municipality', not 'day-city'")));
  EXPECT_THAT(
      book_->ForView("amersfoort", "mobility.bike-counts", "quarter-municipality",
                     std::string(64, 'd'), "bikes-view", now_),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("a new contract must be signed")));
  for (const char* id : {"bikes-agg", "bikes-raw"}) {
    EXPECT_THAT(book_->ForView("amersfoort", "mobility.bike-counts", "quarter-municipality",
                               current, id, now_),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("grants no view")))
        << id;
  }
  EXPECT_THAT(book_->ForSubscribe("amersfoort", "mobility.bike-counts", "bikes-view", true, now_),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("allows aggregates only")))
      << "raw stays refused under a view contract";
  EXPECT_THAT(book_->ForView("enschede", "mobility.bike-counts", "quarter-municipality", current,
                             "bikes-view", now_),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not 'enschede'")));
}

TEST_F(ContractsTest, ARevocationFileTakesEffectWithoutARestart) {
  trust::SignedContract c = Contract("bikes-1", "mobility.bike-counts", trust::Access::kRaw,
                                     now_ - absl::Hours(1), now_ + absl::Hours(5));
  ASSERT_OK(
      book_->ForSubscribe("amersfoort", "mobility.bike-counts", "bikes-1", true, now_).status());
  ASSERT_OK_AND_ASSIGN(
      trust::SignedRevocation r,
      trust::RevokeContract(c.contract, "amersfoort", keys_.at("amersfoort"), "pilot ended", now_));
  std::ofstream(dir_ + "/revocations/bikes-1.json") << r.ToFileText();
  EXPECT_THAT(book_->ForSubscribe("amersfoort", "mobility.bike-counts", "bikes-1", true,
                                  now_ + absl::Seconds(1)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("contract bikes-1 was revoked by 'amersfoort' at")));
  // A revocation signed by someone who is not a party is not one.
  ASSERT_OK_AND_ASSIGN(
      trust::SignedRevocation forged,
      trust::RevokeContract(c.contract, "amersfoort", keys_.at("enschede"), "", now_));
  std::filesystem::remove(dir_ + "/revocations/bikes-1.json");
  std::ofstream(dir_ + "/revocations/forged.json") << forged.ToFileText();
  EXPECT_OK(book_
                ->ForSubscribe("amersfoort", "mobility.bike-counts", "bikes-1", true,
                               now_ + absl::Seconds(1))
                .status());
  std::ofstream(dir_ + "/contracts/broken.json") << "{";
  EXPECT_THAT(book_->problems(), ::testing::Contains(HasSubstr("broken.json")));
}

// A live stream's re-check may use a scan up to `max_age` old (one scan shared by every stream);
// a call without it — a new Subscribe — always scans, and sees a revocation written just before.
TEST_F(ContractsTest, ARecheckMayUseARecentScanANewSubscribeNeverDoes) {
  trust::SignedContract c = Contract("bikes-1", "mobility.bike-counts", trust::Access::kRaw,
                                     now_ - absl::Hours(1), now_ + absl::Hours(5));
  ASSERT_OK(
      book_->ForSubscribe("amersfoort", "mobility.bike-counts", "bikes-1", true, now_).status());
  ASSERT_OK_AND_ASSIGN(
      trust::SignedRevocation r,
      trust::RevokeContract(c.contract, "amersfoort", keys_.at("amersfoort"), "pilot ended", now_));
  std::ofstream(dir_ + "/revocations/bikes-1.json") << r.ToFileText();
  // The scan of a moment ago is younger than an hour: the revocation is not seen yet.
  EXPECT_OK(book_
                ->ForSubscribe("amersfoort", "mobility.bike-counts", "bikes-1", true, now_,
                               absl::Hours(1))
                .status());
  // A scan older than a nanosecond is stale: scanned again, revoked.
  absl::SleepFor(absl::Milliseconds(2));
  EXPECT_THAT(book_->ForSubscribe("amersfoort", "mobility.bike-counts", "bikes-1", true, now_,
                                  absl::Nanoseconds(1)),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("was revoked")));
  std::filesystem::remove(dir_ + "/revocations/bikes-1.json");
  ASSERT_OK(
      book_->ForSubscribe("amersfoort", "mobility.bike-counts", "bikes-1", true, now_).status());
  std::ofstream(dir_ + "/revocations/bikes-1.json") << r.ToFileText();
  // Without max_age (a new Subscribe), at once.
  EXPECT_THAT(book_->ForSubscribe("amersfoort", "mobility.bike-counts", "bikes-1", true, now_),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("was revoked")));
}

}  // namespace
}  // namespace node
}  // namespace polder
