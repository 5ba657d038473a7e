// polder-registry's configuration (YAML; see services/registry/README.md for an example).
#ifndef POLDER_SERVICES_REGISTRY_REGISTRY_CONFIG_H_
#define POLDER_SERVICES_REGISTRY_REGISTRY_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/trust/trust_config.h"

namespace polder {
namespace registry {

struct RegistryConfig {
  // registry:
  std::string replica_id;  // default: the host name (a StatefulSet pod's name)
  std::string primary;     // the initial primary, until the topic names one
  std::string federation;
  std::string grpc_address = "0.0.0.0:7443";
  std::string http_address = "0.0.0.0:8081";
  std::string ops_address = "127.0.0.1:9465";  // /livez /readyz /statusz /metrics, plain HTTP
  // false: the REST listener applies no per-source connection cap (behind a proxy); logged.
  bool http_per_source_limits = true;
  bool development_mode = false;
  int64_t max_schema_bytes = 1 << 20;
  std::vector<std::string> operator_peers;
  std::string city_subject_prefix = "polder.cities.{peer}.";
  // kafka:
  std::string bootstrap_servers;
  std::string topic = "_polder.schemas";
  int32_t replication_factor = 3;
  absl::Duration kafka_timeout = absl::Seconds(30);
  std::map<std::string, std::string> kafka_properties;
  // tls:
  std::string cert_file;
  std::string key_file;
  std::string trust_bundle_file;
  std::string crl_dir;
  absl::Duration tls_refresh = absl::Seconds(10);
  std::string peer_identity = "spiffe_uri";  // or subject_serial_number
  // trust:
  trust::TrustConfig trust;
};

// Reads and validates `path`; errors name the key, line and value.
absl::StatusOr<RegistryConfig> LoadRegistryConfig(const std::string& path);
absl::StatusOr<RegistryConfig> ParseRegistryConfig(const std::string& yaml,
                                                   const std::string& source);

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_REGISTRY_CONFIG_H_
