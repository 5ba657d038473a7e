#include "services/node/node_config.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/server/host_port.h"
#include "common/trust/document.h"
#include "common/views/names.h"
#include "common/views/spec.h"
#include "common/views/window.h"

namespace polder {
namespace node {
namespace {

constexpr int64_t kGrpcDefaultMax = 4 << 20;
constexpr int64_t kRequestOverhead = 64 << 10;  // framing of a request around its records
constexpr int64_t kBatchOverhead = 1 << 10;     // Kafka record-batch header room

bool ValidAddress(const std::string& address) { return server::ParseHostPort(address).ok(); }

bool Loopback(const std::string& address) {
  absl::StatusOr<server::HostPort> a = server::ParseHostPort(address);
  return a.ok() && server::IsLoopbackHost(a->host);
}

absl::StatusOr<NodeConfig> Decode(config::Document& doc) {
  NodeConfig c;
  config::ObjectReader node = doc.root().Object("node", config::kRequired);
  node.Required("peer_id", &c.peer_id)
      .Required("federation", &c.federation)
      .Optional("grpc_address", &c.grpc_address)
      .Optional("http_address", &c.http_address)
      .Optional("schema_address", &c.schema_address)
      .Optional("http_per_source_limits", &c.http_per_source_limits)
      .Optional("schema_per_source_limits", &c.schema_per_source_limits)
      .Optional("ops_address", &c.ops_address)
      .Required("state_dir", &c.state_dir)
      .Optional("development_mode", &c.development_mode)
      .Optional("drain_timeout", &c.drain_timeout);
  node.Check(c.peer_id.empty() || trust::IsValidPeerId(c.peer_id), "peer_id",
             "must be a lowercase name such as groningen");
  node.Check(c.federation.empty() || trust::IsValidPeerId(c.federation), "federation",
             "must be a lowercase name such as nl-smartcity");
  for (const char* key : {"grpc_address", "http_address", "schema_address", "ops_address"}) {
    const std::string& v = std::string(key) == "grpc_address"     ? c.grpc_address
                           : std::string(key) == "http_address"   ? c.http_address
                           : std::string(key) == "schema_address" ? c.schema_address
                                                                  : c.ops_address;
    node.Check(ValidAddress(v), key, "must be host:port");
    if (c.development_mode && std::string(key) != "ops_address") {
      node.Check(Loopback(v), key,
                 "development_mode listens only on loopback (127.0.0.1, localhost, ::1)");
    }
  }

  config::ObjectReader kafka = doc.root().Object("kafka", config::kRequired);
  kafka.Required("bootstrap_servers", &c.bootstrap_servers)
      .Optional("properties", &c.kafka_properties)
      .Optional("transactional_id", &c.transactional_id)
      .Optional("keys_topic", &c.keys_topic)
      .Optional("keys_partitions", &c.keys_partitions)
      .Optional("legacy_keys_topic", &c.legacy_keys_topic)
      .Optional("replicas_topic", &c.replicas_topic)
      .Optional("roles_topic", &c.roles_topic)
      .Optional("feed_quality_topic", &c.feed_quality_topic)
      .Optional("feed_quality_interval", &c.feed_quality_interval)
      .Optional("internal_replication_factor", &c.internal_replication_factor)
      .Optional("delivery_timeout", &c.delivery_timeout)
      .Optional("transaction_timeout", &c.transaction_timeout)
      .Optional("request_timeout", &c.kafka_request_timeout)
      .Optional("transaction_spacing", &c.transaction_spacing)
      .Optional("production_replication_factor", &c.production_replication_factor)
      .Optional("production_min_insync_replicas", &c.production_min_insync_replicas);
  kafka.Check(
      c.feed_quality_interval >= absl::Seconds(1) && c.feed_quality_interval <= absl::Hours(1),
      "feed_quality_interval", "must be between 1s and 1h");
  kafka.Check(c.internal_replication_factor >= 1, "internal_replication_factor",
              "must be at least 1");
  kafka.Check(c.kafka_request_timeout <= c.delivery_timeout, "request_timeout",
              "must not exceed delivery_timeout");
  kafka.Check(c.delivery_timeout <= c.transaction_timeout, "delivery_timeout",
              "must not exceed transaction_timeout");
  kafka.Check(
      c.transaction_spacing >= absl::ZeroDuration() && c.transaction_spacing <= absl::Seconds(1),
      "transaction_spacing", "must be between 0s and 1s");
  for (const auto& [k, v] : c.kafka_properties) {
    kafka.Check(!absl::StrContains(k, "password") && !absl::StrContains(k, "secret") &&
                    k != "ssl.key.pem" && k != "sasl.oauthbearer.config",
                absl::StrCat("properties.", k),
                "secrets are never written in configuration: use a file path property (e.g. "
                "ssl.key.location)");
  }
  kafka.Check(c.keys_partitions >= 1 && c.keys_partitions <= 1000, "keys_partitions",
              "must be between 1 and 1000 (at least the largest number of replicas planned)");
  kafka.Check(c.legacy_keys_topic != c.keys_topic, "legacy_keys_topic",
              "must differ from keys_topic");
  kafka.Check(c.roles_topic != c.keys_topic && c.roles_topic != c.replicas_topic, "roles_topic",
              "must differ from keys_topic and replicas_topic");
  if (c.transactional_id.empty() && !c.peer_id.empty())
    c.transactional_id = absl::StrCat("polder-node-", c.peer_id, "-ingest");

  config::ObjectReader replicas = doc.root().Object("replicas", config::kOptional);
  replicas.Optional("id", &c.replica_id)
      .Optional("internal_address", &c.internal_address)
      .Optional("internal_advertise", &c.internal_advertise)
      .Optional("session_timeout", &c.replica_session_timeout)
      .Optional("heartbeat_interval", &c.replica_heartbeat_interval)
      .Optional("cert_file", &c.replica_cert_file)
      .Optional("key_file", &c.replica_key_file)
      .Optional("ca_file", &c.replica_ca_file)
      .Optional("trust_domain", &c.replica_trust_domain);
  {
    const int files =
        !c.replica_cert_file.empty() + !c.replica_key_file.empty() + !c.replica_ca_file.empty();
    replicas.Check(files == 0 || files == 3,
                   c.replica_ca_file.empty()    ? "ca_file"
                   : c.replica_key_file.empty() ? "key_file"
                                                : "cert_file",
                   "set cert_file, key_file and ca_file together (or none: the federation "
                   "identity)");
    if (c.replica_trust_domain.empty() && !c.peer_id.empty())
      c.replica_trust_domain = absl::StrCat(c.peer_id, "-replicas");
    replicas.Check(!c.development_mode || files == 0, "ca_file",
                   "development_mode forwards in plaintext on loopback; no certificates");
  }
  if (c.internal_address.empty())
    c.internal_address = c.development_mode ? "127.0.0.1:0" : "0.0.0.0:7444";
  replicas.Check(c.replica_id.empty() || trust::IsValidPeerId(c.replica_id), "id",
                 "must be a lowercase name such as groningen-node-0");
  replicas.Check(ValidAddress(c.internal_address), "internal_address", "must be host:port");
  if (c.development_mode) {
    replicas.Check(Loopback(c.internal_address), "internal_address",
                   "development_mode listens only on loopback (127.0.0.1, localhost, ::1)");
  }
  replicas.Check(c.internal_advertise.empty() || ValidAddress(c.internal_advertise),
                 "internal_advertise", "must be host:port");
  if (c.development_mode) {
    replicas.Check(c.internal_advertise.empty() || Loopback(c.internal_advertise),
                   "internal_advertise",
                   "development_mode forwards in plaintext, only on loopback (127.0.0.1, "
                   "localhost, ::1)");
  }
  replicas.Check(c.replica_session_timeout >= absl::Seconds(6) &&
                     c.replica_session_timeout <= absl::Seconds(10),
                 "session_timeout",
                 "must be between 6s and 10s (the failover bound rests on it; ADR 0021 §1)");
  replicas.Check(c.replica_heartbeat_interval > absl::ZeroDuration() &&
                     c.replica_heartbeat_interval * 3 <= c.replica_session_timeout,
                 "heartbeat_interval", "must be positive and at most a third of session_timeout");

  config::ObjectReader registry = doc.root().Object("registry", config::kRequired);
  registry.Required("address", &c.registry_address)
      .Optional("peer", &c.registry_peer)
      .Optional("refresh_interval", &c.registry_refresh)
      .Optional("timeout", &c.registry_timeout);
  registry.Check(ValidAddress(c.registry_address), "address", "must be host:port");
  // Development mode dials the registry in plaintext: only on this machine.
  registry.Check(
      !c.development_mode || Loopback(c.registry_address), "address",
      "development_mode reaches the registry only on loopback (127.0.0.1, localhost, ::1)");

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

  config::ObjectReader ingest = doc.root().Object("ingest", config::kRequired);
  ingest.Optional("trust_domain", &c.ingest_trust_domain)
      .Optional("client_ca_file", &c.ingest_client_ca_file)
      .Optional("crl_dir", &c.ingest_crl_dir)
      .Optional("cert_file", &c.ingest_cert_file)
      .Optional("key_file", &c.ingest_key_file)
      .OptionalBytes("max_record_bytes", &c.max_record_bytes)
      .OptionalBytes("max_batch_bytes", &c.max_batch_bytes)
      .Optional("max_batch_records", &c.max_batch_records)
      .OptionalBytes("max_inflight_bytes", &c.max_inflight_bytes)
      .Optional("max_event_age", &c.max_event_age)
      .Optional("max_event_lead", &c.max_event_lead)
      .Optional("idempotency_window", &c.idempotency_window)
      .Optional("publish_timeout", &c.publish_timeout);
  ingest.ObjectList<IngestIdentity>(
      "identities", &c.identities,
      [](config::ObjectReader& r, IngestIdentity* id) {
        r.Required("id", &id->id)
            .Required("datasets", &id->datasets)
            .Optional("token_file", &id->token_file);
        r.Check(trust::IsValidPeerId(id->id), "id",
                "must be a lowercase name such as gateway-north");
        r.Check(!id->datasets.empty(), "datasets", "list the dataset ids it may publish, or \"*\"");
      },
      c.development_mode ? config::kOptional : config::kRequired);
  if (!c.development_mode) {
    bool any_cert = false;
    for (const IngestIdentity& id : c.identities) any_cert |= id.token_file.empty();
    ingest.Check(!any_cert || !c.ingest_client_ca_file.empty(), "client_ca_file",
                 "identities without token_file authenticate by client certificate: name the CA "
                 "that issues them");
    ingest.Check(!any_cert || !c.ingest_crl_dir.empty(), "crl_dir",
                 "identities without token_file authenticate by client certificate: name the "
                 "folder of their "
                 "CA's CRLs (an empty folder: none revoked)");
    ingest.Check(c.ingest_client_ca_file.empty() || !c.ingest_trust_domain.empty(), "trust_domain",
                 "name the SPIFFE trust domain of the gateway certificates "
                 "(spiffe://<trust_domain>/peer/<id>)");
  }
  ingest.Check(c.ingest_cert_file.empty() == c.ingest_key_file.empty(),
               c.ingest_cert_file.empty() ? "cert_file" : "key_file",
               "set cert_file and key_file together (or neither: the federation identity)");
  ingest.Check(c.max_record_bytes >= 256, "max_record_bytes", "must be at least 256B");
  ingest.Check(c.max_record_bytes <= c.max_batch_bytes, "max_record_bytes",
               "must not exceed max_batch_bytes");
  ingest.Check(c.max_batch_bytes <= kGrpcDefaultMax - kRequestOverhead, "max_batch_bytes",
               "must stay below gRPC's 4MiB message limit (at most 4032KiB)");
  ingest.Check(c.max_batch_records >= 1, "max_batch_records", "must be at least 1");
  ingest.Check(c.max_inflight_bytes >= 2 * c.max_batch_bytes, "max_inflight_bytes",
               "must hold at least two batches (2 × max_batch_bytes)");
  ingest.Check(c.max_event_age > absl::ZeroDuration(), "max_event_age", "must be positive");
  ingest.Check(c.max_event_lead >= absl::ZeroDuration(), "max_event_lead", "must not be negative");
  ingest.Check(c.idempotency_window >= absl::Minutes(1), "idempotency_window",
               "must be at least 1m");
  ingest.Check(
      c.publish_timeout >= c.transaction_timeout / 10 && c.publish_timeout <= c.transaction_timeout,
      "publish_timeout",
      "must lie between a tenth of kafka.transaction_timeout and kafka.transaction_timeout");

  doc.root().ObjectList<DatasetConfig>(
      "datasets", &c.datasets,
      [](config::ObjectReader& r, DatasetConfig* d) {
        r.Required("id", &d->id)
            .Required("subject", &d->subject)
            .Optional("partitions", &d->partitions)
            .Optional("replication_factor", &d->replication_factor)
            .Optional("retention", &d->retention)
            .Optional("epoch", &d->epoch)
            .Optional("description", &d->description)
            .Optional("licence", &d->licence)
            .Optional("owner_contact", &d->owner_contact);
        r.Check(views::IsValidDatasetId(d->id), "id",
                "must be <domain>.<name> in lowercase, e.g. mobility.bike-counts");
        r.Check(
            !d->subject.empty() && d->subject.find('/') == std::string::npos, "subject",
            "must be the dataset message's full name, e.g. polder.datasets.mobility.v1.BikeCount");
        r.Check(d->partitions >= 1, "partitions", "must be at least 1");
        r.Check(d->replication_factor >= 1, "replication_factor", "must be at least 1");
        r.Check(d->retention >= absl::Hours(1), "retention", "must be at least 1h");
      },
      config::kRequired);
  doc.root().ObjectList<views::ViewSetSpec>(
      "views", &c.views, [](config::ObjectReader& r, views::ViewSetSpec* set) {
        r.Required("dataset", &set->dataset)
            .Optional("grace", &set->grace)
            .Optional("idle_timeout", &set->idle_timeout)
            .Optional("max_event_lead", &set->max_event_lead)
            .Optional("max_event_age", &set->max_event_age);
        config::ObjectReader guard = r.Object("guard", config::kOptional);
        guard.Optional("k", &set->guard.k)
            .Optional("p", &set->guard.p)
            .Optional("d", &set->guard.ptable.d)
            .Optional("v", &set->guard.ptable.v)
            .Optional("js", &set->guard.ptable.js);
        r.ObjectList<views::ViewSpec>(
            "views", &set->views,
            [](config::ObjectReader& v, views::ViewSpec* view) {
              std::string window = "15m";
              std::vector<std::string> group_by, measures;
              v.Required("id", &view->id)
                  .Optional("window", &window)
                  .Optional("group_by", &group_by)
                  .Required("measures", &measures)
                  .Optional("epoch", &view->epoch);
              absl::StatusOr<views::WindowSize> size = views::ParseWindowSize(window);
              v.Check(size.ok(), "window", size.status().message());
              if (size.ok()) view->window = *size;
              for (const std::string& d : group_by) {
                absl::StatusOr<views::Dimension> dim = views::ParseDimension(d);
                v.Check(dim.ok(), "group_by", dim.status().message());
                if (dim.ok()) view->group_by.push_back(*dim);
              }
              for (const std::string& m : measures) {
                absl::StatusOr<views::Measure> measure = views::ParseMeasure(m);
                v.Check(measure.ok(), "measures", measure.status().message());
                if (measure.ok()) view->measures.push_back(*measure);
              }
            },
            config::kRequired);
      });
  config::ObjectReader fed = doc.root().Object("federation", config::kOptional);
  if (fed.present()) {
    c.sharing.enabled = true;
    fed.Optional("address", &c.sharing.address)
        .Required("contracts_dir", &c.sharing.contracts_dir)
        .Optional("revocations_dir", &c.sharing.revocations_dir)
        .Optional("audit_topic", &c.sharing.audit_topic)
        .Optional("audit_index_topic", &c.sharing.audit_index_topic)
        .Optional("cursors_topic", &c.sharing.cursors_topic)
        .Optional("max_batch_records", &c.sharing.max_batch_records)
        .OptionalBytes("max_batch_bytes", &c.sharing.max_batch_bytes)
        .Optional("heartbeat_interval", &c.sharing.heartbeat_interval)
        .Optional("recheck_interval", &c.sharing.recheck_interval)
        .Optional("max_streams_per_peer", &c.sharing.max_streams_per_peer)
        .OptionalBytes("max_unacknowledged_bytes", &c.sharing.max_unacknowledged_bytes)
        .OptionalBytes("source_prefetch_bytes", &c.sharing.source_prefetch_bytes)
        .OptionalBytes("fanout_tail_bytes", &c.sharing.fanout_tail_bytes)
        .Optional("fanout_max_catchup_readers", &c.sharing.fanout_max_catchup_readers)
        .Required("signing_key_file", &c.sharing.signing_key_file)
        .Optional("receipt_interval", &c.sharing.receipt_interval)
        .Optional("keepalive_time", &c.sharing.keepalive_time)
        .Optional("keepalive_timeout", &c.sharing.keepalive_timeout)
        .Optional("max_connection_age", &c.sharing.max_connection_age)
        .Optional("max_connection_age_grace", &c.sharing.max_connection_age_grace)
        .Optional("max_connection_idle", &c.sharing.max_connection_idle);
    fed.Check(c.sharing.max_unacknowledged_bytes >= c.sharing.max_batch_bytes,
              "max_unacknowledged_bytes",
              "must be at least max_batch_bytes (one batch must fit the window)");
    fed.Check(c.sharing.source_prefetch_bytes >= c.sharing.max_batch_bytes, "source_prefetch_bytes",
              "must be at least max_batch_bytes (a batch must fit the prefetch)");
    fed.Check(c.sharing.max_streams_per_peer >= 1, "max_streams_per_peer", "must be at least 1");
    fed.Check(c.sharing.fanout_tail_bytes >= c.sharing.max_batch_bytes, "fanout_tail_bytes",
              "must be at least max_batch_bytes (a tail must hold a batch)");
    fed.Check(c.sharing.fanout_max_catchup_readers >= 1, "fanout_max_catchup_readers",
              "must be at least 1 (a stream behind the tail must be able to catch up)");
    fed.Check(c.sharing.max_batch_records >= 1, "max_batch_records", "must be at least 1");
    fed.Check(c.sharing.keepalive_time >= absl::Seconds(10), "keepalive_time",
              "must be at least 10s (gRPC servers refuse more frequent pings)");
    fed.Check(c.sharing.max_connection_age >= absl::Minutes(1), "max_connection_age",
              "must be at least 1m");
    fed.Check(ValidAddress(c.sharing.address), "address", "must be host:port");
    fed.Check(!c.development_mode, "address",
              "federation runs over mutual TLS only: not in development_mode");
    fed.Check(c.sharing.max_batch_bytes <= kGrpcDefaultMax - kRequestOverhead, "max_batch_bytes",
              "must stay below gRPC's 4MiB message limit");
    fed.ObjectList<SubscriptionConfig>(
        "subscriptions", &c.sharing.subscriptions,
        [](config::ObjectReader& r, SubscriptionConfig* s) {
          r.Required("provider", &s->provider)
              .Required("endpoint", &s->endpoint)
              .Required("dataset", &s->dataset)
              .Required("contract", &s->contract)
              .Optional("view", &s->view)
              .Optional("partitions", &s->partitions)
              .Optional("replication_factor", &s->replication_factor)
              .Optional("purge_on_revocation", &s->purge_on_revocation)
              .Optional("start", &s->start);
          r.Check(s->start.empty() || s->start == "earliest" || s->start == "latest" ||
                      trust::ParseRfc3339(s->start).ok(),
                  "start",
                  "must be earliest, latest or an RFC 3339 time such as 2026-01-01T00:00:00Z");
          r.Check(trust::IsValidPeerId(s->provider), "provider",
                  "must be a peer id such as groningen");
          r.Check(ValidAddress(s->endpoint), "endpoint", "must be host:port");
          r.Check(views::IsValidDatasetId(s->dataset), "dataset", "must be <domain>.<name>");
          if (s->view.empty()) {
            r.Check(s->partitions >= 1, "partitions",
                    "must be at least 1 (the source topic's partition count)");
          } else {
            r.Check(views::ValidateViewId(s->view).ok(), "view",
                    "must be a view id such as quarter-municipality");
            if (s->partitions == 0) s->partitions = 1;
            r.Check(s->partitions == 1, "partitions", "a view's topic has one partition");
          }
        },
        config::kOptional);
  }
  std::set<std::string> seen;
  for (const DatasetConfig& d : c.datasets) {
    doc.root().Check(seen.insert(d.id).second, "datasets",
                     absl::StrCat("dataset '", d.id, "' is listed twice"));
  }
  std::set<std::string> with_views;
  for (const views::ViewSetSpec& set : c.views) {
    doc.root().Check(seen.count(set.dataset) > 0, "views",
                     absl::StrCat("views of '", set.dataset,
                                  "': a node computes views of its own datasets only"));
    doc.root().Check(
        with_views.insert(set.dataset).second, "views",
        absl::StrCat("dataset '", set.dataset, "' has two view sets; declare its views in one"));
    absl::Status valid = views::ValidateViewSet(c.peer_id, set);
    doc.root().Check(valid.ok(), "views", valid.message());
  }
  // Feed quality's entities views join every set (ADR 0018 §6).
  for (views::ViewSetSpec& set : c.views) {
    absl::StatusOr<views::ViewSetSpec> with = views::WithFeedQualityViews(set);
    doc.root().Check(with.ok(), "views", with.status().message());
    if (!with.ok()) continue;
    absl::Status valid = views::ValidateViewSet(c.peer_id, *with);
    doc.root().Check(valid.ok(), "views", valid.message());
    if (valid.ok()) set = *std::move(with);
  }
  for (const IngestIdentity& id : c.identities) {
    for (const std::string& ds : id.datasets) {
      doc.root().Check(
          ds == "*" || seen.count(ds) > 0, "ingest.identities",
          absl::StrCat("identity '", id.id, "' is granted '", ds, "', which is not in datasets"));
    }
  }
  return doc.Finish(c);
}

}  // namespace

const DatasetConfig* NodeConfig::FindDataset(const std::string& id) const {
  for (const DatasetConfig& d : datasets) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

std::string NodeConfig::MirrorTopicOf(const SubscriptionConfig& s) {
  return s.view.empty() ? absl::StrCat(s.provider, ".", s.dataset)
                        : views::ViewTopic(s.provider, s.dataset, s.view);
}

std::string NodeConfig::MirrorTransactionalIdOf(const SubscriptionConfig& s) const {
  const std::string view_suffix = s.view.empty() ? "" : absl::StrCat(".view.", s.view);
  return absl::StrCat("polder-mirror-", peer_id, "-", s.provider, "-", s.dataset, view_suffix);
}

absl::StatusOr<NodeConfig> ParseNodeConfig(const std::string& yaml, const std::string& source) {
  absl::StatusOr<config::Document> doc = config::Document::FromString(yaml, source);
  if (!doc.ok()) return doc.status();
  return Decode(*doc);
}

absl::StatusOr<NodeConfig> LoadNodeConfig(const std::string& path) {
  absl::StatusOr<config::Document> doc = config::Document::FromFile(path);
  if (!doc.ok()) return doc.status();
  return Decode(*doc);
}

SizeLimits DeriveSizeLimits(const NodeConfig& c) {
  SizeLimits l;
  l.http_max_body_bytes = c.max_batch_bytes + kRequestOverhead;
  l.grpc_max_message_bytes = c.max_batch_bytes + kRequestOverhead;
  l.producer_batch_bytes = c.max_batch_bytes;
  l.producer_max_request_bytes = c.max_batch_bytes + kRequestOverhead;
  l.consumer_max_partition_fetch_bytes = c.max_batch_bytes + kBatchOverhead;
  return l;
}

std::vector<std::string> CheckSizeLimits(
    const NodeConfig& c, const SizeLimits& l,
    const std::map<std::string, int64_t>& topic_max_message_bytes) {
  std::vector<std::string> problems;
  if (l.http_max_body_bytes > kGrpcDefaultMax || l.grpc_max_message_bytes > kGrpcDefaultMax) {
    problems.push_back(absl::StrCat("requests of up to ", l.grpc_max_message_bytes,
                                    " bytes exceed gRPC's 4MiB default message limit"));
  }
  if (c.max_record_bytes > l.producer_batch_bytes) {
    problems.push_back(absl::StrCat("ingest.max_record_bytes (", c.max_record_bytes,
                                    ") exceeds the producer's batch.size (", l.producer_batch_bytes,
                                    ")"));
  }
  if (l.producer_batch_bytes > l.producer_max_request_bytes) {
    problems.push_back("the producer's batch.size exceeds its message.max.bytes");
  }
  for (const auto& [topic, max] : topic_max_message_bytes) {
    if (max < l.producer_batch_bytes + kBatchOverhead) {
      problems.push_back(absl::StrCat("topic ", topic, " has max.message.bytes=", max,
                                      ", below the producer's batch.size (", l.producer_batch_bytes,
                                      ") + ", kBatchOverhead,
                                      ": the broker would reject whole batches"));
    }
  }
  return problems;
}

}  // namespace node
}  // namespace polder
