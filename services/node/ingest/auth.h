// Who may publish into this node (ingest identities) and what (their datasets).
//
// A gateway proves its identity with a client certificate issued by the city's ingest CA (SPIFFE
// URI spiffe://<ingest trust domain>/peer/<id>; checked by the transport) or with a bearer token
// read from the identity's token file — one or the other, as configured: an identity with a
// token_file authenticates only by its token (a certificate of the same name gets nothing), one
// without only by certificate. Tokens are compared by SHA-256 in constant time and re-read when
// their files change, so rotating a token needs no restart; they never appear in logs or errors.
//
// A token file that is deleted, emptied, shorter than 16 characters or readable by group or
// others revokes that identity's token at the next check (Refresh, or any bearer request): no
// previous token is kept. At start-up such a file refuses Create. Revocations are logged and
// visible in tokens().
#ifndef POLDER_SERVICES_NODE_INGEST_AUTH_H_
#define POLDER_SERVICES_NODE_INGEST_AUTH_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/node/node_config.h"

namespace polder {
namespace node {

class IngestAuthenticator {
 public:
  // development: every caller is "development" and may publish every dataset.
  static absl::StatusOr<std::unique_ptr<IngestAuthenticator>> Create(
      const std::vector<IngestIdentity>& identities, bool development);

  // The identity of a caller: `certificate_peer_id` is the peer id its verified client
  // certificate proves (empty if none); `authorization` the Authorization header/metadata.
  // UNAUTHENTICATED without either, PERMISSION_DENIED for a certificate of no ingest identity.
  absl::StatusOr<std::string> Authenticate(const std::string& certificate_peer_id,
                                           const std::string& authorization);

  // PERMISSION_DENIED unless `identity` may publish `dataset`.
  absl::Status Authorize(const std::string& identity, const std::string& dataset) const;

  // Re-reads token files that changed (the node calls it periodically, so a revocation shows
  // without waiting for a request).
  void Refresh();

  // Each token identity: whether its token is valid now, and why not.
  struct TokenState {
    std::string identity;
    bool valid = false;
    std::string problem;  // empty when valid
  };
  std::vector<TokenState> tokens() const;

 private:
  struct Identity {
    std::set<std::string> datasets;  // "*" for all
    std::string token_file;
    std::string token_stamp;   // file mtime/size when read
    std::string token_sha256;  // empty: no valid token (none configured, or revoked)
    std::string problem;       // why the token file gives no valid token
  };
  IngestAuthenticator() = default;
  // Re-reads changed token files; returns the first problem found (each is also recorded in
  // its identity and logged when it changes).
  absl::Status ReloadTokens() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  bool development_ = false;
  mutable absl::Mutex mu_;
  std::map<std::string, Identity> identities_ ABSL_GUARDED_BY(mu_);
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_INGEST_AUTH_H_
