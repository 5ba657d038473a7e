// The publication gate (ADR 0016 §10–§11): before closed cells are written, bound every
// protected cell of their *block* — all cells of all views of the dataset whose windows lie in
// one Amsterdam day — as a linear-programming attacker would, and change what is about to be
// published until no protected cell is bounded more closely than its criterion allows.
//
// The attacker knows every published count ŷ (so n lies in the p-table's existence set S(ŷ),
// and n ≥ k when ŷ > 0, since a published cell is not THRESHOLD), which cells are withheld
// (one label for every reason, so n ≥ 0 and nothing more), and the relations between views: a cell
// of a coarser view (longer window, coarser grid, fewer dimensions) is the sum of the finer view's
// cells inside it (AGGREGATED: Σ of counts), or for distinct units lies between their maximum
// and their sum (PSEUDONYMISED, and `entities` views of any class); an absent finer cell is 0.
// Views relate only when they count the same thing (an AGGREGATED count and an `entities` view
// do not). Relations are used only where both views covered the whole coarser window
// (SetCoverage).
//
// Municipalities and grid cells are related by the map: an attacker with a map knows which grid
// cells lie in which municipality, so a municipality's cell holds the records of the grid cells
// inside it and part of those on its border. The gate models this as a transport between the
// two views: each cell of the finer view is split into one part per partner (municipality or
// grid cell) it shares records with, and each cell of the coarser view is the sum (distinct
// units: between the maximum and the sum) of its parts. The partners are the pairs the day's
// records showed (Note) — a subset of the map's, so the gate's attacker knows at least as much
// as one with a map.
//
// The criteria, asserted by the attack test:
//   C2  each THRESHOLD cell's LP interval covers [1, k − 1]: the published values disclose
//       nothing about it beyond what being withheld allows;
//   C3  each DOMINANCE cell's interval reaches X + UPL above and X − UPL below.
//
// Apply decides the cells closing now, in order: THRESHOLD and other protections are added as
// labelled; each published count then takes, of the values its true count's p-table row allows,
// the one nearest the cell-key value (ties: the smaller) with which C2 holds for every THRESHOLD
// cell related to it (a *move*), or is protected (GATE) when none does. Then, while a DOMINANCE
// cell fails C3, a published cell closing now that lies above it in the relations is protected
// (SECONDARY). C2 and C3 failures the gate cannot repair are counted (they alert on /statusz).
//
//   Gate gate(&layout, &clock, spec.guard, DataClass::kAggregated, &table);
//   ASSIGN_OR_RETURN(Gate::Report report, gate.Apply(closed, &published));
//
// Not thread-safe.
#ifndef POLDER_COMMON_VIEWS_GATE_H_
#define POLDER_COMMON_VIEWS_GATE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/views/engine.h"
#include "common/views/guard.h"
#include "common/views/ptable.h"
#include "common/views/spec.h"
#include "common/views/window.h"

namespace polder {
namespace views {

// One cell of a block as the gate remembers it (persisted in the changelog while its day is
// open, so recovery decides exactly as before the crash).
struct GateEntry {
  enum class Kind { kPublished, kThreshold, kProtected };
  Kind kind = Kind::kProtected;
  Window window;
  std::vector<std::string> group;  // values in the view's group_by order
  int64_t published = 0;           // ŷ (kPublished)
  Protection reason = Protection::kNone;
  // Confidential, kept only for DOMINANCE cells (C3): the true count and its upper protection
  // level.
  int64_t truth = 0;
  double upl = 0;
  // Confidential: a cell below k withheld as SECONDARY (by the label gate that existed while
  // labels stated reasons; restored from older changelogs); it stays a secret the gate protects
  // (nothing published may show it below k).
  bool small = false;
};

// A grid cell and a municipality a record of the day joined (grid: the dimension's name, e.g.
// "grid:100m"). Persisted in the changelog while the day is open.
struct MapPair {
  absl::Time day;  // the Amsterdam day's start
  std::string grid;
  std::string code;
  std::string municipality;
  friend bool operator<(const MapPair& a, const MapPair& b) {
    return std::tie(a.day, a.grid, a.code, a.municipality) <
           std::tie(b.day, b.grid, b.code, b.municipality);
  }
};

// `code` (E<x>N<y> in hectometres) of a grid cell, as the code of the `metres` cell holding it;
// anything else ("unknown") unchanged.
std::string CoarsenGridCode(const std::string& code, int metres);

class Gate {
 public:
  // `layout`, `clock` and `table` must outlive the gate.
  Gate(const SetLayout* layout, const WindowClock* clock, GuardSpec spec, DataClass data_class,
       const PTable* table);

