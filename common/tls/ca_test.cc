#include "common/tls/ca.h"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status/status_matchers.h"
#include "common/testing/commands.h"
#include "common/tls/ca_testing.h"
#include "common/tls/certificate.h"
#include "common/tls/openssl_ptr.h"
#include "common/tls/pem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace tls {
namespace {

using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string TmpPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

// Writes `content` to $TEST_TMPDIR/<name> and returns the path.
std::string WriteTmp(const std::string& name, const std::string& content) {
  std::string path = TmpPath(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return path;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr.
};

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  result.exit_code = polder::testing::RunCommand(command, &result.output);
  return result;
}

// `openssl verify` of `leaf` against `root`, with `issuing` as the untrusted intermediate and
// RFC 5280 strictness; `extra` adds options such as -crl_check.
CommandResult Verify(const std::string& root, const std::string& issuing, const std::string& leaf,
                     const std::string& extra = "") {
  return RunCommand(absl::StrCat("/usr/bin/openssl verify -x509_strict ", extra, " -CAfile '", root,
                                 "' -untrusted '", issuing, "' '", leaf, "'"));
}

using testing::Chain;
using testing::IssuingOptions;
using testing::MakeChain;
using testing::PeerOptions;
using testing::RootOptions;

// The OpenSSL view of a certificate, for checks the library's own parser does not cover.
ssl::UniquePtr<X509> ToX509(const std::string& pem) {
  absl::StatusOr<ssl::UniquePtr<X509>> cert = LoadCertificate(pem, "certificate");
  EXPECT_TRUE(cert.ok()) << cert.status();
  return cert.ok() ? std::move(*cert) : nullptr;
}

// Criticality of extension `nid`: 1, 0, or -1 when absent.
int Criticality(X509* x, int nid) {
  int index = X509_get_ext_by_NID(x, nid, -1);
  if (index < 0) return -1;
  return X509_EXTENSION_get_critical(X509_get_ext(x, index));
}

TEST(CaTest, ChainVerifiesWithOpenSslAndOtherRootsDoNot) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  std::string root = WriteTmp("root.pem", chain.root.cert_pem);
  std::string issuing = WriteTmp("issuing.pem", chain.issuing.cert_pem);
  std::string peer = WriteTmp("peer.pem", chain.peer.cert_pem);

  CommandResult ok = Verify(root, issuing, peer);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_THAT(ok.output, HasSubstr("peer.pem: OK"));
  // Usable for both ends of mutual TLS.
  for (const char* purpose : {"sslserver", "sslclient"}) {
    CommandResult r = Verify(root, issuing, peer, absl::StrCat("-purpose ", purpose));
    EXPECT_EQ(r.exit_code, 0) << purpose << ": " << r.output;
  }

  // A complete chain from another root does not verify against ours.
  Chain other;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &other));
  std::string other_issuing = WriteTmp("other_issuing.pem", other.issuing.cert_pem);
  std::string other_peer = WriteTmp("other_peer.pem", other.peer.cert_pem);
  CommandResult foreign = Verify(root, other_issuing, other_peer);
  EXPECT_NE(foreign.exit_code, 0) << foreign.output;
  EXPECT_THAT(foreign.output, HasSubstr("verification failed"));
  // Nor does our peer through their issuing CA.
  CommandResult mixed = Verify(root, other_issuing, peer);
  EXPECT_NE(mixed.exit_code, 0) << mixed.output;
}

