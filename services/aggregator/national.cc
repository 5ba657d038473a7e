#include "services/aggregator/national.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/json/bounded.h"
#include "common/status/status_macros.h"
#include "common/views/times.h"
#include "common/views/window.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace aggregator {

namespace nv1 = ::polder::national::v1;
namespace vv1 = ::polder::views::v1;
using json = nlohmann::json;

namespace {

using views::MillisJson;
using views::SetProtoTime;
using views::TimeFromMillisJson;
using views::TimeFromProto;

// One measure of several parts, combined as ADR 0018 §3 says.
void Combine(const std::string& name, const MeasureSum& m, nv1::MeasureTotal* out) {
  out->set_name(name);
  out->set_withheld_cells(m.withheld);
  out->set_perturbed(m.perturbed);
  if (m.published == 0 || name.rfind("mean:", 0) == 0) return;
  if (name.rfind("min:", 0) == 0) {
    out->set_value(m.min);
  } else if (name.rfind("max:", 0) == 0) {
    out->set_value(m.max);
  } else {
    out->set_value(m.sum);
  }
}

void Add(const MeasureSum& part, MeasureSum& total) {
  total.sum += part.sum;
  total.min = std::min(total.min, part.min);
  total.max = std::max(total.max, part.max);
  total.published += part.published;
  total.withheld += part.withheld;
  total.perturbed = total.perturbed || part.perturbed;
}

}  // namespace

std::string FigureKey(const std::string& dataset, const std::string& view, absl::Time start) {
  return absl::StrCat(dataset, "/", view, "/", views::FormatInstant(start));
}

National::National(NationalViewSpec spec) : spec_(std::move(spec)) {}

NationalWindow& National::WindowFor(absl::Time start, absl::Time end, const std::string& hash) {
  auto [it, fresh] = windows_.try_emplace(start);
  NationalWindow& w = it->second;
  if (fresh) {
    w.start = start;
    w.end = end;
    w.definition_hash = hash;
    w.due = end + spec_.grace + spec_.deadline;
    // A city whose windows are closed past this one had nothing in it.
    for (const auto& [city, through] : closed_through_) {
      if (through >= end) CloseCity(w, w.cities[city]);
    }
  }
  dirty_.insert(start);
  return w;
}

void National::CloseCity(NationalWindow& w, CityWindow& c) {
  if (c.closed) return;
  c.closed = true;
  c.closed_cells = c.cells;
  dirty_.insert(w.start);
}

National::Outcome National::Offer(const std::string& city, const vv1::AggregateCell& record,
                                  absl::Time now) {
  if (spec_.cities.count(city) == 0) return Outcome::kUnknownCity;
  if (record.dataset_id() != spec_.dataset || record.view_id() != spec_.view ||
      spec_.definition_hashes.count(record.definition_hash()) == 0) {
    return Outcome::kOtherView;
  }
  if (!record.has_window_start() || !record.has_window_end()) return Outcome::kMalformed;
  const absl::Time start = TimeFromProto(record.window_start());
  const absl::Time end = TimeFromProto(record.window_end());
  if (end <= start) return Outcome::kMalformed;
  const bool known = windows_.count(start) != 0;
  if (!known && end + spec_.grace + spec_.deadline + spec_.revision_horizon <= now) {
    return Outcome::kTooOld;
  }
  if (record.has_window_close()) {
    if (!record.group_key().empty() || record.measures_size() != 0) return Outcome::kMalformed;
    const vv1::WindowClose& close = record.window_close();
    NationalWindow& w = WindowFor(start, end, record.definition_hash());
    CityWindow& c = w.cities[city];
    c.watermark = TimeFromProto(close.watermark());
    CloseCity(w, c);
    c.closed_cells = close.cells();
    // Every window of this city ending by closed_through is closed, with what it sent.
    const absl::Time through = TimeFromProto(close.closed_through());
    absl::Time& known_through =
        closed_through_.try_emplace(city, absl::InfinitePast()).first->second;
    if (through > known_through) {
      known_through = through;
      cities_dirty_ = true;
      for (auto& [s, other] : windows_) {
        if (other.end > through) break;
        CityWindow& oc = other.cities[city];
        if (!oc.closed) {
          if (oc.watermark == absl::InfinitePast()) oc.watermark = c.watermark;
          CloseCity(other, oc);
        }
      }
    }
    return Outcome::kClose;
  }
  NationalWindow& w = WindowFor(start, end, record.definition_hash());
  CityWindow& c = w.cities[city];
  if (c.closed) return Outcome::kAfterClose;
  ++c.cells;
  for (const vv1::MeasureValue& m : record.measures()) {
    auto [it, fresh] = c.measures.try_emplace(m.name());
    if (fresh) c.order.push_back(m.name());
    MeasureSum& sum = it->second;
    if (m.has_value()) {
      const double v = m.value();
      sum.sum += v;
      sum.min = std::min(sum.min, v);
      sum.max = std::max(sum.max, v);
      ++sum.published;
      sum.perturbed = sum.perturbed || m.perturbed();
    } else if (m.protection() != vv1::PROTECTION_UNSPECIFIED) {
      ++sum.withheld;  // withheld: left out, counted
    }
    // A mean, minimum or maximum of no values has neither: nothing to add.
  }
  return Outcome::kCell;
}

