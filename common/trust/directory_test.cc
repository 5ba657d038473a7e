#include "common/trust/directory.h"

#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status/status_matchers.h"
#include "common/trust/contract.h"
#include "common/trust/document.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace trust {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1800000000);  // 2027-01-15T08:00:00Z
const absl::Duration kSkew = absl::Minutes(5);

std::string Thumb(char c) { return "sha256:" + Base64UrlEncode(std::string(32, c)); }

class TrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    operator_key_ = *PrivateKey::Generate();
    for (const char* peer : {"groningen", "amersfoort", "enschede"}) {
      keys_.emplace(peer, *PrivateKey::Generate());
    }
    directory_.directory = MakeDirectory(7);
    ASSERT_OK(SignDirectory(&directory_, operator_key_, kNow));
    pins_ = {PinnedKey{operator_key_.public_key(), kNow - absl::Hours(24),
                       kNow + absl::Hours(24 * 365)}};
  }

  Directory MakeDirectory(int64_t serial) {
    Directory d;
    d.federation = "nl-smartcity";
    d.serial = serial;
    d.issued_at = kNow;
    d.valid_from = kNow - absl::Hours(1);
    d.valid_until = kNow + absl::Hours(24 * 30);
    char c = 'a';
    for (const auto& [peer, key] : keys_) {
      PeerEntry p;
      p.id = peer;
      p.endpoint = peer + ".polder.example:8443";
      p.tls_key_thumbprints = {Thumb(c++)};
      p.signing_keys.push_back({key.public_key().kid(), key.public_key().RawBase64Url(),
                                kNow - absl::Hours(24), kNow + absl::Hours(24 * 365)});
      d.peers.push_back(p);
    }
    return d;
  }

  SignedContract MakeContract() {
    SignedContract c;
    c.contract.id = "groningen-amersfoort-bikes-1";
    c.contract.federation = "nl-smartcity";
    c.contract.provider = "groningen";
    c.contract.consumer = "amersfoort";
    c.contract.dataset = "mobility.bike-counts";
    c.contract.schema_versions = {1, 2};
    c.contract.purpose = "regional cycling dashboard";
    c.contract.valid_from = kNow - absl::Hours(1);
    c.contract.valid_until = kNow + absl::Hours(24 * 90);
    return c;
  }

  std::string StatePath() { return std::string(std::getenv("TEST_TMPDIR")) + "/directory.json"; }

  PrivateKey operator_key_ = *PrivateKey::Generate();
  std::map<std::string, PrivateKey> keys_;
  SignedDirectory directory_;
  std::vector<PinnedKey> pins_;
};

TEST_F(TrustTest, SignedDirectoryRoundTripsAndVerifies) {
  ASSERT_OK_AND_ASSIGN(SignedDirectory parsed, SignedDirectory::Parse(directory_.ToFileText()));
  EXPECT_EQ(parsed.directory.ToJson(), directory_.directory.ToJson());
  EXPECT_OK(VerifyDirectory(parsed, pins_, kNow, kSkew));
  EXPECT_OK(parsed.directory.CheckTlsKey(
      "groningen", parsed.directory.FindPeer("groningen")->tls_key_thumbprints[0]));
  EXPECT_THAT(parsed.directory.CheckTlsKey("groningen", Thumb('z')),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not one the directory")));
  EXPECT_THAT(parsed.directory.CheckTlsKey("utrecht", Thumb('a')),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("'utrecht' is not in the federation directory")));
}

TEST_F(TrustTest, DirectoryChangedAfterSigningIsRejected) {
  std::string text = directory_.ToFileText();
  std::string tampered =
      absl::StrReplaceAll(text, {{"groningen.polder.example:8443", "evil.example:8443"}});
  ASSERT_NE(tampered, text);
  ASSERT_OK_AND_ASSIGN(SignedDirectory parsed, SignedDirectory::Parse(tampered));
  EXPECT_THAT(
      VerifyDirectory(parsed, pins_, kNow, kSkew),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("does not match the document")));
}

