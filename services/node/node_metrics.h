// polder-node's Prometheus metrics (prometheus-cpp), exposed at /metrics on the ops listener.
//
//   polder_ingest_records_total{dataset,outcome,reason}   records accepted / duplicate / rejected
//   polder_ingest_bytes_total{dataset,outcome,reason}     their payload bytes
//   polder_ingest_publish_seconds{dataset}                 request → committed (histogram)
//   polder_ingest_inflight_bytes                            bytes held by requests in progress
//   polder_kafka_transactions_total{outcome}               committed / failed
//   polder_kafka_producer_recreations_total
//   polder_ingest_known_idempotency_keys
//   polder_schema_cache_schemas, polder_schema_cache_registry_reachable,
//   polder_schema_cache_last_refresh_timestamp_seconds
//   polder_federation_subscription_up{provider,dataset}
//   polder_federation_subscription_records_total{provider,dataset}
//   polder_federation_subscription_reconnects_total{provider,dataset}
//   polder_federation_subscription_lag_records{provider,dataset,partition}
//   polder_federation_subscription_bytes_total{provider,dataset}
//   polder_federation_subscription_lag_seconds{provider,dataset}
//   polder_federation_subscription_state{provider,dataset,state}        1 for the current state
//   polder_federation_subscription_gaps_total{provider,dataset}
//   polder_federation_subscription_receipts_total{provider,dataset}
//   polder_federation_offered_records_total{peer,dataset}                provider side
//   polder_federation_offered_bytes_total{peer,dataset}
//   polder_federation_streams_open{peer,dataset}
//   polder_federation_unacknowledged_bytes{peer,dataset}
//   polder_federation_streams_ended_total{peer,code}
//   polder_federation_receipts_received_total
//   polder_federation_fanout_tails                     source topics followed by a shared tail
//   polder_federation_fanout_tail_bytes                held in the tails' rings
//   polder_federation_fanout_streams{mode}             live, catching_up, waiting
//   polder_federation_fanout_fell_behind_total         live streams that fell off a ring
//   polder_federation_fanout_waited_total              streams that queued for a catch-up reader
//   polder_federation_fanout_tail_failures_total       tails whose consumer failed
//   polder_federation_expiry_timestamp_seconds{kind,name}   certificate, directory, contract
//
// Reasons for rejections: invalid, unauthenticated, forbidden, unknown_dataset, overloaded,
// unavailable, conflict.
#ifndef POLDER_SERVICES_NODE_NODE_METRICS_H_
#define POLDER_SERVICES_NODE_NODE_METRICS_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/http/https_server.h"
#include "common/server/metrics_util.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace polder {
namespace node {

class NodeMetrics {
 public:
  NodeMetrics();

  // One request's outcome: `status` OK (accepted or duplicate) or the error that refused it.
  void Record(const std::string& dataset, const absl::Status& status, bool duplicate,
              int64_t records, int64_t bytes, absl::Duration latency);
  void SetInflightBytes(int64_t bytes) { inflight_->Set(static_cast<double>(bytes)); }
  // Absolute values from the publisher and the schema cache, set before each scrape.
  void SetPublisherStats(int64_t committed, int64_t failed, int64_t recreations,
                         int64_t known_keys);
  void SetSchemaCache(int64_t schemas, bool reachable, absl::Time last_refresh_ok);

  // A subscription's state (set before each scrape): up (streaming), records and batches
  // mirrored by this process, reconnects, lag per partition (provider high watermark − cursor).
  struct Subscription {
    std::string state;  // streaming, reconnecting, refused, fenced, stopped, starting
    int64_t records = 0, bytes = 0, reconnects = 0, gaps = 0, receipts = 0;
    std::map<int32_t, int64_t> lag;
    double lag_seconds = 0;
  };
  void SetSubscription(const std::string& provider, const std::string& dataset,
                       const Subscription& s);

  // The provider side, per (peer, dataset): totals since start and current values.
  struct Offered {
    int64_t records = 0, bytes = 0, streams_open = 0, unacknowledged_bytes = 0;
  };
  void SetOffered(const std::string& peer, const std::string& dataset, const Offered& o);
  void SetStreamsEnded(const std::string& peer, const std::string& code, int64_t total);
  void SetReceiptsReceived(int64_t total);
  // How the provider's streams read their sources (ADR 0020 §4).
  struct FanOutStats {
    int64_t tails = 0, tail_bytes = 0, live = 0, catching_up = 0, waiting = 0;
    int64_t fell_behind = 0, tail_failures = 0, waited = 0;
  };
  void SetFanOut(const FanOutStats& s);