std::vector<Decision> National::Decide(absl::Time now) {
  // Kept as the changelog keeps it (milliseconds), so the figure written now, the one a restart
  // recovers and the one another replica reads back are the same (event id included).
  const absl::Time decided_at = absl::FromUnixMillis(absl::ToUnixMillis(now));
  std::vector<Decision> out;
  for (auto& [start, w] : windows_) {
    std::vector<std::string> ready;
    for (const std::string& city : spec_.cities) {
      auto c = w.cities.find(city);
      if (c != w.cities.end() && c->second.closed && c->second.included_in < 0) {
        ready.push_back(city);
      }
    }
    if (w.revisions.empty()) {
      const bool all = ready.size() == spec_.cities.size();
      if (!all && now < w.due) continue;
      Revision r;
      r.number = 0;
      r.reason = all ? nv1::REVISION_REASON_ALL_CITIES : nv1::REVISION_REASON_DEADLINE;
      r.decided_at = decided_at;
      r.cities_added = ready;
      for (const std::string& city : ready) w.cities[city].included_in = 0;
      w.revisions.push_back(std::move(r));
      out.push_back({start, 0});
      dirty_.insert(start);
      continue;
    }
    // One revision per late city, in the order of their names (deterministic).
    for (const std::string& city : ready) {
      Revision r;
      r.number = static_cast<int32_t>(w.revisions.size());
      r.reason = nv1::REVISION_REASON_LATE_CITY;
      r.decided_at = decided_at;
      r.cities_added = {city};
      w.cities[city].included_in = r.number;
      out.push_back({start, r.number});
      w.revisions.push_back(std::move(r));
      dirty_.insert(start);
    }
  }
  return out;
}

absl::StatusOr<nv1::NationalFigure> National::Figure(absl::Time window, int32_t revision) const {
  auto it = windows_.find(window);
  if (it == windows_.end() || revision < 0 ||
      revision >= static_cast<int32_t>(it->second.revisions.size())) {
    return absl::NotFoundError(absl::StrCat("no revision ", revision, " of ",
                                            FigureKey(spec_.dataset, spec_.view, window)));
  }
  const NationalWindow& w = it->second;
  const Revision& r = w.revisions[revision];
  nv1::NationalFigure f;
  f.set_figure_key(FigureKey(spec_.dataset, spec_.view, w.start));
  SetProtoTime(w.start, f.mutable_window_start());
  SetProtoTime(w.end, f.mutable_window_end());
  f.set_dataset_id(spec_.dataset);
  f.set_view_id(spec_.view);
  f.set_definition_hash(w.definition_hash);
  f.set_revision(r.number);
  f.set_reason(r.reason);
  SetProtoTime(r.decided_at, f.mutable_decided_at());
  for (const std::string& city : spec_.cities) f.add_cities_expected(city);
  for (const std::string& city : r.cities_added) f.add_cities_added(city);
  std::map<std::string, MeasureSum> totals;
  std::vector<std::string> order;
  size_t included = 0;
  for (const auto& [city, c] : w.cities) {
    if (c.included_in < 0 || c.included_in > revision) continue;
    ++included;
    nv1::CityPart* part = f.add_cities();
    part->set_peer(city);
    part->set_cells(c.closed_cells);
    if (c.watermark != absl::InfinitePast()) SetProtoTime(c.watermark, part->mutable_watermark());
    part->set_included_in_revision(c.included_in);
    for (const std::string& name : c.order) {
      const MeasureSum& m = c.measures.at(name);
      Combine(name, m, part->add_measures());
      auto [t, fresh] = totals.try_emplace(name);
      if (fresh) order.push_back(name);
      Add(m, t->second);
    }
  }
  for (const std::string& name : order) Combine(name, totals.at(name), f.add_totals());
  f.set_complete(included == spec_.cities.size());
  if (revision > 0) {
    ASSIGN_OR_RETURN(nv1::NationalFigure previous, Figure(window, revision - 1));
    std::map<std::string, const nv1::MeasureTotal*> before;
    for (const nv1::MeasureTotal& m : previous.totals()) before[m.name()] = &m;
    for (const nv1::MeasureTotal& m : f.totals()) {
      auto b = before.find(m.name());
      const nv1::MeasureTotal empty;
      const nv1::MeasureTotal& p = b == before.end() ? empty : *b->second;
      if (p.has_value() == m.has_value() && (!m.has_value() || p.value() == m.value()) &&
          p.withheld_cells() == m.withheld_cells()) {
        continue;
      }
      nv1::MeasureChange* c = f.add_changes();
      c->set_name(m.name());
      if (p.has_value()) c->set_previous_value(p.value());
      if (m.has_value()) c->set_value(m.value());
      c->set_previous_withheld_cells(p.withheld_cells());
      c->set_withheld_cells(m.withheld_cells());
    }
  }
  return f;
}

