#include "common/tls/ca.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <initializer_list>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"
#include "common/tls/openssl_ptr.h"
#include "common/tls/pem.h"

namespace polder {
namespace tls {
namespace {

// ---- Keys ---------------------------------------------------------------------------------------

// The signature digest for a key this library signs with or certifies; INVALID_ARGUMENT for
// key types TLS peers would not accept.
absl::StatusOr<const EVP_MD*> DigestForKey(EVP_PKEY* key, absl::string_view what) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      char group[80] = {0};
      size_t len = 0;
      if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1) {
        ERR_clear_error();
        return absl::InvalidArgumentError(
            absl::StrCat(what, " is an EC key without a named curve; use P-256 or P-384"));
      }
      int nid = OBJ_sn2nid(group);
      if (nid == NID_undef) nid = EC_curve_nist2nid(group);
      if (nid == NID_X9_62_prime256v1) return EVP_sha256();
      if (nid == NID_secp384r1) return EVP_sha384();
      return absl::InvalidArgumentError(
          absl::StrCat(what, " is an EC key on curve ", group, "; use P-256 or P-384"));
    }
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key) < 2048) {
        return absl::InvalidArgumentError(absl::StrCat(what, " is a ", EVP_PKEY_get_bits(key),
                                                       "-bit RSA key; at least 2048 bits needed"));
      }
      return EVP_sha256();
    default:
      return absl::InvalidArgumentError(absl::StrCat(what, " has unsupported key type ",
                                                     OBJ_nid2sn(EVP_PKEY_get_base_id(key)),
                                                     "; use EC P-256, P-384 or RSA"));
  }
}

absl::StatusOr<ssl::UniquePtr<EVP_PKEY>> GenerateKey() {
  ssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return OpenSslError("generating an EC P-256 key");
  return key;
}

absl::StatusOr<std::string> PrivateKeyToPem(EVP_PKEY* key) {
  ASSIGN_OR_RETURN(ssl::UniquePtr<BIO> bio, WritableBio());
  if (PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    ERR_clear_error();
    return absl::InternalError("encoding the private key as PKCS#8 failed");
  }
  return BioContents(bio.get());  // The BIO's buffer is cleansed when it is freed.
}

// ---- Input validation ---------------------------------------------------------------------------

struct Validity {
  time_t not_before;
  time_t not_after;
};

// RFC 5280 §4.1.2.5: UTCTime covers 1950-2049, GeneralizedTime up to 9999.
constexpr absl::Time kEarliest = absl::FromUnixSeconds(-631152000);  // 1950-01-01T00:00:00Z
constexpr absl::Time kLatest = absl::FromUnixSeconds(253402300799);  // 9999-12-31T23:59:59Z

absl::Status ValidateNow(absl::Time now, absl::string_view what) {
  if (now < kEarliest || now > kLatest) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", absl::FormatTime(now), " is outside 1950..9999"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Validity> ComputeValidity(absl::Time now, absl::Duration backdate,
                                         absl::Duration validity) {
  RETURN_IF_ERROR(ValidateNow(now, "now"));
  if (backdate < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("backdate must not be negative, got ", absl::FormatDuration(backdate)));
  }
  if (validity < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("validity must be at least 1s, got ", absl::FormatDuration(validity)));
  }
  absl::Time not_before = now - backdate;
  absl::Time not_after = now + validity;
  if (not_before < kEarliest || not_after > kLatest) {
    return absl::InvalidArgumentError(absl::StrCat("validity period ", absl::FormatTime(not_before),
                                                   " .. ", absl::FormatTime(not_after),
                                                   " is outside 1950..9999"));
  }
  // Whole seconds, rounded down.
  return Validity{static_cast<time_t>(absl::ToUnixSeconds(not_before)),
                  static_cast<time_t>(absl::ToUnixSeconds(not_after))};
}

absl::Status ValidatePeerId(absl::string_view id) {
  bool ok = id.size() >= 2 && id.size() <= 63 && id[0] >= 'a' && id[0] <= 'z';
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) ok = false;
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "peer_id ", QuoteForError(id),
        " is not a lowercase slug: 2 to 63 characters [a-z0-9-], starting with a letter"));
  }
  return absl::OkStatus();
}

absl::Status ValidateFederation(absl::string_view federation) {
  bool ok = !federation.empty() && federation.size() <= 255;
  for (char c : federation) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')) {
      ok = false;
    }
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("federation ", QuoteForError(federation),
                     " is not a SPIFFE trust domain: 1 to 255 characters [a-z0-9._-]"));
  }
  return absl::OkStatus();
}

