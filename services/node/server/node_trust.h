// The node's trust: the federation's signed directory and the identity checkers of its two
// audiences — federation peers (registry client, federation listener, subscriptions) and
// ingest callers (city systems with client certificates from the ingest CA).
#ifndef POLDER_SERVICES_NODE_SERVER_NODE_TRUST_H_
#define POLDER_SERVICES_NODE_SERVER_NODE_TRUST_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "common/tls/identity.h"
#include "common/trust/trust_config.h"
#include "services/node/node_config.h"

namespace polder {
namespace node {

struct NodeTrust {
  // Opens the directory and builds both checkers; in the development mode (loopback only) there
  // is neither and the node warns that every caller may publish every dataset.
  static absl::StatusOr<NodeTrust> Build(const NodeConfig& config);

  // The directory as last verified; nullptr in the development mode.
  std::shared_ptr<const trust::Directory> current_directory() const {
    return directory == nullptr ? nullptr : directory->current();
  }
  std::function<std::shared_ptr<const trust::Directory>()> directory_source() const;

  std::unique_ptr<trust::DirectoryStore> directory;  // null in the development mode
  std::shared_ptr<tls::IdentityChecker> federation_checker;
  std::shared_ptr<tls::IdentityChecker> ingest_checker;
  // The internal port's, when the replicas have their own CA (NodeConfig::ReplicaTls); else the
  // federation checker serves there.
  std::shared_ptr<tls::IdentityChecker> replica_checker;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_SERVER_NODE_TRUST_H_
