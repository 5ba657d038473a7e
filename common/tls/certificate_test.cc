#include "common/tls/certificate.h"

#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/status/status_matchers.h"
#include "common/testing/commands.h"
#include "common/tls/ca.h"
#include "common/tls/ca_testing.h"
#include "common/tls/openssl_ptr.h"
#include "common/tls/pem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace tls {
namespace {

using ::polder::testing::StatusIs;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

// Made once with `openssl req -x509` (EC P-256, serial 0x0123456789abcdef), so parsing it is
// independent of this library's CA.
constexpr char kFixedCertPem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB7DCCAZOgAwIBAgIIASNFZ4mrze8wCgYIKoZIzj0EAwIwMTEdMBsGA1UEBRMU\n"
    "MDAwMDAwMDEwMDEyMzQ1NjcwMDAxEDAOBgNVBAMMB3V0cmVjaHQwIBcNMjYxMjA0\n"
    "MDcxMTA0WhgPMjEyNjExMTAwNzExMDRaMDExHTAbBgNVBAUTFDAwMDAwMDAxMDAx\n"
    "MjM0NTY3MDAwMRAwDgYDVQQDDAd1dHJlY2h0MFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
    "AQcDQgAEQ2PK6XBKP6XvTLjT5RgkLtgErlHAJbMnHbRciJSnDrJxFZG5gnF1iQ/Y\n"
    "rJD0bzK57VkN3BkFFl1yh7IKgHoseaOBkjCBjzBQBgNVHREESTBHhiJzcGlmZmU6\n"
    "Ly9ubC1zbWFydGNpdHkvcGVlci91dHJlY2h0gglsb2NhbGhvc3SHBH8AAAGHEAAA\n"
    "AAAAAAAAAAAAAAAAAAEwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwHQYD\n"
    "VR0OBBYEFLqbO6Tj8+NQDfm+liHTWtIDx2GMMAoGCCqGSM49BAMCA0cAMEQCIC0G\n"
    "jSD6nNc4XTwS6eJm0/IJdG7uGUFpSUQgmFnZcI9nAiBDoJVu1ec1mFupP5ZdXdOz\n"
    "Jw0qlFZ854T1ASayZsHmrQ==\n"
    "-----END CERTIFICATE-----\n";
constexpr int64_t kFixedNotBefore = 1796368264;  // 2026-12-04T07:11:04Z
constexpr int64_t kFixedNotAfter = 4949968264;   // 2126-11-10T07:11:04Z
// `openssl pkey -pubout -outform DER | openssl dgst -sha256 -binary | openssl base64`, base64url.
constexpr char kFixedThumbprint[] = "sha256:JnJHgtEreml1IY9I0QmjIcZaEiPWauRfd4a-5jmMnzM";

// Writes `content` to $TEST_TMPDIR/<name> and returns the path.
std::string WriteTmp(const std::string& name, const std::string& content) {
  std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
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

std::string Base64ToBase64Url(std::string b64) {
  b64 = absl::StrReplaceAll(b64, {{"+", "-"}, {"/", "_"}, {"=", ""}});
  absl::StripAsciiWhitespace(&b64);
  return b64;
}

using testing::Chain;
using testing::IssuingOptions;
using testing::MakeChain;
using testing::PeerOptions;
using testing::RootOptions;

// A self-signed certificate built with OpenSSL directly, so that it can carry what the CA never
// writes: `edit` changes the certificate (subject CN=hand-made, no extensions) before signing.
std::string HandMade(const std::function<void(X509*)>& edit) {
  ssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ssl::UniquePtr<X509> cert(X509_new());
  EXPECT_TRUE(key && cert);
  if (!key || !cert) return "";
  X509_NAME* name = X509_get_subject_name(cert.get());  // Owned by the certificate.
  X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("hand-made"), -1, -1, 0);
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  edit(cert.get());
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  EXPECT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  absl::StatusOr<std::string> pem = CertificateToPem(cert.get());
  EXPECT_TRUE(pem.ok()) << pem.status();
  return pem.value_or("");
}

// Adds a subjectAltName holding one entry of `type` with the raw `bytes`.
void AddSan(X509* cert, int type, const std::string& bytes) {
  ssl::UniquePtr<GENERAL_NAMES> names(GENERAL_NAMES_new());
  ssl::UniquePtr<GENERAL_NAME> name(GENERAL_NAME_new());
  ssl::UniquePtr<ASN1_STRING> value(type == GEN_IPADD ? ASN1_OCTET_STRING_new()
                                                      : ASN1_IA5STRING_new());
  ASSERT_TRUE(names && name && value);
  ASSERT_EQ(ASN1_STRING_set(value.get(), bytes.data(), static_cast<int>(bytes.size())), 1);
  GENERAL_NAME_set0_value(name.get(), type, value.release());  // Owned by `name` now.
  ASSERT_GT(sk_GENERAL_NAME_push(names.get(), name.get()), 0);
  name.release();  // Owned by `names` now.
  ASSERT_EQ(X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_APPEND), 1);
}