// An IPv4 or IPv6 literal as 4 or 16 bytes; empty if `text` is neither.
std::string ParseIp(absl::string_view text) {
  std::string s(text);
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) return std::string(reinterpret_cast<char*>(buf), 4);
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    return std::string(reinterpret_cast<char*>(buf), 16);
  }
  return "";
}

absl::Status ValidateDnsName(absl::string_view name) {
  if (!ParseIp(name).empty()) {
    return absl::InvalidArgumentError(absl::StrCat("dns_names entry ", QuoteForError(name),
                                                   " is an IP address; put it in ip_addresses"));
  }
  bool ok = !name.empty() && name.size() <= 253;
  if (ok) {
    for (absl::string_view label : absl::StrSplit(name, '.')) {
      if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
        ok = false;
        break;
      }
      for (char c : label) {
        if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') ok = false;
      }
    }
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dns_names entry ", QuoteForError(name),
        " is not a host name (dot-separated labels of letters, digits and '-'; no wildcards)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateNameText(absl::string_view value, absl::string_view what, bool required) {
  if (value.empty()) {
    if (required) return absl::InvalidArgumentError(absl::StrCat(what, " is required"));
    return absl::OkStatus();
  }
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " ", QuoteForError(value), " contains control characters"));
    }
  }
  return absl::OkStatus();
}

// ---- Certificate construction -------------------------------------------------------------------

// Adds an attribute; OpenSSL enforces the X.520 upper bounds (64 for CN, O and serialNumber) and
// PrintableString for serialNumber.
absl::Status AddNameEntry(X509_NAME* name, int nid, absl::string_view value,
                          absl::string_view what) {
  if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", QuoteForError(value),
                                                   " cannot be encoded: ", DrainOpenSslErrors()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ssl::UniquePtr<X509_NAME>> CaName(const CaOptions& options) {
  RETURN_IF_ERROR(ValidateNameText(options.common_name, "common_name", /*required=*/true));
  RETURN_IF_ERROR(ValidateNameText(options.organization, "organization", /*required=*/false));
  ssl::UniquePtr<X509_NAME> name(X509_NAME_new());
  if (name == nullptr) return OpenSslError("X509_NAME_new");
  if (!options.organization.empty()) {
    RETURN_IF_ERROR(
        AddNameEntry(name.get(), NID_organizationName, options.organization, "organization"));
  }
  RETURN_IF_ERROR(AddNameEntry(name.get(), NID_commonName, options.common_name, "common_name"));
  return name;
}

absl::Status SetRandomSerial(X509* cert) {
  unsigned char buf[16];
  bool zero = true;
  while (zero) {
    if (RAND_bytes(buf, sizeof buf) != 1) return OpenSslError("RAND_bytes");
    for (unsigned char b : buf) zero = zero && b == 0;
  }
  ssl::UniquePtr<BIGNUM> bn(BN_bin2bn(buf, sizeof buf, nullptr));  // Unsigned, hence positive.
  if (bn == nullptr || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return OpenSslError("setting the serial number");
  }
  return absl::OkStatus();
}

// A v3 certificate with a random serial, the given names, validity and public key; no extensions.
absl::StatusOr<ssl::UniquePtr<X509>> NewCertificate(const X509_NAME* subject,
                                                    const X509_NAME* issuer,
                                                    const Validity& validity, EVP_PKEY* key) {
  ssl::UniquePtr<X509> cert(X509_new());
  if (cert == nullptr) return OpenSslError("X509_new");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_subject_name(cert.get(), subject) != 1 ||
      X509_set_issuer_name(cert.get(), issuer) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(cert.get()), validity.not_before) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), validity.not_after) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return OpenSslError("filling in the certificate");
  }
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  return cert;
}

absl::Status AddExtension(X509* cert, int nid, void* value, bool critical) {
  if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError(absl::StrCat("adding the ", OBJ_nid2ln(nid), " extension"));
  }
  return absl::OkStatus();
}

absl::Status AddBasicConstraints(X509* cert, bool ca, int pathlen /* < 0: none */) {
  ssl::UniquePtr<BASIC_CONSTRAINTS> bc(BASIC_CONSTRAINTS_new());
  if (bc == nullptr) return OpenSslError("BASIC_CONSTRAINTS_new");
  bc->ca = ca ? 0xFF : 0;
  if (pathlen >= 0) {
    bc->pathlen = ASN1_INTEGER_new();  // Owned by `bc`.
    if (bc->pathlen == nullptr || ASN1_INTEGER_set(bc->pathlen, pathlen) != 1) {
      return OpenSslError("setting pathlen");
    }
  }
  return AddExtension(cert, NID_basic_constraints, bc.get(), /*critical=*/true);
}

