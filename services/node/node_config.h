// polder-node's configuration (YAML; example in services/node/README.md). Errors name the key,
// line and value; unknown keys are errors.
#ifndef POLDER_SERVICES_NODE_NODE_CONFIG_H_
#define POLDER_SERVICES_NODE_NODE_CONFIG_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/trust/trust_config.h"
#include "common/views/spec.h"

namespace polder {
namespace node {

// A dataset this city publishes (its topic is <peer_id>.<id>).
struct DatasetConfig {
  std::string id;       // <domain>.<name>, e.g. mobility.bike-counts
  std::string subject;  // the schema subject (the message's full name)
  int32_t partitions = 3;
  int32_t replication_factor = 3;
  absl::Duration retention = absl::Hours(24 * 30);
  // The dataset's epoch, carried in every federation cursor: change it when the topic is deleted
  // and re-created, so subscribers' old offsets are refused (OUT_OF_RANGE) instead of applied to
  // the new topic.
  std::string epoch = "1";
  std::string description;
  std::string licence;
  std::string owner_contact;
};

// Who may publish into this node, and what.
struct IngestIdentity {
  std::string id;                     // the SPIFFE peer id of its client certificate
  std::vector<std::string> datasets;  // dataset ids; "*" for all of this node's datasets
  std::string token_file;             // optional: a bearer token (first line of the file)
};

// A dataset this node mirrors from another city.
struct SubscriptionConfig {
  std::string provider;  // the providing peer
  std::string endpoint;  // its federation service host:port
  std::string dataset;
  std::string contract;    // the contract id
  int32_t partitions = 0;  // the source topic's (and so the mirror's) partition count
  int32_t replication_factor = 3;
  // Where a new subscription starts (no committed cursor yet): earliest, latest or an RFC 3339
  // time; never before the contract's start position. Empty: the contract's.
  std::string start;
  // On revocation of the contract, delete the mirror's records (Kafka DeleteRecords).
  bool purge_on_revocation = false;
  // Not read from the file: the contract's mirror retention, filled in at start-up from the
  // contract in contracts_dir (the mirror topic is created with it).
  absl::Duration mirror_retention = absl::Hours(24 * 30);
  // An aggregate view of the dataset to mirror instead of the dataset (ADR 0016); its mirror is
  // <provider>.<dataset>.view.<view>, one partition.
  std::string view;
};

// The federation section: sharing this node's datasets and mirroring others'.
struct FederationConfig {
  bool enabled = false;
  std::string address = "0.0.0.0:7445";
  std::string contracts_dir;
  std::string revocations_dir;
  std::string audit_topic = "_polder.audit";
  std::string audit_index_topic = "_polder.audit-index";  // compacted (ADR 0011 §8)
  std::string cursors_topic = "_polder.cursors";
  int32_t max_batch_records = 1000;
  int64_t max_batch_bytes = 1 << 20;
  absl::Duration heartbeat_interval = absl::Seconds(5);
  absl::Duration recheck_interval = absl::Seconds(10);
  int32_t max_streams_per_peer = 8;
  // Flow control: bytes a stream may have in flight beyond what its subscriber acknowledged.
  int64_t max_unacknowledged_bytes = 8 << 20;
  // Each outgoing stream's source prefetch (keys and values librdkafka may queue; its memory is
  // several times this with small records). librdkafka 2.0.2 stops fetching for up to a second
  // whenever this queue is full, so a smaller prefetch trades catch-up throughput for memory.
  int64_t source_prefetch_bytes = 8 << 20;
  // Fan-out (ADR 0020 §4): the streams of a dataset at the live edge share one tail of its
  // source, holding this much of its recent records; streams behind it read on their own, at
  // most this many at once over all datasets (the others wait their turn, oldest first).
  int64_t fanout_tail_bytes = 32 << 20;
  int32_t fanout_max_catchup_readers = 16;
  // This node's Ed25519 signing key (the one the directory lists for it): signs receipts.
  std::string signing_key_file;
  absl::Duration receipt_interval = absl::Seconds(10);
  // Connections: keepalive pings, and a maximum age after which the server asks clients to
  // reconnect (a fresh handshake checks certificates again; running streams may finish within
  // the grace period, then they resume on a new connection from their cursor).
  absl::Duration keepalive_time = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
  absl::Duration max_connection_age = absl::Hours(1);
  absl::Duration max_connection_age_grace = absl::Minutes(5);
  absl::Duration max_connection_idle = absl::Minutes(15);
  std::vector<SubscriptionConfig> subscriptions;
};

struct NodeConfig {
  // node:
  std::string peer_id;
  std::string federation;
  std::string grpc_address = "0.0.0.0:7443";    // ingest gRPC
  std::string http_address = "0.0.0.0:8443";    // ingest HTTP
  std::string schema_address = "0.0.0.0:8081";  // read-only Confluent schema endpoint (server TLS)
  std::string ops_address = "127.0.0.1:9464";   // /metrics /livez /readyz, plain HTTP
  // false: the HTTPS ingest (http_) or schema endpoint (schema_) listener applies no per-source
  // connection cap, for a listener behind a proxy (every client has the proxy's address); its
  // listener-wide caps hold, and the node logs it at start.
  bool http_per_source_limits = true;
  bool schema_per_source_limits = true;
  std::string state_dir;  // schema cache
  bool development_mode = false;
  absl::Duration drain_timeout = absl::Seconds(30);
  // kafka:
  std::string bootstrap_servers;
  std::map<std::string, std::string> kafka_properties;
  // The single node's ingest transactional id before replicas (ADR 0021 §2 upgrade): initialised
  // once by the holder of key partition 0, so a transaction the old node left open is aborted.
  std::string transactional_id;  // default polder-node-<peer_id>-ingest
  // Idempotency keys: P partitions, each held by one replica (ADR 0021 §2); fixed once created.
  std::string keys_topic = "_polder.ingest-keys.v2";
  int32_t keys_partitions = 12;
  // The single-partition keys topic of nodes before replicas: read (if it exists) for keys
  // younger than the idempotency window.
  std::string legacy_keys_topic = "_polder.ingest-keys";
  // Who holds which key partition, and each replica's internal endpoint (compacted).
  std::string replicas_topic = "_polder.replicas";
  // Single-writer roles (subscriptions, view sets, the audit index; ADR 0021 §3): a role is
  // partition murmur2(name) % kRolesPartitions of this topic, held through the group
  // polder-<peer>-roles. It carries no records.
  std::string roles_topic = "_polder.roles";
  static constexpr int32_t kRolesPartitions = 64;
  // Feed quality of this node's datasets and of the datasets it mirrors (ADR 0018 §6),
  // compacted, key <provider>/<dataset>.
  std::string feed_quality_topic = "_polder.feed-quality";
  absl::Duration feed_quality_interval = absl::Seconds(10);  // how often it is written there
  int32_t internal_replication_factor = 3;
  absl::Duration delivery_timeout = absl::Seconds(20);
  absl::Duration transaction_timeout = absl::Seconds(60);
  absl::Duration kafka_request_timeout = absl::Seconds(10);
  // The least time between two transactions of one transactional producer (ingest, mirrors,
  // views): kafka::ProducerOptions::transaction_spacing.
  absl::Duration transaction_spacing = absl::Milliseconds(5);
  int32_t production_replication_factor = 3;  // below: a warning at start
  int32_t production_min_insync_replicas = 2;
  // replicas: (ADR 0021) this process among the city's node replicas.
  std::string replica_id;  // default: the host name (a StatefulSet pod's name)
  // The internal port, where the other replicas forward batches (mutual TLS, own peer id only).
  // Default 0.0.0.0:7444; 127.0.0.1:0 in the development mode (loopback, any free port).
  std::string internal_address;
  // How the others reach it; default: internal_address with a wildcard host replaced by the
  // host name (and port 0 by the bound port).
  std::string internal_advertise;
  // The internal port's own identity (ADR 0022 §4): a certificate from a CA that only this node's
  // replicas trust (on Kubernetes a per-release cert-manager CA Issuer), with the URI SAN
  // spiffe://<replica_trust_domain>/peer/replica; short-lived, so no CRL. All three files or
  // none; none: the federation identity, admitting only this node's own peer id.
  std::string replica_cert_file;
  std::string replica_key_file;
  std::string replica_ca_file;
  std::string replica_trust_domain;  // default <peer_id>-replicas
  bool ReplicaTls() const { return !replica_ca_file.empty(); }
  // The identity replicas present to each other on the internal port.
  std::string InternalPeer() const { return ReplicaTls() ? "replica" : peer_id; }
  absl::Duration replica_session_timeout = absl::Seconds(8);
  absl::Duration replica_heartbeat_interval = absl::Seconds(2);
  // registry:
  std::string registry_address;
  std::string registry_peer = "registry";
  absl::Duration registry_refresh = absl::Seconds(30);
  absl::Duration registry_timeout = absl::Seconds(10);
  // tls: the node's federation identity (registry client; server certificate of its listeners)
  std::string cert_file;
  std::string key_file;
  std::string trust_bundle_file;
  std::string crl_dir;
  // trust:
  trust::TrustConfig trust;
  // ingest:
  std::string ingest_trust_domain;    // SPIFFE trust domain of gateway certificates
  std::string ingest_client_ca_file;  // the CA(s) that issue gateway certificates
  std::string ingest_crl_dir;
  // The server certificate of the city-facing listeners (gRPC and HTTPS ingest, the schema
  // endpoint), e.g. one cert-manager issues for the city's public name; empty: the federation
  // identity (cert_file, key_file). Re-read when the files change, like every certificate.
  std::string ingest_cert_file;
  std::string ingest_key_file;
  // The files the city-facing listeners present.
  std::string IngestCertFile() const {
    return ingest_cert_file.empty() ? cert_file : ingest_cert_file;
  }
  std::string IngestKeyFile() const { return ingest_key_file.empty() ? key_file : ingest_key_file; }
  std::vector<IngestIdentity> identities;
  int64_t max_record_bytes = 64 << 10;
  int64_t max_batch_bytes = 1 << 20;
  int32_t max_batch_records = 10000;
  int64_t max_inflight_bytes = 64 << 20;
  absl::Duration max_event_age = absl::Hours(24 * 30);
  absl::Duration max_event_lead = absl::Minutes(5);
  absl::Duration idempotency_window = absl::Hours(1);
  absl::Duration publish_timeout = absl::Seconds(30);
  // datasets:
  std::vector<DatasetConfig> datasets;
  // federation: (sharing and mirroring; `federation` above is the federation's name)
  FederationConfig sharing;
  // views: aggregate views of this node's own datasets, one view set per dataset (ADR 0016).
  std::vector<views::ViewSetSpec> views;

