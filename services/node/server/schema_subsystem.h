// The node's schemas: the registry client (mutual TLS as a federation peer), the persisted
// schema cache in front of it, the read-only Confluent schema endpoint (server TLS) and the
// "schemas" readiness check: ready once every dataset's schema is known.
#ifndef POLDER_SERVICES_NODE_SERVER_SCHEMA_SUBSYSTEM_H_
#define POLDER_SERVICES_NODE_SERVER_SCHEMA_SUBSYSTEM_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/http/https_server.h"
#include "common/server/ops_server.h"
#include "services/node/node_config.h"
#include "services/node/node_metrics.h"
#include "services/node/schema_cache/schema_cache.h"
#include "services/node/server/node_trust.h"

namespace polder {
namespace node {

class SchemaSubsystem {
 public:
  // Opens the cache, refreshes it once (an unreachable registry is a warning: the persisted
  // cache may hold every schema) and registers the "schemas" readiness check.
  static absl::StatusOr<std::unique_ptr<SchemaSubsystem>> Build(const NodeConfig& config,
                                                                const NodeTrust& trust,
                                                                server::Readiness* readiness);

  // Starts the schema endpoint on config.schema_address.
  absl::Status StartEndpoint(const NodeConfig& config);
  void StopEndpoint();

  // Fetches every dataset's latest schema again; updates readiness.
  void Refresh();

  SchemaCache* cache() const { return cache_.get(); }
  // The version under which `dataset`'s subject registered schema `id` (`dataset` may also be
  // views::kAggregateCellSubject, the subject of views' cells).
  absl::StatusOr<int64_t> VersionOfDatasetSchema(const std::string& dataset, int32_t id) const;
  // Keeps a mirrored record's schema (and its references) in the cache, served by the endpoint.
  void PinMirrored(int32_t id) const;

  int endpoint_port() const { return endpoint_ == nullptr ? 0 : endpoint_->port(); }
  void Export(NodeMetrics* metrics) const;

 private:
  SchemaSubsystem() = default;

  std::unique_ptr<SchemaCache> cache_;
  std::vector<std::string> subjects_;
  std::map<std::string, std::string> subject_of_dataset_;
  std::atomic<bool> ready_{false};
  std::unique_ptr<http::HttpsServer> endpoint_;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_SERVER_SCHEMA_SUBSYSTEM_H_
