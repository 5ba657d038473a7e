#include "services/aggregator/read_api.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/views/times.h"
#include "common/views/window.h"

namespace polder {
namespace aggregator {

namespace nv1 = ::polder::national::v1;
using json = nlohmann::json;

namespace {

constexpr char kDatasetPattern[] = "([a-z0-9][a-z0-9.-]*)";
constexpr char kViewPattern[] = "([a-z0-9][a-z0-9-]*)";
constexpr int kDefaultLimit = 1000;
constexpr int kMaxLimit = 10000;

std::string Instant(const google::protobuf::Timestamp& t) {
  return views::FormatInstant(views::TimeFromProto(t));
}

const char* ReasonName(nv1::RevisionReason r) {
  switch (r) {
    case nv1::REVISION_REASON_DEADLINE:
      return "deadline";
    case nv1::REVISION_REASON_ALL_CITIES:
      return "all_cities";
    case nv1::REVISION_REASON_LATE_CITY:
      return "late_city";
    default:
      return "unspecified";
  }
}

json MeasureJson(const nv1::MeasureTotal& m) {
  return {{"measure", m.name()},
          {"value", m.has_value() ? json(m.value()) : json()},
          {"withheld_cells", m.withheld_cells()},
          {"perturbed", m.perturbed()}};
}

http::HttpResponse JsonResponse(const json& body) {
  http::HttpResponse r = http::HttpResponse::Json(200, body.dump());
  r.headers = {{"Cache-Control", "no-cache"}};
  return r;
}

// The query's parameters, each at most once and each known; INVALID_ARGUMENT naming the one
// that is not.
absl::StatusOr<std::map<std::string, std::string>> Params(const http::HttpRequest& request,
                                                          const std::set<std::string>& known) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : request.query) {
    if (known.count(key) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown query parameter '", key, "' (known: ", absl::StrJoin(known, ", "), ")"));
    }
    if (!out.emplace(key, value).second) {
      return absl::InvalidArgumentError(absl::StrCat("query parameter '", key, "' given twice"));
    }
  }
  return out;
}

absl::StatusOr<absl::Time> ParseInstant(const std::string& name, const std::string& text) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, " '", text.substr(0, 64), "' is no RFC 3339 instant (e.g. 2026-12-03T11:15:00Z)"));
  }
  return t;
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string CsvNumber(const nv1::MeasureTotal& m) {
  return m.has_value() ? absl::StrCat(m.value()) : "";
}

// One row per measure of the national total (city "") and of each city's part.
void AppendCsv(const nv1::NationalFigure& f, const std::string& only_city, std::string* out) {
  const std::string prefix =
      absl::StrCat(Instant(f.window_start()), ",", Instant(f.window_end()), ",", f.revision(), ",",
                   ReasonName(f.reason()), ",", f.complete() ? "true" : "false", ",",
                   f.cities_size(), ",", f.cities_expected_size(), ",");
  auto row = [&](const std::string& city, const nv1::MeasureTotal& m) {
    absl::StrAppend(out, prefix, CsvField(city), ",", CsvField(m.name()), ",", CsvNumber(m), ",",
                    m.has_value() ? "false" : "true", ",", m.withheld_cells(), ",",
                    m.perturbed() ? "true" : "false", "\r\n");
  };
  if (only_city.empty()) {
    for (const nv1::MeasureTotal& m : f.totals()) row("", m);
  }
  for (const nv1::CityPart& c : f.cities()) {
    if (!only_city.empty() && c.peer() != only_city) continue;
    for (const nv1::MeasureTotal& m : c.measures()) row(c.peer(), m);
  }
}

}  // namespace

ReadApi::ReadApi(std::vector<NationalViewSpec> views, FiguresFn figures, FeedQualityFn feed_quality)
    : views_(std::move(views)),
      figures_(std::move(figures)),
      feed_quality_(std::move(feed_quality)) {}

std::map<std::string, json> ReadApi::feed_quality() const {
  return feed_quality_ ? feed_quality_() : std::map<std::string, json>();
}