// RFC 5280 §4.2.1.3 bit numbers.
constexpr int kDigitalSignature = 0;
constexpr int kKeyCertSign = 5;
constexpr int kCrlSign = 6;

absl::Status AddKeyUsage(X509* cert, std::initializer_list<int> bits) {
  ssl::UniquePtr<ASN1_BIT_STRING> ku(ASN1_BIT_STRING_new());
  if (ku == nullptr) return OpenSslError("ASN1_BIT_STRING_new");
  for (int bit : bits) {
    if (ASN1_BIT_STRING_set_bit(ku.get(), bit, 1) != 1) return OpenSslError("setting keyUsage");
  }
  return AddExtension(cert, NID_key_usage, ku.get(), /*critical=*/true);
}

absl::Status AddExtendedKeyUsage(X509* cert, std::initializer_list<int> nids) {
  ssl::UniquePtr<EXTENDED_KEY_USAGE> eku(sk_ASN1_OBJECT_new_null());
  if (eku == nullptr) return OpenSslError("sk_ASN1_OBJECT_new_null");
  for (int nid : nids) {
    if (sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(nid)) <= 0) {  // Static objects.
      return OpenSslError("building extendedKeyUsage");
    }
  }
  return AddExtension(cert, NID_ext_key_usage, eku.get(), /*critical=*/false);
}

// RFC 7093 §2 method 1: the leftmost 160 bits of SHA-256 over the subjectPublicKey bits.
absl::StatusOr<ssl::UniquePtr<ASN1_OCTET_STRING>> ComputeKeyId(const X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_pubkey_digest(cert, EVP_sha256(), md, &len) != 1 || len < 20) {
    return OpenSslError("hashing the public key");
  }
  ssl::UniquePtr<ASN1_OCTET_STRING> id(ASN1_OCTET_STRING_new());
  if (id == nullptr || ASN1_OCTET_STRING_set(id.get(), md, 20) != 1) {
    return OpenSslError("building a key identifier");
  }
  return id;
}

absl::Status AddSubjectKeyId(X509* cert) {
  ASSIGN_OR_RETURN(ssl::UniquePtr<ASN1_OCTET_STRING> id, ComputeKeyId(cert));
  return AddExtension(cert, NID_subject_key_identifier, id.get(), /*critical=*/false);
}

// The issuer's subjectKeyIdentifier as an authorityKeyIdentifier (computed if it has none).
absl::StatusOr<ssl::UniquePtr<AUTHORITY_KEYID>> AuthorityKeyId(X509* issuer) {
  ssl::UniquePtr<AUTHORITY_KEYID> akid(AUTHORITY_KEYID_new());
  if (akid == nullptr) return OpenSslError("AUTHORITY_KEYID_new");
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(issuer);
  if (ski != nullptr) {
    akid->keyid = ASN1_OCTET_STRING_dup(ski);  // Owned by `akid`.
    if (akid->keyid == nullptr) return OpenSslError("copying the key identifier");
  } else {
    ASSIGN_OR_RETURN(ssl::UniquePtr<ASN1_OCTET_STRING> id, ComputeKeyId(issuer));
    akid->keyid = id.release();  // Owned by `akid` now.
  }
  return akid;
}

absl::Status AddAuthorityKeyId(X509* cert, X509* issuer) {
  ASSIGN_OR_RETURN(ssl::UniquePtr<AUTHORITY_KEYID> akid, AuthorityKeyId(issuer));
  return AddExtension(cert, NID_authority_key_identifier, akid.get(), /*critical=*/false);
}