TEST(CertificateTest, ParsesACertificateMadeByTheOpenSslCommandLine) {
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(kFixedCertPem));
  EXPECT_EQ(info.subject, "CN=utrecht,serialNumber=00000001001234567000");
  EXPECT_EQ(info.issuer, info.subject);
  EXPECT_EQ(info.serial_hex, "123456789abcdef");
  EXPECT_EQ(info.not_before, absl::FromUnixSeconds(kFixedNotBefore));
  EXPECT_EQ(info.not_after, absl::FromUnixSeconds(kFixedNotAfter));
  EXPECT_THAT(info.uris, ElementsAre("spiffe://nl-smartcity/peer/utrecht"));
  EXPECT_THAT(info.dns_names, ElementsAre("localhost"));
  EXPECT_THAT(info.ip_addresses, ElementsAre("127.0.0.1", "::1"));
  EXPECT_EQ(info.subject_serial_number, "00000001001234567000");
  EXPECT_EQ(info.key_thumbprint, kFixedThumbprint);
  EXPECT_FALSE(info.is_ca);
  ASSERT_OK_AND_ASSIGN(std::string thumbprint, KeyThumbprint(kFixedCertPem));
  EXPECT_EQ(thumbprint, kFixedThumbprint);
  // Text around and after the block does not matter; the first certificate counts.
  ASSERT_OK_AND_ASSIGN(
      CertificateInfo again,
      ParseCertificate(absl::StrCat("subject=utrecht\n", kFixedCertPem, kFixedCertPem, "junk")));
  EXPECT_EQ(again.serial_hex, info.serial_hex);
}