void ReadApi::Register(http::HttpsServer* server) const {
  const std::string base = absl::StrCat("/api/v1/views/", kDatasetPattern, "/", kViewPattern);
  server->Handle(
      "GET", "/api/v1/views",
      [this](const http::HttpRequest& r, const tls::PeerIdentity&) { return ListViews(r); });
  server->Handle(
      "GET", "/api/v1/feed-quality",
      [this](const http::HttpRequest& r, const tls::PeerIdentity&) { return ListFeedQuality(r); });
  server->Handle("GET", base, [this](const http::HttpRequest& r, const tls::PeerIdentity&) {
    return GetView(r);
  });
  server->Handle(
      "GET", base + "/figures",
      [this](const http::HttpRequest& r, const tls::PeerIdentity&) { return ListFigures(r); });
  server->Handle(
      "GET", base + "/figures/([0-9TZ:.+-]+)",
      [this](const http::HttpRequest& r, const tls::PeerIdentity&) { return GetWindow(r); });
}

const NationalViewSpec* ReadApi::FindView(const http::HttpRequest& request) const {
  if (request.path_params.size() < 2) return nullptr;
  for (const NationalViewSpec& v : views_) {
    if (v.dataset == request.path_params[0] && v.view == request.path_params[1]) return &v;
  }
  return nullptr;
}

std::string FigureEventId(const nv1::NationalFigure& f) {
  return absl::StrCat(f.decided_at().seconds() * 1000000 + f.decided_at().nanos() / 1000, ".",
                      f.window_start().seconds(), ".", f.revision());
}

json ReadApi::FigureJson(const nv1::NationalFigure& f, const std::string& only_city) {
  json totals = json::array();
  for (const nv1::MeasureTotal& m : f.totals()) totals.push_back(MeasureJson(m));
  json cities = json::array();
  std::set<std::string> reported;
  for (const nv1::CityPart& c : f.cities()) {
    reported.insert(c.peer());
    if (!only_city.empty() && c.peer() != only_city) continue;
    json measures = json::array();
    for (const nv1::MeasureTotal& m : c.measures()) measures.push_back(MeasureJson(m));
    cities.push_back({{"city", c.peer()},
                      {"cells", c.cells()},
                      {"watermark", Instant(c.watermark())},
                      {"included_in_revision", c.included_in_revision()},
                      {"measures", std::move(measures)}});
  }
  json missing = json::array();
  for (const std::string& c : f.cities_expected()) {
    if (reported.count(c) == 0) missing.push_back(c);
  }
  json changes = json::array();
  for (const nv1::MeasureChange& c : f.changes()) {
    changes.push_back(
        {{"measure", c.name()},
         {"previous_value", c.has_previous_value() ? json(c.previous_value()) : json()},
         {"value", c.has_value() ? json(c.value()) : json()},
         {"previous_withheld_cells", c.previous_withheld_cells()},
         {"withheld_cells", c.withheld_cells()}});
  }
  return {{"figure_key", f.figure_key()},
          {"event_id", FigureEventId(f)},
          {"dataset", f.dataset_id()},
          {"view", f.view_id()},
          {"definition_hash", f.definition_hash()},
          {"window_start", Instant(f.window_start())},
          {"window_end", Instant(f.window_end())},
          {"revision", f.revision()},
          {"reason", ReasonName(f.reason())},
          {"decided_at", Instant(f.decided_at())},
          {"complete", f.complete()},
          {"cities_expected", f.cities_expected()},
          {"cities_reported", reported},
          {"cities_missing", std::move(missing)},
          {"cities_added", f.cities_added()},
          {"totals", std::move(totals)},
          {"changes", std::move(changes)},
          {"cities", std::move(cities)}};
}

json ReadApi::FeedQualityOf(const NationalViewSpec& v,
                            const std::map<std::string, json>& all) const {
  json out = json::object();
  for (const std::string& city : v.cities) {
    auto it = all.find(absl::StrCat(city, "/", v.dataset));
    out[city] = it == all.end() ? json() : it->second;
  }
  return out;
}

http::HttpResponse ReadApi::ListFeedQuality(const http::HttpRequest& request) const {
  if (absl::Status s = Params(request, {}).status(); !s.ok()) return http::HttpResponse::Error(s);
  const std::map<std::string, json> all = feed_quality();
  json out = json::array();
  std::set<std::pair<std::string, std::string>> seen;
  for (const NationalViewSpec& v : views_) {
    for (const std::string& city : v.cities) {
      if (!seen.insert({city, v.dataset}).second) continue;
      auto it = all.find(absl::StrCat(city, "/", v.dataset));
      out.push_back({{"city", city},
                     {"dataset", v.dataset},
                     {"feed_quality", it == all.end() ? json() : it->second}});
    }
  }
  return JsonResponse({{"feed_quality", std::move(out)}});
}

