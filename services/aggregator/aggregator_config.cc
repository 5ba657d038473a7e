#include "services/aggregator/aggregator_config.h"

#include "absl/strings/match.h"
#include "common/config/config.h"
#include "common/server/host_port.h"
#include "common/trust/document.h"
#include "services/aggregator/national_config.h"

namespace polder {
namespace aggregator {

namespace {

bool Loopback(const std::string& address) {
  absl::StatusOr<server::HostPort> a = server::ParseHostPort(address);
  return a.ok() && server::IsLoopbackHost(a->host);
}

absl::StatusOr<AggregatorConfig> Decode(config::Document& doc) {
  AggregatorConfig c;
  config::ObjectReader agg = doc.root().Object("aggregator", config::kRequired);
  agg.Required("id", &c.id)
      .Required("federation", &c.federation)
      .Required("state_dir", &c.state_dir)
      .Optional("api_address", &c.api_address)
      .Optional("api_client_auth", &c.api_client_auth)
      .Optional("api_cert_file", &c.api_cert_file)
      .Optional("api_key_file", &c.api_key_file)
      .Optional("ops_address", &c.ops_address)
      .Optional("development_mode", &c.development_mode)
      .Optional("commit_interval", &c.commit_interval)
      .Optional("api_max_connections", &c.api_max_connections)
      .Optional("api_max_connections_per_source", &c.api_max_connections_per_source)
      .Optional("api_per_source_limits", &c.api_per_source_limits)
      .Optional("api_max_streams", &c.api_max_streams)
      .Optional("api_max_streams_per_source", &c.api_max_streams_per_source)
      .Optional("api_push_interval", &c.api_push_interval)
      .Optional("api_heartbeat_interval", &c.api_heartbeat_interval)
      .Optional("dashboard", &c.dashboard);
  agg.Check(c.id.empty() || trust::IsValidPeerId(c.id), "id",
            "must be a lowercase peer id such as nl (the national operator's)");
  agg.Check(c.federation.empty() || trust::IsValidPeerId(c.federation), "federation",
            "must be a lowercase name such as nl-smartcity");
  agg.Check(server::ParseHostPort(c.api_address).ok(), "api_address", "must be host:port");
  agg.Check(c.api_cert_file.empty() == c.api_key_file.empty(),
            c.api_cert_file.empty() ? "api_cert_file" : "api_key_file",
            "set api_cert_file and api_key_file together (or neither: the federation identity)");
  agg.Check(server::ParseHostPort(c.ops_address).ok(), "ops_address", "must be host:port");
  agg.Check(c.api_client_auth == "none" || c.api_client_auth == "required", "api_client_auth",
            "must be none (public, read-only) or required (federation client certificates)");
  agg.Check(c.commit_interval >= absl::Milliseconds(10) && c.commit_interval <= absl::Minutes(1),
            "commit_interval", "must be between 10ms and 1m");
  agg.Check(c.api_max_connections >= 1 && c.api_max_connections <= 1000000, "api_max_connections",
            "must be between 1 and 1000000");
  agg.Check(c.api_max_connections_per_source >= 1 &&
                c.api_max_connections_per_source <= c.api_max_connections,
            "api_max_connections_per_source", "must be between 1 and api_max_connections");
  agg.Check(c.api_max_streams >= 1 && c.api_max_streams <= 100000, "api_max_streams",
            "must be between 1 and 100000");
  agg.Check(c.api_max_streams_per_source >= 1 && c.api_max_streams_per_source <= c.api_max_streams,
            "api_max_streams_per_source", "must be between 1 and api_max_streams");
  agg.Check(
      c.api_push_interval >= absl::Milliseconds(100) && c.api_push_interval <= absl::Minutes(1),
      "api_push_interval", "must be between 100ms and 1m");
  agg.Check(
      c.api_heartbeat_interval >= absl::Seconds(1) && c.api_heartbeat_interval <= absl::Minutes(5),
      "api_heartbeat_interval", "must be between 1s and 5m");
  // Development mode: plaintext and no identities, so only on this machine.
  agg.Check(!c.development_mode || Loopback(c.api_address), "api_address",
            "development_mode listens only on loopback (127.0.0.1, localhost, ::1)");

  config::ObjectReader registry = doc.root().Object("registry", config::kRequired);
  registry.Required("address", &c.registry_address)
      .Optional("peer", &c.registry_peer)
      .Optional("timeout", &c.registry_timeout);
  registry.Check(server::ParseHostPort(c.registry_address).ok(), "address", "must be host:port");
  registry.Check(
      !c.development_mode || Loopback(c.registry_address), "address",
      "development_mode reaches the registry only on loopback (127.0.0.1, localhost, ::1)");

  config::ObjectReader kafka = doc.root().Object("kafka", config::kRequired);
  kafka.Required("bootstrap_servers", &c.bootstrap_servers)
      .Optional("properties", &c.kafka_properties)
      .Optional("replication_factor", &c.replication_factor)
      .Optional("changelog_topic", &c.changelog_topic)
      .Optional("roles_topic", &c.roles_topic)
      .Optional("feed_quality_topic", &c.feed_quality_topic)
      .Optional("feed_quality_interval", &c.feed_quality_interval)
      .Optional("timeout", &c.kafka_timeout)
      .Optional("request_timeout", &c.kafka_request_timeout)
      .Optional("transaction_timeout", &c.transaction_timeout);
  kafka.Check(
      c.feed_quality_interval >= absl::Seconds(1) && c.feed_quality_interval <= absl::Hours(1),
      "feed_quality_interval", "must be between 1s and 1h");
  kafka.Check(absl::StartsWith(c.changelog_topic, "_polder.") && c.changelog_topic.size() <= 249,
              "changelog_topic", "must be an internal topic name starting with _polder.");
  kafka.Check(c.replication_factor >= 1, "replication_factor", "must be at least 1");
  kafka.Check(c.roles_topic != c.changelog_topic && c.roles_topic.size() <= 249, "roles_topic",
              "must be a topic name other than changelog_topic");

  config::ObjectReader replicas = doc.root().Object("replicas", config::kOptional);
  replicas.Optional("id", &c.replica_id)
      .Optional("session_timeout", &c.replica_session_timeout)
      .Optional("heartbeat_interval", &c.replica_heartbeat_interval);
  replicas.Check(c.replica_id.empty() || trust::IsValidPeerId(c.replica_id), "id",
                 "must be a lowercase name such as nl-aggregator-0");
  replicas.Check(c.replica_session_timeout >= absl::Seconds(6) &&
                     c.replica_session_timeout <= absl::Seconds(10),
                 "session_timeout",
                 "must be between 6s and 10s (the failover bound rests on it; ADR 0021 §1)");
  replicas.Check(c.replica_heartbeat_interval > absl::ZeroDuration() &&
                     c.replica_heartbeat_interval * 3 <= c.replica_session_timeout,
                 "heartbeat_interval", "must be positive and at most a third of session_timeout");
  kafka.Check(c.transaction_timeout >= absl::Seconds(1), "transaction_timeout",
              "must be at least 1s");

  config::ObjectReader tls =
      doc.root().Object("tls", c.development_mode ? config::kOptional : config::kRequired);
  tls.Required("cert_file", &c.cert_file)
      .Required("key_file", &c.key_file)
      .Required("trust_bundle_file", &c.trust_bundle_file)
      // Required: without it no revocation could ever be seen (an empty folder: none revoked).
      .Required("crl_dir", &c.crl_dir);
  config::ObjectReader trust_section =
      doc.root().Object("trust", c.development_mode ? config::kOptional : config::kRequired);
  if (trust_section.present()) trust::ReadTrustConfig(trust_section, &c.trust);
  config::ObjectReader root = doc.root();
  ReadNationalSection(root, &c.views);
  return doc.Finish(c);
}

}  // namespace

absl::StatusOr<AggregatorConfig> ParseAggregatorConfig(const std::string& yaml,
                                                       const std::string& source) {
  absl::StatusOr<config::Document> doc = config::Document::FromString(yaml, source);
  if (!doc.ok()) return doc.status();
  return Decode(*doc);
}

absl::StatusOr<AggregatorConfig> LoadAggregatorConfig(const std::string& path) {
  absl::StatusOr<config::Document> doc = config::Document::FromFile(path);
  if (!doc.ok()) return doc.status();
  return Decode(*doc);
}

}  // namespace aggregator
}  // namespace polder