absl::Status PushGeneralName(GENERAL_NAMES* names, int type, absl::string_view bytes) {
  ssl::UniquePtr<ASN1_STRING> value(type == GEN_IPADD ? ASN1_OCTET_STRING_new()
                                                      : ASN1_IA5STRING_new());
  if (value == nullptr ||
      ASN1_STRING_set(value.get(), bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return OpenSslError("building subjectAltName");
  }
  ssl::UniquePtr<GENERAL_NAME> name(GENERAL_NAME_new());
  if (name == nullptr) return OpenSslError("GENERAL_NAME_new");
  GENERAL_NAME_set0_value(name.get(), type, value.release());  // Owned by `name` now.
  if (sk_GENERAL_NAME_push(names, name.get()) <= 0) return OpenSslError("building subjectAltName");
  name.release();  // Owned by `names` now.
  return absl::OkStatus();
}

absl::Status Sign(X509* cert, EVP_PKEY* key, const EVP_MD* md) {
  if (X509_sign(cert, key, md) <= 0) return OpenSslError("signing the certificate");
  return absl::OkStatus();
}

// An issuer's key and certificate, checked to belong together and to be a CA allowed `usage`
// (KU_KEY_CERT_SIGN or KU_CRL_SIGN).
struct Issuer {
  ssl::UniquePtr<EVP_PKEY> key;
  ssl::UniquePtr<X509> cert;
  const EVP_MD* md = nullptr;
};

absl::StatusOr<Issuer> LoadIssuer(const KeyAndCert& issuer, absl::string_view what,
                                  uint32_t usage) {
  Issuer out;
  ASSIGN_OR_RETURN(out.cert, LoadCertificate(issuer.cert_pem, absl::StrCat(what, " cert_pem")));
  ASSIGN_OR_RETURN(out.key, LoadPrivateKey(issuer.key_pem, absl::StrCat(what, " key_pem")));
  ASSIGN_OR_RETURN(out.md, DigestForKey(out.key.get(), absl::StrCat(what, " key_pem")));
  if (X509_check_private_key(out.cert.get(), out.key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(what, " key_pem does not belong to its cert_pem"));
  }
  if ((X509_get_extension_flags(out.cert.get()) & EXFLAG_CA) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " certificate is not a CA (no basicConstraints CA:TRUE)"));
  }
  if ((X509_get_key_usage(out.cert.get()) & usage) != usage) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " certificate's keyUsage lacks ", usage == KU_CRL_SIGN ? "cRLSign" : "keyCertSign"));
  }
  return out;
}

absl::StatusOr<KeyAndCert> Finish(X509* cert, EVP_PKEY* key) {
  KeyAndCert out;
  ASSIGN_OR_RETURN(out.key_pem, PrivateKeyToPem(key));
  ASSIGN_OR_RETURN(out.cert_pem, CertificateToPem(cert));
  return out;
}

// A CRL entry's serial from CertificateInfo::serial_hex form, normalized (lowercase, no leading
// zeros).
absl::StatusOr<std::string> NormalizeSerialHex(absl::string_view hex) {
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("revoked serial ", QuoteForError(hex), " is not hexadecimal"));
    }
  }
  std::string s = absl::AsciiStrToLower(hex);
  size_t nz = s.find_first_not_of('0');
  if (nz == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("revoked serial ", QuoteForError(hex), " is not a positive number"));
  }
  s.erase(0, nz);
  if (s.size() > 40) {  // RFC 5280 §4.1.2.2: at most 20 octets.
    return absl::InvalidArgumentError(
        absl::StrCat("revoked serial ", QuoteForError(hex), " is longer than 20 octets"));
  }
  return s;
}

}  // namespace

// ---- Public API ---------------------------------------------------------------------------------

absl::StatusOr<KeyAndCert> CreateRootCa(const CaOptions& options) {
  ERR_clear_error();
  ASSIGN_OR_RETURN(Validity validity,
                   ComputeValidity(options.now, options.backdate, options.validity));
  ASSIGN_OR_RETURN(ssl::UniquePtr<X509_NAME> name, CaName(options));
  ASSIGN_OR_RETURN(ssl::UniquePtr<EVP_PKEY> key, GenerateKey());
  ASSIGN_OR_RETURN(ssl::UniquePtr<X509> cert,
                   NewCertificate(name.get(), name.get(), validity, key.get()));
  RETURN_IF_ERROR(AddBasicConstraints(cert.get(), /*ca=*/true, /*pathlen=*/-1));
  RETURN_IF_ERROR(AddKeyUsage(cert.get(), {kKeyCertSign, kCrlSign}));
  RETURN_IF_ERROR(AddSubjectKeyId(cert.get()));
  RETURN_IF_ERROR(Sign(cert.get(), key.get(), EVP_sha256()));
  return Finish(cert.get(), key.get());
}

