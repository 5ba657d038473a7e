// The federation's signed peer directory (ARCHITECTURE §4, §8).
//
// Per peer: id, federation endpoint, the TLS key thumbprints it may present, and its signing
// public keys with their validity. The directory itself has a validity window and a serial that
// only increases. It is signed (detached JWS over its JCS form) by the federation operator's
// signing key, which nodes pin in configuration — several keys with overlapping validity during
// a rotation.
//
// File format (polderctl writes it; nodes read it):
//   {"directory": {"type": "polder.directory.v1", "federation": "nl-smartcity", "serial": 7,
//                  "issued_at": "...", "valid_from": "...", "valid_until": "...",
//                  "peers": [{"id": "groningen", "endpoint": "groningen.example:8443",
//                             "tls_key_thumbprints": ["sha256:..."],
//                             "signing_keys": [{"kid": "...", "x": "...",
//                                               "valid_from": "...", "valid_until": "..."}]}]},
//    "signatures": ["<detached JWS>", ...]}
#ifndef POLDER_COMMON_TRUST_DIRECTORY_H_
#define POLDER_COMMON_TRUST_DIRECTORY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/trust/keys.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace trust {

inline constexpr char kDirectoryType[] = "polder.directory.v1";
inline constexpr char kDirectoryJwsType[] = "polder-directory+jws";

struct SigningKeyEntry {
  std::string kid;  // RFC 7638 thumbprint; must match `x`.
  std::string x;    // base64url of the raw Ed25519 public key.
  absl::Time valid_from;
  absl::Time valid_until;
};

struct PeerEntry {
  std::string id;
  std::string endpoint;                          // host:port of the peer's federation service.
  std::vector<std::string> tls_key_thumbprints;  // "sha256:<base64url>" of the SPKI.
  std::vector<SigningKeyEntry> signing_keys;
};

struct Directory {
  std::string federation;
  int64_t serial = 0;
  absl::Time issued_at;
  absl::Time valid_from;
  absl::Time valid_until;
  std::vector<PeerEntry> peers;

  const PeerEntry* FindPeer(absl::string_view id) const;
  // OK if `peer_id` is listed and may present a TLS key with `thumbprint`; PERMISSION_DENIED
  // naming which of the two is not the case.
  absl::Status CheckTlsKey(absl::string_view peer_id, absl::string_view thumbprint) const;
  // The signing key `kid` of `peer_id`, if listed and valid at `at` (± skew); otherwise
  // PERMISSION_DENIED naming why (unknown peer, key not listed for that peer, key expired).
  absl::StatusOr<PublicKey> SigningKey(absl::string_view peer_id, absl::string_view kid,
                                       absl::Time at, absl::Duration skew) const;

  nlohmann::json ToJson() const;
  // Strict: every field checked, unknown fields refused; errors name the JSON path.
  static absl::StatusOr<Directory> FromJson(const nlohmann::json& json);
};

struct SignedDirectory {
  Directory directory;
  std::vector<std::string> signatures;

  std::string ToFileText() const;
  static absl::StatusOr<SignedDirectory> Parse(absl::string_view text);
  static absl::StatusOr<SignedDirectory> ReadFile(const std::string& path);
};

// Signs `directory` with the operator key (adds a signature; a directory may carry several
// during an operator key rotation).
absl::Status SignDirectory(SignedDirectory* signed_directory, const PrivateKey& operator_key,
                           absl::Time now);

// An operator signing key pinned in a node's configuration.
struct PinnedKey {
  PublicKey key;
  absl::Time valid_from = absl::InfinitePast();
  absl::Time valid_until = absl::InfiniteFuture();
};

// Verifies that at least one signature is by a pinned key valid at `now` and matches the
// document, and that the directory is within its validity window (± skew). Reasons:
// UNAUTHENTICATED "not signed by a pinned operator key" / "does not match the document",
// FAILED_PRECONDITION for an expired (or not yet valid) pinned key or directory.
absl::Status VerifyDirectory(const SignedDirectory& signed_directory,
                             const std::vector<PinnedKey>& pins, absl::Time now,
                             absl::Duration skew);

// Holds the directory a service trusts: verifies updates, refuses rollbacks to an older
// serial, keeps the last good copy on disk and reports an approaching expiry. Thread-safe.
class DirectoryStore {
 public:
  struct Options {
    // Where the last good directory is kept (written atomically); read at Open.
    std::string state_path;
    std::vector<PinnedKey> pins;
    absl::Duration skew = absl::Minutes(5);
    // CheckExpiry warns this long before the directory expires.
    absl::Duration expiry_warning = absl::Hours(24 * 7);
    std::function<absl::Time()> clock;  // Default absl::Now.
  };

  // Opens the store; loads and re-verifies the last good directory if state_path exists
  // (an expired one is kept, and CheckExpiry reports it).
  static absl::StatusOr<std::unique_ptr<DirectoryStore>> Open(Options options);

  // Verifies `update` and installs it, persisting it first. A lower serial than the one held
  // is FAILED_PRECONDITION (rollback); the same serial is accepted only with identical content.
  absl::Status Update(const SignedDirectory& update);
  absl::Status UpdateFromFile(const std::string& path);

  // The directory in force, or nullptr if none was ever installed.
  std::shared_ptr<const Directory> current() const;

  // OK while the directory is valid for longer than expiry_warning. FAILED_PRECONDITION with
  // "expires in ..." ahead of time, "expired at ..." after, "no directory" without one.
  absl::Status CheckExpiry() const;

 private:
  explicit DirectoryStore(Options options) : options_(std::move(options)) {}
  absl::Time Now() const { return options_.clock ? options_.clock() : absl::Now(); }

  const Options options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Directory> current_ ABSL_GUARDED_BY(mu_);
  std::string current_canonical_ ABSL_GUARDED_BY(mu_);
};

}  // namespace trust
}  // namespace polder

#endif  // POLDER_COMMON_TRUST_DIRECTORY_H_
