// The federation's X.509 certificate authority (OpenSSL 3): root and issuing CAs, peer
// certificates and CRLs.
//
// Used by `polderctl pki init/issue/revoke` and by tests that mint certificates at test time;
// services only read certificates (certificate.h) and never link this library.
//
//   CaOptions root_options;
//   root_options.common_name = "Polder federation root";
//   ASSIGN_OR_RETURN(KeyAndCert root, CreateRootCa(root_options));
//   CaOptions ca_options;
//   ca_options.common_name = "Polder issuing CA";
//   ASSIGN_OR_RETURN(KeyAndCert ca, CreateIssuingCa(root, ca_options));
//   PeerCertOptions peer;
//   peer.federation = "nl-smartcity";
//   peer.peer_id = "utrecht";                 // SAN URI spiffe://nl-smartcity/peer/utrecht
//   peer.dns_names = {"localhost"};
//   ASSIGN_OR_RETURN(KeyAndCert leaf, IssuePeerCertificate(ca, peer));
//   ASSIGN_OR_RETURN(CertificateInfo info, ParseCertificate(leaf.cert_pem));  // certificate.h
//   ASSIGN_OR_RETURN(std::string crl,
//                    CreateCrl(ca, {info.serial_hex}, 1, absl::Now(), absl::Hours(24)));
//
// Keys are EC P-256 (ECDSA with SHA-256). Existing keys passed in (`key_pem`, issuer keys) may
// also be EC P-384 (signed with SHA-384) or RSA of at least 2048 bits (SHA-256).
// Encrypted private keys are refused (never prompts for a passphrase).
//
// Times are truncated to whole seconds: notBefore = floor(now - backdate),
// notAfter = floor(now + validity). A child's notAfter is not clamped to its issuer's.
//
// Errors: INVALID_ARGUMENT names the bad input; INTERNAL carries the OpenSSL error string.
// Private key material never appears in an error message. Thread-safe.
#ifndef POLDER_COMMON_TLS_CA_H_
#define POLDER_COMMON_TLS_CA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace polder {
namespace tls {

// PEM-encoded private key (PKCS#8, unencrypted) and certificate.
struct KeyAndCert {
  std::string key_pem;
  std::string cert_pem;
};

struct CaOptions {
  std::string common_name;   // e.g. "Polder federation root"; required, at most 64 characters.
  std::string organization;  // Optional O=, at most 64 characters.
  absl::Duration validity = absl::Hours(24 * 365 * 10);  // At least one second.
  absl::Time now = absl::Now();
  absl::Duration backdate = absl::Minutes(5);  // notBefore = now - backdate (clock skew); >= 0.
};

// Self-signed root: fresh EC P-256 key, basicConstraints CA:TRUE (critical), keyUsage
// keyCertSign+cRLSign (critical), subjectKeyIdentifier.
absl::StatusOr<KeyAndCert> CreateRootCa(const CaOptions& options);

// Issuing CA signed by `parent` (a CA whose path length allows one more CA): fresh EC P-256 key,
// CA:TRUE pathlen:0 (critical), keyUsage keyCertSign+cRLSign (critical), AKI/SKI.
absl::StatusOr<KeyAndCert> CreateIssuingCa(const KeyAndCert& parent, const CaOptions& options);

struct PeerCertOptions {
  // SPIFFE trust domain ([a-z0-9._-], at most 255): SAN URI spiffe://<federation>/peer/<peer_id>.
  std::string federation;
  // Lowercase slug [a-z][a-z0-9-]{1,62}; INVALID_ARGUMENT otherwise.
  std::string peer_id;
  // SAN DNS entries (e.g. "localhost"): LDH host names, no wildcards, no IP literals.
  std::vector<std::string> dns_names;
  // SAN IP entries (e.g. "127.0.0.1", "::1").
  std::vector<std::string> ip_addresses;
  // Optional subject serialNumber attribute (e.g. an OIN), as FSC does: PrintableString, <= 64.
  std::string subject_serial_number;
  absl::Duration validity = absl::Hours(24 * 90);  // May be as short as one second (tests).
  absl::Duration backdate = absl::Minutes(5);
  absl::Time now = absl::Now();
  // Optional: certify this existing private key (PEM) instead of generating one. The returned
  // key_pem is then this key as PKCS#8. The issuer's own key is refused.
  std::string key_pem;
};

// Leaf certificate for a peer, signed by `issuer` (a CA): subject CN=<peer_id> (+ serialNumber),
// SAN URI + DNS + IP, keyUsage digitalSignature (critical), extendedKeyUsage serverAuth+clientAuth,
// basicConstraints CA:FALSE (critical), AKI/SKI, random 128-bit positive serial.
absl::StatusOr<KeyAndCert> IssuePeerCertificate(const KeyAndCert& issuer,
                                                const PeerCertOptions& options);

// A v2 CRL (PEM) from `issuer` (a CA with cRLSign) listing the given certificate serial numbers
// (hex as in CertificateInfo::serial_hex; case and leading zeros do not matter; duplicates are
// listed once), with crlNumber `crl_number` (>= 0), AKI, lastUpdate = now,
// nextUpdate = now + next_update. Each entry's revocationDate is `now`.
absl::StatusOr<std::string> CreateCrl(const KeyAndCert& issuer,
                                      const std::vector<std::string>& revoked_serials_hex,
                                      int64_t crl_number, absl::Time now,
                                      absl::Duration next_update);

// A fresh EC P-256 private key as PKCS#8 PEM (e.g. to pass as PeerCertOptions::key_pem).
absl::StatusOr<std::string> GeneratePrivateKeyPem();

}  // namespace tls
}  // namespace polder

#endif  // POLDER_COMMON_TLS_CA_H_
