#include "common/trust/keys.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>

#include "common/status/status_matchers.h"
#include "common/tls/openssl_ptr.h"
#include "common/trust/jws.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace trust {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

std::string TmpPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

TEST(KeysTest, Rfc8037ThumbprintAndSignatureVectors) {
  // RFC 8037 Appendix A.1-A.4: the Ed25519 key, its RFC 7638 thumbprint and a JWS.
  ASSERT_OK_AND_ASSIGN(PublicKey key,
                       PublicKey::FromRaw("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"));
  EXPECT_EQ(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  ASSERT_OK_AND_ASSIGN(
      std::string sig,
      Base64UrlDecode("hgyY0il_MGCjP0JzlnLWG1PPOt7-"
                      "09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"));
  EXPECT_OK(key.Verify("eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc", sig));
  EXPECT_THAT(key.Verify("eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmd", sig),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(KeysTest, GeneratedKeysSignVerifyAndRoundTripThroughPem) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate());
  ASSERT_OK_AND_ASSIGN(std::string sig, key.Sign("directory v7"));
  EXPECT_OK(key.public_key().Verify("directory v7", sig));
  EXPECT_THAT(key.public_key().Verify("directory v8", sig),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(PublicKey from_pem, PublicKey::FromPem(key.public_key().Pem()));
  EXPECT_EQ(from_pem.kid(), key.public_key().kid());
  ASSERT_OK_AND_ASSIGN(PublicKey from_raw, PublicKey::FromRaw(key.public_key().RawBase64Url()));
  EXPECT_EQ(from_raw.kid(), key.public_key().kid());
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate());
  EXPECT_NE(other.public_key().kid(), key.public_key().kid());
  EXPECT_THAT(other.public_key().Verify("directory v7", sig),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(KeysTest, KeyFilesAreWrittenPrivatelyAndNeverOverwritten) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate());
  const std::string path = TmpPath("signing.key");
  ASSERT_OK(key.WriteFile(path));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(key.WriteFile(path), StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(PrivateKey read, PrivateKey::ReadFile(path));
  EXPECT_EQ(read.public_key().kid(), key.public_key().kid());
  chmod(path.c_str(), 0644);
  EXPECT_THAT(PrivateKey::ReadFile(path),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("chmod 600")));
  // Read-only by the process's own group (a Kubernetes Secret under the pod's fsGroup): read.
  chmod(path.c_str(), 0440);
  EXPECT_OK(PrivateKey::ReadFile(path).status());
  chmod(path.c_str(), 0660);
  EXPECT_THAT(PrivateKey::ReadFile(path),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("mode 0660")));
}

// The rule itself, for groups the test's sandbox cannot make (it maps one group only).
TEST(KeysTest, PrivateFilesMayBeReadByTheProcesssOwnGroupOnly) {
  EXPECT_TRUE(PrivateFileModeAllowed(S_IFREG | 0600, 4242, 65532));
  EXPECT_TRUE(PrivateFileModeAllowed(S_IFREG | 0400, 4242, 65532));
  EXPECT_TRUE(PrivateFileModeAllowed(S_IFREG | 0440, 65532, 65532));
  EXPECT_TRUE(PrivateFileModeAllowed(S_IFREG | 0640, 65532, 65532));
  EXPECT_FALSE(PrivateFileModeAllowed(S_IFREG | 0440, 4242, 65532)) << "another group";
  EXPECT_FALSE(PrivateFileModeAllowed(S_IFREG | 0660, 65532, 65532)) << "group writes";
  EXPECT_FALSE(PrivateFileModeAllowed(S_IFREG | 0620, 65532, 65532)) << "group writes";
  EXPECT_FALSE(PrivateFileModeAllowed(S_IFREG | 0604, 65532, 65532)) << "others read";
  EXPECT_FALSE(PrivateFileModeAllowed(S_IFREG | 0602, 65532, 65532)) << "others write";
  EXPECT_FALSE(PrivateFileModeAllowed(S_IFREG | 0444, 65532, 65532)) << "others read";
}

