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
  void Record(const std::string& dataset, const absl::Status& status, bool duplicate, int64_t records,
              int64_t bytes, absl::Duration latency);
  void SetInflightBytes(int64_t bytes) { inflight_->Set(static_cast<double>(bytes)); }
  // Absolute values from the publisher and the schema cache, set before each scrape.
  void SetPublisherStats(int64_t committed, int64_t failed, int64_t recreations, int64_t known_keys);
  void SetSchemaCache(int64_t schemas, bool reachable, absl::Time last_refresh_ok);

  // A subscription's state (set before each scrape): up (streaming), records and batches
  // mirrored by this process, reconnects, lag per partition (provider high watermark − cursor).
  void SetSubscription(const std::string& provider, const std::string& dataset, bool up, int64_t records,
                       int64_t reconnects, const std::map<int32_t, int64_t>& lag);

  // The text exposition format.
  std::string Serialize() const;

  // The reason label for a refusal.
  static std::string Reason(const absl::Status& status);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
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
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_NODE_METRICS_H_