TEST(CertificateTest, ParseCertificateReportsIdentityAndExactValidity) {
  // 2026-01-01T00:00:00.750Z: times are truncated to whole seconds.
  const int64_t t = 1767225600;
  const absl::Time now = absl::FromUnixSeconds(t) + absl::Milliseconds(750);
  CaOptions root_options = RootOptions();
  root_options.now = now;
  ASSERT_OK_AND_ASSIGN(KeyAndCert root, CreateRootCa(root_options));
  CaOptions issuing_options = IssuingOptions();
  issuing_options.organization = "Gemeente Súdwest-Fryslân";
  issuing_options.now = now;
  ASSERT_OK_AND_ASSIGN(KeyAndCert issuing, CreateIssuingCa(root, issuing_options));
  PeerCertOptions options = PeerOptions("utrecht");
  options.dns_names = {"localhost", "utrecht.polder.test"};
  options.subject_serial_number = "00000001001234567000";
  options.now = now;
  ASSERT_OK_AND_ASSIGN(KeyAndCert peer, IssuePeerCertificate(issuing, options));

  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(peer.cert_pem));
  EXPECT_THAT(info.uris, ElementsAre("spiffe://nl-smartcity/peer/utrecht"));
  EXPECT_THAT(info.dns_names, ElementsAre("localhost", "utrecht.polder.test"));
  EXPECT_THAT(info.ip_addresses, ElementsAre("127.0.0.1", "::1"));
  EXPECT_EQ(info.subject_serial_number, "00000001001234567000");
  EXPECT_EQ(info.subject, "serialNumber=00000001001234567000,CN=utrecht");
  EXPECT_EQ(info.issuer, "CN=Polder issuing CA,O=Gemeente Súdwest-Fryslân");
  EXPECT_EQ(info.not_before, absl::FromUnixSeconds(t - 5 * 60));
  EXPECT_EQ(info.not_after, absl::FromUnixSeconds(t + 90 * 24 * 3600));
  EXPECT_FALSE(info.is_ca);

  // The same facts as the openssl command line tool sees them.
  std::string path = WriteTmp("peer.pem", peer.cert_pem);
  CommandResult serial =
      RunCommand(absl::StrCat("/usr/bin/openssl x509 -noout -serial -in '", path, "'"));
  ASSERT_EQ(serial.exit_code, 0) << serial.output;
  std::string expected_serial = absl::AsciiStrToLower(serial.output);
  absl::StripAsciiWhitespace(&expected_serial);
  ASSERT_THAT(expected_serial, StartsWith("serial="));
  expected_serial.erase(0, 7);
  expected_serial.erase(0, expected_serial.find_first_not_of('0'));
  EXPECT_EQ(info.serial_hex, expected_serial);
  EXPECT_LE(info.serial_hex.size(), 32u);
  EXPECT_NE(info.serial_hex[0], '0');
  CommandResult subject = RunCommand(
      absl::StrCat("/usr/bin/openssl x509 -noout -subject -nameopt RFC2253 -in '", path, "'"));
  EXPECT_EQ(subject.output, absl::StrCat("subject=", info.subject, "\n"));

  ASSERT_OK_AND_ASSIGN(CertificateInfo root_info, ParseCertificate(root.cert_pem));
  EXPECT_TRUE(root_info.is_ca);
  EXPECT_EQ(root_info.subject, "CN=Polder federation root,O=Polder");
  EXPECT_EQ(root_info.issuer, root_info.subject);
  EXPECT_EQ(root_info.not_after, absl::FromUnixSeconds(t + int64_t{10} * 365 * 24 * 3600));
  EXPECT_TRUE(root_info.uris.empty());
  EXPECT_TRUE(root_info.subject_serial_number.empty());
  ASSERT_OK_AND_ASSIGN(CertificateInfo issuing_info, ParseCertificate(issuing.cert_pem));
  EXPECT_TRUE(issuing_info.is_ca);
  EXPECT_EQ(issuing_info.issuer, root_info.subject);

  EXPECT_THAT(ParseCertificate("not a certificate"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCertificate(peer.key_pem), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CertificateTest, KeyThumbprintIsTheSameForCertPublicKeyAndPrivateKey) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  ASSERT_OK_AND_ASSIGN(std::string from_cert, KeyThumbprint(chain.peer.cert_pem));
  ASSERT_OK_AND_ASSIGN(std::string public_pem, PublicKeyPem(chain.peer.key_pem));
  EXPECT_THAT(public_pem, StartsWith("-----BEGIN PUBLIC KEY-----\n"));
  ASSERT_OK_AND_ASSIGN(std::string from_public, KeyThumbprint(public_pem));
  ASSERT_OK_AND_ASSIGN(std::string from_private, KeyThumbprint(chain.peer.key_pem));
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(chain.peer.cert_pem));
  EXPECT_EQ(from_cert, from_public);
  EXPECT_EQ(from_cert, from_private);
  EXPECT_EQ(from_cert, info.key_thumbprint);
  ASSERT_THAT(from_cert, StartsWith("sha256:"));
  EXPECT_EQ(from_cert.size(), 7u + 43u);  // 32 bytes, base64url without padding.
  EXPECT_EQ(from_cert.find_first_not_of(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", 7),
            std::string::npos);

  // Independently: SHA-256 over the DER SubjectPublicKeyInfo, by the openssl command line tool.
  std::string key_path = WriteTmp("peer.key", chain.peer.key_pem);
  CommandResult cli =
      RunCommand(absl::StrCat("/usr/bin/openssl pkey -in '", key_path,
                              "' -pubout -outform DER | /usr/bin/openssl dgst -sha256 "
                              "-binary | /usr/bin/openssl base64 -A"));
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_EQ(from_cert, "sha256:" + Base64ToBase64Url(cli.output));

  // Other keys have other thumbprints.
  ASSERT_OK_AND_ASSIGN(std::string issuing, KeyThumbprint(chain.issuing.cert_pem));
  ASSERT_OK_AND_ASSIGN(std::string root, KeyThumbprint(chain.root.key_pem));
  EXPECT_NE(from_cert, issuing);
  EXPECT_NE(from_cert, root);
  EXPECT_NE(issuing, root);

  EXPECT_THAT(KeyThumbprint("hello"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(KeyThumbprint("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE "
                            "REQUEST-----\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unsupported PEM block")));
}

TEST(CertificateTest, MalformedPemIsInvalidArgument) {
  const std::string pem = kFixedCertPem;
  const size_t body = pem.find('\n') + 1;
  const size_t end = pem.find("-----END");
  std::string corrupted = pem;
  corrupted.replace(body + 10, 4, "!!!!");
  for (const std::string& text : {
           std::string(),
           std::string("not a certificate"),
           std::string("-----BEGIN CERTIFICATE-----"),
           std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
           std::string("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
           pem.substr(0, end),
           pem.substr(0, body) + pem.substr(end),
           corrupted,
           std::string("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"),
       }) {
    EXPECT_THAT(ParseCertificate(text), StatusIs(absl::StatusCode::kInvalidArgument))
        << absl::CHexEscape(text);
  }
}

TEST(CertificateTest, EveryTruncationAndByteFlipIsRefusedOrParsed) {
  // Whatever happens to stored or presented certificates, the answer is a certificate or
  // INVALID_ARGUMENT: never another error, never a crash.
  const std::string pem = kFixedCertPem;
  for (size_t n = 0; n < pem.size(); ++n) {
    EXPECT_THAT(ParseCertificate(pem.substr(0, n)).status().code(),
                AnyOf(absl::StatusCode::kOk, absl::StatusCode::kInvalidArgument))
        << "first " << n << " bytes";
  }
  const size_t body = pem.find('\n') + 1;
  const size_t end = pem.find("-----END");
  std::string der;
  ASSERT_TRUE(absl::Base64Unescape(pem.substr(body, end - body), &der));
  int parsed = 0;
  for (size_t i = 0; i < der.size(); ++i) {
    for (unsigned char flip : {0x01, 0x80, 0xff}) {
      std::string changed = der;
      changed[i] = static_cast<char>(static_cast<unsigned char>(changed[i]) ^ flip);
      const std::string text =
          absl::StrCat("-----BEGIN CERTIFICATE-----\n", absl::Base64Escape(changed),
                       "\n-----END CERTIFICATE-----\n");
      absl::StatusCode code = ParseCertificate(text).status().code();
      EXPECT_THAT(code, AnyOf(absl::StatusCode::kOk, absl::StatusCode::kInvalidArgument))
          << "byte " << i << " ^ " << static_cast<int>(flip);
      if (code == absl::StatusCode::kOk) ++parsed;
    }
  }
  // Flips in the signature and in text values still parse: the test did see both outcomes.
  EXPECT_GT(parsed, 0);
  EXPECT_LT(parsed, static_cast<int>(3 * der.size()));
}

TEST(CertificateTest, ContentsTheCaNeverWritesAreInvalidArgument) {
  // Two subject serialNumbers: which one is the peer's id?
  std::string two_serials = HandMade([](X509* cert) {
    for (const char* value : {"00000001001234567000", "00000001009999999000"}) {
      X509_NAME_add_entry_by_NID(X509_get_subject_name(cert), NID_serialNumber, MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(value), -1, -1, 0);
    }
  });
  EXPECT_THAT(ParseCertificate(two_serials), StatusIs(absl::StatusCode::kInvalidArgument,
                                                      HasSubstr("more than one serialNumber")));

  // A NUL byte in the serialNumber or a SAN entry would cut comparisons short.
  std::string nul_serial = HandMade([](X509* cert) {
    const std::string value("utrecht\0evil", 12);
    X509_NAME_add_entry_by_NID(X509_get_subject_name(cert), NID_serialNumber, V_ASN1_UTF8STRING,
                               reinterpret_cast<const unsigned char*>(value.data()),
                               static_cast<int>(value.size()), -1, 0);
  });
  EXPECT_THAT(ParseCertificate(nul_serial),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
  std::string nul_uri = HandMade([](X509* cert) {
    AddSan(cert, GEN_URI, std::string("spiffe://nl-smartcity/peer/utrecht\0.evil", 40));
  });
  EXPECT_THAT(ParseCertificate(nul_uri),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("SAN URI contains a NUL")));
  std::string nul_dns =
      HandMade([](X509* cert) { AddSan(cert, GEN_DNS, std::string("localhost\0.evil", 15)); });
  EXPECT_THAT(ParseCertificate(nul_dns),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("DNS name contains a NUL")));

  // An IP address of 5 bytes is neither IPv4 nor IPv6.
  std::string odd_ip =
      HandMade([](X509* cert) { AddSan(cert, GEN_IPADD, std::string("\x7f\0\0\x01\x01", 5)); });
  EXPECT_THAT(ParseCertificate(odd_ip),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("5 bytes")));

  // Two subjectAltName extensions: which one counts?
  std::string two_sans = HandMade([](X509* cert) {
    AddSan(cert, GEN_URI, "spiffe://nl-smartcity/peer/utrecht");
    AddSan(cert, GEN_URI, "spiffe://nl-smartcity/peer/evil");
  });
  EXPECT_THAT(ParseCertificate(two_sans), StatusIs(absl::StatusCode::kInvalidArgument));

  // The control: the same construction with one clean SAN parses.
  std::string clean =
      HandMade([](X509* cert) { AddSan(cert, GEN_URI, "spiffe://nl-smartcity/peer/utrecht"); });
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(clean));
  EXPECT_THAT(info.uris, ElementsAre("spiffe://nl-smartcity/peer/utrecht"));
  EXPECT_EQ(info.subject, "CN=hand-made");
}