  std::string TopicOf(const DatasetConfig& d) const { return peer_id + "." + d.id; }
  // The mirror topic of a subscription: <provider>.<dataset>, or the view's topic.
  static std::string MirrorTopicOf(const SubscriptionConfig& s);
  // The transactional id of a subscription's mirror writer (a view's mirror has its own).
  std::string MirrorTransactionalIdOf(const SubscriptionConfig& s) const;
  const DatasetConfig* FindDataset(const std::string& id) const;
};

absl::StatusOr<NodeConfig> LoadNodeConfig(const std::string& path);
absl::StatusOr<NodeConfig> ParseNodeConfig(const std::string& yaml, const std::string& source);

// The byte limits every layer must agree on (ARCHITECTURE §4): HTTP body, gRPC message,
// producer request and batch, topic max.message.bytes, consumer fetch. Returns the mismatches.
struct SizeLimits {
  int64_t http_max_body_bytes;
  int64_t grpc_max_message_bytes;
  int64_t producer_max_request_bytes;
  int64_t producer_batch_bytes;
  int64_t consumer_max_partition_fetch_bytes;
};
SizeLimits DeriveSizeLimits(const NodeConfig& config);
std::vector<std::string> CheckSizeLimits(
    const NodeConfig& config, const SizeLimits& limits,
    const std::map<std::string, int64_t>& topic_max_message_bytes);

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_NODE_CONFIG_H_
