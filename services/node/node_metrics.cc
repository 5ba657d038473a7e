#include "services/node/node_metrics.h"

#include <sstream>

#include "prometheus/text_serializer.h"

namespace polder {
namespace node {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

NodeMetrics::NodeMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  records_ = &BuildCounter().Name("polder_ingest_records_total").Help("Ingest records by dataset and outcome").Register(*registry_);
  bytes_ = &BuildCounter().Name("polder_ingest_bytes_total").Help("Ingest payload bytes by dataset and outcome").Register(*registry_);
  latency_ = &BuildHistogram()
                  .Name("polder_ingest_publish_seconds")
                  .Help("Time from an ingest request to its committed answer")
                  .Register(*registry_);
  inflight_ = &BuildGauge().Name("polder_ingest_inflight_bytes").Help("Bytes held by ingest requests in progress").Register(*registry_).Add({});
  auto& txns = BuildCounter().Name("polder_kafka_transactions_total").Help("Kafka ingest transactions").Register(*registry_);
  committed_ = &txns.Add({{"outcome", "committed"}});
  failed_ = &txns.Add({{"outcome", "failed"}});
  recreations_ = &BuildCounter()
                      .Name("polder_kafka_producer_recreations_total")
                      .Help("Ingest producer (re)starts: start-up and after failed or fenced transactions")
                      .Register(*registry_)
                      .Add({});
  known_keys_ = &BuildGauge()
                     .Name("polder_ingest_known_idempotency_keys")
                     .Help("Idempotency keys remembered within the window")
                     .Register(*registry_)
                     .Add({});
  schemas_ = &BuildGauge().Name("polder_schema_cache_schemas").Help("Schemas in the node's cache").Register(*registry_).Add({});
  reachable_ = &BuildGauge()
                    .Name("polder_schema_cache_registry_reachable")
                    .Help("1 if the last refresh reached the registry")
                    .Register(*registry_)
                    .Add({});
  last_refresh_ = &BuildGauge()
                       .Name("polder_schema_cache_last_refresh_timestamp_seconds")
                       .Help("When the schema cache last refreshed every subject")
                       .Register(*registry_)
                       .Add({});
  subscription_up_ = &BuildGauge()
                          .Name("polder_federation_subscription_up")
                          .Help("1 while the subscription streams from its provider")
                          .Register(*registry_);
  subscription_records_ = &BuildCounter()
                               .Name("polder_federation_subscription_records_total")
                               .Help("Records mirrored by this process, per subscription")
                               .Register(*registry_);
  subscription_reconnects_ = &BuildCounter()
                                  .Name("polder_federation_subscription_reconnects_total")
                                  .Help("Streams that ended and were reconnected")
                                  .Register(*registry_);
  subscription_lag_ = &BuildGauge()
                           .Name("polder_federation_subscription_lag_records")
                           .Help("Provider high watermark minus the committed cursor, per partition")
                           .Register(*registry_);
}

std::string NodeMetrics::Reason(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return "";
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return "invalid";
    case absl::StatusCode::kUnauthenticated:
      return "unauthenticated";
    case absl::StatusCode::kPermissionDenied:
      return "forbidden";
    case absl::StatusCode::kNotFound:
      return "unknown_dataset";
    case absl::StatusCode::kResourceExhausted:
      return "overloaded";
    case absl::StatusCode::kAlreadyExists:
      return "conflict";
    default:
      return "unavailable";
  }
}

void NodeMetrics::Record(const std::string& dataset, const absl::Status& status, bool duplicate, int64_t records,
                         int64_t bytes, absl::Duration latency) {
  const std::string outcome = !status.ok() ? "rejected" : duplicate ? "duplicate" : "accepted";
  const std::string reason = Reason(status);
  records_->Add({{"dataset", dataset}, {"outcome", outcome}, {"reason", reason}}).Increment(static_cast<double>(records));
  bytes_->Add({{"dataset", dataset}, {"outcome", outcome}, {"reason", reason}}).Increment(static_cast<double>(bytes));
  if (status.ok()) {
    static const prometheus::Histogram::BucketBoundaries kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                                       0.5,   1,    2.5,   5,    10,  30};
    latency_->Add({{"dataset", dataset}}, kBuckets).Observe(absl::ToDoubleSeconds(latency));
  }
}

void NodeMetrics::SetPublisherStats(int64_t committed, int64_t failed, int64_t recreations, int64_t known_keys) {
  // Counters only go up: add what happened since the last scrape.
  auto advance = [](prometheus::Counter* c, int64_t total) {
    if (static_cast<double>(total) > c->Value()) c->Increment(static_cast<double>(total) - c->Value());
  };
  advance(committed_, committed);
  advance(failed_, failed);
  advance(recreations_, recreations);
  known_keys_->Set(static_cast<double>(known_keys));
}

void NodeMetrics::SetSchemaCache(int64_t schemas, bool reachable, absl::Time last_refresh_ok) {
  schemas_->Set(static_cast<double>(schemas));
  reachable_->Set(reachable ? 1 : 0);
  if (last_refresh_ok != absl::InfinitePast()) last_refresh_->Set(absl::ToDoubleSeconds(last_refresh_ok - absl::UnixEpoch()));
}

void NodeMetrics::SetSubscription(const std::string& provider, const std::string& dataset, bool up, int64_t records,
                                  int64_t reconnects, const std::map<int32_t, int64_t>& lag) {
  const prometheus::Labels labels = {{"provider", provider}, {"dataset", dataset}};
  subscription_up_->Add(labels).Set(up ? 1 : 0);
  auto advance = [](prometheus::Counter& c, int64_t total) {
    if (static_cast<double>(total) > c.Value()) c.Increment(static_cast<double>(total) - c.Value());
  };
  advance(subscription_records_->Add(labels), records);
  advance(subscription_reconnects_->Add(labels), reconnects);
  for (const auto& [partition, value] : lag) {
    subscription_lag_->Add({{"provider", provider}, {"dataset", dataset}, {"partition", std::to_string(partition)}})
        .Set(static_cast<double>(value));
  }
}

std::string NodeMetrics::Serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace node
}  // namespace polder
