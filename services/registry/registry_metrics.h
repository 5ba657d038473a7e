// polder-registry's Prometheus metrics (prometheus-cpp), exposed at /metrics on its ops listener.
//
//   polder_registry_http_requests_total{route,method,code}   REST requests answered, by the route
//                                                            pattern matched ("unmatched": none)
//   polder_registry_http_request_seconds{route}              request line → response (histogram)
//   polder_registry_grpc_requests_total{method,code}         gRPC calls by full method and status
//   polder_registry_grpc_request_seconds{method}             (histogram)
//   polder_registry_registrations_total{outcome}             created, existing, refused
//   polder_registry_registration_commits_total               transactions storing new versions
//                                                            (concurrent registrations share one)
//   polder_registry_primary                                  1 on the primary replica
//   polder_registry_primary_epoch                            epoch of the topic's primary record
//   polder_registry_log_end_offset, polder_registry_log_position, polder_registry_log_lag_records
//   polder_registry_kafka_up                                 1 while the topic's end can be read
//   polder_registry_schemas, polder_registry_subjects        state held by this replica
//   polder_http_connections_total{listener,outcome}, polder_http_open_connections{listener}
#ifndef POLDER_SERVICES_REGISTRY_REGISTRY_METRICS_H_
#define POLDER_SERVICES_REGISTRY_REGISTRY_METRICS_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/http/https_server.h"
#include "common/server/metrics_util.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/registry/kafka_store.h"
#include "services/registry/registry.h"

namespace polder {
namespace registry {

class RegistryMetrics {
 public:
  RegistryMetrics();

  // Thread-safe (prometheus-cpp's families are).
  void RecordHttp(const http::HttpExchange& exchange);
  void RecordGrpc(const std::string& method, int code, absl::Duration latency);

  // Absolute values, set before each scrape.
  void SetRegistrations(const Registry::RegistrationCounts& counts);
  void SetStore(const KafkaSchemaStore::Status& status);
  void SetState(int64_t schemas, int64_t subjects);
  void SetHttpListener(const std::string& listener, const http::HttpsServerStats& stats);

  std::string Serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  server::HttpListenerMetrics http_listeners_;  // after registry_
  prometheus::Family<prometheus::Counter>* http_requests_;
  prometheus::Family<prometheus::Histogram>* http_seconds_;
  prometheus::Family<prometheus::Counter>* grpc_requests_;
  prometheus::Family<prometheus::Histogram>* grpc_seconds_;
  prometheus::Family<prometheus::Counter>* registrations_;
  prometheus::Counter* registration_commits_;
  prometheus::Gauge* primary_;
  prometheus::Gauge* epoch_;
  prometheus::Gauge* end_offset_;
  prometheus::Gauge* position_;
  prometheus::Gauge* lag_;
  prometheus::Gauge* kafka_up_;
  prometheus::Gauge* schemas_;
  prometheus::Gauge* subjects_;
};

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_REGISTRY_METRICS_H_