json ReadApi::ViewJson(const NationalViewSpec& v, const AggregatorJob::Figures& all) const {
  json out = {{"dataset", v.dataset},
              {"view", v.view},
              {"cities", v.cities},
              {"definition_hashes", v.definition_hashes},
              {"grace_seconds", absl::ToInt64Seconds(v.grace)},
              {"deadline_seconds", absl::ToInt64Seconds(v.deadline)},
              {"revision_horizon_seconds", absl::ToInt64Seconds(v.revision_horizon)},
              {"topic", NationalTopic(v.dataset, v.view)},
              {"windows", 0},
              {"revised_windows", 0},
              {"latest", json()},
              {"feed_quality", FeedQualityOf(v, feed_quality())}};
  auto it = all.find(absl::StrCat(v.dataset, "/", v.view));
  if (it == all.end() || it->second.empty()) return out;
  int64_t revisions = 0;
  for (const auto& [start, figures] : it->second) revisions += figures.size() > 1 ? 1 : 0;
  out["windows"] = it->second.size();
  out["revised_windows"] = revisions;
  const std::vector<nv1::NationalFigure>& newest = it->second.rbegin()->second;
  if (!newest.empty()) out["latest"] = FigureJson(newest.back());
  return out;
}

http::HttpResponse ReadApi::ListViews(const http::HttpRequest& request) const {
  if (absl::Status s = Params(request, {}).status(); !s.ok()) return http::HttpResponse::Error(s);
  std::shared_ptr<const AggregatorJob::Figures> all = figures_();
  json views = json::array();
  for (const NationalViewSpec& v : views_) {
    views.push_back(ViewJson(v, all == nullptr ? AggregatorJob::Figures() : *all));
  }
  return JsonResponse({{"views", std::move(views)}});
}

http::HttpResponse ReadApi::GetView(const http::HttpRequest& request) const {
  if (absl::Status s = Params(request, {}).status(); !s.ok()) return http::HttpResponse::Error(s);
  const NationalViewSpec* v = FindView(request);
  if (v == nullptr) {
    return http::HttpResponse::Error(absl::NotFoundError("no such national view"));
  }
  std::shared_ptr<const AggregatorJob::Figures> all = figures_();
  return JsonResponse(ViewJson(*v, all == nullptr ? AggregatorJob::Figures() : *all));
}

