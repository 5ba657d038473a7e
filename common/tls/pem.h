// PEM input and output of OpenSSL objects, and OpenSSL errors as absl::Status: the OpenSSL-level
// layer under the certificate parser (certificate.h), the CA (ca.h), the identity checker and
// the HTTPS server.
//
// Nothing here prompts for a passphrase: encrypted private keys fail instead. Errors about
// private keys never carry OpenSSL's detail, which could quote the key material.
#ifndef POLDER_COMMON_TLS_PEM_H_
#define POLDER_COMMON_TLS_PEM_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tls/openssl_ptr.h"

namespace polder {
namespace tls {

// Empties this thread's OpenSSL error queue into one string ("unknown OpenSSL error" if it
// was empty).
std::string DrainOpenSslErrors();

// INTERNAL "<what>: <DrainOpenSslErrors()>".
absl::Status OpenSslError(absl::string_view what);

// Input text for an error message: C-escaped, in single quotes, cut after 80 bytes.
std::string QuoteForError(absl::string_view text);

// A read-only memory BIO over `text`, which must outlive it. INVALID_ARGUMENT ("<what> is too
// large") beyond INT_MAX bytes.
absl::StatusOr<ssl::UniquePtr<BIO>> ReadOnlyBio(absl::string_view text, absl::string_view what);

// An empty, writable memory BIO.
absl::StatusOr<ssl::UniquePtr<BIO>> WritableBio();

// Everything written to a memory BIO so far.
std::string BioContents(BIO* bio);

// The labels of the PEM blocks in `text` ("CERTIFICATE", "PRIVATE KEY", ...), in order. Only the
// "-----BEGIN <label>-----" lines are looked at; nothing is decoded.
std::vector<std::string> PemLabels(absl::string_view text);

// "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY" or "ENCRYPTED PRIVATE KEY".
bool IsPrivateKeyLabel(absl::string_view label);

// The first certificate in `pem`. INVALID_ARGUMENT naming `what` if there is none or its
// extensions are malformed or duplicated.
absl::StatusOr<ssl::UniquePtr<X509>> LoadCertificate(absl::string_view pem, absl::string_view what);

// The private key in `pem` (PKCS#8 or traditional). INVALID_ARGUMENT naming `what` if there is
// none, it is encrypted, or it does not decode.
absl::StatusOr<ssl::UniquePtr<EVP_PKEY>> LoadPrivateKey(absl::string_view pem,
                                                        absl::string_view what);

// The public key of the first certificate, public key or private key block of `pem` (leading
// "EC PARAMETERS" blocks are skipped). INVALID_ARGUMENT for anything else.
absl::StatusOr<ssl::UniquePtr<EVP_PKEY>> LoadAnyPublicKey(absl::string_view pem);

// Every certificate in `pem`, in order, up to the first block that does not decode (blocks of
// other types are skipped). Never fails: malformed input yields fewer certificates.
std::vector<ssl::UniquePtr<X509>> ReadCertificates(absl::string_view pem);

// Every CRL in `pem`, as ReadCertificates.
std::vector<ssl::UniquePtr<X509_CRL>> ReadCrls(absl::string_view pem);

// `cert` as a "-----BEGIN CERTIFICATE-----" block.
absl::StatusOr<std::string> CertificateToPem(X509* cert);

}  // namespace tls
}  // namespace polder

#endif  // POLDER_COMMON_TLS_PEM_H_
