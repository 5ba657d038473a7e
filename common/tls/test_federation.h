// Test helper: a small federation PKI made at test time — a root and an issuing CA, peer
// certificates, a directory that admits chosen keys, CRLs, and IdentityCheckers over them.
// Files live under the given folder (a test's TEST_TMPDIR).
#ifndef POLDER_COMMON_TLS_TEST_FEDERATION_H_
#define POLDER_COMMON_TLS_TEST_FEDERATION_H_

#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/tls/ca.h"
#include "common/tls/certificate.h"
#include "common/tls/grpc_tls.h"
#include "common/tls/identity.h"
#include "common/trust/directory.h"

namespace polder {
namespace tls {

inline constexpr char kTestFederation[] = "nl-smartcity";

class TestFederation {
 public:
  // Creates the CAs and writes the trust bundle and an empty CRL folder under `dir`. Peer
  // certificates carry spiffe://<federation>/peer/<id> (another trust domain, e.g. a city's
  // ingest CA, gets its own TestFederation).
  explicit TestFederation(std::string dir, std::string federation = kTestFederation);

  const std::string& federation() const { return federation_; }

  const KeyAndCert& root() const { return root_; }
  const KeyAndCert& issuing() const { return issuing_; }
  const std::string& bundle_path() const { return bundle_; }
  const std::string& crl_dir() const { return crl_dir_; }
  const std::string& dir() const { return dir_; }

  // A certificate for `peer_id` from the issuing CA (SAN DNS localhost, IP 127.0.0.1 unless set).
  KeyAndCert Issue(const std::string& peer_id, PeerCertOptions options = {});
  // Lists `peer_id` in the directory with the key of `kc` (added to the keys already listed);
  // bumps the serial.
  void Admit(const std::string& peer_id, const KeyAndCert& kc);
  // Publishes a CRL of the issuing CA revoking `kc` (and everything revoked before).
  void Revoke(const KeyAndCert& kc);
  // Writes key.pem (0600) and cert.pem (leaf + `chain_tail`, default the issuing CA) into
  // <dir>/<name>/ and returns the file set (refresh interval 1 s).
  TlsFiles WriteIdentity(const std::string& name, const KeyAndCert& kc,
                         const std::string& chain_tail = "");

  std::shared_ptr<const trust::Directory> directory() const;
  // A checker over this federation's bundle, CRLs and (live) directory.
  std::shared_ptr<IdentityChecker> Checker(IdentitySource source = IdentitySource::kSpiffeUri);

 private:
  std::string dir_;
  std::string federation_;
  std::string bundle_;
  std::string crl_dir_;
  KeyAndCert root_;
  KeyAndCert issuing_;
  std::vector<std::string> revoked_;
  int64_t crl_number_ = 0;
  mutable absl::Mutex mu_;
  std::shared_ptr<const trust::Directory> directory_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tls
}  // namespace polder

#endif  // POLDER_COMMON_TLS_TEST_FEDERATION_H_
