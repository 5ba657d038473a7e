#include "services/node/server/node_trust.h"

#include "common/log/log.h"
#include "common/status/status_macros.h"

namespace polder {
namespace node {

absl::StatusOr<NodeTrust> NodeTrust::Build(const NodeConfig& config) {
  NodeTrust t;
  if (config.development_mode) {
    log::Warning(
        "DEVELOPMENT MODE: plaintext listeners, no identities, every caller may publish every "
        "dataset");
    return t;
  }
  ASSIGN_OR_RETURN(t.directory, trust::OpenDirectoryStore(config.trust), _.Prepend("trust: "));
  tls::IdentityChecker::Options fo;
  fo.federation = config.federation;
  fo.trust_bundle_path = config.trust_bundle_file;
  fo.crl_dir = config.crl_dir;
  fo.directory = t.directory_source();
  ASSIGN_OR_RETURN(t.federation_checker, tls::IdentityChecker::Create(fo), _.Prepend("tls: "));
  tls::IdentityChecker::Options io;
  io.federation =
      config.ingest_trust_domain.empty() ? config.federation : config.ingest_trust_domain;
  io.trust_bundle_path = config.ingest_client_ca_file.empty() ? config.trust_bundle_file
                                                              : config.ingest_client_ca_file;
  io.crl_dir = config.ingest_crl_dir;
  io.require_directory = false;
  ASSIGN_OR_RETURN(t.ingest_checker, tls::IdentityChecker::Create(io), _.Prepend("ingest: "));
  if (config.ReplicaTls()) {
    // A CA only this node's replicas trust, issuing short-lived certificates: no CRL, no
    // directory; the peer id must be "replica" (checked at the handshake and in each call).
    tls::IdentityChecker::Options ro;
    ro.federation = config.replica_trust_domain;
    ro.trust_bundle_path = config.replica_ca_file;
    ro.require_directory = false;
    ASSIGN_OR_RETURN(t.replica_checker, tls::IdentityChecker::Create(ro), _.Prepend("replicas: "));
  } else {
    t.replica_checker = t.federation_checker;
  }
  return t;
}

std::function<std::shared_ptr<const trust::Directory>()> NodeTrust::directory_source() const {
  trust::DirectoryStore* dir = directory.get();
  return [dir]() -> std::shared_ptr<const trust::Directory> {
    return dir == nullptr ? nullptr : dir->current();
  };
}

}  // namespace node
}  // namespace polder