TEST(CaTest, EvilRootWithSameSubjectDoesNotVerifyGenuineChain) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  ASSERT_OK_AND_ASSIGN(KeyAndCert evil, CreateRootCa(RootOptions()));
  ASSERT_OK_AND_ASSIGN(CertificateInfo genuine_info, ParseCertificate(chain.root.cert_pem));
  ASSERT_OK_AND_ASSIGN(CertificateInfo evil_info, ParseCertificate(evil.cert_pem));
  ASSERT_EQ(evil_info.subject, genuine_info.subject);
  ASSERT_NE(evil_info.key_thumbprint, genuine_info.key_thumbprint);

  std::string issuing = WriteTmp("issuing.pem", chain.issuing.cert_pem);
  std::string peer = WriteTmp("peer.pem", chain.peer.cert_pem);
  CommandResult genuine = Verify(WriteTmp("root.pem", chain.root.cert_pem), issuing, peer);
  EXPECT_EQ(genuine.exit_code, 0) << genuine.output;
  CommandResult r = Verify(WriteTmp("evil.pem", evil.cert_pem), issuing, peer);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("verification failed"));
}

TEST(CaTest, CertificatesCarryTheDocumentedExtensions) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  auto root = ToX509(chain.root.cert_pem);
  auto issuing = ToX509(chain.issuing.cert_pem);
  auto peer = ToX509(chain.peer.cert_pem);
  ASSERT_TRUE(root && issuing && peer);

  EXPECT_NE(X509_get_extension_flags(root.get()) & EXFLAG_CA, 0u);
  EXPECT_EQ(X509_get_pathlen(root.get()), -1);
  EXPECT_EQ(X509_get_key_usage(root.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(Criticality(root.get(), NID_basic_constraints), 1);
  EXPECT_EQ(Criticality(root.get(), NID_key_usage), 1);
  ASSERT_NE(X509_get0_subject_key_id(root.get()), nullptr);

  EXPECT_NE(X509_get_extension_flags(issuing.get()) & EXFLAG_CA, 0u);
  EXPECT_EQ(X509_get_pathlen(issuing.get()), 0);
  EXPECT_EQ(X509_get_key_usage(issuing.get()),
            static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(Criticality(issuing.get(), NID_basic_constraints), 1);
  ASSERT_NE(X509_get0_authority_key_id(issuing.get()), nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(issuing.get()),
                                  X509_get0_subject_key_id(root.get())),
            0);

  EXPECT_EQ(X509_get_extension_flags(peer.get()) & EXFLAG_CA, 0u);
  EXPECT_EQ(Criticality(peer.get(), NID_basic_constraints), 1);  // Present: CA:FALSE.
  EXPECT_EQ(X509_get_key_usage(peer.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(Criticality(peer.get(), NID_key_usage), 1);
  EXPECT_EQ(X509_get_extended_key_usage(peer.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  ASSERT_NE(X509_get0_subject_key_id(peer.get()), nullptr);
  ASSERT_NE(X509_get0_authority_key_id(peer.get()), nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(peer.get()),
                                  X509_get0_subject_key_id(issuing.get())),
            0);
  EXPECT_EQ(X509_get_version(peer.get()), X509_VERSION_3);
  EXPECT_EQ(X509_get_signature_nid(peer.get()), NID_ecdsa_with_SHA256);

  // Random positive serials of at most 128 bits, different per certificate.
  ASSERT_OK_AND_ASSIGN(KeyAndCert second,
                       IssuePeerCertificate(chain.issuing, PeerOptions("utrecht")));
  ASSERT_OK_AND_ASSIGN(CertificateInfo a, ParseCertificate(chain.peer.cert_pem));
  ASSERT_OK_AND_ASSIGN(CertificateInfo b, ParseCertificate(second.cert_pem));
  EXPECT_NE(a.serial_hex, b.serial_hex);
  ssl::UniquePtr<BIGNUM> serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(peer.get()), nullptr));
  ASSERT_NE(serial, nullptr);
  EXPECT_FALSE(BN_is_negative(serial.get()));
  EXPECT_FALSE(BN_is_zero(serial.get()));
  EXPECT_LE(BN_num_bits(serial.get()), 128);
  EXPECT_GE(BN_num_bits(serial.get()), 64);  // Fails with probability 2^-64.

  // The private key is unencrypted PKCS#8.
  EXPECT_THAT(chain.peer.key_pem, StartsWith("-----BEGIN PRIVATE KEY-----\n"));
}

TEST(CaTest, ValidityOfAFewSecondsWorksAndExpires) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  const absl::Time now = absl::Now();
  PeerCertOptions options = PeerOptions("short-lived");
  options.validity = absl::Seconds(3);
  options.backdate = absl::ZeroDuration();
  options.now = now;
  ASSERT_OK_AND_ASSIGN(KeyAndCert peer, IssuePeerCertificate(chain.issuing, options));
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(peer.cert_pem));
  EXPECT_EQ(info.not_before, absl::FromUnixSeconds(absl::ToUnixSeconds(now)));
  EXPECT_EQ(info.not_after, absl::FromUnixSeconds(absl::ToUnixSeconds(now + absl::Seconds(3))));

  std::string root = WriteTmp("root.pem", chain.root.cert_pem);
  std::string issuing = WriteTmp("issuing.pem", chain.issuing.cert_pem);
  std::string path = WriteTmp("short.pem", peer.cert_pem);
  // -attime pins the check time, so the test does not race the clock.
  CommandResult valid =
      Verify(root, issuing, path, absl::StrCat("-attime ", absl::ToUnixSeconds(now) + 1));
  EXPECT_EQ(valid.exit_code, 0) << valid.output;
  CommandResult expired =
      Verify(root, issuing, path, absl::StrCat("-attime ", absl::ToUnixSeconds(now) + 10));
  EXPECT_NE(expired.exit_code, 0) << expired.output;
  EXPECT_THAT(expired.output, HasSubstr("certificate has expired"));
}

