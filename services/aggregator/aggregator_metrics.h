// polder-aggregator's Prometheus metrics (prometheus-cpp), at /metrics on its ops listener.
//
//   polder_aggregator_up                                   1 while the job runs
//   polder_aggregator_restarts_total                       job restarts after an error
//   polder_aggregator_records_total{outcome}               city records read: cell, close,
//                                                          unknown_city, other_view, too_old,
//                                                          after_close, malformed, unreadable
//   polder_aggregator_figures_total{kind}                  national figures written: close,
//                                                          revision
//   polder_aggregator_commits_total                        transactions committed
//   polder_aggregator_inputs_waiting                       input topics that do not exist yet
//   polder_aggregator_input_position{topic}                next offset read per input
//   polder_aggregator_windows{dataset,view}                windows held (within the horizon)
//   polder_aggregator_latest_window_start_seconds{dataset,view}  newest window with a figure
//   polder_aggregator_city_freshness_seconds{city,dataset}       now − the newest event time the
//                                                          city's node accepted (feed quality)
//   polder_aggregator_city_entities_reporting{city,dataset,window}  units reporting in the newest
//                                                          closed hour/day, as published
//   polder_aggregator_api_requests_total{route,method,code}, polder_aggregator_api_request_seconds
//   polder_http_connections_total{listener,outcome}, polder_http_open_connections{listener}
#ifndef POLDER_SERVICES_AGGREGATOR_AGGREGATOR_METRICS_H_
#define POLDER_SERVICES_AGGREGATOR_AGGREGATOR_METRICS_H_

#include <map>
#include <memory>
#include <string>

#include "common/http/https_server.h"
#include "common/server/metrics_util.h"
#include "nlohmann/json.hpp"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/aggregator/aggregator_job.h"

namespace polder {
namespace aggregator {

class AggregatorMetrics {
 public:
  AggregatorMetrics();

  // Thread-safe (prometheus-cpp's families are).
  void RecordApi(const http::HttpExchange& exchange);

  // Absolute values, set before each scrape.
  void SetJob(bool running, int64_t restarts, const AggregatorJob::Stats& stats);
  // This replica (ADR 0021 §7): roles held now and fenced since start, by kind; rebalances.
  void SetReplica(const std::map<std::string, int64_t>& held, int64_t rebalances,
                  const std::map<std::string, int64_t>& fenced);
  void SetFigures(const AggregatorJob::Figures& figures);
  // Feed quality by "<city>/<dataset>" (JSON as the nodes write it).
  void SetFeedQuality(const std::map<std::string, nlohmann::json>& feed_quality);
  void SetHttpListener(const std::string& listener, const http::HttpsServerStats& stats);

  std::string Serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  server::HttpListenerMetrics http_listeners_;  // after registry_
  prometheus::Gauge* up_;
  prometheus::Counter* restarts_;
  prometheus::Family<prometheus::Counter>* records_;
  prometheus::Family<prometheus::Counter>* figures_;
  prometheus::Counter* commits_;
  prometheus::Gauge* waiting_;
  prometheus::Family<prometheus::Gauge>* positions_;
  prometheus::Family<prometheus::Gauge>* windows_;
  prometheus::Family<prometheus::Gauge>* latest_;
  prometheus::Family<prometheus::Gauge>* freshness_;
  prometheus::Family<prometheus::Gauge>* entities_;
  prometheus::Family<prometheus::Gauge>* replica_roles_;
  prometheus::Counter* replica_rebalances_;
  prometheus::Family<prometheus::Counter>* replica_fenced_;
  prometheus::Family<prometheus::Counter>* api_requests_;
  prometheus::Family<prometheus::Histogram>* api_seconds_;
};

}  // namespace aggregator
}  // namespace polder

#endif  // POLDER_SERVICES_AGGREGATOR_AGGREGATOR_METRICS_H_
