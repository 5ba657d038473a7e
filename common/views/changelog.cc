#include "common/views/changelog.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"
#include "common/views/times.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace views {

using json = nlohmann::json;

namespace {

json TimeMs(absl::Time t) { return MillisJson(t); }
absl::Time FromMs(const json& j) { return TimeFromMillisJson(j); }

const char* CauseName(CloseCause c) { return c == CloseCause::kIdle ? "idle" : "watermark"; }

json Positions(const std::map<int32_t, int64_t>& positions) {
  json out = json::object();
  for (const auto& [p, o] : positions) out[std::to_string(p)] = o;
  return out;
}

std::map<int32_t, int64_t> PositionsFrom(const json& j) {
  std::map<int32_t, int64_t> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    int32_t p = 0;
    if (!absl::SimpleAtoi(it.key(), &p)) throw std::invalid_argument("partition");
    out[p] = it.value().get<int64_t>();
  }
  return out;
}

int ViewIndex(const SetLayout& layout, absl::string_view id) {
  for (size_t i = 0; i < layout.spec.views.size(); ++i) {
    if (layout.spec.views[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

ChangelogEntry EncodeMeta(const ChangelogMeta& meta) {
  json j;
  j["key_fingerprint"] = meta.key_fingerprint;
  j["ptable_sha256"] = meta.ptable_sha256;
  j["definitions"] = meta.definitions;
  if (!meta.coverage.empty()) {
    json coverage = json::object();
    for (const auto& [view, since] : meta.coverage) coverage[view] = TimeMs(since);
    j["coverage"] = coverage;
  }
  return {"meta", j.dump()};
}

ChangelogEntry EncodeProgress(const Engine& engine) {
  json j;
  j["w"] = TimeMs(engine.watermark());
  json parts = json::object();
  for (const auto& [p, pc] : engine.clocks()) {
    json e;
    e["m"] = TimeMs(pc.max_event);
    e["aligned"] = pc.aligned;
    auto pos = engine.positions().find(p);
    e["next"] = pos == engine.positions().end() ? 0 : pos->second;
    parts[std::to_string(p)] = e;
  }
  j["partitions"] = parts;
  return {"progress", j.dump()};
}

ChangelogEntry EncodeCell(const SetLayout& layout, const CellId& id, const Cell* open) {
  ChangelogEntry e;
  e.key = absl::StrCat("cell/", layout.spec.views[id.view].id, "/",
                       absl::ToUnixMillis(id.window_start), "/", id.group_key);
  if (open == nullptr) return e;
  json j;
  j["end"] = absl::ToUnixMillis(open->window.end);
  j["g"] = open->group;
  json units = json::array();
  for (const auto& [key, u] : open->units) {
    json fields = json::array();
    for (const FieldStats& f : u.fields) {
      fields.push_back(f.n == 0 ? json::array({0, 0.0, nullptr, nullptr})
                                : json::array({f.n, f.sum, f.min, f.max}));
    }
    units.push_back(json::array({key, u.records, u.count, fields}));
  }
  j["u"] = units;
  e.value = j.dump();
  return e;
}

ChangelogEntry EncodeClose(const CloseDecision& d) {
  json j;
  j["w"] = TimeMs(d.watermark);
  j["cause"] = CauseName(d.cause);
  j["positions"] = Positions(d.positions);
  j["cells"] = d.cells;
  return {absl::StrCat("close/", d.view, "/", absl::ToUnixMillis(d.window_start)), j.dump()};
}

ChangelogEntry EncodeRun(absl::string_view kind, const RecordRun& run) {
  json j;
  j["to"] = run.last_offset;
  j["n"] = run.count;
  if (!run.reason.empty()) j["reason"] = run.reason;
  return {absl::StrCat(kind, "/", run.partition, "/", run.first_offset), j.dump()};
}

ChangelogEntry EncodeGate(const SetLayout& layout, const CellId& id, const GateEntry* entry) {
  ChangelogEntry e;
  e.key = absl::StrCat("gate/", layout.spec.views[id.view].id, "/",
                       absl::ToUnixMillis(id.window_start), "/", id.group_key);
  if (entry == nullptr) return e;
  json j;
  j["k"] = entry->kind == GateEntry::Kind::kPublished   ? "published"
           : entry->kind == GateEntry::Kind::kThreshold ? "threshold"
                                                        : "protected";
  j["end"] = absl::ToUnixMillis(entry->window.end);
  j["g"] = entry->group;
  if (entry->kind == GateEntry::Kind::kPublished) j["y"] = entry->published;
  if (entry->kind == GateEntry::Kind::kProtected) j["r"] = ProtectionName(entry->reason);
  if (entry->reason == Protection::kDominance) {
    j["t"] = entry->truth;
    j["upl"] = entry->upl;
  }
  if (entry->small) j["small"] = true;
  e.value = j.dump();
  return e;
}

ChangelogEntry EncodeMapPair(const MapPair& pair, bool present) {
  ChangelogEntry e;
  e.key = absl::StrCat("map/", absl::ToUnixMillis(pair.day), "/", pair.grid, "/", pair.code, "/",
                       pair.municipality);
  if (!present) return e;
  json j;
  j["day"] = absl::ToUnixMillis(pair.day);
  j["grid"] = pair.grid;
  j["code"] = pair.code;
  j["m"] = pair.municipality;
  e.value = j.dump();
  return e;
}

ChangelogEntry EncodeFeedFigure(absl::string_view view, const FeedFigure& figure) {
  json j;
  j["start"] = absl::ToUnixMillis(figure.window.start);
  j["end"] = absl::ToUnixMillis(figure.window.end);
  j["value"] = figure.value.has_value() ? json(*figure.value) : json();
  j["perturbed"] = figure.perturbed;
  return {absl::StrCat("feed/", view), j.dump()};
}

namespace {

// The cell a `cell/` or `gate/` key names: <kind>/<view>/<start ms>/<group key>. Throws
// invalid_argument for a malformed key (DATA_LOSS in Apply); a view the set no longer declares
// is INVALID_ARGUMENT.
absl::StatusOr<CellId> CellIdOf(const SetLayout& layout, absl::string_view key,
                                const std::vector<absl::string_view>& parts) {
  if (parts.size() != 4) throw std::invalid_argument("key");
  const int view = ViewIndex(layout, parts[1]);
  if (view < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("changelog entry '", key, "' belongs to view '", parts[1],
                     "', which the view set no longer declares; the set must be reset to drop it"));
  }
  int64_t start = 0;
  if (!absl::SimpleAtoi(parts[2], &start)) throw std::invalid_argument("start");
  return CellId{view, absl::FromUnixMillis(start), std::string(parts[3])};
}

}  // namespace

absl::Status RestoredViews::Apply(const SetLayout& layout, absl::string_view key,
                                  const std::optional<std::string>& value) {
  const std::vector<absl::string_view> parts = absl::StrSplit(key, absl::MaxSplits('/', 3));
  const absl::string_view kind = parts[0];
  try {
    if (kind == "map") {
      if (!value.has_value()) {
        map_pairs.erase(std::string(key));
        return absl::OkStatus();
      }
      const json j = json::parse(*value);
      MapPair pair;
      pair.day = absl::FromUnixMillis(j.at("day").get<int64_t>());
      pair.grid = j.at("grid").get<std::string>();
      pair.code = j.at("code").get<std::string>();
      pair.municipality = j.at("m").get<std::string>();
      if (EncodeMapPair(pair, false).key != key) throw std::invalid_argument("key");
      map_pairs[std::string(key)] = std::move(pair);
      return absl::OkStatus();
    }
    if (kind == "gate") {
      ASSIGN_OR_RETURN(const CellId id, CellIdOf(layout, key, parts));
      if (!value.has_value()) {
        gate.erase(id);
        return absl::OkStatus();
      }
      const json j = json::parse(*value);
      GateEntry g;
      const std::string k = j.at("k").get<std::string>();
      if (k == "published") {
        g.kind = GateEntry::Kind::kPublished;
        g.published = j.at("y").get<int64_t>();
      } else if (k == "threshold") {
        g.kind = GateEntry::Kind::kThreshold;
        g.reason = Protection::kThreshold;
      } else if (k == "protected") {
        g.kind = GateEntry::Kind::kProtected;
        const std::string r = j.at("r").get<std::string>();
        bool known = false;
        for (Protection p : {Protection::kThreshold, Protection::kDominance, Protection::kSecondary,
                             Protection::kGate}) {
          if (r == ProtectionName(p)) {
            g.reason = p;
            known = true;
          }
        }
        if (!known) throw std::invalid_argument("reason");
      } else {
        throw std::invalid_argument("kind");
      }
      g.window = {id.window_start, absl::FromUnixMillis(j.at("end").get<int64_t>())};
      g.group = j.at("g").get<std::vector<std::string>>();
      if (j.contains("t")) g.truth = j.at("t").get<int64_t>();
      if (j.contains("upl")) g.upl = j.at("upl").get<double>();
      if (j.contains("small")) g.small = j.at("small").get<bool>();
      gate[id] = std::move(g);
      return absl::OkStatus();
    }
    if (kind == "cell") {
      ASSIGN_OR_RETURN(const CellId id, CellIdOf(layout, key, parts));
      if (!value.has_value()) {
        cells.erase(id);
        return absl::OkStatus();
      }
      const json j = json::parse(*value);
      Cell cell;
      cell.window = {id.window_start, absl::FromUnixMillis(j.at("end").get<int64_t>())};
      cell.group = j.at("g").get<std::vector<std::string>>();
      for (const json& u : j.at("u")) {
        UnitStats stats;
        stats.records = u.at(1).get<int64_t>();
        stats.count = u.at(2).get<int64_t>();
        for (const json& f : u.at(3)) {
          FieldStats fs;
          fs.n = f.at(0).get<int64_t>();
          fs.sum = f.at(1).get<double>();
          if (fs.n > 0) {
            fs.min = f.at(2).get<double>();
            fs.max = f.at(3).get<double>();
          }
          stats.fields.push_back(fs);
        }
        cell.units[u.at(0).get<uint64_t>()] = std::move(stats);
      }
      cells[id] = std::move(cell);
      return absl::OkStatus();
    }
    if (!value.has_value()) {
      if (kind == "close") closes.erase(std::string(key));
      if (kind == "feed") feed.erase(std::string(parts.size() == 2 ? parts[1] : ""));
      return absl::OkStatus();
    }
    const json j = json::parse(*value);
    if (kind == "meta") {
      ChangelogMeta m;
      m.key_fingerprint = j.at("key_fingerprint").get<std::string>();
      m.ptable_sha256 = j.at("ptable_sha256").get<std::string>();
      m.definitions = j.at("definitions").get<std::map<std::string, std::string>>();
      if (j.contains("coverage")) {
        for (auto it = j.at("coverage").begin(); it != j.at("coverage").end(); ++it) {
          m.coverage[it.key()] = FromMs(it.value());
        }
      }
      meta = std::move(m);
    } else if (kind == "progress") {
      has_progress = true;
      watermark = FromMs(j.at("w"));
      clocks.clear();
      positions.clear();
      for (auto it = j.at("partitions").begin(); it != j.at("partitions").end(); ++it) {
        int32_t p = 0;
        if (!absl::SimpleAtoi(it.key(), &p)) throw std::invalid_argument("partition");
        PartitionClock pc;
        pc.max_event = FromMs(it.value().at("m"));
        pc.aligned = it.value().at("aligned").get<bool>();
        clocks[p] = pc;
        positions[p] = it.value().at("next").get<int64_t>();
      }
    } else if (kind == "close") {
      if (parts.size() != 3) throw std::invalid_argument("key");
      CloseDecision d;
      d.view = std::string(parts[1]);
      int64_t start = 0;
      if (!absl::SimpleAtoi(parts[2], &start)) throw std::invalid_argument("start");
      d.window_start = absl::FromUnixMillis(start);
      d.watermark = FromMs(j.at("w"));
      d.cause =
          j.at("cause").get<std::string>() == "idle" ? CloseCause::kIdle : CloseCause::kWatermark;
      d.positions = PositionsFrom(j.at("positions"));
      d.cells = j.at("cells").get<int64_t>();
      closes[std::string(key)] = std::move(d);
    } else if (kind == "feed") {
      if (parts.size() != 2) throw std::invalid_argument("key");
      FeedFigure f;
      f.window = {FromMs(j.at("start")), FromMs(j.at("end"))};
      if (!j.at("value").is_null()) f.value = j.at("value").get<double>();
      f.perturbed = j.at("perturbed").get<bool>();
      feed[std::string(parts[1])] = f;
    } else if (kind == "late" || kind == "reject") {
      if (parts.size() != 3) throw std::invalid_argument("key");
      RecordRun run;
      if (!absl::SimpleAtoi(parts[1], &run.partition) ||
          !absl::SimpleAtoi(parts[2], &run.first_offset)) {
        throw std::invalid_argument("key");
      }
      run.last_offset = j.at("to").get<int64_t>();
      run.count = j.at("n").get<int64_t>();
      if (j.contains("reason")) run.reason = j.at("reason").get<std::string>();
      (kind == "late" ? late : rejected).push_back(std::move(run));
    } else {
      return absl::DataLossError(absl::StrCat("changelog entry '", key, "' is of no known kind"));
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat("changelog entry '", key, "' cannot be read: ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace views
}  // namespace polder