TEST(CertificateTest, MalformedKeysAreInvalidArgumentAndNeverQuoted) {
  const std::string junk_key =
      "-----BEGIN PRIVATE KEY-----\nTOPSECRETTOPSECRETTOPSECRET\n-----END PRIVATE KEY-----\n";
  const std::string junk_ec_key =
      "-----BEGIN EC PRIVATE KEY-----\nTOPSECRETTOPSECRETTOPSECRET\n-----END EC PRIVATE KEY-----\n";
  for (const std::string& pem : {junk_key, junk_ec_key}) {
    for (const absl::Status& status : {KeyThumbprint(pem).status(), PublicKeyPem(pem).status()}) {
      EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("TOPSECRET"))))
          << pem;
    }
  }
  EXPECT_THAT(KeyThumbprint("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED "
                            "PRIVATE KEY-----\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("encrypted")));
  EXPECT_THAT(KeyThumbprint("-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: "
                            "AES-256-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("encrypted")));
  for (const std::string& text : {
           std::string(),
           std::string("hello"),
           std::string("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
           std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
           std::string("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC "
                       "PARAMETERS-----\n"),
       }) {
    EXPECT_THAT(KeyThumbprint(text), StatusIs(absl::StatusCode::kInvalidArgument))
        << absl::CHexEscape(text);
    EXPECT_THAT(PublicKeyPem(text), StatusIs(absl::StatusCode::kInvalidArgument))
        << absl::CHexEscape(text);
  }
}

TEST(CertificateTest, ChainsAndCrlsReadUpToTheFirstMalformedBlock) {
  Chain chain;
  ASSERT_NO_FATAL_FAILURE(MakeChain("utrecht", &chain));
  ASSERT_OK_AND_ASSIGN(std::string crl,
                       CreateCrl(chain.issuing, {"1f"}, 1, absl::Now(), absl::Hours(1)));
  const std::string& leaf = chain.peer.cert_pem;
  const std::string& issuing = chain.issuing.cert_pem;

  // Blocks of other types are skipped.
  std::vector<ssl::UniquePtr<X509>> certs =
      ReadCertificates(absl::StrCat(leaf, chain.peer.key_pem, crl, issuing));
  ASSERT_EQ(certs.size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::string first, CertificateToPem(certs[0].get()));
  ASSERT_OK_AND_ASSIGN(std::string second, CertificateToPem(certs[1].get()));
  EXPECT_EQ(first, leaf);
  EXPECT_EQ(second, issuing);
  EXPECT_EQ(ReadCrls(absl::StrCat(leaf, crl, issuing)).size(), 1u);

  // A damaged block ends the list; what came before it stands.
  const std::string damaged = leaf.substr(0, leaf.size() / 2) + "\n-----END CERTIFICATE-----\n";
  EXPECT_EQ(ReadCertificates(absl::StrCat(leaf, damaged, issuing)).size(), 1u);
  EXPECT_EQ(
      ReadCrls(absl::StrCat(crl.substr(0, crl.size() / 2), "\n-----END X509 CRL-----\n")).size(),
      0u);
  EXPECT_THAT(ReadCertificates(""), IsEmpty());
  EXPECT_THAT(ReadCertificates("garbage"), IsEmpty());
  EXPECT_THAT(ReadCrls(leaf), IsEmpty());
}

TEST(CertificateTest, PemLabelsAreReadWithoutDecoding) {
  EXPECT_THAT(PemLabels(absl::StrCat("-----BEGIN EC PARAMETERS-----\nxx\n-----END EC "
                                     "PARAMETERS-----\n-----BEGIN PRIVATE KEY-----\n")),
              ElementsAre("EC PARAMETERS", "PRIVATE KEY"));
  EXPECT_THAT(PemLabels("-----BEGIN CERTIFICATE"), IsEmpty());
  EXPECT_THAT(PemLabels("-----BEGIN TWO\nLINES-----"), IsEmpty());
}

}  // namespace
}  // namespace tls
}  // namespace polder
