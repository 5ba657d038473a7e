#include "common/views/engine.h"

#include <algorithm>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace polder {
namespace views {

SetLayout SetLayout::Of(ViewSetSpec spec, bool event_time_ends_interval) {
  SetLayout layout;
  layout.event_time_ends_interval = event_time_ends_interval;
  auto index_of = [](std::vector<std::string>& list, const std::string& name) {
    auto it = std::find(list.begin(), list.end(), name);
    if (it != list.end()) return static_cast<int>(it - list.begin());
    list.push_back(name);
    return static_cast<int>(list.size() - 1);
  };
  for (const ViewSpec& v : spec.views) {
    std::vector<int> dims, fields;
    std::vector<std::string> names;
    for (const Dimension& d : v.group_by) {
      dims.push_back(index_of(layout.dimensions, d.Name()));
      names.push_back(d.Name());
    }
    layout.view_dimension_names.push_back(std::move(names));
    for (const Measure& m : v.measures) {
      const bool counts = m.kind == Measure::Kind::kCount || m.kind == Measure::Kind::kEntities;
      fields.push_back(counts ? -1 : index_of(layout.fields, m.field));
    }
    layout.view_dimensions.push_back(std::move(dims));
    layout.view_fields.push_back(std::move(fields));
  }
  layout.spec = std::move(spec);
  return layout;
}

std::string GroupKey(const std::vector<std::string>& names,
                     const std::vector<std::string>& values) {
  if (names.empty()) return "all";
  std::string key;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    absl::StrAppend(&key, i == 0 ? "" : "/", names[i], "=", values[i]);
  }
  return key;
}

Engine::Engine(const SetLayout* layout, const WindowClock* clock,
               const std::vector<int32_t>& partitions, absl::Time now)
    : layout_(layout), clock_(clock) {
  for (int32_t p : partitions) {
    clocks_[p].last_seen = now;
    positions_[p] = 0;
  }
}

Outcome Engine::Offer(const Fact& fact, absl::Time now) {
  positions_[fact.partition] = std::max(positions_[fact.partition], fact.offset + 1);
  const ViewSetSpec& spec = layout_->spec;
  if (fact.event_time > now + spec.max_event_lead) return Outcome::kTooNew;
  if (fact.event_time < now - spec.max_event_age) return Outcome::kTooOld;
  PartitionClock& pc = clocks_[fact.partition];
  // Late or not, a valid record shows the partition is alive and how far its time has come —
  // in window time: an interval's end counts as its last instant, so the record that ends a
  // window does not close it before its peers of the same instant arrive.
  const absl::Time window_time =
      layout_->event_time_ends_interval ? fact.event_time - absl::Milliseconds(1) : fact.event_time;
  pc.max_event = std::max(pc.max_event, window_time);
  pc.last_seen = now;
  if (!pc.aligned && pc.max_event - spec.grace >= watermark_) pc.aligned = true;

  const size_t nviews = spec.views.size();
  absl::InlinedVector<Window, 8> windows(nviews);
  for (size_t v = 0; v < nviews; ++v) {
    windows[v] = clock_->WindowOfRecord(spec.views[v].window, fact.event_time,
                                        layout_->event_time_ends_interval);
    if (windows[v].end <= watermark_) return Outcome::kLate;
  }
  std::vector<std::string> values;
  for (size_t v = 0; v < nviews; ++v) {
    const std::vector<int>& dims = layout_->view_dimensions[v];
    values.clear();
    for (int d : dims) values.push_back(fact.dimensions[d]);
    CellId id{static_cast<int>(v), windows[v].start,
              GroupKey(layout_->view_dimension_names[v], values)};
    auto [it, created] = cells_.try_emplace(std::move(id));
    Cell& cell = it->second;
    if (created) {
      cell.window = windows[v];
      cell.group = values;
    }
    UnitStats& u = cell.units[fact.unit_key];
    const std::vector<int>& fields = layout_->view_fields[v];
    if (u.fields.size() != fields.size()) u.fields.resize(fields.size());
    ++u.records;
    u.count += fact.unit_count;
    for (size_t m = 0; m < fields.size(); ++m) {
      if (fields[m] < 0 || !fact.fields[fields[m]].has_value()) continue;
      const double x = *fact.fields[fields[m]];
      FieldStats& s = u.fields[m];
      ++s.n;
      s.sum += x;
      s.min = std::min(s.min, x);
      s.max = std::max(s.max, x);
    }
    if (!cell.dirty) {
      cell.dirty = true;
      dirty_.insert(it->first);
    }
  }
  return Outcome::kMerged;
}

void Engine::Skip(int32_t partition, int64_t next_offset) {
  positions_[partition] = std::max(positions_[partition], next_offset);
}

std::optional<Engine::Advance> Engine::Evaluate(absl::Time now) {
  const ViewSetSpec& spec = layout_->spec;
  bool any = false;
  absl::Time candidate = absl::InfiniteFuture();
  for (auto& [p, pc] : clocks_) {
    const bool idle = now - pc.last_seen >= spec.idle_timeout;
    if (idle) {
      pc.aligned = false;
      continue;
    }
    if (!pc.aligned && pc.max_event - spec.grace >= watermark_) pc.aligned = true;
    if (!pc.aligned) continue;
    any = true;
    candidate = std::min(candidate, pc.max_event - spec.grace);
  }
  CloseCause cause = CloseCause::kWatermark;
  if (!any) {
    candidate = now - std::max(spec.grace, spec.idle_timeout);
    cause = CloseCause::kIdle;
  }
  if (candidate <= watermark_) return std::nullopt;
  watermark_ = candidate;
  return Advance{watermark_, cause};
}

void Engine::AdvanceTo(absl::Time w) { watermark_ = std::max(watermark_, w); }

std::vector<ClosedCell> Engine::TakeClosed() {
  std::vector<ClosedCell> out;
  for (auto it = cells_.begin(); it != cells_.end();) {
    if (it->second.window.end <= watermark_) {
      dirty_.insert(it->first);
      it->second.dirty = false;
      out.push_back({it->first, std::move(it->second)});
      it = cells_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void Engine::Restore(absl::Time watermark, std::map<int32_t, PartitionClock> clocks,
                     std::map<int32_t, int64_t> positions, std::map<CellId, Cell> cells,
                     absl::Time now) {
  watermark_ = watermark;
  for (auto& [p, pc] : clocks) {
    pc.last_seen = now;
    clocks_[p] = pc;
  }
  for (const auto& [p, o] : positions) positions_[p] = o;
  cells_ = std::move(cells);
  for (auto& [id, cell] : cells_) cell.dirty = false;
  dirty_.clear();
}

std::vector<CellId> Engine::TakeDirty() {
  std::vector<CellId> out;
  out.reserve(dirty_.size());
  for (const CellId& id : dirty_) {
    auto it = cells_.find(id);
    if (it != cells_.end()) it->second.dirty = false;
    out.push_back(id);
  }
  dirty_.clear();
  return out;
}

}  // namespace views
}  // namespace polder
