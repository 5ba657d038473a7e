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