TEST_F(TrustTest, DirectorySignedByAnUnpinnedKeyIsRejected) {
  SignedDirectory forged;
  forged.directory = directory_.directory;
  ASSERT_OK_AND_ASSIGN(PrivateKey mallory, PrivateKey::Generate());
  ASSERT_OK(SignDirectory(&forged, mallory, kNow));
  EXPECT_THAT(VerifyDirectory(forged, pins_, kNow, kSkew),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not a pinned operator key")));
  SignedDirectory unsigned_dir;
  unsigned_dir.directory = directory_.directory;
  EXPECT_THAT(VerifyDirectory(unsigned_dir, pins_, kNow, kSkew),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not signed")));
}

TEST_F(TrustTest, ExpiredOperatorKeyAndExpiredDirectoryAreRejected) {
  std::vector<PinnedKey> expired = {
      PinnedKey{operator_key_.public_key(), kNow - absl::Hours(48), kNow - absl::Hours(1)}};
  EXPECT_THAT(VerifyDirectory(directory_, expired, kNow, kSkew),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expired at")));
  // During a rotation a second, current pin keeps it valid.
  ASSERT_OK_AND_ASSIGN(PrivateKey next, PrivateKey::Generate());
  SignedDirectory both = directory_;
  ASSERT_OK(SignDirectory(&both, next, kNow));
  expired.push_back(PinnedKey{next.public_key(), kNow - absl::Hours(1), kNow + absl::Hours(24)});
  EXPECT_OK(VerifyDirectory(both, expired, kNow, kSkew));
  EXPECT_THAT(VerifyDirectory(directory_, pins_, kNow + absl::Hours(24 * 31), kSkew),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expired at")));
}

TEST_F(TrustTest, MalformedDirectoriesNameTheField) {
  nlohmann::json j = nlohmann::json::parse(directory_.ToFileText());
  auto expect_error = [&](nlohmann::json doc, const std::string& what) {
    EXPECT_THAT(SignedDirectory::Parse(doc.dump()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(what)));
  };
  nlohmann::json bad = j;
  bad["directory"]["peers"][0]["tls_key_thumbprints"][0] = "md5:abc";
  expect_error(bad, "directory.peers[0].tls_key_thumbprints[0]");
  bad = j;
  bad["directory"]["peers"][1]["signing_keys"][0]["kid"] = "not-the-kid";
  expect_error(bad, "directory.peers[1].signing_keys[0].kid");
  bad = j;
  bad["directory"]["peers"][1]["id"] = bad["directory"]["peers"][0]["id"];
  expect_error(bad, "is listed twice");
  bad = j;
  bad["directory"]["serail"] = 8;
  expect_error(bad, "directory.serail: unknown field");
  bad = j;
  bad["directory"]["peers"][0]["id"] = "Groningen";
  expect_error(bad, "is not a peer id");
  bad = j;
  bad["directory"]["valid_until"] = "tomorrow";
  expect_error(bad, "directory.valid_until");
  // absl's parser takes these too; a directory is never valid forever.
  bad = j;
  bad["directory"]["valid_until"] = "infinite-future";
  expect_error(bad, "directory.valid_until");
  bad = j;
  bad["directory"]["valid_from"] = "infinite-past";
  expect_error(bad, "directory.valid_from");
  EXPECT_THAT(SignedDirectory::Parse("{not json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid JSON")));
}

TEST_F(TrustTest, StoreRefusesRollbackKeepsLastGoodAndWarnsBeforeExpiry) {
  absl::Time now = kNow;
  DirectoryStore::Options options;
  options.state_path = StatePath();
  options.pins = pins_;
  options.clock = [&now] { return now; };
  ASSERT_OK_AND_ASSIGN(auto store, DirectoryStore::Open(options));
  EXPECT_EQ(store->current(), nullptr);
  EXPECT_THAT(store->CheckExpiry(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                             HasSubstr("no federation directory")));
  ASSERT_OK(store->Update(directory_));
  EXPECT_EQ(store->current()->serial, 7);
  EXPECT_OK(store->Update(directory_)) << "the same directory again is a no-op";

  SignedDirectory older;
  older.directory = MakeDirectory(6);
  ASSERT_OK(SignDirectory(&older, operator_key_, kNow));
  EXPECT_THAT(store->Update(older),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("rollback refused")));
  SignedDirectory same_serial;
  same_serial.directory = MakeDirectory(7);
  same_serial.directory.peers.pop_back();
  ASSERT_OK(SignDirectory(&same_serial, operator_key_, kNow));
  EXPECT_THAT(store->Update(same_serial),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("needs a new serial")));
  EXPECT_EQ(store->current()->peers.size(), 3u);

  SignedDirectory newer;
  newer.directory = MakeDirectory(8);
  ASSERT_OK(SignDirectory(&newer, operator_key_, kNow));
  ASSERT_OK(store->Update(newer));

  // A restarted service finds the last good directory on disk and still refuses older ones.
  ASSERT_OK_AND_ASSIGN(auto reopened, DirectoryStore::Open(options));
  ASSERT_NE(reopened->current(), nullptr);
  EXPECT_EQ(reopened->current()->serial, 8);
  EXPECT_THAT(reopened->Update(directory_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("older than serial 8")));

  EXPECT_OK(reopened->CheckExpiry());
  now = kNow + absl::Hours(24 * 25);  // Five days before valid_until.
  EXPECT_THAT(reopened->CheckExpiry(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expires in")));
  now = kNow + absl::Hours(24 * 31);
  EXPECT_THAT(reopened->CheckExpiry(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expired at")));
}

TEST_F(TrustTest, StoreRejectsATamperedStateFile) {
  DirectoryStore::Options options;
  options.state_path = StatePath() + ".tampered";
  options.pins = pins_;
  options.clock = [] { return kNow; };
  std::string text =
      absl::StrReplaceAll(directory_.ToFileText(), {{"\"serial\": 7", "\"serial\": 70"}});
  ASSERT_OK(WriteFileAtomically(options.state_path, text, 0644));
  EXPECT_THAT(DirectoryStore::Open(options),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("last good directory")));
}

TEST_F(TrustTest, ContractSignedByBothPartiesVerifies) {
  SignedContract c = MakeContract();
  ASSERT_OK(SignContract(&c, "groningen", keys_.at("groningen"), kNow));
  ASSERT_OK(SignContract(&c, "amersfoort", keys_.at("amersfoort"), kNow));
  ASSERT_OK_AND_ASSIGN(SignedContract parsed, SignedContract::Parse(c.ToFileText()));
  EXPECT_OK(VerifyContract(parsed, directory_.directory, kNow, kSkew));
  EXPECT_THAT(SignContract(&c, "enschede", keys_.at("enschede"), kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a party")));
  EXPECT_THAT(SignContract(&c, "groningen", keys_.at("groningen"), kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("already signed")));
}

TEST_F(TrustTest, EachContractFailureHasItsOwnReason) {
  SignedContract one = MakeContract();
  ASSERT_OK(SignContract(&one, "groningen", keys_.at("groningen"), kNow));
  EXPECT_THAT(VerifyContract(one, directory_.directory, kNow, kSkew),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("not signed by the consumer 'amersfoort' (only by 'groningen')")));

  // Swapped signer: amersfoort's key used for the signature labelled groningen.
  SignedContract swapped = MakeContract();
  ASSERT_OK(SignContract(&swapped, "groningen", keys_.at("amersfoort"), kNow));
  ASSERT_OK(SignContract(&swapped, "amersfoort", keys_.at("amersfoort"), kNow));
  EXPECT_THAT(VerifyContract(swapped, directory_.directory, kNow, kSkew),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("not a signing key the directory lists for 'groningen'")));

  // Changed after signing (one byte of the purpose).
  SignedContract both = MakeContract();
  ASSERT_OK(SignContract(&both, "groningen", keys_.at("groningen"), kNow));
  ASSERT_OK(SignContract(&both, "amersfoort", keys_.at("amersfoort"), kNow));
  SignedContract changed = both;
  changed.contract.purpose[0] = 'R';
  EXPECT_THAT(
      VerifyContract(changed, directory_.directory, kNow, kSkew),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("does not match the document")));

  // A signer key that has expired.
  Directory expired_keys = directory_.directory;
  for (PeerEntry& p : expired_keys.peers) {
    if (p.id == "amersfoort") p.signing_keys[0].valid_until = kNow - absl::Hours(2);
  }
  EXPECT_THAT(VerifyContract(both, expired_keys, kNow, kSkew),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("expired at")));

  // A third party's signature.
  SignedContract extra = both;
  extra.signatures.push_back({"enschede", extra.signatures[0].jws});
  EXPECT_THAT(VerifyContract(extra, directory_.directory, kNow, kSkew),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not a party")));

  // Outside its validity window.
  EXPECT_THAT(VerifyContract(both, directory_.directory, kNow + absl::Hours(24 * 91), kSkew),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expired at")));
  EXPECT_THAT(VerifyContract(both, directory_.directory, kNow - absl::Hours(3), kSkew),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not valid before")));
}

TEST_F(TrustTest, MalformedContractsNameTheField) {
  nlohmann::json j = MakeContract().contract.ToJson();
  j["access"] = "everything";
  EXPECT_THAT(Contract::FromJson(j),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("contract.access")));
  j = MakeContract().contract.ToJson();
  j["consumer"] = "groningen";
  EXPECT_THAT(Contract::FromJson(j),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must differ")));
  j = MakeContract().contract.ToJson();
  j["dataset"] = "bikes";
  EXPECT_THAT(Contract::FromJson(j),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("contract.dataset")));
  j = MakeContract().contract.ToJson();
  j["schema_versions"] = nlohmann::json::array();
  EXPECT_THAT(Contract::FromJson(j),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("schema_versions")));
  j = MakeContract().contract.ToJson();
  j["start_position"] = "yesterday";
  EXPECT_THAT(Contract::FromJson(j),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("start_position")));
}

TEST_F(TrustTest, AggregateOnlyContractsGrantOneViewByItsDefinitionHashes) {
  const std::string hash(64, 'a');
  Contract c = MakeContract().contract;
  EXPECT_FALSE(c.ToJson().contains("view")) << "contracts without a view hash as before";
  c.access = Access::kAggregateOnly;
  c.view = ViewGrant{"quarter-municipality", {hash}};
  ASSERT_OK_AND_ASSIGN(Contract back, Contract::FromJson(c.ToJson()));
  ASSERT_TRUE(back.view.has_value());
  EXPECT_EQ(back.view->id, "quarter-municipality");
  EXPECT_EQ(back.view->definition_hashes, std::vector<std::string>{hash});
  EXPECT_NE(*back.Hash(), *MakeContract().contract.Hash());

  auto refused = [&](nlohmann::json j, const std::string& why) {
    EXPECT_THAT(Contract::FromJson(j), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(why)))
        << why;
  };
  nlohmann::json j = c.ToJson();
  j["access"] = "raw";
  refused(j, "only an aggregate-only contract grants a view");
  j = c.ToJson();
  j["view"]["definition_hashes"] = nlohmann::json::array();
  refused(j, "at least one definition hash");
  j = c.ToJson();
  j["view"]["definition_hashes"] = {"sha256:xyz"};
  refused(j, "not a hex SHA-256");
  j = c.ToJson();
  j["view"]["id"] = "Quarter";
  refused(j, "not a view id");
  j = c.ToJson();
  j["view"]["colour"] = "blue";
  refused(j, "contract.view.colour");
}

// The JSON pointer of every value in `v` below `at`.
void CollectPointers(const nlohmann::json& v, const std::string& at,
                     std::vector<std::string>* out) {
  if (!at.empty()) out->push_back(at);
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      CollectPointers(it.value(), absl::StrCat(at, "/", it.key()), out);
    }
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) CollectPointers(v[i], absl::StrCat(at, "/", i), out);
  }
}

