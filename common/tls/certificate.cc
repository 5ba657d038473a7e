#include "common/tls/certificate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "common/status/status_macros.h"
#include "common/tls/openssl_ptr.h"
#include "common/tls/pem.h"

namespace polder {
namespace tls {
namespace {

absl::StatusOr<std::string> SpkiDer(EVP_PKEY* key) {
  unsigned char* raw = nullptr;
  int len = i2d_PUBKEY(key, &raw);
  ssl::UniquePtr<unsigned char> der(raw);
  if (len <= 0) return OpenSslError("encoding SubjectPublicKeyInfo");
  return std::string(reinterpret_cast<char*>(der.get()), static_cast<size_t>(len));
}

absl::StatusOr<std::string> ThumbprintOfKey(EVP_PKEY* key) {
  ASSIGN_OR_RETURN(std::string der, SpkiDer(key));
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(der.data()), der.size(), md);
  std::string b64;
  absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<char*>(md), sizeof md), &b64);
  return absl::StrCat("sha256:", b64);
}

absl::StatusOr<std::string> NameToString(const X509_NAME* name) {
  ASSIGN_OR_RETURN(ssl::UniquePtr<BIO> bio, WritableBio());
  // RFC 2253, but UTF-8 is written as is instead of as \XX escapes.
  if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    return OpenSslError("printing a name");
  }
  return BioContents(bio.get());
}

absl::StatusOr<absl::Time> ToAbslTime(const ASN1_TIME* t, absl::string_view what) {
  struct tm tm;
  std::memset(&tm, 0, sizeof tm);
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("certificate ", what, " is malformed"));
  }
  return absl::FromCivil(absl::CivilSecond(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                           tm.tm_min, tm.tm_sec),
                         absl::UTCTimeZone());
}

absl::StatusOr<std::string> BnToHex(const BIGNUM* bn) {
  ssl::UniquePtr<char> hex(BN_bn2hex(bn));
  if (hex == nullptr) return OpenSslError("BN_bn2hex");
  std::string s = absl::AsciiStrToLower(hex.get());
  bool negative = !s.empty() && s[0] == '-';
  if (negative) s.erase(0, 1);
  size_t nz = s.find_first_not_of('0');
  s = nz == std::string::npos ? "0" : s.substr(nz);
  return negative ? absl::StrCat("-", s) : s;
}

absl::StatusOr<std::string> SerialHex(const ASN1_INTEGER* serial) {
  ssl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn == nullptr) return absl::InvalidArgumentError("certificate serial number is malformed");
  return BnToHex(bn.get());
}

// IA5String contents; INVALID_ARGUMENT on NUL bytes (which would truncate comparisons).
absl::StatusOr<std::string> Ia5(const ASN1_STRING* s, absl::string_view what) {
  std::string out(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                  static_cast<size_t>(ASN1_STRING_length(s)));
  if (out.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("certificate ", what, " contains a NUL byte"));
  }
  return out;
}

absl::Status ReadSubjectAltNames(X509* cert, CertificateInfo& info) {
  int crit = -1;
  ssl::UniquePtr<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, nullptr)));
  if (names == nullptr) {
    if (crit == -1) return absl::OkStatus();  // No SAN.
    ERR_clear_error();
    return absl::InvalidArgumentError(crit == -2 ? "certificate has two subjectAltName extensions"
                                                 : "certificate subjectAltName is malformed");
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    switch (name->type) {
      case GEN_URI: {
        ASSIGN_OR_RETURN(std::string uri, Ia5(name->d.uniformResourceIdentifier, "SAN URI"));
        info.uris.push_back(std::move(uri));
        break;
      }
      case GEN_DNS: {
        ASSIGN_OR_RETURN(std::string dns, Ia5(name->d.dNSName, "SAN DNS name"));
        info.dns_names.push_back(std::move(dns));
        break;
      }
      case GEN_IPADD: {
        const ASN1_OCTET_STRING* ip = name->d.iPAddress;
        int len = ASN1_STRING_length(ip);
        char text[INET6_ADDRSTRLEN] = {0};
        if ((len != 4 && len != 16) ||
            inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), text,
                      sizeof text) == nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat("certificate SAN IP address has ", len, " bytes"));
        }
        info.ip_addresses.push_back(text);
        break;
      }
      default:
        break;  // Other name forms are not reported.
    }
  }
  return absl::OkStatus();
}

absl::Status ReadSubjectSerialNumber(const X509_NAME* subject, CertificateInfo& info) {
  int index = X509_NAME_get_index_by_NID(subject, NID_serialNumber, -1);
  if (index < 0) return absl::OkStatus();
  if (X509_NAME_get_index_by_NID(subject, NID_serialNumber, index) >= 0) {
    return absl::InvalidArgumentError("certificate subject has more than one serialNumber");
  }
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* raw = nullptr;
  int len = ASN1_STRING_to_UTF8(&raw, data);
  ssl::UniquePtr<unsigned char> utf8(raw);
  if (len < 0) {
    ERR_clear_error();
    return absl::InvalidArgumentError("certificate subject serialNumber is malformed");
  }
  std::string value(reinterpret_cast<char*>(utf8.get()), static_cast<size_t>(len));
  if (value.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("certificate subject serialNumber contains a NUL byte");
  }
  info.subject_serial_number = std::move(value);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CertificateInfo> ParseCertificate(absl::string_view cert_pem) {
  ERR_clear_error();
  ASSIGN_OR_RETURN(ssl::UniquePtr<X509> cert, LoadCertificate(cert_pem, "certificate"));
  CertificateInfo info;
  ASSIGN_OR_RETURN(info.subject, NameToString(X509_get_subject_name(cert.get())));
  ASSIGN_OR_RETURN(info.issuer, NameToString(X509_get_issuer_name(cert.get())));
  ASSIGN_OR_RETURN(info.serial_hex, SerialHex(X509_get0_serialNumber(cert.get())));
  ASSIGN_OR_RETURN(info.not_before, ToAbslTime(X509_get0_notBefore(cert.get()), "notBefore"));
  ASSIGN_OR_RETURN(info.not_after, ToAbslTime(X509_get0_notAfter(cert.get()), "notAfter"));
  RETURN_IF_ERROR(ReadSubjectAltNames(cert.get(), info));
  RETURN_IF_ERROR(ReadSubjectSerialNumber(X509_get_subject_name(cert.get()), info));
  EVP_PKEY* key = X509_get0_pubkey(cert.get());  // Owned by the certificate.
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate public key cannot be decoded: ", DrainOpenSslErrors()));
  }
  ASSIGN_OR_RETURN(info.key_thumbprint, ThumbprintOfKey(key));
  info.is_ca = (X509_get_extension_flags(cert.get()) & EXFLAG_CA) != 0;
  return info;
}

absl::StatusOr<std::string> KeyThumbprint(absl::string_view pem) {
  ERR_clear_error();
  ASSIGN_OR_RETURN(ssl::UniquePtr<EVP_PKEY> key, LoadAnyPublicKey(pem));
  return ThumbprintOfKey(key.get());
}

absl::StatusOr<std::string> PublicKeyPem(absl::string_view pem) {
  ERR_clear_error();
  ASSIGN_OR_RETURN(ssl::UniquePtr<EVP_PKEY> key, LoadAnyPublicKey(pem));
  ASSIGN_OR_RETURN(ssl::UniquePtr<BIO> bio, WritableBio());
  if (PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    return OpenSslError("encoding the public key");
  }
  return BioContents(bio.get());
}

}  // namespace tls
}  // namespace polder
