#include "services/registry/registry_config.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/server/host_port.h"
#include "common/trust/document.h"

namespace polder {
namespace registry {

static absl::StatusOr<RegistryConfig> Decode(config::Document& doc) {
  RegistryConfig c;
  config::ObjectReader reg = doc.root().Object("registry", config::kRequired);
  // replica_id: default the host name (a StatefulSet pod's name); --replica_id overrides it.
  reg.Optional("replica_id", &c.replica_id)
      .Required("primary", &c.primary)
      .Required("federation", &c.federation)
      .Optional("grpc_address", &c.grpc_address)
      .Optional("http_address", &c.http_address)
      .Optional("http_per_source_limits", &c.http_per_source_limits)
      .Optional("ops_address", &c.ops_address)
      .Optional("development_mode", &c.development_mode)
      .OptionalBytes("max_schema_bytes", &c.max_schema_bytes)
      .Optional("operator_peers", &c.operator_peers)
      .Optional("city_subject_prefix", &c.city_subject_prefix);
  reg.Check(c.replica_id.empty() || trust::IsValidPeerId(c.replica_id), "replica_id",
            "must be a lowercase name such as reg-a");
  reg.Check(c.federation.empty() || trust::IsValidPeerId(c.federation), "federation",
            "must be a lowercase name such as nl-smartcity");
  reg.Check(c.max_schema_bytes >= 1024 && c.max_schema_bytes <= (4 << 20), "max_schema_bytes",
            "must be between 1KiB and 4MiB (gRPC's message limit)");
  reg.Check(server::ParseHostPort(c.grpc_address).ok(), "grpc_address", "must be host:port");
  reg.Check(server::ParseHostPort(c.http_address).ok(), "http_address", "must be host:port");
  reg.Check(server::ParseHostPort(c.ops_address).ok(), "ops_address", "must be host:port");
  auto loopback = [](const std::string& address) {
    absl::StatusOr<server::HostPort> a = server::ParseHostPort(address);
    return a.ok() && server::IsLoopbackHost(a->host);
  };
  // Development mode has no TLS and makes every caller an operator: never reachable from
  // another machine.
  reg.Check(!c.development_mode || loopback(c.grpc_address), "grpc_address",
            "development_mode listens only on loopback (127.0.0.1, localhost, ::1)");
  reg.Check(!c.development_mode || loopback(c.http_address), "http_address",
            "development_mode listens only on loopback (127.0.0.1, localhost, ::1)");
  reg.Check(c.development_mode || !c.operator_peers.empty(), "operator_peers",
            "name at least one federation operator peer (who may register standard datasets)");

  config::ObjectReader kafka = doc.root().Object("kafka", config::kRequired);
  kafka.Required("bootstrap_servers", &c.bootstrap_servers)
      .Optional("topic", &c.topic)
      .Optional("replication_factor", &c.replication_factor)
      .Optional("timeout", &c.kafka_timeout)
      .Optional("properties", &c.kafka_properties);
  kafka.Check(c.replication_factor >= 1, "replication_factor", "must be at least 1");

  config::ObjectReader tls =
      doc.root().Object("tls", c.development_mode ? config::kOptional : config::kRequired);
  tls.Required("cert_file", &c.cert_file)
      .Required("key_file", &c.key_file)
      .Required("trust_bundle_file", &c.trust_bundle_file)
      .Required("crl_dir",
                &c.crl_dir)  // without it no revocation could be seen (empty folder: none)
      .Optional("refresh_interval", &c.tls_refresh)
      .Optional("peer_identity", &c.peer_identity);
  tls.Check(c.peer_identity == "spiffe_uri" || c.peer_identity == "subject_serial_number",
            "peer_identity", "must be spiffe_uri or subject_serial_number");

  config::ObjectReader trust_section =
      doc.root().Object("trust", c.development_mode ? config::kOptional : config::kRequired);
  if (trust_section.present()) trust::ReadTrustConfig(trust_section, &c.trust);
  return doc.Finish(c);
}

absl::StatusOr<RegistryConfig> ParseRegistryConfig(const std::string& yaml,
                                                   const std::string& source) {
  absl::StatusOr<config::Document> doc = config::Document::FromString(yaml, source);
  if (!doc.ok()) return doc.status();
  return Decode(*doc);
}

absl::StatusOr<RegistryConfig> LoadRegistryConfig(const std::string& path) {
  absl::StatusOr<config::Document> doc = config::Document::FromFile(path);
  if (!doc.ok()) return doc.status();
  return Decode(*doc);
}

}  // namespace registry
}  // namespace polder
