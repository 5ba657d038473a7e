#include "services/aggregator/aggregator_metrics.h"

#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/server/metrics_util.h"
#include "prometheus/text_serializer.h"

namespace polder {
namespace aggregator {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

AggregatorMetrics::AggregatorMetrics()
    : registry_(std::make_shared<prometheus::Registry>()), http_listeners_(*registry_) {
  auto gauge = [this](const char* name, const char* help) {
    return &BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
  };
  auto counter = [this](const char* name, const char* help) {
    return &BuildCounter().Name(name).Help(help).Register(*registry_).Add({});
  };
  up_ = gauge("polder_aggregator_up", "1 while the aggregator's job runs on this replica");
  replica_roles_ = &BuildGauge()
                        .Name("polder_replica_roles")
                        .Help("Roles this replica holds now, by kind (the national job)")
                        .Register(*registry_);
  replica_rebalances_ = counter("polder_replica_rebalances_total",
                                "Completed rebalances of this replica's roles group");
  replica_fenced_ = &BuildCounter()
                         .Name("polder_replica_fenced_total")
                         .Help("Roles whose writer was fenced by another replica, by kind")
                         .Register(*registry_);
  restarts_ = counter("polder_aggregator_restarts_total", "Job restarts after an error");
  records_ = &BuildCounter()
                  .Name("polder_aggregator_records_total")
                  .Help("City view records read, by what the aggregator did with them")
                  .Register(*registry_);
  figures_ = &BuildCounter()
                  .Name("polder_aggregator_figures_total")
                  .Help("National figures written: close (revision 0) or revision")
                  .Register(*registry_);
  commits_ = counter("polder_aggregator_commits_total", "Transactions committed");
  waiting_ = gauge("polder_aggregator_inputs_waiting",
                   "Input topics (cities' mirrored views) that do not exist yet");
  positions_ = &BuildGauge()
                    .Name("polder_aggregator_input_position")
                    .Help("Next offset the aggregator reads, per input topic")
                    .Register(*registry_);
  windows_ = &BuildGauge()
                  .Name("polder_aggregator_windows")
                  .Help("National windows with a figure, within the revision horizon")
                  .Register(*registry_);
  latest_ = &BuildGauge()
                 .Name("polder_aggregator_latest_window_start_seconds")
                 .Help("Start of the newest national window with a figure (Unix seconds)")
                 .Register(*registry_);
  freshness_ = &BuildGauge()
                    .Name("polder_aggregator_city_freshness_seconds")
                    .Help(
                        "Now minus the newest event time a city's node accepted, as its feed "
                        "quality last reported (per city and dataset)")
                    .Register(*registry_);
  entities_ = &BuildGauge()
                   .Name("polder_aggregator_city_entities_reporting")
                   .Help(
                       "Distinct units (sensors, vehicles) that reported in a city's newest "
                       "closed hour or day, as its entities view published them (perturbed); no "
                       "series while withheld (per city, dataset and window)")
                   .Register(*registry_);
  api_requests_ = &BuildCounter()
                       .Name("polder_aggregator_api_requests_total")
                       .Help("Read API requests answered, by route pattern, method and status")
                       .Register(*registry_);
  api_seconds_ = &BuildHistogram()
                      .Name("polder_aggregator_api_request_seconds")
                      .Help("Read API request line to response, by route pattern")
                      .Register(*registry_);
}

void AggregatorMetrics::RecordApi(const http::HttpExchange& e) {
  const std::string route = e.route.empty() ? "unmatched" : e.route;
  api_requests_
      ->Add({{"route", route},
             {"method", e.method.empty() ? "unknown" : e.method},
             {"code", absl::StrCat(e.status)}})
      .Increment();
  api_seconds_->Add({{"route", route}}, server::RequestLatencyBuckets())
      .Observe(absl::ToDoubleSeconds(e.latency));
}

void AggregatorMetrics::SetReplica(const std::map<std::string, int64_t>& held, int64_t rebalances,
                                   const std::map<std::string, int64_t>& fenced) {
  for (const auto& [kind, n] : held) replica_roles_->Add({{"kind", kind}}).Set(n);
  server::AdvanceCounter(*replica_rebalances_, rebalances);
  for (const auto& [kind, n] : fenced) {
    server::AdvanceCounter(replica_fenced_->Add({{"kind", kind}}), n);
  }
}

void AggregatorMetrics::SetJob(bool running, int64_t restarts, const AggregatorJob::Stats& s) {
  up_->Set(running ? 1 : 0);
  server::AdvanceCounter(*restarts_, restarts);
  for (const auto& [outcome, n] : s.records)
    server::AdvanceCounter(records_->Add({{"outcome", outcome}}), n);
  server::AdvanceCounter(records_->Add({{"outcome", "unreadable"}}), s.unreadable);
  server::AdvanceCounter(figures_->Add({{"kind", "close"}}), s.figures - s.revisions);
  server::AdvanceCounter(figures_->Add({{"kind", "revision"}}), s.revisions);
  server::AdvanceCounter(*commits_, s.commits);
  waiting_->Set(static_cast<double>(s.waiting_inputs.size()));
  for (const auto& [topic, offset] : s.positions) {
    positions_->Add({{"topic", topic}}).Set(static_cast<double>(offset));
  }
}

void AggregatorMetrics::SetFigures(const AggregatorJob::Figures& figures) {
  for (const auto& [key, windows] : figures) {
    const std::vector<std::string> parts = absl::StrSplit(key, absl::MaxSplits('/', 1));
    const prometheus::Labels labels = {{"dataset", parts[0]},
                                       {"view", parts.size() > 1 ? parts[1] : ""}};
    windows_->Add(labels).Set(static_cast<double>(windows.size()));
    if (!windows.empty()) {
      latest_->Add(labels).Set(absl::ToDoubleSeconds(windows.rbegin()->first - absl::UnixEpoch()));
    }
  }
}

void AggregatorMetrics::SetFeedQuality(const std::map<std::string, nlohmann::json>& feed_quality) {
  for (const auto& [key, q] : feed_quality) {
    const std::vector<std::string> parts = absl::StrSplit(key, absl::MaxSplits('/', 1));
    if (parts.size() != 2 || !q.is_object()) continue;
    for (const char* window : {"hour", "day"}) {
      const prometheus::Labels labels = {
          {"city", parts[0]}, {"dataset", parts[1]}, {"window", window}};
      const nlohmann::json e = q.value(absl::StrCat("entities_", window), nlohmann::json());
      if (e.is_object() && e.contains("value") && e["value"].is_number()) {
        entities_->Add(labels).Set(e["value"].get<double>());
      } else if (entities_->Has(labels)) {
        entities_->Remove(&entities_->Add(labels));  // withheld now: no stale value
      }
    }
    if (!q.contains("freshness_seconds") || !q["freshness_seconds"].is_number()) continue;
    freshness_->Add({{"city", parts[0]}, {"dataset", parts[1]}})
        .Set(q["freshness_seconds"].get<double>());
  }
}

void AggregatorMetrics::SetHttpListener(const std::string& listener,
                                        const http::HttpsServerStats& s) {
  http_listeners_.Set(listener, s);
}

std::string AggregatorMetrics::Serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace aggregator
}  // namespace polder
