#include "common/views/spec.h"

#include <openssl/sha.h>

#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/trust/jcs.h"
#include "common/views/names.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace views {
namespace {

bool IsFieldName(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// Decimals as short strings, so the canonical JSON needs no floating-point rules.
std::string Decimal(double v) { return absl::StrFormat("%.10g", v); }

}  // namespace

std::string Dimension::Name() const {
  switch (kind) {
    case Kind::kMunicipality:
      return "municipality";
    case Kind::kGrid:
      return grid_metres == 1000 ? "grid:1km" : absl::StrCat("grid:", grid_metres, "m");
    case Kind::kField:
      return field;
  }
  return field;
}

absl::StatusOr<Dimension> ParseDimension(absl::string_view text) {
  Dimension d;
  if (text == "municipality") return d;
  if (absl::StartsWith(text, "grid:")) {
    d.kind = Dimension::Kind::kGrid;
    const absl::string_view size = text.substr(5);
    if (size == "100m") {
      d.grid_metres = 100;
    } else if (size == "500m") {
      d.grid_metres = 500;
    } else if (size == "1km") {
      d.grid_metres = 1000;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("dimension '", text, "': grid cells are grid:100m, grid:500m or grid:1km"));
    }
    return d;
  }
  if (!IsFieldName(text)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dimension '", text, "' is neither municipality, grid:<100m|500m|1km> nor a field name"));
  }
  d.kind = Dimension::Kind::kField;
  d.field = std::string(text);
  return d;
}

std::string Measure::Name() const {
  switch (kind) {
    case Kind::kCount:
      return "count";
    case Kind::kEntities:
      return "entities";
    case Kind::kSum:
      return absl::StrCat("sum:", field);
    case Kind::kMean:
      return absl::StrCat("mean:", field);
    case Kind::kMin:
      return absl::StrCat("min:", field);
    case Kind::kMax:
      return absl::StrCat("max:", field);
  }
  return "count";
}

absl::StatusOr<Measure> ParseMeasure(absl::string_view text) {
  Measure m;
  if (text == "count") return m;
  if (text == "entities") {
    m.kind = Measure::Kind::kEntities;
    return m;
  }
  const size_t colon = text.find(':');
  const absl::string_view op = text.substr(0, colon);
  const absl::string_view field =
      colon == absl::string_view::npos ? absl::string_view() : text.substr(colon + 1);
  if (op == "sum") {
    m.kind = Measure::Kind::kSum;
  } else if (op == "mean") {
    m.kind = Measure::Kind::kMean;
  } else if (op == "min") {
    m.kind = Measure::Kind::kMin;
  } else if (op == "max") {
    m.kind = Measure::Kind::kMax;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("measure '", text,
                     "' is not count, entities, sum:<field>, mean:<field>, min:<field> or "
                     "max:<field>"));
  }
  if (!IsFieldName(field)) {
    return absl::InvalidArgumentError(
        absl::StrCat("measure '", text, "' needs a field name after '", op, ":'"));
  }
  m.field = std::string(field);
  return m;
}

bool IsFeedQualityView(absl::string_view id) {
  return id == kEntitiesHourView || id == kEntitiesDayView;
}

absl::StatusOr<ViewSetSpec> WithFeedQualityViews(ViewSetSpec set) {
  for (const ViewSpec& v : set.views) {
    if (IsFeedQualityView(v.id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("views of ", set.dataset, ": view id '", v.id,
                       "' is reserved: every view set computes it for feed quality"));
    }
  }
  for (const auto& [id, size] :
       {std::pair<const char*, WindowSize>{kEntitiesHourView, WindowSize::kHour},
        {kEntitiesDayView, WindowSize::kDay}}) {
    ViewSpec v;
    v.id = id;
    v.window = size;
    v.measures.push_back(Measure{Measure::Kind::kEntities, ""});
    set.views.push_back(std::move(v));
  }
  return set;
}

