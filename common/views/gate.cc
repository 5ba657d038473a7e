#include "common/views/gate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/views/lp.h"

namespace polder {
namespace views {
namespace {

constexpr double kEps = 1e-6;

int WindowRank(WindowSize s) {
  switch (s) {
    case WindowSize::kQuarterHour:
      return 0;
    case WindowSize::kHour:
      return 1;
    case WindowSize::kDay:
      return 2;
  }
  return 0;
}

// Counts are integers: the attacker rounds the LP's bounds inwards.
double RoundUp(double v) { return std::ceil(v - kEps); }
double RoundDown(double v) { return std::isinf(v) ? v : std::floor(v + kEps); }

}  // namespace

std::string CoarsenGridCode(const std::string& code, int metres) {
  // E<4 digits>N<4 digits>, hectometres.
  if (code.size() != 10 || code[0] != 'E' || code[5] != 'N') return code;
  int x = 0, y = 0;
  if (!absl::SimpleAtoi(code.substr(1, 4), &x) || !absl::SimpleAtoi(code.substr(6, 4), &y)) {
    return code;
  }
  const int step = metres / 100;
  if (step <= 0) return code;
  return absl::StrFormat("E%04dN%04d", x - x % step, y - y % step);
}

// The relations of one block: variables are its cells; an instance ties a parent cell to the
// finer cells inside it.
struct Gate::Block {
  std::vector<CellId> ids;
  std::map<CellId, int> index;
  // Variables beyond the cells (index ≥ ids.size()): the parts of a cell the map splits, one
  // per partner.
  int parts = 0;
  struct Instance {
    int parent = 0;
    std::vector<int> children;
  };
  std::vector<Instance> instances;
  std::vector<std::vector<int>> parent_instances;  // per cell: instances it is a child of
  std::vector<int> component;                      // per cell
  std::vector<std::vector<int>> members;           // per component: its cells
  std::vector<std::vector<int>> component_instances;