TEST(CaTest, ReissuingWithKeyPemKeepsTheThumbprint) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  PeerCertOptions options = PeerOptions("utrecht");
  options.key_pem = chain.peer.key_pem;
  ASSERT_OK_AND_ASSIGN(KeyAndCert renewed, IssuePeerCertificate(chain.issuing, options));
  ASSERT_OK_AND_ASSIGN(CertificateInfo before, ParseCertificate(chain.peer.cert_pem));
  ASSERT_OK_AND_ASSIGN(CertificateInfo after, ParseCertificate(renewed.cert_pem));
  EXPECT_EQ(after.key_thumbprint, before.key_thumbprint);
  EXPECT_NE(after.serial_hex, before.serial_hex);
  ASSERT_OK_AND_ASSIGN(std::string returned_key, KeyThumbprint(renewed.key_pem));
  EXPECT_EQ(returned_key, before.key_thumbprint);

  // Without key_pem a fresh key is generated.
  ASSERT_OK_AND_ASSIGN(KeyAndCert fresh,
                       IssuePeerCertificate(chain.issuing, PeerOptions("utrecht")));
  ASSERT_OK_AND_ASSIGN(std::string fresh_thumbprint, KeyThumbprint(fresh.cert_pem));
  EXPECT_NE(fresh_thumbprint, before.key_thumbprint);

  // A key generated up front (polderctl's "bring your own key").
  ASSERT_OK_AND_ASSIGN(std::string key, GeneratePrivateKeyPem());
  options.key_pem = key;
  ASSERT_OK_AND_ASSIGN(KeyAndCert own, IssuePeerCertificate(chain.issuing, options));
  ASSERT_OK_AND_ASSIGN(std::string own_cert, KeyThumbprint(own.cert_pem));
  ASSERT_OK_AND_ASSIGN(std::string own_key, KeyThumbprint(key));
  EXPECT_EQ(own_cert, own_key);
}

