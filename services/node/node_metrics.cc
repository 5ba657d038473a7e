#include "services/node/node_metrics.h"

#include <sstream>

#include "common/server/metrics_util.h"
#include "prometheus/text_serializer.h"

namespace polder {
namespace node {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

NodeMetrics::NodeMetrics()
    : registry_(std::make_shared<prometheus::Registry>()), http_listeners_(*registry_) {
  records_ = &BuildCounter()
                  .Name("polder_ingest_records_total")
                  .Help("Ingest records by dataset and outcome")
                  .Register(*registry_);
  bytes_ = &BuildCounter()
                .Name("polder_ingest_bytes_total")
                .Help("Ingest payload bytes by dataset and outcome")
                .Register(*registry_);
  latency_ = &BuildHistogram()
                  .Name("polder_ingest_publish_seconds")
                  .Help("Time from an ingest request to its committed answer")
                  .Register(*registry_);
  inflight_ = &BuildGauge()
                   .Name("polder_ingest_inflight_bytes")
                   .Help("Bytes held by ingest requests in progress")
                   .Register(*registry_)
                   .Add({});
  auto& txns = BuildCounter()
                   .Name("polder_kafka_transactions_total")
                   .Help("Kafka ingest transactions")
                   .Register(*registry_);
  committed_ = &txns.Add({{"outcome", "committed"}});
  failed_ = &txns.Add({{"outcome", "failed"}});
  recreations_ =
      &BuildCounter()
           .Name("polder_kafka_producer_recreations_total")
           .Help("Ingest producer (re)starts: start-up and after failed or fenced transactions")
           .Register(*registry_)
           .Add({});
  known_keys_ = &BuildGauge()
                     .Name("polder_ingest_known_idempotency_keys")
                     .Help("Idempotency keys remembered within the window")
                     .Register(*registry_)
                     .Add({});
  schemas_ = &BuildGauge()
                  .Name("polder_schema_cache_schemas")
                  .Help("Schemas in the node's cache")
                  .Register(*registry_)
                  .Add({});
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
  subscription_lag_ =
      &BuildGauge()
           .Name("polder_federation_subscription_lag_records")
           .Help("Provider high watermark minus the committed cursor, per partition")
           .Register(*registry_);
  subscription_bytes_ = &BuildCounter()
                             .Name("polder_federation_subscription_bytes_total")
                             .Help("Bytes (keys, values, headers) mirrored by this process")
                             .Register(*registry_);
  subscription_lag_seconds_ =
      &BuildGauge()
           .Name("polder_federation_subscription_lag_seconds")
           .Help("Age of the newest mirrored record while the mirror lags, else 0")
           .Register(*registry_);
  ingest_token_valid_ =
      &BuildGauge()
           .Name("polder_node_ingest_token_valid")
           .Help("1 while an ingest identity's bearer token file holds a valid token; 0 revoked")
           .Register(*registry_);
  subscription_state_ = &BuildGauge()
                             .Name("polder_federation_subscription_state")
                             .Help(
                                 "1 for the subscription's current state (streaming, reconnecting, "
                                 "refused, no-credentials, fenced)")
                             .Register(*registry_);
  subscription_gaps_ =
      &BuildCounter()
           .Name("polder_federation_subscription_gaps_total")
           .Help(
               "Gaps the provider reported (records the mirror will never have), recorded in audit")
           .Register(*registry_);
  subscription_receipts_ =
      &BuildCounter()
           .Name("polder_federation_subscription_receipts_total")
           .Help("Provider receipts received, checked against the directory and kept")
           .Register(*registry_);
  offered_records_ = &BuildCounter()
                          .Name("polder_federation_offered_records_total")
                          .Help("Records offered to a peer (recorded in audit, then sent)")
                          .Register(*registry_);
  offered_bytes_ = &BuildCounter()
                        .Name("polder_federation_offered_bytes_total")
                        .Help("Bytes (keys, values, headers) offered to a peer")
                        .Register(*registry_);
  streams_open_ = &BuildGauge()
                       .Name("polder_federation_streams_open")
                       .Help("Subscribe streams open, per peer and dataset")
                       .Register(*registry_);
  unacknowledged_ =
      &BuildGauge()
           .Name("polder_federation_unacknowledged_bytes")
           .Help("Bytes sent and not yet acknowledged by the subscriber (flow-control window use)")
           .Register(*registry_);
  streams_ended_ = &BuildCounter()
                        .Name("polder_federation_streams_ended_total")
                        .Help("Subscribe calls refused or ended, by gRPC code")
                        .Register(*registry_);
  receipts_received_ = &BuildCounter()
                            .Name("polder_federation_receipts_received_total")
                            .Help("Subscriber receipts checked and kept by this provider")
                            .Register(*registry_)
                            .Add({});
  fanout_tails_ = &BuildGauge()
                       .Name("polder_federation_fanout_tails")
                       .Help("Source topics followed by a shared tail for the live streams")
                       .Register(*registry_)
                       .Add({});
  fanout_tail_bytes_ = &BuildGauge()
                            .Name("polder_federation_fanout_tail_bytes")
                            .Help("Recent source records held in the shared tails' rings")
                            .Register(*registry_)
                            .Add({});
  fanout_streams_ = &BuildGauge()
                         .Name("polder_federation_fanout_streams")
                         .Help(
                             "Provider streams by how they read: live (from a shared tail), "
                             "catching_up (a reader of their own), waiting (for a reader)")
                         .Register(*registry_);
  fanout_fell_behind_ =
      &BuildCounter()
           .Name("polder_federation_fanout_fell_behind_total")
           .Help("Times a live stream fell off its tail's ring and had to catch up")
           .Register(*registry_)
           .Add({});
  fanout_waited_ =
      &BuildCounter()
           .Name("polder_federation_fanout_waited_total")
           .Help("Times a stream behind its tail queued because every catch-up reader was taken")
           .Register(*registry_)
           .Add({});
  fanout_tail_failures_ =
      &BuildCounter()
           .Name("polder_federation_fanout_tail_failures_total")
           .Help("Times a shared tail's consumer failed (its streams caught up)")
           .Register(*registry_)
           .Add({});
  replica_roles_ = &BuildGauge()
                        .Name("polder_replica_roles")
                        .Help(
                            "Roles this replica holds now, by kind (key partitions, "
                            "subscriptions, view sets, the audit index)")
                        .Register(*registry_);
  replica_rebalances_ = &BuildCounter()
                             .Name("polder_replica_rebalances_total")
                             .Help("Completed rebalances of this replica's groups (keys, roles)")
                             .Register(*registry_);
  replica_forwarded_ = &BuildCounter()
                            .Name("polder_replica_forwarded_total")
                            .Help("Calls forwarded to another replica, by call and outcome")
                            .Register(*registry_);
  replica_fenced_ = &BuildCounter()
                         .Name("polder_replica_fenced_total")
                         .Help("Roles whose writer was fenced by another replica, by kind")
                         .Register(*registry_);
  view_up_ = &BuildGauge()
                  .Name("polder_view_up")
                  .Help("1 while the dataset's view job runs (0: starting again, see /statusz)")
                  .Register(*registry_);
  view_records_ = &BuildCounter()
                       .Name("polder_view_records_total")
                       .Help("Source records merged into the dataset's views")
                       .Register(*registry_);
  view_late_ = &BuildCounter()
                    .Name("polder_view_records_late_total")
                    .Help("Records whose window had closed: counted, merged into no view")
                    .Register(*registry_);
  view_rejected_ = &BuildCounter()
                        .Name("polder_view_records_rejected_total")
                        .Help("Records outside the event-time bounds or unreadable, by reason")
                        .Register(*registry_);
  view_cells_ = &BuildCounter()
                     .Name("polder_view_cells_total")
                     .Help("Cells emitted when their window closed")
                     .Register(*registry_);
  view_protected_ = &BuildCounter()
                         .Name("polder_view_cells_protected_total")
                         .Help("Emitted measures withheld by disclosure control, by rule")
                         .Register(*registry_);
  view_commits_ = &BuildCounter()
                       .Name("polder_view_commits_total")
                       .Help("View transactions committed")
                       .Register(*registry_);
  view_restarts_ = &BuildCounter()
                        .Name("polder_view_restarts_total")
                        .Help("View jobs started again after an error")
                        .Register(*registry_);
  view_watermark_ = &BuildGauge()
                         .Name("polder_view_watermark_timestamp_seconds")
                         .Help("The view set's watermark (windows ending before it are closed)")
                         .Register(*registry_);
  view_gate_ = &BuildCounter()
                    .Name("polder_view_gate_decisions_total")
                    .Help(
                        "Publication gate decisions (ADR 0016 §10) by kind: move (another value "
                        "of the true count's row), fallback (protected GATE), secondary "
                        "(protected for a dominated cell), relabelled (THRESHOLD published as "
                        "SECONDARY)")
                    .Register(*registry_);
  view_gate_violations_ = &BuildCounter()
                               .Name("polder_view_gate_violations_total")
                               .Help(
                                   "Protected cells the gate could not keep at their protection "
                                   "criterion (ADR 0016 §11); any is an alert")
                               .Register(*registry_);
  expiry_ =
      &BuildGauge()
           .Name("polder_federation_expiry_timestamp_seconds")
           .Help(
               "When a certificate, the peer directory or a contract stops being valid (Unix time)")
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

void NodeMetrics::Record(const std::string& dataset, const absl::Status& status, bool duplicate,
                         int64_t records, int64_t bytes, absl::Duration latency) {
  const std::string outcome = !status.ok() ? "rejected" : duplicate ? "duplicate" : "accepted";
  const std::string reason = Reason(status);
  records_->Add({{"dataset", dataset}, {"outcome", outcome}, {"reason", reason}})
      .Increment(static_cast<double>(records));
  bytes_->Add({{"dataset", dataset}, {"outcome", outcome}, {"reason", reason}})
      .Increment(static_cast<double>(bytes));
  if (status.ok()) {
    static const prometheus::Histogram::BucketBoundaries kBuckets = {
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    latency_->Add({{"dataset", dataset}}, kBuckets).Observe(absl::ToDoubleSeconds(latency));
  }
}

void NodeMetrics::SetPublisherStats(int64_t committed, int64_t failed, int64_t recreations,
                                    int64_t known_keys) {
  // Counters only go up: add what happened since the last scrape.
  auto advance = [](prometheus::Counter* c, int64_t total) {
    if (static_cast<double>(total) > c->Value())
      c->Increment(static_cast<double>(total) - c->Value());
  };
  advance(committed_, committed);
  advance(failed_, failed);
  advance(recreations_, recreations);
  known_keys_->Set(static_cast<double>(known_keys));
}

void NodeMetrics::SetSchemaCache(int64_t schemas, bool reachable, absl::Time last_refresh_ok) {
  schemas_->Set(static_cast<double>(schemas));
  reachable_->Set(reachable ? 1 : 0);
  if (last_refresh_ok != absl::InfinitePast())
    last_refresh_->Set(absl::ToDoubleSeconds(last_refresh_ok - absl::UnixEpoch()));
}

void NodeMetrics::SetSubscription(const std::string& provider, const std::string& dataset,
                                  const Subscription& s) {
  const prometheus::Labels labels = {{"provider", provider}, {"dataset", dataset}};
  subscription_up_->Add(labels).Set(s.state == "streaming" ? 1 : 0);
  for (const char* state : {"starting", "streaming", "reconnecting", "refused", "no-credentials",
                            "fenced", "stopped", "elsewhere"}) {
    subscription_state_->Add({{"provider", provider}, {"dataset", dataset}, {"state", state}})
        .Set(s.state == state ? 1 : 0);
  }
  server::AdvanceCounter(subscription_records_->Add(labels), s.records);
  server::AdvanceCounter(subscription_bytes_->Add(labels), s.bytes);
  server::AdvanceCounter(subscription_reconnects_->Add(labels), s.reconnects);
  server::AdvanceCounter(subscription_gaps_->Add(labels), s.gaps);
  server::AdvanceCounter(subscription_receipts_->Add(labels), s.receipts);
  subscription_lag_seconds_->Add(labels).Set(s.lag_seconds);
  for (const auto& [partition, value] : s.lag) {
    subscription_lag_
        ->Add({{"provider", provider},
               {"dataset", dataset},
               {"partition", std::to_string(partition)}})
        .Set(static_cast<double>(value));
  }
}

void NodeMetrics::SetOffered(const std::string& peer, const std::string& dataset,
                             const Offered& o) {
  const prometheus::Labels labels = {{"peer", peer}, {"dataset", dataset}};
  server::AdvanceCounter(offered_records_->Add(labels), o.records);
  server::AdvanceCounter(offered_bytes_->Add(labels), o.bytes);
  streams_open_->Add(labels).Set(static_cast<double>(o.streams_open));
  unacknowledged_->Add(labels).Set(static_cast<double>(o.unacknowledged_bytes));
}

void NodeMetrics::SetStreamsEnded(const std::string& peer, const std::string& code, int64_t total) {
  server::AdvanceCounter(streams_ended_->Add({{"peer", peer}, {"code", code}}), total);
}

void NodeMetrics::SetReceiptsReceived(int64_t total) {
  server::AdvanceCounter(*receipts_received_, total);
}

void NodeMetrics::SetFanOut(const FanOutStats& s) {
  fanout_tails_->Set(static_cast<double>(s.tails));
  fanout_tail_bytes_->Set(static_cast<double>(s.tail_bytes));
  fanout_streams_->Add({{"mode", "live"}}).Set(static_cast<double>(s.live));
  fanout_streams_->Add({{"mode", "catching_up"}}).Set(static_cast<double>(s.catching_up));
  fanout_streams_->Add({{"mode", "waiting"}}).Set(static_cast<double>(s.waiting));
  server::AdvanceCounter(*fanout_fell_behind_, s.fell_behind);
  server::AdvanceCounter(*fanout_waited_, s.waited);
  server::AdvanceCounter(*fanout_tail_failures_, s.tail_failures);
}

void NodeMetrics::SetHttpListener(const std::string& listener, const http::HttpsServerStats& s) {
  http_listeners_.Set(listener, s);
}

void NodeMetrics::SetIngestToken(const std::string& identity, bool valid) {
  ingest_token_valid_->Add({{"identity", identity}}).Set(valid ? 1 : 0);
}

void NodeMetrics::SetExpiry(const std::string& kind, const std::string& name, absl::Time at) {
  expiry_->Add({{"kind", kind}, {"name", name}}).Set(static_cast<double>(absl::ToUnixSeconds(at)));
}

std::string NodeMetrics::Serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

void NodeMetrics::SetReplica(const ReplicaStats& s) {
  for (const auto& [kind, n] : s.roles) replica_roles_->Add({{"kind", kind}}).Set(n);
  for (const auto& [group, n] : s.rebalances) {
    server::AdvanceCounter(replica_rebalances_->Add({{"group", group}}), n);
  }
  for (const auto& [key, n] : s.forwarded) {
    server::AdvanceCounter(replica_forwarded_->Add({{"call", key.first}, {"outcome", key.second}}),
                           n);
  }
  for (const auto& [kind, n] : s.fenced) {
    server::AdvanceCounter(replica_fenced_->Add({{"kind", kind}}), n);
  }
}

void NodeMetrics::SetViewSet(const std::string& dataset, const ViewSetStats& s) {
  const prometheus::Labels labels = {{"dataset", dataset}};
  view_up_->Add(labels).Set(s.running ? 1 : 0);
  server::AdvanceCounter(view_records_->Add(labels), s.merged);
  server::AdvanceCounter(view_late_->Add(labels), s.late);
  server::AdvanceCounter(view_cells_->Add(labels), s.cells);
  server::AdvanceCounter(view_commits_->Add(labels), s.commits);
  server::AdvanceCounter(view_restarts_->Add(labels), s.restarts);
  for (const auto& [reason, n] : s.rejected) {
    server::AdvanceCounter(view_rejected_->Add({{"dataset", dataset}, {"reason", reason}}), n);
  }
  for (const auto& [rule, n] : s.protected_cells) {
    server::AdvanceCounter(view_protected_->Add({{"dataset", dataset}, {"rule", rule}}), n);
  }
  if (s.watermark != absl::InfinitePast()) {
    view_watermark_->Add(labels).Set(absl::ToDoubleSeconds(s.watermark - absl::UnixEpoch()));
  }
  for (const auto& [kind, n] : s.gate_decisions) {
    server::AdvanceCounter(view_gate_->Add({{"dataset", dataset}, {"decision", kind}}), n);
  }
  server::AdvanceCounter(view_gate_violations_->Add(labels), s.gate_violations);
}

}  // namespace node
}  // namespace polder
