#include "common/server/metrics_util.h"

#include <initializer_list>
#include <utility>

namespace polder {
namespace server {

void AdvanceCounter(prometheus::Counter& counter, int64_t total) {
  const double delta = static_cast<double>(total) - counter.Value();
  if (delta > 0) counter.Increment(delta);
}

const prometheus::Histogram::BucketBoundaries& RequestLatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
  return kBuckets;
}

HttpListenerMetrics::HttpListenerMetrics(prometheus::Registry& registry)
    : connections_(&prometheus::BuildCounter()
                        .Name("polder_http_connections_total")
                        .Help("HTTP connections since start by outcome: accepted, "
                              "refused_per_source (over the per-source cap), evicted (at the "
                              "connection cap), timed_out (a deadline passed), overloaded "
                              "(requests answered 503)")
                        .Register(registry)),
      open_(&prometheus::BuildGauge()
                 .Name("polder_http_open_connections")
                 .Help("Connections an HTTP listener holds now")
                 .Register(registry)),
      streams_(&prometheus::BuildGauge()
                    .Name("polder_http_open_streams")
                    .Help("Long-lived streams (Server-Sent Events) an HTTP listener holds now")
                    .Register(registry)),
      stream_outcomes_(&prometheus::BuildCounter()
                            .Name("polder_http_streams_total")
                            .Help("Long-lived streams refused (at max_streams or "
                                  "max_streams_per_source) and closed because their reader "
                                  "fell behind (slow_closed)")
                            .Register(registry)) {}

void HttpListenerMetrics::Set(const std::string& listener, const http::HttpsServerStats& s) {
  open_->Add({{"listener", listener}}).Set(static_cast<double>(s.open_connections));
  for (const auto& [outcome, total] : std::initializer_list<std::pair<const char*, int64_t>>{
           {"accepted", s.accepted},
           {"refused_per_source", s.refused_per_source},
           {"evicted", s.evicted},
           {"timed_out", s.timed_out},
           {"overloaded", s.overloaded}}) {
    AdvanceCounter(connections_->Add({{"listener", listener}, {"outcome", outcome}}), total);
  }
  streams_->Add({{"listener", listener}}).Set(static_cast<double>(s.open_streams));
  AdvanceCounter(stream_outcomes_->Add({{"listener", listener}, {"outcome", "refused"}}),
                 s.refused_streams);
  AdvanceCounter(stream_outcomes_->Add({{"listener", listener}, {"outcome", "slow_closed"}}),
                 s.slow_streams_closed);
}

}  // namespace server
}  // namespace polder