TEST(CaTest, KeyPemAcceptsOpenSslKeyFormatsAndRefusesWeakOrEncryptedKeys) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  // Traditional "EC PRIVATE KEY", preceded by "EC PARAMETERS" as `openssl ecparam` writes it.
  std::string ec = TmpPath("ec.key");
  CommandResult gen =
      RunCommand(absl::StrCat("/usr/bin/openssl ecparam -name prime256v1 -genkey -out '", ec, "'"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  std::ifstream in(ec);
  std::string ec_pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_THAT(ec_pem, StartsWith("-----BEGIN EC PARAMETERS-----"));
  PeerCertOptions options = PeerOptions("utrecht");
  options.key_pem = ec_pem;
  ASSERT_OK_AND_ASSIGN(KeyAndCert peer, IssuePeerCertificate(chain.issuing, options));
  ASSERT_OK_AND_ASSIGN(std::string cert_thumbprint, KeyThumbprint(peer.cert_pem));
  ASSERT_OK_AND_ASSIGN(std::string key_thumbprint, KeyThumbprint(ec_pem));
  EXPECT_EQ(cert_thumbprint, key_thumbprint);
  EXPECT_THAT(peer.key_pem, StartsWith("-----BEGIN PRIVATE KEY-----\n"));  // Returned as PKCS#8.

  // Encrypted keys are refused instead of prompting for a passphrase.
  std::string encrypted = TmpPath("encrypted.key");
  gen = RunCommand(absl::StrCat("/usr/bin/openssl pkey -in '", ec,
                                "' -aes256 -passout pass:secret -out '", encrypted, "'"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  std::ifstream enc_in(encrypted);
  options.key_pem.assign(std::istreambuf_iterator<char>(enc_in), std::istreambuf_iterator<char>());
  EXPECT_THAT(IssuePeerCertificate(chain.issuing, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("encrypted")));

  // RSA below 2048 bits and curves TLS peers do not accept are refused.
  std::string rsa = TmpPath("rsa1024.key");
  gen = RunCommand(absl::StrCat(
      "/usr/bin/openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out '", rsa, "'"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  std::ifstream rsa_in(rsa);
  options.key_pem.assign(std::istreambuf_iterator<char>(rsa_in), std::istreambuf_iterator<char>());
  EXPECT_THAT(IssuePeerCertificate(chain.issuing, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2048")));
  std::string k1 = TmpPath("secp256k1.key");
  gen = RunCommand(absl::StrCat(
      "/usr/bin/openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out '", k1,
      "'"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  std::ifstream k1_in(k1);
  options.key_pem.assign(std::istreambuf_iterator<char>(k1_in), std::istreambuf_iterator<char>());
  EXPECT_THAT(IssuePeerCertificate(chain.issuing, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("secp256k1")));
}

TEST(CaTest, CrlRevokesListedSerialsOnly) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  ASSERT_OK_AND_ASSIGN(KeyAndCert other, IssuePeerCertificate(chain.issuing, PeerOptions("delft")));
  ASSERT_OK_AND_ASSIGN(CertificateInfo revoked, ParseCertificate(chain.peer.cert_pem));
  const absl::Time now = absl::Now();
  // Case and leading zeros do not matter; duplicates are listed once.
  ASSERT_OK_AND_ASSIGN(
      std::string crl,
      CreateCrl(chain.issuing,
                {revoked.serial_hex, "00" + absl::AsciiStrToUpper(revoked.serial_hex), "1f"}, 42,
                now, absl::Hours(24)));
  EXPECT_THAT(crl, StartsWith("-----BEGIN X509 CRL-----\n"));

  std::string root = WriteTmp("root.pem", chain.root.cert_pem);
  std::string issuing = WriteTmp("issuing.pem", chain.issuing.cert_pem);
  std::string crl_path = WriteTmp("crl.pem", crl);
  std::string check = absl::StrCat("-crl_check -CRLfile '", crl_path, "'");
  CommandResult r = Verify(root, issuing, WriteTmp("revoked.pem", chain.peer.cert_pem), check);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("certificate revoked"));
  CommandResult ok = Verify(root, issuing, WriteTmp("good.pem", other.cert_pem), check);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;

  // crlNumber, times and entries as asked.
  std::vector<ssl::UniquePtr<X509_CRL>> crls = ReadCrls(crl);
  ASSERT_EQ(crls.size(), 1u);
  X509_CRL* parsed = crls[0].get();
  EXPECT_EQ(X509_CRL_get_version(parsed), X509_CRL_VERSION_2);
  ssl::UniquePtr<ASN1_INTEGER> number(
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(parsed, NID_crl_number, nullptr, nullptr)));
  ASSERT_NE(number, nullptr);
  EXPECT_EQ(ASN1_INTEGER_get(number.get()), 42);
  EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(parsed), absl::ToTimeT(now)), 0);
  EXPECT_EQ(
      ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(parsed), absl::ToTimeT(now + absl::Hours(24))),
      0);
  EXPECT_EQ(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(parsed)), 2);

  // An empty CRL revokes nothing.
  ASSERT_OK_AND_ASSIGN(std::string empty, CreateCrl(chain.issuing, {}, 43, now, absl::Hours(1)));
  CommandResult unrevoked =
      Verify(root, issuing, TmpPath("revoked.pem"),
             absl::StrCat("-crl_check -CRLfile '", WriteTmp("empty.pem", empty), "'"));
  EXPECT_EQ(unrevoked.exit_code, 0) << unrevoked.output;
}

TEST(CaTest, CrlRejectsBadInput) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  const absl::Time now = absl::Now();
  EXPECT_THAT(CreateCrl(chain.issuing, {"xyz"}, 1, now, absl::Hours(1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'xyz' is not hexadecimal")));
  EXPECT_THAT(CreateCrl(chain.issuing, {""}, 1, now, absl::Hours(1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("positive")));
  EXPECT_THAT(CreateCrl(chain.issuing, {std::string(41, 'f')}, 1, now, absl::Hours(1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("20 octets")));
  EXPECT_THAT(CreateCrl(chain.issuing, {"-1"}, 1, now, absl::Hours(1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CreateCrl(chain.issuing, {"1"}, -1, now, absl::Hours(1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("crl_number")));
  EXPECT_THAT(CreateCrl(chain.issuing, {"1"}, 1, now, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("next_update")));
  EXPECT_THAT(CreateCrl(chain.peer, {"1"}, 1, now, absl::Hours(1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a CA")));
  // The boundary cases are accepted.
  EXPECT_OK(CreateCrl(chain.issuing, {std::string(40, 'f'), "0001"}, 0, now, absl::Seconds(1)));
}

TEST(CaTest, InvalidPeerIdsAreInvalidArgument) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  for (const std::string& id :
       {std::string(""), std::string("Utrecht"), std::string("a"), std::string(64, 'a'),
        std::string("1utrecht"), std::string("-utrecht"), std::string("den_haag"),
        std::string("den haag"), std::string("utrecht/../x")}) {
    EXPECT_THAT(IssuePeerCertificate(chain.issuing, PeerOptions(id)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("peer_id")))
        << "'" << id << "'";
  }
  // The edges of the slug grammar are accepted.
  for (const std::string& id :
       {std::string("ab"), std::string(63, 'z'), std::string("den-haag-2")}) {
    EXPECT_OK(IssuePeerCertificate(chain.issuing, PeerOptions(id))) << id;
  }
}

TEST(CaTest, InvalidNamesAddressesAndTimesAreInvalidArgument) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  auto issue = [&](auto mutate) {
    PeerCertOptions options = PeerOptions("utrecht");
    mutate(options);
    return IssuePeerCertificate(chain.issuing, options).status();
  };
  using Code = absl::StatusCode;
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.federation = "NL-SmartCity"; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("federation")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.federation = ""; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("federation")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.dns_names = {"bad name"}; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("'bad name'")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.dns_names = {"*.polder.test"}; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("dns_names")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.dns_names = {"localhost,DNS:evil.test"}; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("dns_names")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.dns_names = {"127.0.0.1"}; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("ip_addresses")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.ip_addresses = {"localhost"}; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("'localhost'")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.ip_addresses = {"300.1.1.1"}; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("ip_addresses")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.subject_serial_number = "OIN@123"; }),
              StatusIs(Code::kInvalidArgument, HasSubstr("subject_serial_number")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.subject_serial_number = std::string(65, '1'); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("subject_serial_number")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.validity = absl::ZeroDuration(); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("validity")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.backdate = absl::Seconds(-1); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("backdate")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.now = absl::InfiniteFuture(); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("now")));
  EXPECT_THAT(issue([](PeerCertOptions& o) { o.validity = absl::InfiniteDuration(); }),
              StatusIs(Code::kInvalidArgument, HasSubstr("9999")));

  CaOptions ca = RootOptions();
  ca.common_name = "";
  EXPECT_THAT(CreateRootCa(ca), StatusIs(Code::kInvalidArgument, HasSubstr("common_name")));
  ca.common_name = std::string(65, 'x');
  EXPECT_THAT(CreateRootCa(ca), StatusIs(Code::kInvalidArgument, HasSubstr("common_name")));
  ca.common_name = "Polder\nroot";
  EXPECT_THAT(CreateRootCa(ca), StatusIs(Code::kInvalidArgument, HasSubstr("control")));
  ca = RootOptions();
  ca.organization = std::string(65, 'o');
  EXPECT_THAT(CreateRootCa(ca), StatusIs(Code::kInvalidArgument, HasSubstr("organization")));
  ca = RootOptions();
  ca.validity = absl::Milliseconds(999);
  EXPECT_THAT(CreateRootCa(ca), StatusIs(Code::kInvalidArgument, HasSubstr("validity")));
}

TEST(CaTest, IssuersMustBeMatchingCasAndErrorsNeverShowKeys) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  // A key that does not belong to the certificate.
  KeyAndCert mismatched{chain.root.key_pem, chain.issuing.cert_pem};
  absl::Status status = IssuePeerCertificate(mismatched, PeerOptions("utrecht")).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not belong")));
  // No line of either private key's base64 body appears in the message.
  for (const std::string& pem : {chain.root.key_pem, chain.issuing.key_pem}) {
    std::string body = pem.substr(pem.find('\n') + 1, 40);
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr(body)));
  }
  const std::string junk_key =
      "-----BEGIN PRIVATE KEY-----\nTOPSECRETTOPSECRETTOPSECRET\n-----END PRIVATE KEY-----\n";
  status =
      IssuePeerCertificate(KeyAndCert{junk_key, chain.issuing.cert_pem}, PeerOptions("utrecht"))
          .status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("issuer key_pem")));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("TOPSECRET")));
  PeerCertOptions junk_options = PeerOptions("utrecht");
  junk_options.key_pem = junk_key;
  status = IssuePeerCertificate(chain.issuing, junk_options).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key_pem")));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("TOPSECRET")));
  EXPECT_THAT(KeyThumbprint(junk_key),
              StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("TOPSECRET"))));
  // A CA key is never certified as a peer key.
  junk_options.key_pem = chain.issuing.key_pem;
  EXPECT_THAT(IssuePeerCertificate(chain.issuing, junk_options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("issuer's own key")));

  // A leaf cannot issue; an issuing CA (pathlen:0) cannot make another CA; the root can.
  EXPECT_THAT(IssuePeerCertificate(chain.peer, PeerOptions("delft")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a CA")));
  EXPECT_THAT(CreateIssuingCa(chain.peer, IssuingOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a CA")));
  EXPECT_THAT(CreateIssuingCa(chain.issuing, IssuingOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("pathlen")));
  ASSERT_OK_AND_ASSIGN(KeyAndCert direct, IssuePeerCertificate(chain.root, PeerOptions("delft")));
  CommandResult r = RunCommand(absl::StrCat("/usr/bin/openssl verify -x509_strict -CAfile '",
                                            WriteTmp("root.pem", chain.root.cert_pem), "' '",
                                            WriteTmp("direct.pem", direct.cert_pem), "'"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace tls
}  // namespace polder