absl::Status ValidateViewSet(absl::string_view peer, const ViewSetSpec& set) {
  const std::string where = absl::StrCat("views of ", set.dataset);
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
  };
  if (set.dataset.empty()) return absl::InvalidArgumentError("a view set needs its dataset");
  if (set.views.empty()) return bad("no views declared");
  if (set.grace < absl::ZeroDuration()) return bad("grace must not be negative");
  if (set.idle_timeout <= absl::ZeroDuration()) return bad("idle_timeout must be positive");
  if (set.max_event_lead < absl::ZeroDuration()) return bad("max_event_lead must not be negative");
  if (set.max_event_age <= set.grace) return bad("max_event_age must be longer than grace");
  if (set.guard.k < 3) {
    return bad(absl::StrCat("guard.k must be at least 3 (the common minimum), not ", set.guard.k));
  }
  if (!(set.guard.p > 0 && set.guard.p <= 100)) {
    return bad(absl::StrCat("guard.p must be in (0, 100], not ", set.guard.p));
  }
  if (absl::StatusOr<PTable> t = PTable::Build(set.guard.ptable); !t.ok()) {
    return bad(t.status().message());
  }
  std::set<std::string> ids;
  for (const ViewSpec& v : set.views) {
    const std::string at = absl::StrCat("view '", v.id, "'");
    if (absl::Status s = ValidateViewId(v.id); !s.ok()) return bad(s.message());
    if (!ids.insert(v.id).second) return bad(absl::StrCat(at, " is declared twice"));
    if (v.measures.empty()) return bad(absl::StrCat(at, " has no measures"));
    if (v.epoch.empty() || v.epoch.size() > 32)
      return bad(absl::StrCat(at, ": epoch 1 … 32 chars"));
    std::set<std::string> names;
    for (const Dimension& d : v.group_by) {
      if (!names.insert(d.Name()).second) {
        return bad(absl::StrCat(at, " groups by ", d.Name(), " twice"));
      }
    }
    names.clear();
    for (const Measure& m : v.measures) {
      if (!names.insert(m.Name()).second) {
        return bad(absl::StrCat(at, " has measure ", m.Name(), " twice"));
      }
      if (m.kind == Measure::Kind::kEntities && v.measures.size() != 1) {
        return bad(absl::StrCat(at,
                                ": entities counts distinct units, a frequency of its own; "
                                "declare it in a view without other measures"));
      }
    }
    const std::string topic = ViewTopic(peer, set.dataset, v.id);
    if (topic.size() > kMaxTopicLength) {
      return bad(absl::StrCat(at, ": its topic '", topic, "' is longer than Kafka's ",
                              kMaxTopicLength, " characters"));
    }
  }
  return absl::OkStatus();
}

std::string DefinitionJson(const ViewSetSpec& set, const ViewSpec& view) {
  nlohmann::json j;
  j["type"] = "polder.view.v1";
  j["guard_version"] = "ckm-1";
  j["dataset"] = set.dataset;
  j["view"] = view.id;
  j["window"] = std::string(WindowSizeName(view.window));
  j["group_by"] = nlohmann::json::array();
  for (const Dimension& d : view.group_by) j["group_by"].push_back(d.Name());
  j["measures"] = nlohmann::json::array();
  for (const Measure& m : view.measures) j["measures"].push_back(m.Name());
  j["grace_ms"] = absl::ToInt64Milliseconds(set.grace);
  j["idle_timeout_ms"] = absl::ToInt64Milliseconds(set.idle_timeout);
  j["max_event_lead_ms"] = absl::ToInt64Milliseconds(set.max_event_lead);
  j["max_event_age_ms"] = absl::ToInt64Milliseconds(set.max_event_age);
  nlohmann::json g;
  g["k"] = set.guard.k;
  g["p"] = Decimal(set.guard.p);
  g["d"] = set.guard.ptable.d;
  g["v"] = Decimal(set.guard.ptable.v);
  g["js"] = set.guard.ptable.js;
  j["guard"] = g;
  // Only strings, small integers and null: canonicalisation cannot fail.
  absl::StatusOr<std::string> canonical = trust::Canonicalize(j);
  return canonical.ok() ? *canonical : j.dump();
}

std::string DefinitionHash(const ViewSetSpec& set, const ViewSpec& view) {
  const std::string json = DefinitionJson(set, view);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(json.data()), json.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

}  // namespace views
}  // namespace polder