  // Per component, built on first use: the attacker's LP (current bounds), with each cell's
  // index in it.
  struct Model {
    std::unique_ptr<LinearProgram> full;
    std::map<int, int> var;  // block index → LP variable
  };
  std::map<int, Model> models;
};

Gate::Gate(const SetLayout* layout, const WindowClock* clock, GuardSpec spec, DataClass data_class,
           const PTable* table)
    : layout_(layout), clock_(clock), spec_(spec), class_(data_class), table_(table) {
  enabled_ = data_class == DataClass::kAggregated || data_class == DataClass::kPseudonymised;
  const std::vector<ViewSpec>& views = layout_->spec.views;
  const Guard guard(spec_, class_, table_);
  for (const ViewSpec& v : views) {
    int index = -1;
    for (size_t m = 0; m < v.measures.size(); ++m) {
      const Measure::Kind kind = v.measures[m].kind;
      if (kind == Measure::Kind::kCount || kind == Measure::Kind::kEntities) {
        index = static_cast<int>(m);
      }
    }
    count_measure_.push_back(index);
    units_.push_back(guard.CountsUnits(v));
  }
  // Views relate only when they count the same thing: an AGGREGATED count (Σ unit_count) says
  // nothing about how many units reported, and the reverse.
  auto same_frequency = [&](size_t a, size_t b) {
    return units_[a] == units_[b] && count_measure_[a] >= 0 && count_measure_[b] >= 0;
  };
  for (size_t p = 0; p < views.size(); ++p) {
    for (size_t c = 0; c < views.size(); ++c) {
      if (p == c || WindowRank(views[c].window) > WindowRank(views[p].window)) continue;
      if (!same_frequency(p, c)) continue;
      ViewRelation r;
      r.parent = static_cast<int>(p);
      r.child = static_cast<int>(c);
      bool related = true;
      bool coarsened = false;
      for (const Dimension& dp : views[p].group_by) {
        int found = -1;
        int metres = 0;
        for (size_t j = 0; j < views[c].group_by.size() && found < 0; ++j) {
          const Dimension& dc = views[c].group_by[j];
          if (dc.kind != dp.kind) continue;
          if (dp.kind == Dimension::Kind::kField && dc.field != dp.field) continue;
          if (dp.kind == Dimension::Kind::kGrid) {
            if (dc.grid_metres > dp.grid_metres || dp.grid_metres % dc.grid_metres != 0) continue;
            if (dc.grid_metres != dp.grid_metres) metres = dp.grid_metres;
          }
          found = static_cast<int>(j);
        }
        if (found < 0) {
          related = false;
          break;
        }
        if (metres != 0) coarsened = true;
        r.dims.push_back({found, metres});
      }
      if (!related) continue;
      const bool same_window = views[c].window == views[p].window;
      const bool same_cells =
          same_window && !coarsened && views[c].group_by.size() == views[p].group_by.size();
      if (same_cells && c < p) continue;  // identical views: one relation, not two
      relations_.push_back(std::move(r));
    }
  }

  // The map: a municipality view (no grid) and a grid view (no municipality).
  for (size_t d = 0; d < layout_->dimensions.size(); ++d) {
    const std::string& name = layout_->dimensions[d];
    if (name == "municipality") municipality_dim_ = static_cast<int>(d);
    if (absl::StartsWith(name, "grid:")) grid_dims_.push_back({static_cast<int>(d), name});
  }
  auto geo = [&](const ViewSpec& v, Dimension::Kind kind) {
    int found = -1, count = 0;
    for (size_t j = 0; j < v.group_by.size(); ++j) {
      if (v.group_by[j].kind == kind) {
        found = static_cast<int>(j);
        ++count;
      }
    }
    return count == 1 ? found : -1;
  };
  for (size_t m = 0; m < views.size(); ++m) {
    const int mj = geo(views[m], Dimension::Kind::kMunicipality);
    if (mj < 0 || geo(views[m], Dimension::Kind::kGrid) >= 0) continue;
    for (size_t g = 0; g < views.size(); ++g) {
      const int gj = geo(views[g], Dimension::Kind::kGrid);
      if (gj < 0 || geo(views[g], Dimension::Kind::kMunicipality) >= 0) continue;
      if (!same_frequency(m, g)) continue;
      // The finer window is split; with equal windows, whichever orientation relates the other
      // dimensions (the grid view first).
      std::vector<bool> fine_is_grid;
      const int rm = WindowRank(views[m].window), rg = WindowRank(views[g].window);
      if (rg <= rm) fine_is_grid.push_back(true);
      if (rm <= rg) fine_is_grid.push_back(false);
      for (bool grid_fine : fine_is_grid) {
        const int fine = static_cast<int>(grid_fine ? g : m);
        const int coarse = static_cast<int>(grid_fine ? m : g);
        MapRelation r;
        r.fine = fine;
        r.coarse = coarse;
        r.fine_is_grid = grid_fine;
        r.fine_geo = grid_fine ? gj : mj;
        r.grid = views[g].group_by[gj].Name();
        const int coarse_geo = grid_fine ? mj : gj;
        bool related = true;
        for (size_t j = 0; j < views[coarse].group_by.size() && related; ++j) {
          if (static_cast<int>(j) == coarse_geo) {
            r.dims.push_back(-1);
            continue;
          }
          int found = -1;
          for (size_t i = 0; i < views[fine].group_by.size() && found < 0; ++i) {
            if (views[fine].group_by[i] == views[coarse].group_by[j]) found = static_cast<int>(i);
          }
          related = found >= 0;
          r.dims.push_back(found);
        }
        if (!related) continue;
        map_relations_.push_back(std::move(r));
        break;
      }
    }
  }
  if (municipality_dim_ < 0) grid_dims_.clear();
}

void Gate::Note(const Fact& fact) {
  if (map_relations_.empty()) return;
  if (!note_day_.Contains(fact.event_time)) {
    note_day_ = clock_->WindowOf(WindowSize::kDay, fact.event_time);
  }
  const std::string& municipality = fact.dimensions[municipality_dim_];
  for (const auto& [d, name] : grid_dims_) {
    MapPair pair{note_day_.start, name, fact.dimensions[d], municipality};
    if (pairs_.count(pair) != 0) continue;
    new_pairs_.push_back(pair);
    pairs_.insert(std::move(pair));
  }
}

void Gate::RestorePair(MapPair pair) { pairs_.insert(std::move(pair)); }

std::vector<MapPair> Gate::TakeNewPairs() {
  std::vector<MapPair> out;
  out.swap(new_pairs_);
  return out;
}

absl::Time Gate::coverage(int view) const {
  auto it = since_.find(view);
  return it == since_.end() ? absl::InfinitePast() : it->second;
}

absl::Time Gate::DayOf(const Window& w) const {
  return clock_->WindowOf(WindowSize::kDay, w.start).start;
}

void Gate::Restore(const CellId& id, GateEntry entry) {
  const absl::Time day = DayOf(entry.window);
  blocks_[day][id] = std::move(entry);
}

const GateEntry* Gate::Find(const CellId& id) const {
  for (const auto& [day, cells] : blocks_) {
    auto it = cells.find(id);
    if (it != cells.end()) return &it->second;
  }
  return nullptr;
}

size_t Gate::size() const {
  size_t n = 0;
  for (const auto& [day, cells] : blocks_) n += cells.size();
  return n;
}

std::vector<CellId> Gate::Forget(absl::Time watermark, std::vector<MapPair>* pairs_gone) {
  std::vector<CellId> gone;
  for (auto it = blocks_.begin(); it != blocks_.end();) {
    if (clock_->WindowOf(WindowSize::kDay, it->first).end <= watermark) {
      for (const auto& [id, entry] : it->second) gone.push_back(id);
      it = blocks_.erase(it);
    } else {
      ++it;
    }
  }
  // Pairs are ordered by day: the first day still open ends the scan.
  for (auto it = pairs_.begin(); it != pairs_.end();) {
    const absl::Time day = it->day;
    if (clock_->WindowOf(WindowSize::kDay, day).end > watermark) break;
    for (; it != pairs_.end() && it->day == day;) {
      if (pairs_gone != nullptr) pairs_gone->push_back(*it);
      it = pairs_.erase(it);
    }
  }
  return gone;
}

absl::StatusOr<Gate::Report> Gate::Apply(const std::vector<ClosedCell>& closed,
                                         std::vector<PublishedCell>* published) {
  Report report;
  if (!enabled_ || closed.empty()) return report;
  const Guard guard(spec_, class_, table_);
  std::map<absl::Time, std::vector<CellId>> closing;  // by day
  std::map<CellId, int64_t> truths, cell_key_values;
  std::map<CellId, size_t> position;
  for (size_t i = 0; i < closed.size(); ++i) {
    const ClosedCell& cc = closed[i];
    const int m = count_measure_[cc.id.view];
    if (m < 0) continue;
    const PublishedMeasure& pm = (*published)[i].measures[m];
    GateEntry e;
    e.window = cc.cell.window;
    e.group = cc.cell.group;
    e.reason = pm.protection;
    switch (pm.protection) {
      case Protection::kNone:
        e.kind = GateEntry::Kind::kPublished;
        e.published = static_cast<int64_t>(pm.value.value_or(0));
        truths[cc.id] = guard.Frequency(layout_->spec.views[cc.id.view], cc.cell);
        cell_key_values[cc.id] = e.published;
        break;
      case Protection::kThreshold:
        e.kind = GateEntry::Kind::kThreshold;
        break;
      case Protection::kDominance: {
        e.kind = GateEntry::Kind::kProtected;
        e.truth = guard.Frequency(layout_->spec.views[cc.id.view], cc.cell);
        std::vector<double> per_unit;
        for (const auto& [key, u] : cc.cell.units) {
          per_unit.push_back(static_cast<double>(units_[cc.id.view] ? 1 : u.count));
        }
        e.upl = UpperProtectionLevel(per_unit, spec_.p);
        break;
      }
      default:
        e.kind = GateEntry::Kind::kProtected;
        break;
    }
    const absl::Time day = DayOf(e.window);
    blocks_[day][cc.id] = std::move(e);
    closing[day].push_back(cc.id);
    position[cc.id] = i;
  }
  for (auto& [day, ids] : closing) {
    Block block;
    absl::Status s = DecideBlock(block, ids, truths, cell_key_values, blocks_[day], report);
    if (!s.ok()) return s;
  }
  // What the gate decided, into the outputs.
  for (const auto& [id, i] : position) {
    const GateEntry* e = Find(id);
    PublishedMeasure& pm = (*published)[i].measures[count_measure_[id.view]];
    if (e->kind == GateEntry::Kind::kPublished) {
      pm.value = static_cast<double>(e->published);
    } else if (e->reason == Protection::kGate || e->reason == Protection::kSecondary) {
      // Every measure of a guarded view is a count of the same cell: all are protected.
      for (PublishedMeasure& other : (*published)[i].measures) {
        other.value.reset();
        other.perturbed = false;
        other.protection = e->reason;
      }
    }
  }
  return report;
}

absl::Status Gate::DecideBlock(Block& b, const std::vector<CellId>& closing,
                               const std::map<CellId, int64_t>& truths,
                               const std::map<CellId, int64_t>& cell_key_values,
                               std::map<CellId, GateEntry>& entries, Report& report) {
  const std::vector<ViewSpec>& views = layout_->spec.views;
  // Cells and relation instances.
  for (const auto& [id, e] : entries) {
    b.index[id] = static_cast<int>(b.ids.size());
    b.ids.push_back(id);
  }
  const int n = static_cast<int>(b.ids.size());
  b.parent_instances.assign(n, {});
  for (const ViewRelation& r : relations_) {
    std::map<int, int> instance_of;  // parent cell → instance
    std::vector<std::string> names;
    for (const Dimension& d : views[r.parent].group_by) names.push_back(d.Name());
    for (int c = 0; c < n; ++c) {
      if (b.ids[c].view != r.child) continue;
      const GateEntry& child = entries.at(b.ids[c]);
      const Window parent_window = clock_->WindowOf(views[r.parent].window, child.window.start);
      if (coverage(r.parent) > parent_window.start || coverage(r.child) > parent_window.start) {
        continue;
      }
      std::vector<std::string> values;
      for (const auto& [j, metres] : r.dims) {
        values.push_back(metres != 0 ? CoarsenGridCode(child.group[j], metres) : child.group[j]);
      }
      const CellId parent_id{r.parent, parent_window.start, GroupKey(names, values)};
      auto p = b.index.find(parent_id);
      if (p == b.index.end()) continue;  // not closed yet: no relation known
      auto [it, fresh] = instance_of.insert({p->second, static_cast<int>(b.instances.size())});
      if (fresh) b.instances.push_back(Block::Instance{p->second, {}});
      b.instances[it->second].children.push_back(c);
      b.parent_instances[c].push_back(it->second);
    }
  }
  // The map: each fine cell whose partners' coarse cells are closed is split into parts, one per
  // partner; each coarse cell collects its parts.
  if (!map_relations_.empty()) {
    const absl::Time day =
        entries.empty() ? absl::InfinitePast() : DayOf(entries.begin()->second.window);
    // Partners of a fine cell's geo value: (grid name, code) → municipalities and
    // (grid name, municipality) → codes.
    std::map<std::pair<std::string, std::string>, std::vector<std::string>> municipalities_of,
        codes_of;
    for (auto it = pairs_.lower_bound(MapPair{day, "", "", ""});
         it != pairs_.end() && it->day == day; ++it) {
      municipalities_of[{it->grid, it->code}].push_back(it->municipality);
      codes_of[{it->grid, it->municipality}].push_back(it->code);
    }
    for (const MapRelation& r : map_relations_) {
      std::vector<std::string> names;
      for (const Dimension& d : views[r.coarse].group_by) names.push_back(d.Name());
      std::map<int, int> collector_of;  // coarse cell → its instance
      for (int c = 0; c < n; ++c) {
        if (b.ids[c].view != r.fine) continue;
        const GateEntry& fine = entries.at(b.ids[c]);
        const Window coarse_window = clock_->WindowOf(views[r.coarse].window, fine.window.start);
        if (coverage(r.coarse) > coarse_window.start || coverage(r.fine) > coarse_window.start) {
          continue;
        }
        const auto& partners_of = r.fine_is_grid ? municipalities_of : codes_of;
        auto partners = partners_of.find({r.grid, fine.group[r.fine_geo]});
        if (partners == partners_of.end()) continue;
        // A partner without a coarse cell in a closed window holds none of its records (its
        // part is 0); while the coarse window is open no coarse cell is closed and nothing is
        // related yet.
        std::vector<int> coarse_cells;
        for (const std::string& partner : partners->second) {
          std::vector<std::string> values;
          for (int j : r.dims) values.push_back(j < 0 ? partner : fine.group[j]);
          auto it = b.index.find(CellId{r.coarse, coarse_window.start, GroupKey(names, values)});
          if (it != b.index.end()) coarse_cells.push_back(it->second);
        }
        if (coarse_cells.empty()) continue;
        auto collect = [&](int coarse, int part) {
          auto [it, fresh] = collector_of.insert({coarse, static_cast<int>(b.instances.size())});
          if (fresh) b.instances.push_back(Block::Instance{coarse, {}});
          b.instances[it->second].children.push_back(part);
          b.parent_instances[part].push_back(it->second);
        };
        // One partner (a cell inside one municipality): the part is the whole cell.
        if (coarse_cells.size() == 1) {
          collect(coarse_cells[0], c);
          continue;
        }
        const int split = static_cast<int>(b.instances.size());
        b.instances.push_back(Block::Instance{c, {}});
        for (int coarse : coarse_cells) {
          const int part = n + b.parts++;
          b.instances[split].children.push_back(part);
          b.parent_instances.push_back({split});
          collect(coarse, part);
        }
      }
    }
  }
  const int vars = n + b.parts;

  // Components (union-find over the instances).
  std::vector<int> up(vars);
  for (int i = 0; i < vars; ++i) up[i] = i;
  std::function<int(int)> root = [&](int i) { return up[i] == i ? i : up[i] = root(up[i]); };
  for (const Block::Instance& in : b.instances) {
    for (int c : in.children) up[root(c)] = root(in.parent);
  }
  std::map<int, int> component_of_root;
  b.component.assign(vars, 0);
  for (int i = 0; i < vars; ++i) {
    auto [it, fresh] =
        component_of_root.insert({root(i), static_cast<int>(component_of_root.size())});
    b.component[i] = it->second;
  }
  b.members.assign(component_of_root.size(), {});
  b.component_instances.assign(component_of_root.size(), {});
  for (int i = 0; i < vars; ++i) b.members[b.component[i]].push_back(i);
  for (size_t k = 0; k < b.instances.size(); ++k) {
    b.component_instances[b.component[b.instances[k].parent]].push_back(static_cast<int>(k));
  }

  std::set<int> pending;
  for (const CellId& id : closing) {
    if (entries.at(id).kind == GateEntry::Kind::kPublished) pending.insert(b.index.at(id));
  }
  const double k_max = static_cast<double>(spec_.k - 1);
  auto full_bounds = [&](int i) -> std::pair<double, double> {
    if (i >= n) return {0, LinearProgram::kInfinity};  // a part of a split cell
    const GateEntry& e = entries.at(b.ids[i]);
    if (pending.count(i) != 0) return {0, LinearProgram::kInfinity};
    switch (e.kind) {
      case GateEntry::Kind::kPublished: {
        const auto [lo, hi] = table_->Existence(e.published);
        // A published cell is not THRESHOLD: a value above 0 comes from n ≥ k.
        const double low = e.published > 0 ? std::max<double>(lo, spec_.k) : lo;
        return {low, static_cast<double>(hi)};
      }
      case GateEntry::Kind::kThreshold:
      case GateEntry::Kind::kProtected:
        // Every withheld cell carries the same label, which bounds nothing: a THRESHOLD cell is
        // not known to be below k.
        return {0, LinearProgram::kInfinity};
    }
    return {0, LinearProgram::kInfinity};
  };
  // A relation is additive when its views add up unit_count (AGGREGATED counts); of distinct
  // units otherwise. Related views count the same thing, so the parent's view decides.
  auto additive = [&](const Block::Instance& in) { return !units_[b.ids[in.parent].view]; };
  auto add_rows = [&](LinearProgram& lp, const std::map<int, int>& var, int comp) {
    for (int k : b.component_instances[comp]) {
      const Block::Instance& in = b.instances[k];
      std::vector<std::pair<int, double>> sum{{var.at(in.parent), 1.0}};
      for (int c : in.children) sum.push_back({var.at(c), -1.0});
      if (additive(in)) {
        lp.AddRow(std::move(sum), 0, 0);
      } else {
        // Distinct units: max(children) ≤ parent ≤ Σ children.
        lp.AddRow(std::move(sum), -LinearProgram::kInfinity, 0);
        for (int c : in.children) {
          lp.AddRow({{var.at(in.parent), 1.0}, {var.at(c), -1.0}}, 0, LinearProgram::kInfinity);
        }
      }
    }
  };
  auto model = [&](int comp) -> Block::Model& {
    auto it = b.models.find(comp);
    if (it != b.models.end()) return it->second;
    Block::Model& m = b.models[comp];
    m.full = std::make_unique<LinearProgram>();
    for (int i : b.members[comp]) {
      const auto [lo, hi] = full_bounds(i);
      m.var[i] = m.full->AddVariable(lo, hi);
    }
    add_rows(*m.full, m.var, comp);
    return m;
  };

  // Witnesses: the LP's extreme points for each secret. A bound change only
  // invalidates the witnesses whose point leaves the new bounds (the rows never change), so
  // most checks need no LP at all.
  struct Witness {
    std::vector<double> lo, hi;  // points in the model's variables; empty: none
  };
  std::map<int, Witness> full_witness;
  auto invalidate = [&](std::map<int, Witness>& witnesses, int comp, int v, double lo, double hi) {
    for (auto& [t, w] : witnesses) {
      if (b.component[t] != comp) continue;
      for (std::vector<double>* point : {&w.lo, &w.hi}) {
        if (!point->empty() && ((*point)[v] < lo - kEps || (*point)[v] > hi + kEps)) {
          point->clear();
        }
      }
    }
  };
  auto set_bounds = [&](int i) {
    const int comp = b.component[i];
    auto it = b.models.find(comp);
    if (it == b.models.end()) return;
    const int v = it->second.var.at(i);
    const auto [lo, hi] = full_bounds(i);
    it->second.full->SetBounds(v, lo, hi);
    invalidate(full_witness, comp, v, lo, hi);
  };
  // The secrets of a component: THRESHOLD cells, and small cells relabelled SECONDARY.
  auto secrets_in = [&](int comp) {
    std::vector<int> t;
    for (int i : b.members[comp]) {
      if (i >= n) continue;
      const GateEntry& e = entries.at(b.ids[i]);
      if (e.kind == GateEntry::Kind::kThreshold || e.small) t.push_back(i);
    }
    return t;
  };
  // Whether a secret keeps its protection in `lp` (the attacker's): a THRESHOLD cell's interval
  // covers [1, k − 1]; a small cell withheld for another reason has an interval reaching k (it
  // is not shown to be small). A valid witness proves its side without an LP.
  // One additive relation (a total and its parts, the usual shape of a sparse group's hour):
  // the LP's interval in closed form — a cell's own bounds cut by the row, each other cell at
  // its opposite extreme.
  auto single_row = [&](int comp, int t) -> std::optional<LinearProgram::Range> {
    if (b.component_instances[comp].size() != 1) return std::nullopt;
    const Block::Instance& in = b.instances[b.component_instances[comp][0]];
    if (!additive(in)) return std::nullopt;
    auto bounds = full_bounds;
    // The row: parent − Σ children = 0; coefficient +1 for the parent, −1 for each child.
    const double sign_t = in.parent == t ? 1.0 : -1.0;
    double lo = 0, hi = 0;  // range of −sign_t · Σ (other terms)
    auto add = [&](int i, double coefficient) {
      const auto [l, h] = bounds(i);
      // The other terms' sum a·x lies in [min, max]; t's term must cancel it.
      const double a = -coefficient / sign_t;
      lo += a > 0 ? a * l : a * h;
      hi += a > 0 ? a * h : a * l;
    };
    if (in.parent != t) add(in.parent, 1.0);
    for (int c : in.children) {
      if (c != t) add(c, -1.0);
    }
    const auto [tl, th] = bounds(t);
    LinearProgram::Range r;
    r.lo = std::max(tl, lo);
    r.hi = std::min(th, hi);
    if (r.lo > r.hi + kEps) return std::nullopt;  // leave the verdict to the solver
    return r;
  };
  auto protected_in = [&](int t, LinearProgram& lp, Witness& w) -> absl::StatusOr<bool> {
    // A cell in no relation keeps its own bounds: [1, k − 1] for THRESHOLD, [0, ∞) otherwise.
    if (b.component_instances[b.component[t]].empty()) return true;
    const bool threshold = entries.at(b.ids[t]).kind == GateEntry::Kind::kThreshold;
    const double want_hi = threshold ? k_max : static_cast<double>(spec_.k);
    if (std::optional<LinearProgram::Range> r = single_row(b.component[t], t)) {
      return (!threshold || RoundUp(r->lo) <= 1) && RoundDown(r->hi) >= want_hi;
    }
    const int v = model(b.component[t]).var.at(t);
    const bool lo_ok = !threshold || (!w.lo.empty() && w.lo[v] <= 1 + kEps);
    const bool hi_ok = !w.hi.empty() && w.hi[v] >= want_hi - kEps;
    if (lo_ok && hi_ok) return true;
    absl::StatusOr<LinearProgram::Range> r = lp.Bound(v);
    ++report.lps;
    if (absl::IsFailedPrecondition(r.status())) return false;  // no point at all: refuse
    if (!r.ok()) return r.status();
    w.lo = r->at_lo;
    w.hi = r->at_hi;
    return (!threshold || RoundUp(r->lo) <= 1) && RoundDown(r->hi) >= want_hi;
  };
  // Cells whose publication bounds `cell` from above: its parents, theirs, and through the map
  // the coarse cells collecting its parts.
  std::vector<std::vector<int>> splits(n);  // per cell: the instances splitting it into parts
  for (size_t k = 0; k < b.instances.size(); ++k) {
    const Block::Instance& in = b.instances[k];
    if (!in.children.empty() && in.children[0] >= n)
      splits[in.parent].push_back(static_cast<int>(k));
  }
  auto ancestors = [&](int cell) {  // nearest first
    std::vector<int> out;
    std::set<int> seen{cell};
    std::deque<int> queue{cell};
    while (!queue.empty()) {
      const int c = queue.front();
      queue.pop_front();
      if (c < n) {
        for (int k : splits[c]) {
          for (int part : b.instances[k].children) {
            if (seen.insert(part).second) queue.push_back(part);
          }
        }
      }
      for (int k : b.parent_instances[c]) {
        const int p = b.instances[k].parent;
        if (!seen.insert(p).second) continue;
        out.push_back(p);
        queue.push_back(p);
      }
    }
    return out;
  };
  std::set<int> closing_now;
  std::set<int> touched;
  for (const CellId& id : closing) {
    closing_now.insert(b.index.at(id));
    touched.insert(b.component[b.index.at(id)]);
  }

  // (Before withheld cells carried one label, a "label gate" relabelled THRESHOLD totals whose
  // k − 1 bounded their parts; a label that bounds nothing leaves it nothing to do, so
  // Report::relabelled stays 0. Restored entries may still be flagged `small`.)

  // The frequency gate, in CellId order.
  for (const CellId& id : closing) {
    const int c = b.index.at(id);
    if (pending.count(c) == 0) continue;
    GateEntry& e = entries.at(id);
    const std::vector<int> secrets = secrets_in(b.component[c]);
    const int64_t ckm = cell_key_values.at(id);
    pending.erase(c);
    if (secrets.empty()) {
      e.published = ckm;
      set_bounds(c);
      continue;
    }
    std::vector<int64_t> candidates;
    for (const PTable::Entry& entry : table_->Row(truths.at(id))) {
      if (entry.weight > 0) candidates.push_back(entry.y);
    }
    std::sort(candidates.begin(), candidates.end(), [ckm](int64_t a, int64_t b) {
      const int64_t da = std::llabs(a - ckm), db = std::llabs(b - ckm);
      return da != db ? da < db : a < b;
    });
    bool accepted = false;
    for (int64_t y : candidates) {
      e.published = y;
      set_bounds(c);
      bool all = true;
      for (int t : secrets) {
        absl::StatusOr<bool> ok = protected_in(t, *model(b.component[t]).full, full_witness[t]);
        if (!ok.ok()) return ok.status();
        if (!*ok) {
          all = false;
          break;
        }
      }
      if (all) {
        accepted = true;
        if (y != ckm) ++report.moves;
        break;
      }
    }
    if (!accepted) {
      e.kind = GateEntry::Kind::kProtected;
      e.reason = Protection::kGate;
      e.published = 0;
      set_bounds(c);
      ++report.fallbacks;
    }
  }

  // C2 over every secret of the components that changed: what the gate could not keep.
  for (int comp : touched) {
    for (int t : secrets_in(comp)) {
      absl::StatusOr<bool> ok = protected_in(t, *model(comp).full, full_witness[t]);
      if (!ok.ok()) return ok.status();
      if (!*ok) ++report.c2_violations;
    }
  }

  // C3: DOMINANCE cells of those components; secondary protection of the nearest published cell
  // closing now above a failing one.
  for (int comp : touched) {
    for (int d : b.members[comp]) {
      if (d >= n) continue;
      const GateEntry& de = entries.at(b.ids[d]);
      // In no relation its interval is [0, ∞), which meets C3 (UPL < X).
      if (de.kind != GateEntry::Kind::kProtected || de.reason != Protection::kDominance ||
          de.upl <= 0 || b.component_instances[comp].empty()) {
        continue;
      }
      while (true) {
        Block::Model& m = model(comp);
        absl::StatusOr<LinearProgram::Range> r = absl::InternalError("unset");
        if (std::optional<LinearProgram::Range> closed_form = single_row(comp, d)) {
          r = *closed_form;
        } else {
          r = m.full->Bound(m.var.at(d));
          ++report.lps;
        }
        if (!r.ok()) return r.status();
        const double x = static_cast<double>(de.truth);
        if (r->hi >= x + de.upl - kEps && r->lo <= x - de.upl + kEps) break;
        std::optional<int> victim;
        for (int a : ancestors(d)) {
          if (closing_now.count(a) != 0 &&
              entries.at(b.ids[a]).kind == GateEntry::Kind::kPublished) {
            victim = a;
            break;
          }
        }
        if (!victim) {
          ++report.c3_violations;
          break;
        }
        GateEntry& ve = entries.at(b.ids[*victim]);
        ve.kind = GateEntry::Kind::kProtected;
        ve.reason = Protection::kSecondary;
        ve.published = 0;
        set_bounds(*victim);
        ++report.secondary;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace views
}  // namespace polder
