#include "services/registry/registry_metrics.h"

#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/server/metrics_util.h"
#include "prometheus/text_serializer.h"

namespace polder {
namespace registry {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

RegistryMetrics::RegistryMetrics()
    : registry_(std::make_shared<prometheus::Registry>()), http_listeners_(*registry_) {
  http_requests_ = &BuildCounter()
                        .Name("polder_registry_http_requests_total")
                        .Help("REST requests answered, by route pattern, method and HTTP status")
                        .Register(*registry_);
  http_seconds_ = &BuildHistogram()
                       .Name("polder_registry_http_request_seconds")
                       .Help("REST request line to response, by route pattern")
                       .Register(*registry_);
  grpc_requests_ = &BuildCounter()
                        .Name("polder_registry_grpc_requests_total")
                        .Help("gRPC calls answered, by full method and status code")
                        .Register(*registry_);
  grpc_seconds_ = &BuildHistogram()
                       .Name("polder_registry_grpc_request_seconds")
                       .Help("gRPC call duration, by full method")
                       .Register(*registry_);
  registrations_ =
      &BuildCounter()
           .Name("polder_registry_registrations_total")
           .Help("Schema registrations answered by this replica: created, existing, refused")
           .Register(*registry_);
  registration_commits_ = &BuildCounter()
                               .Name("polder_registry_registration_commits_total")
                               .Help(
                                   "Kafka transactions that stored new schema versions; "
                                   "concurrent registrations share one (group commit)")
                               .Register(*registry_)
                               .Add({});
  auto gauge = [this](const char* name, const char* help) {
    return &BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
  };
  primary_ = gauge("polder_registry_primary", "1 if this replica is the primary (writes)");
  epoch_ = gauge("polder_registry_primary_epoch",
                 "Epoch of the primary record in the registry topic (-1: none yet)");
  end_offset_ = gauge("polder_registry_log_end_offset",
                      "End offset of the registry topic (-1: Kafka did not answer)");
  position_ = gauge("polder_registry_log_position",
                    "Next offset this replica reads from the registry topic");
  lag_ = gauge("polder_registry_log_lag_records",
               "Registry topic records not yet applied by this replica (-1: unknown)");
  kafka_up_ =
      gauge("polder_registry_kafka_up", "1 while the registry topic's end can be read from Kafka");
  schemas_ = gauge("polder_registry_schemas", "Schema ids held by this replica");
  subjects_ = gauge("polder_registry_subjects", "Subjects (not deleted) held by this replica");
}

void RegistryMetrics::RecordHttp(const http::HttpExchange& e) {
  const std::string route = e.route.empty() ? "unmatched" : e.route;
  http_requests_
      ->Add({{"route", route},
             {"method", e.method.empty() ? "unknown" : e.method},
             {"code", absl::StrCat(e.status)}})
      .Increment();
  http_seconds_->Add({{"route", route}}, server::RequestLatencyBuckets())
      .Observe(absl::ToDoubleSeconds(e.latency));
}

void RegistryMetrics::RecordGrpc(const std::string& method, int code, absl::Duration latency) {
  grpc_requests_->Add({{"method", method}, {"code", absl::StrCat(code)}}).Increment();
  grpc_seconds_->Add({{"method", method}}, server::RequestLatencyBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

void RegistryMetrics::SetRegistrations(const Registry::RegistrationCounts& c) {
  server::AdvanceCounter(registrations_->Add({{"outcome", "created"}}), c.created);
  server::AdvanceCounter(registrations_->Add({{"outcome", "existing"}}), c.existing);
  server::AdvanceCounter(registrations_->Add({{"outcome", "refused"}}), c.refused);
  server::AdvanceCounter(*registration_commits_, c.commits);
}

void RegistryMetrics::SetStore(const KafkaSchemaStore::Status& s) {
  primary_->Set(s.primary ? 1 : 0);
  epoch_->Set(static_cast<double>(s.epoch));
  end_offset_->Set(static_cast<double>(s.end_offset));
  position_->Set(static_cast<double>(s.position));
  lag_->Set(static_cast<double>(s.lag()));
  kafka_up_->Set(s.end_offset >= 0 ? 1 : 0);
}

void RegistryMetrics::SetState(int64_t schemas, int64_t subjects) {
  schemas_->Set(static_cast<double>(schemas));
  subjects_->Set(static_cast<double>(subjects));
}

void RegistryMetrics::SetHttpListener(const std::string& listener,
                                      const http::HttpsServerStats& s) {
  http_listeners_.Set(listener, s);
}

std::string RegistryMetrics::Serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace registry
}  // namespace polder