// `text` (a stored document) with each of its values in turn replaced by a value of another
// kind or removed, and cut short at every 7th byte.
std::vector<std::string> Damaged(const std::string& text) {
  const nlohmann::json doc = nlohmann::json::parse(text);
  const nlohmann::json odd[] = {nullptr,
                                true,
                                1.5,
                                -1,
                                nlohmann::json(uint64_t{18446744073709551615u}),
                                "x",
                                nlohmann::json::array(),
                                nlohmann::json::object()};
  std::vector<std::string> pointers;
  CollectPointers(doc, "", &pointers);
  std::vector<std::string> out;
  for (const std::string& pointer : pointers) {
    const nlohmann::json::json_pointer at(pointer);
    for (const nlohmann::json& value : odd) {
      nlohmann::json changed = doc;
      changed[at] = value;
      out.push_back(changed.dump());
    }
    nlohmann::json removed = doc;
    nlohmann::json& parent = removed[at.parent_pointer()];
    if (parent.is_object()) {
      parent.erase(at.back());
    } else {
      parent.erase(static_cast<size_t>(std::atoi(at.back().c_str())));
    }
    out.push_back(removed.dump());
  }
  for (size_t n = 0; n < text.size(); n += 7) out.push_back(text.substr(0, n));
  for (const char* junk : {"", "null", "[]", "42", "\"directory\"", "{\"a\":\"\xff\"}"}) {
    out.push_back(junk);
  }
  out.push_back(std::string(100000, '[') + std::string(100000, ']'));
  out.push_back(std::string(100000, '{'));
  return out;
}

