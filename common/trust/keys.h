// Ed25519 signing keys for directories, contracts and audit receipts — separate from TLS keys,
// so certificate rotation never invalidates a signature (ARCHITECTURE §8).
//
//   ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::Generate());
//   RETURN_IF_ERROR(key.WriteFile("/etc/polder/signing.key"));   // 0600, never overwritten
//   ASSIGN_OR_RETURN(std::string sig, key.Sign(payload));
//   RETURN_IF_ERROR(key.public_key().Verify(payload, sig));
//
// A key is named by its RFC 7638 JWK thumbprint (SHA-256 over {"crv","kty","x"}, base64url),
// used as the JWS "kid". Private keys are never logged or printed: they have no ToString.
#ifndef POLDER_COMMON_TRUST_KEYS_H_
#define POLDER_COMMON_TRUST_KEYS_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace polder {
namespace trust {

// base64url without padding (RFC 4648 §5), as JWS uses it.
std::string Base64UrlEncode(absl::string_view data);
// Strict: INVALID_ARGUMENT on padding, whitespace or characters outside the alphabet.
absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text);

// SHA-256 of `data`, raw bytes.
std::string Sha256(absl::string_view data);

class PublicKey {
 public:
  // An Ed25519 public key as PEM ("-----BEGIN PUBLIC KEY-----") or as the base64url of its
  // 32 raw bytes (the JWK "x" member, as the peer directory stores keys).
  static absl::StatusOr<PublicKey> FromPem(absl::string_view pem);
  static absl::StatusOr<PublicKey> FromRaw(absl::string_view base64url);
  static absl::StatusOr<PublicKey> ReadFile(const std::string& path);

  // RFC 7638 thumbprint (base64url of SHA-256 of the canonical JWK).
  const std::string& kid() const { return kid_; }
  // base64url of the 32 raw key bytes.
  std::string RawBase64Url() const;
  std::string Pem() const;
  // OK if `signature` is a valid Ed25519 signature of `data`; INVALID_ARGUMENT otherwise.
  absl::Status Verify(absl::string_view data, absl::string_view signature) const;

 private:
  explicit PublicKey(std::shared_ptr<EVP_PKEY> key);
  std::shared_ptr<EVP_PKEY> key_;
  std::string kid_;
};

class PrivateKey {
 public:
  static absl::StatusOr<PrivateKey> Generate();
  // PKCS#8 PEM. Refuses keys that are not Ed25519.
  static absl::StatusOr<PrivateKey> FromPem(absl::string_view pem);
  // Reads a key file; FAILED_PRECONDITION if it is readable by group or others.
  static absl::StatusOr<PrivateKey> ReadFile(const std::string& path);

  // Writes PKCS#8 PEM with mode 0600. ALREADY_EXISTS if the file exists: keys are never
  // overwritten by accident.
  absl::Status WriteFile(const std::string& path) const;

  const PublicKey& public_key() const { return public_key_; }
  absl::StatusOr<std::string> Sign(absl::string_view data) const;

 private:
  PrivateKey(std::shared_ptr<EVP_PKEY> key, PublicKey public_key);
  std::string PemForFile() const;
  std::shared_ptr<EVP_PKEY> key_;
  PublicKey public_key_;
};

// The mode a private file (a key, a token) may have: read and written by its owner alone; or
// also read, never written, by the process's own group while others have no access at all
// (0440, 0640: Kubernetes mounts a Secret so under the pod's fsGroup, which a pod needs for its
// state volume, and the process then runs in that group). Another group, or others: refused.
bool PrivateFileModeAllowed(mode_t mode, gid_t file_group, gid_t process_group);

// PrivateFileModeAllowed for the file at `path` (links followed): FAILED_PRECONDITION naming
// `what`, the path and its mode when not; NOT_FOUND when it cannot be read.
absl::Status CheckPrivateFile(const std::string& path, absl::string_view what);

// Writes `content` to `path` atomically (temp file, fsync, rename) with `mode`.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view content, int mode);
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace trust
}  // namespace polder

#endif  // POLDER_COMMON_TRUST_KEYS_H_
