// Who may publish into this node (ingest identities) and what (their datasets).
//
// A gateway proves its identity with a client certificate issued by the city's ingest CA (SPIFFE
// URI spiffe://<ingest trust domain>/peer/<id>; checked by the transport) or with a bearer token
// read from the identity's token file. Tokens are compared by SHA-256 in constant time and
// re-read when their files change, so rotating a token needs no restart; they never appear in
// logs or errors.
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
  static absl::StatusOr<std::unique_ptr<IngestAuthenticator>> Create(const std::vector<IngestIdentity>& identities,
                                                                      bool development);

  // The identity of a caller: `certificate_peer_id` is the peer id its verified client
  // certificate proves (empty if none); `authorization` the Authorization header/metadata.
  // UNAUTHENTICATED without either, PERMISSION_DENIED for a certificate of no ingest identity.
  absl::StatusOr<std::string> Authenticate(const std::string& certificate_peer_id,
                                           const std::string& authorization);

  // PERMISSION_DENIED unless `identity` may publish `dataset`.
  absl::Status Authorize(const std::string& identity, const std::string& dataset) const;

 private:
  struct Identity {
    std::set<std::string> datasets;  // "*" for all
    std::string token_file;
    std::string token_stamp;         // file mtime/size when read
    std::string token_sha256;        // empty: no token
  };
  IngestAuthenticator() = default;
  absl::Status ReloadTokens() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  bool development_ = false;
  mutable absl::Mutex mu_;
  std::map<std::string, Identity> identities_ ABSL_GUARDED_BY(mu_);
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_INGEST_AUTH_H_