// Each damaged form parses or is INVALID_ARGUMENT (never an exception, never another error),
// and at least `min_errors` of them are refused.
template <typename Document>
void ExpectRefusedOrParsed(const std::string& text, size_t min_errors) {
  size_t errors = 0;
  for (const std::string& damaged : Damaged(text)) {
    absl::StatusCode code = Document::Parse(damaged).status().code();
    EXPECT_THAT(code, ::testing::AnyOf(absl::StatusCode::kOk, absl::StatusCode::kInvalidArgument))
        << damaged.substr(0, 200);
    if (code != absl::StatusCode::kOk) ++errors;
  }
  EXPECT_GE(errors, min_errors);
}

TEST_F(TrustTest, DamagedStoredDocumentsAreInvalidArgumentNeverExceptions) {
  ExpectRefusedOrParsed<SignedDirectory>(directory_.ToFileText(), 300);
  SignedContract c = MakeContract();
  ASSERT_OK(SignContract(&c, "groningen", keys_.at("groningen"), kNow));
  ExpectRefusedOrParsed<SignedContract>(c.ToFileText(), 100);
  ASSERT_OK_AND_ASSIGN(SignedRevocation r, RevokeContract(c.contract, "groningen",
                                                          keys_.at("groningen"), "ended", kNow));
  ExpectRefusedOrParsed<SignedRevocation>(r.ToFileText(), 50);
}