TEST(KeysTest, RejectsOtherKeyTypesAndJunk) {
  ssl::UniquePtr<EVP_PKEY> ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ASSERT_NE(ec, nullptr);
  ssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  ASSERT_NE(bio, nullptr);
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), ec.get(), nullptr, nullptr, 0, nullptr, nullptr),
            1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  std::string pem(data, len);
  EXPECT_THAT(PrivateKey::FromPem(pem),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Ed25519")));
  EXPECT_THAT(PrivateKey::FromPem("not a key"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PublicKey::FromRaw("abc="), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PublicKey::FromRaw("AAAA"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("32 bytes")));
}

TEST(JwsTest, DetachedSignatureVerifiesAndNamesEachFailure) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate());
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate());
  absl::Time now = absl::FromUnixSeconds(1800000000);
  ASSERT_OK_AND_ASSIGN(std::string jws,
                       SignDetached(key, R"({"serial":7})", "polder-directory", now));
  EXPECT_THAT(jws, HasSubstr(".."));
  ASSERT_OK_AND_ASSIGN(
      JwsHeader h, VerifyDetached(jws, R"({"serial":7})", key.public_key(), "polder-directory"));
  EXPECT_EQ(h.kid, key.public_key().kid());
  EXPECT_EQ(h.signed_at, now);

  EXPECT_THAT(
      VerifyDetached(jws, R"({"serial":8})", key.public_key(), "polder-directory"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match the document")));
  EXPECT_THAT(VerifyDetached(jws, R"({"serial":7})", other.public_key(), "polder-directory"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("names key")));
  EXPECT_THAT(VerifyDetached(jws, R"({"serial":7})", key.public_key(), "polder-contract"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a 'polder-contract'")));
  // One flipped byte of the signature.
  std::string flipped = jws;
  flipped[flipped.size() - 3] = flipped[flipped.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_THAT(VerifyDetached(flipped, R"({"serial":7})", key.public_key(), "polder-directory"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseDetachedHeader("abc.def.ghi"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("detached")));
  // alg "none" and other algorithms are refused before any key is used.
  std::string none = Base64UrlEncode(R"({"alg":"none","iat":1,"kid":"x","typ":"t"})") + "..AA";
  EXPECT_THAT(ParseDetachedHeader(none),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'none' is not allowed")));
}

TEST(JwsTest, MalformedHeadersAreInvalidArgument) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  for (const std::string& header : {
           std::string(R"({"alg":"EdDSA","iat":18446744073709551615,"kid":"k","typ":"t"})"),
           std::string(R"({"alg":"EdDSA","iat":9223372036854775808,"kid":"k","typ":"t"})"),
           std::string(R"({"alg":"EdDSA","iat":1.5,"kid":"k","typ":"t"})"),
           std::string(R"({"alg":"EdDSA","iat":"1","kid":"k","typ":"t"})"),
           std::string(R"({"alg":"EdDSA","iat":null,"kid":"k","typ":"t"})"),
           std::string(R"({"alg":"EdDSA","iat":1,"kid":7,"typ":"t"})"),
           std::string(R"({"alg":["EdDSA"],"iat":1,"kid":"k","typ":"t"})"),
           std::string(R"({"iat":1,"kid":"k","typ":"t"})"),
           std::string(R"(["alg","EdDSA"])"),
           std::string("null"),
           std::string("{\"alg\":\"EdDSA\""),
           std::string("{\"alg\":\"Ed\xff\xfe\"}"),
           deep,
       }) {
    EXPECT_THAT(ParseDetachedHeader(Base64UrlEncode(header) + "..AA"),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << header.substr(0, 80);
  }
  EXPECT_THAT(ParseDetachedHeader(Base64UrlEncode(R"({"alg":"EdDSA","iat":18446744073709551615,)"
                                                  R"("kid":"k","typ":"t"})") +
                                  "..AA"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("iat is out of range")));
  // The edges of the range are read exactly.
  ASSERT_OK_AND_ASSIGN(JwsHeader latest,
                       ParseDetachedHeader(Base64UrlEncode(R"({"alg":"EdDSA",)"
                                                           R"("iat":9223372036854775807,)"
                                                           R"("kid":"k","typ":"t"})") +
                                           "..AA"));
  EXPECT_EQ(latest.signed_at, absl::FromUnixSeconds(std::numeric_limits<int64_t>::max()));
  ASSERT_OK_AND_ASSIGN(
      JwsHeader earliest,
      ParseDetachedHeader(Base64UrlEncode(R"({"alg":"EdDSA","iat":-1,"kid":"k","typ":"t"})") +
                          "..AA"));
  EXPECT_EQ(earliest.signed_at, absl::FromUnixSeconds(-1));
}

}  // namespace
}  // namespace trust
}  // namespace polder