absl::StatusOr<KeyAndCert> CreateIssuingCa(const KeyAndCert& parent, const CaOptions& options) {
  ERR_clear_error();
  ASSIGN_OR_RETURN(Validity validity,
                   ComputeValidity(options.now, options.backdate, options.validity));
  ASSIGN_OR_RETURN(ssl::UniquePtr<X509_NAME> name, CaName(options));
  ASSIGN_OR_RETURN(Issuer issuer, LoadIssuer(parent, "parent", KU_KEY_CERT_SIGN));
  if (X509_get_pathlen(issuer.cert.get()) == 0) {
    return absl::InvalidArgumentError(
        "parent certificate has pathlen:0 and may not certify another CA");
  }
  ASSIGN_OR_RETURN(ssl::UniquePtr<EVP_PKEY> key, GenerateKey());
  ASSIGN_OR_RETURN(
      ssl::UniquePtr<X509> cert,
      NewCertificate(name.get(), X509_get_subject_name(issuer.cert.get()), validity, key.get()));
  RETURN_IF_ERROR(AddBasicConstraints(cert.get(), /*ca=*/true, /*pathlen=*/0));
  RETURN_IF_ERROR(AddKeyUsage(cert.get(), {kKeyCertSign, kCrlSign}));
  RETURN_IF_ERROR(AddSubjectKeyId(cert.get()));
  RETURN_IF_ERROR(AddAuthorityKeyId(cert.get(), issuer.cert.get()));
  RETURN_IF_ERROR(Sign(cert.get(), issuer.key.get(), issuer.md));
  return Finish(cert.get(), key.get());
}

absl::StatusOr<KeyAndCert> IssuePeerCertificate(const KeyAndCert& issuer,
                                                const PeerCertOptions& options) {
  ERR_clear_error();
  RETURN_IF_ERROR(ValidatePeerId(options.peer_id));
  RETURN_IF_ERROR(ValidateFederation(options.federation));
  for (const std::string& dns : options.dns_names) RETURN_IF_ERROR(ValidateDnsName(dns));
  std::vector<std::string> ips;
  for (const std::string& ip : options.ip_addresses) {
    ips.push_back(ParseIp(ip));
    if (ips.back().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("ip_addresses entry ", QuoteForError(ip),
                                                     " is not an IPv4 or IPv6 address"));
    }
  }
  RETURN_IF_ERROR(ValidateNameText(options.subject_serial_number, "subject_serial_number",
                                   /*required=*/false));
  ASSIGN_OR_RETURN(Validity validity,
                   ComputeValidity(options.now, options.backdate, options.validity));

  ssl::UniquePtr<X509_NAME> name(X509_NAME_new());
  if (name == nullptr) return OpenSslError("X509_NAME_new");
  RETURN_IF_ERROR(AddNameEntry(name.get(), NID_commonName, options.peer_id, "peer_id"));
  if (!options.subject_serial_number.empty()) {
    RETURN_IF_ERROR(AddNameEntry(name.get(), NID_serialNumber, options.subject_serial_number,
                                 "subject_serial_number"));
  }

  ASSIGN_OR_RETURN(Issuer ca, LoadIssuer(issuer, "issuer", KU_KEY_CERT_SIGN));
  ssl::UniquePtr<EVP_PKEY> key;
  if (options.key_pem.empty()) {
    ASSIGN_OR_RETURN(key, GenerateKey());
  } else {
    ASSIGN_OR_RETURN(key, LoadPrivateKey(options.key_pem, "key_pem"));
    RETURN_IF_ERROR(DigestForKey(key.get(), "key_pem").status());
    if (X509_check_private_key(ca.cert.get(), key.get()) == 1) {
      return absl::InvalidArgumentError("key_pem is the issuer's own key; a peer needs its own");
    }
    ERR_clear_error();
  }

  ASSIGN_OR_RETURN(
      ssl::UniquePtr<X509> cert,
      NewCertificate(name.get(), X509_get_subject_name(ca.cert.get()), validity, key.get()));
  RETURN_IF_ERROR(AddBasicConstraints(cert.get(), /*ca=*/false, /*pathlen=*/-1));
  RETURN_IF_ERROR(AddKeyUsage(cert.get(), {kDigitalSignature}));
  RETURN_IF_ERROR(AddExtendedKeyUsage(cert.get(), {NID_server_auth, NID_client_auth}));
  RETURN_IF_ERROR(AddSubjectKeyId(cert.get()));
  RETURN_IF_ERROR(AddAuthorityKeyId(cert.get(), ca.cert.get()));

  ssl::UniquePtr<GENERAL_NAMES> names(GENERAL_NAMES_new());
  if (names == nullptr) return OpenSslError("GENERAL_NAMES_new");
  RETURN_IF_ERROR(
      PushGeneralName(names.get(), GEN_URI,
                      absl::StrCat("spiffe://", options.federation, "/peer/", options.peer_id)));
  for (const std::string& dns : options.dns_names) {
    RETURN_IF_ERROR(PushGeneralName(names.get(), GEN_DNS, dns));
  }
  for (const std::string& ip : ips) RETURN_IF_ERROR(PushGeneralName(names.get(), GEN_IPADD, ip));
  RETURN_IF_ERROR(AddExtension(cert.get(), NID_subject_alt_name, names.get(), /*critical=*/false));

  RETURN_IF_ERROR(Sign(cert.get(), ca.key.get(), ca.md));
  return Finish(cert.get(), key.get());
}