TEST_F(TrustTest, IntegersBeyondInt64AreRefusedNotWrapped) {
  nlohmann::json j = nlohmann::json::parse(directory_.ToFileText());
  j["directory"]["serial"] = uint64_t{9223372036854775808u};  // 2^63: would wrap to -2^63.
  EXPECT_THAT(SignedDirectory::Parse(j.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("directory.serial: integer is out of range")));
  j["directory"]["serial"] = int64_t{9223372036854775807};  // 2^63-1 is read as it is.
  ASSERT_OK_AND_ASSIGN(SignedDirectory max, SignedDirectory::Parse(j.dump()));
  EXPECT_EQ(max.directory.serial, std::numeric_limits<int64_t>::max());

  nlohmann::json contract = MakeContract().contract.ToJson();
  contract["schema_versions"] = {1, uint64_t{18446744073709551615u}};  // Would wrap to -1.
  EXPECT_THAT(Contract::FromJson(contract),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("contract.schema_versions[1]: integer is out of range")));
}

TEST_F(TrustTest, RevocationsAreVerifiedAgainstTheContractAndItsParties) {
  SignedContract c = MakeContract();
  ASSERT_OK(SignContract(&c, "groningen", keys_.at("groningen"), kNow));
  ASSERT_OK(SignContract(&c, "amersfoort", keys_.at("amersfoort"), kNow));
  ASSERT_OK_AND_ASSIGN(
      SignedRevocation r,
      RevokeContract(c.contract, "amersfoort", keys_.at("amersfoort"), "project ended", kNow));
  ASSERT_OK_AND_ASSIGN(SignedRevocation parsed, SignedRevocation::Parse(r.ToFileText()));
  EXPECT_OK(VerifyRevocation(parsed, c.contract, directory_.directory, kSkew));
  EXPECT_THAT(RevokeContract(c.contract, "enschede", keys_.at("enschede"), "", kNow),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a party")));
  SignedContract other = MakeContract();
  other.contract.id = "another";
  EXPECT_THAT(VerifyRevocation(parsed, other.contract, directory_.directory, kSkew),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("revocation names contract")));
  SignedRevocation forged = parsed;
  forged.revocation.revoked_by = "groningen";
  EXPECT_THAT(VerifyRevocation(forged, c.contract, directory_.directory, kSkew),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

}  // namespace
}  // namespace trust
}  // namespace polder