  // Whether the gate does anything: guarded classes only (NONE publishes exact values).
  bool enabled() const { return enabled_; }

  // The first instant from which `view` saw every record (a view added to a running set);
  // relations hold only for coarser windows starting at or after both views' coverage.
  void SetCoverage(int view, absl::Time since) { since_[view] = since; }
  absl::Time coverage(int view) const;

  // Re-adds a cell published before (recovery).
  void Restore(const CellId& id, GateEntry entry);

  // Whether the set has a municipality view and a grid view the map relates (then Note matters).
  bool uses_map() const { return !map_relations_.empty(); }
  // Notes the grid cells and the municipality of a record merged into the views.
  void Note(const Fact& fact);
  // Re-adds a pair noted before (recovery).
  void RestorePair(MapPair pair);
  // The pairs noted since the last call, for the changelog.
  std::vector<MapPair> TakeNewPairs();

  struct Report {
    int64_t moves = 0;          // published with another value than the cell key's
    int64_t fallbacks = 0;      // protected as GATE
    int64_t secondary = 0;      // protected as SECONDARY for C3
    int64_t relabelled = 0;     // 0 since withheld cells carry one label (the label gate is gone)
    int64_t c2_violations = 0;  // THRESHOLD cells the gate could not keep at their interval
    int64_t c3_violations = 0;  // DOMINANCE cells below their protection levels
    int64_t lps = 0;            // linear programs solved
  };
  // Decides the cells closing now: `closed` as the engine took them (ordered by CellId) and
  // `published` as the guard made them, in the same order; rewrites the count measure of cells
  // the gate moves or protects. An error (the LP solver failing) means nothing may be written.
  absl::StatusOr<Report> Apply(const std::vector<ClosedCell>& closed,
                               std::vector<PublishedCell>* published);

  // Forgets the blocks whose day ended at or before `watermark` (nothing more is published in
  // them) and their map pairs; the ids forgotten, for the changelog's tombstones, and the pairs
  // in `pairs_gone` if given.
  std::vector<CellId> Forget(absl::Time watermark, std::vector<MapPair>* pairs_gone = nullptr);

  const GateEntry* Find(const CellId& id) const;
  size_t size() const;

 private:
  struct ViewRelation {
    int parent = 0;
    int child = 0;
    // Per parent dimension: the child dimension it is read from and, for a coarser grid, the
    // parent's cell size (0: the value as it is).
    std::vector<std::pair<int, int>> dims;
  };
  // A municipality view and a grid view: cells of `fine` (the shorter window; the grid view when
  // both are equal) are split by partner, cells of `coarse` collect the parts.
  struct MapRelation {
    int fine = 0;
    int coarse = 0;
    bool fine_is_grid = true;
    int fine_geo = 0;  // index in the fine view's group of its municipality or grid
    std::string grid;  // the grid dimension's name ("grid:100m"): the pairs to use
    // Per coarse dimension: the fine dimension it is read from, or -1 for the partner.
    std::vector<int> dims;
  };
  struct Block;

  absl::Time DayOf(const Window& w) const;
  absl::Status DecideBlock(Block& block, const std::vector<CellId>& closing,
                           const std::map<CellId, int64_t>& truths,
                           const std::map<CellId, int64_t>& cell_key_values,
                           std::map<CellId, GateEntry>& entries, Report& report);

  const SetLayout* layout_;
  const WindowClock* clock_;
  GuardSpec spec_;
  DataClass class_;
  const PTable* table_;
  bool enabled_ = false;
  std::vector<int> count_measure_;  // per view: index of its count or entities measure, or -1
  std::vector<bool> units_;         // per view: counts distinct units (Guard::CountsUnits)
  std::vector<ViewRelation> relations_;
  std::vector<MapRelation> map_relations_;
  int municipality_dim_ = -1;                           // in SetLayout::dimensions
  std::vector<std::pair<int, std::string>> grid_dims_;  // index and name of each grid dimension
  std::set<MapPair> pairs_;
  std::vector<MapPair> new_pairs_;
  Window note_day_;  // the day of the last noted record
  std::map<int, absl::Time> since_;
  std::map<absl::Time, std::map<CellId, GateEntry>> blocks_;  // by day start
};

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_GATE_H_
