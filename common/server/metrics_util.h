// What every service's Prometheus metrics share (prometheus-cpp): counters moved up to totals
// kept elsewhere, the request-latency buckets, and the HTTP listeners' connection series.
#ifndef POLDER_COMMON_SERVER_METRICS_UTIL_H_
#define POLDER_COMMON_SERVER_METRICS_UTIL_H_

#include <cstdint>
#include <string>

#include "common/http/https_server.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace polder {
namespace server {

// Moves a counter up to an absolute total kept elsewhere (counters only increase).
void AdvanceCounter(prometheus::Counter& counter, int64_t total);

// Request line (or call) to response: 0.5 ms … 2.5 s.
const prometheus::Histogram::BucketBoundaries& RequestLatencyBuckets();

// polder_http_connections_total{listener,outcome}, polder_http_open_connections{listener},
// polder_http_open_streams{listener} and polder_http_streams_total{listener,outcome}.
class HttpListenerMetrics {
 public:
  explicit HttpListenerMetrics(prometheus::Registry& registry);
  // A listener's stats, set before each scrape.
  void Set(const std::string& listener, const http::HttpsServerStats& stats);

 private:
  prometheus::Family<prometheus::Counter>* connections_;
  prometheus::Family<prometheus::Gauge>* open_;
  prometheus::Family<prometheus::Gauge>* streams_;
  prometheus::Family<prometheus::Counter>* stream_outcomes_;
};

}  // namespace server
}  // namespace polder

#endif  // POLDER_COMMON_SERVER_METRICS_UTIL_H_