  // A dataset's view set (ADR 0016): totals since the process started, across job restarts.
  struct ViewSetStats {
    bool running = false;
    int64_t restarts = 0, merged = 0, late = 0, cells = 0, commits = 0;
    std::map<std::string, int64_t> rejected;         // by reason
    std::map<std::string, int64_t> protected_cells;  // by rule
    absl::Time watermark = absl::InfinitePast();
    // The publication gate: moves, fallbacks, secondary, relabelled; violations of C2 and C3
    // it could not repair.
    std::map<std::string, int64_t> gate_decisions;
    int64_t gate_violations = 0;
  };
  void SetViewSet(const std::string& dataset, const ViewSetStats& s);
  // This replica (ADR 0021 §6): roles held now per kind ("key-partition", "subscription",
  // "views", "audit-index"), rebalances per group ("keys", "roles"), forwarded calls per call and
  // outcome, and roles whose writer was fenced per kind. Totals since start, set before each
  // scrape.
  struct ReplicaStats {
    std::map<std::string, int64_t> roles;
    std::map<std::string, int64_t> rebalances;
    std::map<std::pair<std::string, std::string>, int64_t> forwarded;
    std::map<std::string, int64_t> fenced;
  };
  void SetReplica(const ReplicaStats& s);
  // When something this node depends on expires: kind certificate, directory or contract.
  void SetExpiry(const std::string& kind, const std::string& name, absl::Time at);
  // An HTTP listener's connections (ingest, schema, ops): held now, and since start accepted,
  // refused over the per-source cap, evicted at the connection cap, closed at a deadline, and
  // requests answered 503 because the queue was full.
  void SetHttpListener(const std::string& listener, const http::HttpsServerStats& s);
  // Whether an ingest identity's bearer token is valid now (0: its file was deleted, emptied,
  // shortened or exposed — the token is revoked).
  void SetIngestToken(const std::string& identity, bool valid);

  // The text exposition format.
  std::string Serialize() const;

  // The reason label for a refusal.
  static std::string Reason(const absl::Status& status);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  server::HttpListenerMetrics http_listeners_;  // after registry_
  prometheus::Family<prometheus::Counter>* records_;
  prometheus::Family<prometheus::Counter>* bytes_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Gauge* inflight_;
  prometheus::Counter* committed_;
  prometheus::Counter* failed_;
  prometheus::Counter* recreations_;
  prometheus::Gauge* known_keys_;
  prometheus::Gauge* schemas_;
  prometheus::Gauge* reachable_;
  prometheus::Gauge* last_refresh_;
  prometheus::Family<prometheus::Gauge>* subscription_up_;
  prometheus::Family<prometheus::Counter>* subscription_records_;
  prometheus::Family<prometheus::Counter>* subscription_reconnects_;
  prometheus::Family<prometheus::Gauge>* subscription_lag_;
  prometheus::Family<prometheus::Gauge>* subscription_lag_seconds_;
  prometheus::Family<prometheus::Counter>* subscription_bytes_;
  prometheus::Family<prometheus::Gauge>* subscription_state_;
  prometheus::Family<prometheus::Counter>* subscription_gaps_;
  prometheus::Family<prometheus::Counter>* subscription_receipts_;
  prometheus::Family<prometheus::Counter>* offered_records_;
  prometheus::Family<prometheus::Counter>* offered_bytes_;
  prometheus::Family<prometheus::Gauge>* streams_open_;
  prometheus::Family<prometheus::Gauge>* unacknowledged_;
  prometheus::Family<prometheus::Counter>* streams_ended_;
  prometheus::Gauge* fanout_tails_;
  prometheus::Gauge* fanout_tail_bytes_;
  prometheus::Family<prometheus::Gauge>* fanout_streams_;
  prometheus::Counter* fanout_fell_behind_;
  prometheus::Counter* fanout_waited_;
  prometheus::Counter* fanout_tail_failures_;
  prometheus::Counter* receipts_received_;
  prometheus::Family<prometheus::Gauge>* view_up_;
  prometheus::Family<prometheus::Gauge>* replica_roles_;
  prometheus::Family<prometheus::Counter>* replica_rebalances_;
  prometheus::Family<prometheus::Counter>* replica_forwarded_;
  prometheus::Family<prometheus::Counter>* replica_fenced_;
  prometheus::Family<prometheus::Counter>* view_records_;
  prometheus::Family<prometheus::Counter>* view_late_;
  prometheus::Family<prometheus::Counter>* view_rejected_;
  prometheus::Family<prometheus::Counter>* view_cells_;
  prometheus::Family<prometheus::Counter>* view_protected_;
  prometheus::Family<prometheus::Counter>* view_commits_;
  prometheus::Family<prometheus::Counter>* view_restarts_;
  prometheus::Family<prometheus::Gauge>* view_watermark_;
  prometheus::Family<prometheus::Counter>* view_gate_;
  prometheus::Family<prometheus::Counter>* view_gate_violations_;
  prometheus::Family<prometheus::Gauge>* expiry_;
  prometheus::Family<prometheus::Gauge>* ingest_token_valid_;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_NODE_METRICS_H_
