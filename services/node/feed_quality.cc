#include "services/node/feed_quality.h"

#include <algorithm>

#include "common/views/times.h"
#include "common/views/window.h"

namespace polder {
namespace node {

namespace fv1 = ::polder::federation::v1;

FeedQualityTracker::FeedQualityTracker(const std::vector<std::string>& datasets, absl::Time since)
    : since_(since) {
  absl::MutexLock lock(&mu_);
  for (const std::string& d : datasets) counts_[d];
}

void FeedQualityTracker::Accepted(const std::string& dataset, int64_t records,
                                  absl::Time newest_event) {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(dataset);
  if (it == counts_.end()) return;
  it->second.accepted += records;
  it->second.newest_event = std::max(it->second.newest_event, newest_event);
}

void FeedQualityTracker::Rejected(const std::string& dataset, int64_t records) {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(dataset);
  if (it != counts_.end()) it->second.rejected += records;
}

void FeedQualityTracker::SetLate(const std::string& dataset, int64_t late) {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(dataset);
  if (it != counts_.end()) it->second.late = late;
}

void FeedQualityTracker::SetEntities(const std::string& dataset, const std::string& view,
                                     const views::FeedFigure& figure) {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(dataset);
  if (it == counts_.end()) return;
  if (view == views::kEntitiesHourView) it->second.entities_hour = figure;
  if (view == views::kEntitiesDayView) it->second.entities_day = figure;
}

namespace {

void SetEntitiesReporting(const views::FeedFigure& f, fv1::EntitiesReporting* out) {
  views::SetProtoTime(f.window.start, out->mutable_window_start());
  views::SetProtoTime(f.window.end, out->mutable_window_end());
  if (f.value.has_value()) out->set_value(*f.value);
  out->set_perturbed(f.perturbed);
}

nlohmann::json EntitiesJson(const fv1::EntitiesReporting& e) {
  return {{"window_start", views::FormatInstant(views::TimeFromProto(e.window_start()))},
          {"window_end", views::FormatInstant(views::TimeFromProto(e.window_end()))},
          {"value", e.has_value() ? nlohmann::json(e.value()) : nlohmann::json()},
          {"withheld", !e.has_value()},
          {"perturbed", e.perturbed()}};
}

}  // namespace

std::optional<fv1::FeedQuality> FeedQualityTracker::Snapshot(const std::string& dataset,
                                                             absl::Time now) const {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(dataset);
  if (it == counts_.end()) return std::nullopt;
  const Counts& c = it->second;
  fv1::FeedQuality q;
  q.set_dataset_id(dataset);
  views::SetProtoTime(now, q.mutable_measured_at());
  views::SetProtoTime(since_, q.mutable_since());
  if (c.newest_event != absl::InfinitePast()) {
    views::SetProtoTime(c.newest_event, q.mutable_newest_event_time());
    q.set_freshness_seconds(absl::ToDoubleSeconds(now - c.newest_event));
  }
  q.set_records_accepted(c.accepted);
  q.set_records_rejected(c.rejected);
  if (c.late.has_value()) q.set_records_late(*c.late);
  if (c.entities_hour) SetEntitiesReporting(*c.entities_hour, q.mutable_entities_hour());
  if (c.entities_day) SetEntitiesReporting(*c.entities_day, q.mutable_entities_day());
  return q;
}

nlohmann::json FeedQualityTracker::ToJson(const fv1::FeedQuality& q) {
  auto instant = [](const google::protobuf::Timestamp& t) {
    return views::FormatInstant(views::TimeFromProto(t));
  };
  nlohmann::json j = {{"dataset", q.dataset_id()},
                      {"measured_at", instant(q.measured_at())},
                      {"since", instant(q.since())},
                      {"newest_event_time", nlohmann::json()},
                      {"freshness_seconds", nlohmann::json()},
                      {"records_accepted", q.records_accepted()},
                      {"records_rejected", q.records_rejected()},
                      {"records_late", nlohmann::json()}};
  if (q.has_newest_event_time()) j["newest_event_time"] = instant(q.newest_event_time());
  if (q.has_freshness_seconds()) j["freshness_seconds"] = q.freshness_seconds();
  if (q.has_records_late()) j["records_late"] = q.records_late();
  j["entities_hour"] = q.has_entities_hour() ? EntitiesJson(q.entities_hour()) : nlohmann::json();
  j["entities_day"] = q.has_entities_day() ? EntitiesJson(q.entities_day()) : nlohmann::json();
  return j;
}

}  // namespace node
}  // namespace polder