http::HttpResponse ReadApi::ListFigures(const http::HttpRequest& request) const {
  absl::StatusOr<std::map<std::string, std::string>> params =
      Params(request, {"from", "to", "revisions", "city", "limit", "format"});
  if (!params.ok()) return http::HttpResponse::Error(params.status());
  const NationalViewSpec* v = FindView(request);
  if (v == nullptr) {
    return http::HttpResponse::Error(absl::NotFoundError("no such national view"));
  }
  absl::Time from = absl::InfinitePast(), to = absl::InfiniteFuture();
  if (auto it = params->find("from"); it != params->end()) {
    absl::StatusOr<absl::Time> t = ParseInstant("from", it->second);
    if (!t.ok()) return http::HttpResponse::Error(t.status());
    from = *t;
  }
  if (auto it = params->find("to"); it != params->end()) {
    absl::StatusOr<absl::Time> t = ParseInstant("to", it->second);
    if (!t.ok()) return http::HttpResponse::Error(t.status());
    to = *t;
  }
  if (to < from) {
    return http::HttpResponse::Error(absl::InvalidArgumentError("'to' is before 'from'"));
  }
  bool all_revisions = false;
  if (auto it = params->find("revisions"); it != params->end()) {
    if (it->second != "latest" && it->second != "all") {
      return http::HttpResponse::Error(
          absl::InvalidArgumentError("revisions must be latest or all"));
    }
    all_revisions = it->second == "all";
  }
  std::string city;
  if (auto it = params->find("city"); it != params->end()) {
    city = it->second;
    if (v->cities.count(city) == 0) {
      return http::HttpResponse::Error(
          absl::NotFoundError(absl::StrCat("the view expects no city '", city.substr(0, 64), "'")));
    }
  }
  int limit = kDefaultLimit;
  if (auto it = params->find("limit"); it != params->end()) {
    if (!absl::SimpleAtoi(it->second, &limit) || limit < 1 || limit > kMaxLimit) {
      return http::HttpResponse::Error(absl::InvalidArgumentError(
          absl::StrCat("limit must be a whole number from 1 to ", kMaxLimit)));
    }
  }
  bool csv = false;
  if (auto it = params->find("format"); it != params->end()) {
    if (it->second != "json" && it->second != "csv") {
      return http::HttpResponse::Error(absl::InvalidArgumentError("format must be json or csv"));
    }
    csv = it->second == "csv";
  }

  std::shared_ptr<const AggregatorJob::Figures> all = figures_();
  std::vector<const std::vector<nv1::NationalFigure>*> windows;
  bool truncated = false;
  if (all != nullptr) {
    auto it = all->find(absl::StrCat(v->dataset, "/", v->view));
    if (it != all->end()) {
      for (auto w = it->second.lower_bound(from); w != it->second.end() && w->first < to; ++w) {
        if (!w->second.empty()) windows.push_back(&w->second);
      }
    }
  }
  if (windows.size() > static_cast<size_t>(limit)) {
    windows.erase(windows.begin(), windows.end() - limit);  // the newest `limit`
    truncated = true;
  }
  if (csv) {
    std::string body =
        "window_start,window_end,revision,reason,complete,cities_reported,cities_expected,city,"
        "measure,value,withheld,withheld_cells,perturbed\r\n";
    for (const auto* figures : windows) {
      if (all_revisions) {
        for (const nv1::NationalFigure& f : *figures) AppendCsv(f, city, &body);
      } else {
        AppendCsv(figures->back(), city, &body);
      }
    }
    http::HttpResponse r;
    r.content_type = "text/csv; charset=utf-8";
    r.body = std::move(body);
    r.headers = {{"Cache-Control", "no-cache"},
                 {"Content-Disposition", absl::StrCat("attachment; filename=\"national-",
                                                      v->dataset, "-", v->view, ".csv\"")}};
    return r;
  }
  json out = json::array();
  for (const auto* figures : windows) {
    if (all_revisions) {
      for (const nv1::NationalFigure& f : *figures) out.push_back(FigureJson(f, city));
    } else {
      json f = FigureJson(figures->back(), city);
      f["revisions"] = figures->size();
      out.push_back(std::move(f));
    }
  }
  return JsonResponse({{"dataset", v->dataset},
                       {"view", v->view},
                       {"revisions", all_revisions ? "all" : "latest"},
                       {"truncated", truncated},
                       {"figures", std::move(out)}});
}

http::HttpResponse ReadApi::GetWindow(const http::HttpRequest& request) const {
  if (absl::Status s = Params(request, {}).status(); !s.ok()) return http::HttpResponse::Error(s);
  const NationalViewSpec* v = FindView(request);
  if (v == nullptr || request.path_params.size() < 3) {
    return http::HttpResponse::Error(absl::NotFoundError("no such national view"));
  }
  absl::StatusOr<absl::Time> start = ParseInstant("the window start", request.path_params[2]);
  if (!start.ok()) return http::HttpResponse::Error(start.status());
  std::shared_ptr<const AggregatorJob::Figures> all = figures_();
  const std::vector<nv1::NationalFigure>* figures = nullptr;
  if (all != nullptr) {
    auto it = all->find(absl::StrCat(v->dataset, "/", v->view));
    if (it != all->end()) {
      auto w = it->second.find(*start);
      if (w != it->second.end() && !w->second.empty()) figures = &w->second;
    }
  }
  if (figures == nullptr) {
    return http::HttpResponse::Error(absl::NotFoundError(
        absl::StrCat("no national figure for the window starting ", views::FormatInstant(*start),
                     " (not closed yet, or past the revision horizon)")));
  }
  json revisions = json::array();
  for (const nv1::NationalFigure& f : *figures) revisions.push_back(FigureJson(f));
  return JsonResponse(
      {{"latest", FigureJson(figures->back())}, {"revisions", std::move(revisions)}});
}

}  // namespace aggregator
}  // namespace polder
