// Reading X.509 certificates and keys at run time (OpenSSL 3): what a certificate says, and
// the thumbprint the federation directory lists a TLS key by.
//
//   ASSIGN_OR_RETURN(CertificateInfo info, ParseCertificate(cert_pem));
//   if (absl::Now() > info.not_after) ...;
//   ASSIGN_OR_RETURN(std::string thumbprint, KeyThumbprint(cert_pem));  // == info.key_thumbprint
//
// Every function takes untrusted text and answers INVALID_ARGUMENT for anything malformed;
// INTERNAL only when OpenSSL itself fails (with its error string). Private key material never
// appears in an error message. Thread-safe.
//
// Making certificates, CAs and CRLs is ca.h's (tooling and tests).
#ifndef POLDER_COMMON_TLS_CERTIFICATE_H_
#define POLDER_COMMON_TLS_CERTIFICATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace polder {
namespace tls {

struct CertificateInfo {
  std::string subject;  // One-line RFC 2253 form, e.g. "CN=utrecht,O=Polder" (UTF-8 kept).
  std::string issuer;
  std::string serial_hex;  // Lowercase hex, no leading zeros.
  absl::Time not_before;
  absl::Time not_after;
  std::vector<std::string> uris;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;  // Textual form ("127.0.0.1", "::1").
  std::string subject_serial_number;      // Empty if absent.
  std::string key_thumbprint;             // KeyThumbprint of the certificate's public key.
  bool is_ca = false;                     // basicConstraints CA:TRUE.
};

// Parses the first certificate of a PEM text. INVALID_ARGUMENT if there is none or it is
// malformed (including duplicate extensions, duplicate subject serialNumber attributes, NUL
// bytes in SAN entries or the serialNumber, and SAN IP addresses of other than 4 or 16 bytes).
absl::StatusOr<CertificateInfo> ParseCertificate(absl::string_view cert_pem);

// "sha256:" + base64url-without-padding of SHA-256 over the DER SubjectPublicKeyInfo. Accepts a
// certificate PEM, a public key PEM or a private key PEM (the first PEM block decides).
absl::StatusOr<std::string> KeyThumbprint(absl::string_view pem);

// The public key ("-----BEGIN PUBLIC KEY-----") of a certificate, public key or private key PEM.
absl::StatusOr<std::string> PublicKeyPem(absl::string_view pem);

}  // namespace tls
}  // namespace polder

#endif  // POLDER_COMMON_TLS_CERTIFICATE_H_