std::vector<absl::Time> National::Forget(absl::Time now) {
  std::vector<absl::Time> gone;
  for (auto it = windows_.begin(); it != windows_.end();) {
    if (it->second.due + spec_.revision_horizon <= now) {
      gone.push_back(it->first);
      dirty_.erase(it->first);
      it = windows_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

std::vector<absl::Time> National::TakeDirty() {
  std::vector<absl::Time> out(dirty_.begin(), dirty_.end());
  dirty_.clear();
  return out;
}

bool National::TakeCitiesDirty() {
  const bool dirty = cities_dirty_;
  cities_dirty_ = false;
  return dirty;
}

std::string National::Encode(absl::Time window) const {
  const NationalWindow& w = windows_.at(window);
  json j;
  j["start"] = MillisJson(w.start);
  j["end"] = MillisJson(w.end);
  j["hash"] = w.definition_hash;
  json cities = json::object();
  for (const auto& [city, c] : w.cities) {
    json jc;
    jc["cells"] = c.cells;
    jc["closed"] = c.closed;
    jc["closed_cells"] = c.closed_cells;
    jc["watermark"] = MillisJson(c.watermark);
    jc["included_in"] = c.included_in;
    json measures = json::array();
    for (const std::string& name : c.order) {
      const MeasureSum& m = c.measures.at(name);
      measures.push_back({name, m.sum, m.published > 0 ? json(m.min) : json(),
                          m.published > 0 ? json(m.max) : json(), m.published, m.withheld,
                          m.perturbed});
    }
    jc["measures"] = measures;
    cities[city] = jc;
  }
  j["cities"] = cities;
  json revisions = json::array();
  for (const Revision& r : w.revisions) {
    revisions.push_back(
        {r.number, static_cast<int>(r.reason), MillisJson(r.decided_at), r.cities_added});
  }
  j["revisions"] = revisions;
  return j.dump();
}

absl::Status National::Restore(absl::string_view text) {
  absl::StatusOr<json> parsed = json_input::Parse(text);
  if (!parsed.ok()) return absl::DataLossError(parsed.status().message());
  try {
    const json& j = *parsed;
    NationalWindow w;
    w.start = TimeFromMillisJson(j.at("start"));
    w.end = TimeFromMillisJson(j.at("end"));
    w.definition_hash = j.at("hash").get<std::string>();
    w.due = w.end + spec_.grace + spec_.deadline;
    for (auto it = j.at("cities").begin(); it != j.at("cities").end(); ++it) {
      CityWindow c;
      const json& jc = it.value();
      c.cells = jc.at("cells").get<int64_t>();
      c.closed = jc.at("closed").get<bool>();
      c.closed_cells = jc.at("closed_cells").get<int64_t>();
      c.watermark = TimeFromMillisJson(jc.at("watermark"));
      c.included_in = jc.at("included_in").get<int32_t>();
      for (const json& m : jc.at("measures")) {
        MeasureSum s;
        const std::string name = m.at(0).get<std::string>();
        s.sum = m.at(1).get<double>();
        s.published = m.at(4).get<int64_t>();
        if (s.published > 0) {
          s.min = m.at(2).get<double>();
          s.max = m.at(3).get<double>();
        }
        s.withheld = m.at(5).get<int64_t>();
        s.perturbed = m.at(6).get<bool>();
        c.order.push_back(name);
        c.measures[name] = s;
      }
      w.cities[it.key()] = std::move(c);
    }
    for (const json& r : j.at("revisions")) {
      Revision rev;
      rev.number = r.at(0).get<int32_t>();
      const int reason = r.at(1).get<int>();
      if (!nv1::RevisionReason_IsValid(reason)) throw std::invalid_argument("reason");
      rev.reason = static_cast<nv1::RevisionReason>(reason);
      rev.decided_at = TimeFromMillisJson(r.at(2));
      rev.cities_added = r.at(3).get<std::vector<std::string>>();
      if (rev.number != static_cast<int32_t>(w.revisions.size())) {
        throw std::invalid_argument("revision numbers");
      }
      w.revisions.push_back(std::move(rev));
    }
    windows_[w.start] = std::move(w);
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("a national window cannot be read: ", e.what()));
  }
  return absl::OkStatus();
}

std::string National::EncodeCities() const {
  json j = json::object();
  for (const auto& [city, through] : closed_through_) j[city] = MillisJson(through);
  return j.dump();
}

absl::Status National::RestoreCities(absl::string_view text) {
  absl::StatusOr<json> parsed = json_input::Parse(text);
  if (!parsed.ok()) return absl::DataLossError(parsed.status().message());
  try {
    for (auto it = parsed->begin(); it != parsed->end(); ++it) {
      closed_through_[it.key()] = TimeFromMillisJson(it.value());
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("the cities' progress cannot be read: ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace aggregator
}  // namespace polder