absl::StatusOr<std::string> CreateCrl(const KeyAndCert& issuer,
                                      const std::vector<std::string>& revoked_serials_hex,
                                      int64_t crl_number, absl::Time now,
                                      absl::Duration next_update) {
  ERR_clear_error();
  if (crl_number < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("crl_number must not be negative, got ", crl_number));
  }
  RETURN_IF_ERROR(ValidateNow(now, "now"));
  if (next_update < absl::Seconds(1) || now + next_update > kLatest) {
    return absl::InvalidArgumentError(
        absl::StrCat("next_update must be at least 1s and end before 9999, got ",
                     absl::FormatDuration(next_update)));
  }
  std::set<std::string> serials;
  for (const std::string& hex : revoked_serials_hex) {
    ASSIGN_OR_RETURN(std::string serial, NormalizeSerialHex(hex));
    serials.insert(std::move(serial));
  }
  ASSIGN_OR_RETURN(Issuer ca, LoadIssuer(issuer, "issuer", KU_CRL_SIGN));

  ssl::UniquePtr<X509_CRL> crl(X509_CRL_new());
  ssl::UniquePtr<ASN1_TIME> last_update(
      ASN1_TIME_set(nullptr, static_cast<time_t>(absl::ToUnixSeconds(now))));
  ssl::UniquePtr<ASN1_TIME> next(
      ASN1_TIME_set(nullptr, static_cast<time_t>(absl::ToUnixSeconds(now + next_update))));
  if (crl == nullptr || last_update == nullptr || next == nullptr ||
      X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.cert.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), last_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
    return OpenSslError("filling in the CRL");
  }
  for (const std::string& hex : serials) {
    BIGNUM* raw = nullptr;
    const int parsed = BN_hex2bn(&raw, hex.c_str());
    ssl::UniquePtr<BIGNUM> bn(raw);
    if (parsed != static_cast<int>(hex.size())) {
      return OpenSslError(absl::StrCat("parsing serial ", hex));
    }
    ssl::UniquePtr<ASN1_INTEGER> serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    ssl::UniquePtr<X509_REVOKED> entry(X509_REVOKED_new());
    if (serial == nullptr || entry == nullptr ||
        X509_REVOKED_set_serialNumber(entry.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(entry.get(), last_update.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), entry.get()) != 1) {
      return OpenSslError("adding a CRL entry");
    }
    entry.release();  // Owned by the CRL now.
  }
  ssl::UniquePtr<ASN1_INTEGER> number(ASN1_INTEGER_new());
  if (number == nullptr || ASN1_INTEGER_set_int64(number.get(), crl_number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError("adding crlNumber");
  }
  ASSIGN_OR_RETURN(ssl::UniquePtr<AUTHORITY_KEYID> akid, AuthorityKeyId(ca.cert.get()));
  if (X509_CRL_add1_ext_i2d(crl.get(), NID_authority_key_identifier, akid.get(), 0,
                            X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError("adding authorityKeyIdentifier to the CRL");
  }
  if (X509_CRL_sort(crl.get()) != 1) return OpenSslError("sorting the CRL");
  if (X509_CRL_sign(crl.get(), ca.key.get(), ca.md) <= 0) return OpenSslError("signing the CRL");
  ASSIGN_OR_RETURN(ssl::UniquePtr<BIO> bio, WritableBio());
  if (PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) return OpenSslError("encoding the CRL");
  return BioContents(bio.get());
}

absl::StatusOr<std::string> GeneratePrivateKeyPem() {
  ERR_clear_error();
  ASSIGN_OR_RETURN(ssl::UniquePtr<EVP_PKEY> key, GenerateKey());
  return PrivateKeyToPem(key.get());
}

}  // namespace tls
}  // namespace polder
