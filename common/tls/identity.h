// IdentityChecker: who is on the other end of a TLS connection, and may they be?
//
// Used by every service, at connection time (per call, from the gRPC and HTTP adapters) and
// again on live connections (streams re-check periodically), so an expired or revoked
// certificate, or a key the directory no longer lists, ends access without a restart:
//
//   1. the certificate chains to a current trust anchor (the bundle file may hold several
//      anchors while the federation rotates its root; reloaded when the file changes);
//   2. it is within its validity (at the injected clock's now);
//   3. it is not revoked (every CRL file in crl_dir, reloaded when the directory changes; a
//      CRL counts only if its signature verifies with the issuing certificate);
//   4. the peer id comes from the SAN URI spiffe://<federation>/peer/<id> (or, by
//      configuration, the subject serialNumber, as FSC does with an OIN);
//   5. the directory lists that peer with the certificate's key thumbprint.
//
// Failures: UNAUTHENTICATED for 1–4 (the certificate does not prove an identity),
// PERMISSION_DENIED for 5 (a proven identity the federation does not admit). Messages say
// exactly what failed. Thread-safe.
#ifndef POLDER_COMMON_TLS_IDENTITY_H_
#define POLDER_COMMON_TLS_IDENTITY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/trust/directory.h"

namespace polder {
namespace tls {

enum class IdentitySource { kSpiffeUri, kSubjectSerialNumber };

// The verified identity of a peer.
struct PeerIdentity {
  std::string peer_id;
  std::string key_thumbprint;  // "sha256:<base64url of the SPKI hash>"
  std::string serial_hex;
  std::string subject;
  absl::Time not_after;
};

class IdentityChecker {
 public:
  struct Options {
    // The federation's SPIFFE trust domain (e.g. "nl-smartcity").
    std::string federation;
    IdentitySource source = IdentitySource::kSpiffeUri;
    // PEM file with the trust anchors (one or more CA certificates).
    std::string trust_bundle_path;
    // Folder of PEM CRLs (any file name); empty: no revocation checking.
    std::string crl_dir;
    // The directory in force; required unless `require_directory` is false (only for tools
    // that check certificates before a directory exists).
    std::function<std::shared_ptr<const trust::Directory>()> directory;
    bool require_directory = true;
    std::function<absl::Time()> clock;  // Default absl::Now.
  };

  static absl::StatusOr<std::unique_ptr<IdentityChecker>> Create(Options options);
  ~IdentityChecker();

  // Checks the peer's certificate chain (PEM, leaf first, intermediates after).
  absl::StatusOr<PeerIdentity> Check(absl::string_view chain_pem) const;

  // The full check, without the cache (exposed for tests).
  absl::StatusOr<PeerIdentity> CheckUncached(absl::string_view chain_pem) const;

  // Peer id from a leaf certificate according to the configured source, without other checks.
  absl::StatusOr<std::string> PeerIdOf(absl::string_view leaf_pem) const;

 private:
  struct Anchors;
  explicit IdentityChecker(Options options) : options_(std::move(options)) {}
  // Reloads the bundle and CRLs if their files changed; returns the current set.
  absl::StatusOr<std::shared_ptr<const Anchors>> CurrentAnchors() const;
  // The full check against exactly these anchors and this directory; `chain_not_after` gets
  // the earliest notAfter of the verified chain.
  absl::StatusOr<PeerIdentity> CheckWith(absl::string_view chain_pem,
                                         const std::shared_ptr<const Anchors>& anchors,
                                         const std::shared_ptr<const trust::Directory>& directory,
                                         absl::Time* chain_not_before,
                                         absl::Time* chain_not_after) const;
  absl::Time Now() const { return options_.clock ? options_.clock() : absl::Now(); }

  const Options options_;
  mutable absl::Mutex mu_;
  mutable std::shared_ptr<const Anchors> anchors_ ABSL_GUARDED_BY(mu_);
  mutable std::string anchors_fingerprint_ ABSL_GUARDED_BY(mu_);

  // Admissions already decided, by chain: reused only while the same anchors and CRLs (same
  // files) and the same directory are in force and the certificate is within its validity, so
  // the answer is exactly what a full check would give.
  struct Cached {
    PeerIdentity identity;
    std::shared_ptr<const Anchors> anchors;
    std::shared_ptr<const trust::Directory> directory;
    absl::Time not_before;  // latest notBefore in the chain
    absl::Time not_after;   // earliest notAfter in the chain
  };
  mutable absl::Mutex cache_mu_;
  mutable std::map<std::string, Cached> cache_ ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace tls
}  // namespace polder

#endif  // POLDER_COMMON_TLS_IDENTITY_H_
