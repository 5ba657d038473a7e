// polder-aggregator's configuration (YAML; services/aggregator/README.md has a full example).
// Errors name the key, line and value (common/config).
//
//   aggregator:
//     id: nl                      # the national operator's peer id (its node's)
//     federation: nl-smartcity
//     state_dir: /var/lib/polder-aggregator
//     api_address: 0.0.0.0:8444   # the public read API (HTTPS)
//     api_client_auth: none       # none: public, read-only; required: federation certificates
//     ops_address: 127.0.0.1:9467 # /livez /readyz /statusz /metrics, plain HTTP
//     api_max_streams: 1000       # live dashboard connections (Server-Sent Events)
//     api_push_interval: 1s       # how often new figures are pushed to them
//   registry: {address: registry.example:7443, peer: registry}
//   kafka: {bootstrap_servers: kafka-national:9092, replication_factor: 3}
//   tls: {cert_file: ..., key_file: ..., trust_bundle_file: ..., crl_dir: ...}
//   trust: {...}                  # the federation's directory, as the node's
//   national: {...}               # national_config.h
//   replicas: {id: nl-aggregator-0, session_timeout: 8s}  # optional (ADR 0021 §7)
#ifndef POLDER_SERVICES_AGGREGATOR_AGGREGATOR_CONFIG_H_
#define POLDER_SERVICES_AGGREGATOR_AGGREGATOR_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/trust/trust_config.h"
#include "services/aggregator/national.h"

namespace polder {
namespace aggregator {

struct AggregatorConfig {
  // aggregator:
  std::string id;
  std::string federation;
  std::string state_dir;
  std::string api_address = "0.0.0.0:8444";
  std::string api_client_auth = "none";  // or "required"
  // The API listener's server certificate (the dashboard's public name, e.g. cert-manager's);
  // empty: the federation identity (tls.cert_file, tls.key_file). Both or neither.
  std::string api_cert_file;
  std::string api_key_file;
  std::string ApiCertFile() const { return api_cert_file.empty() ? cert_file : api_cert_file; }
  std::string ApiKeyFile() const { return api_key_file.empty() ? key_file : api_key_file; }
  std::string ops_address = "127.0.0.1:9467";
  bool development_mode = false;
  absl::Duration commit_interval = absl::Seconds(1);
  int64_t api_max_connections = 4096;
  int64_t api_max_connections_per_source = 64;
  // false: the API applies no per-source caps (connections, streams), for an API behind a
  // proxy; api_max_connections and api_max_streams hold, and it is logged at start.
  bool api_per_source_limits = true;
  // Live updates (Server-Sent Events, ADR 0019 §4): open streams at most api_max_streams on the
  // listener and api_max_streams_per_source from one address (apart from the connection caps);
  // new figures pushed every api_push_interval; a heartbeat every api_heartbeat_interval.
  int64_t api_max_streams = 1000;
  int64_t api_max_streams_per_source = 16;
  absl::Duration api_push_interval = absl::Seconds(1);
  absl::Duration api_heartbeat_interval = absl::Seconds(15);
  // The dashboard (ADR 0019) at / and /dashboard/ on the API listener.
  bool dashboard = true;
  // registry:
  std::string registry_address;
  std::string registry_peer = "registry";
  absl::Duration registry_timeout = absl::Seconds(10);
  // kafka:
  std::string bootstrap_servers;
  std::map<std::string, std::string> kafka_properties;
  int32_t replication_factor = 3;  // of the national topics and the changelog it creates
  std::string changelog_topic = "_polder.aggregator.changelog";
  // The national job is a role of the replicas' group polder-aggregator-<id>-roles over this
  // topic (ADR 0021 §7); it carries no records.
  std::string roles_topic = "_polder.aggregator.roles";
  static constexpr int32_t kRolesPartitions = 8;
  std::string feed_quality_topic = "_polder.feed-quality";  // the national node's
  absl::Duration feed_quality_interval = absl::Seconds(5);  // how often it is read
  absl::Duration kafka_timeout = absl::Seconds(30);
  absl::Duration kafka_request_timeout = absl::Seconds(10);
  absl::Duration transaction_timeout = absl::Seconds(60);
  // tls:
  // replicas: (ADR 0021 §7) every replica serves the API; the job runs on one at a time.
  std::string replica_id;  // default: the host name (a StatefulSet pod's name)
  absl::Duration replica_session_timeout = absl::Seconds(8);
  absl::Duration replica_heartbeat_interval = absl::Seconds(2);
  std::string cert_file;
  std::string key_file;
  std::string trust_bundle_file;
  std::string crl_dir;
  // trust:
  trust::TrustConfig trust;
  // national:
  std::vector<NationalViewSpec> views;
};

absl::StatusOr<AggregatorConfig> LoadAggregatorConfig(const std::string& path);
absl::StatusOr<AggregatorConfig> ParseAggregatorConfig(const std::string& yaml,
                                                       const std::string& source);

}  // namespace aggregator
}  // namespace polder

#endif  // POLDER_SERVICES_AGGREGATOR_AGGREGATOR_CONFIG_H_
