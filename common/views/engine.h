// The deterministic core of a view set (ADR 0016 §3): records in, closed cells out. It keeps
// the watermark, the open cells of every view and the input positions; it knows nothing of
// Kafka, clocks or disclosure control, so the node's view job, the recomputation oracle of the
// tests and (later) the national aggregator share one implementation of the window semantics.
//
//   Engine engine(layout, clock, partitions, /*now=*/start);
//   switch (engine.Offer(fact, now)) { ... }               // merged, rejected or late
//   if (auto advance = engine.Advance(now)) {              // the watermark moved
//     std::vector<ClosedCell> closed = engine.TakeClosed();  // each (window, group) once
//   }
//
// Semantics: a record is *valid* when now − max_event_age ≤ t ≤ now + max_event_lead (t its
// event time); others are rejected and move nothing. A valid record whose window in any view is
// closed (end ≤ W) is late and merged nowhere. Per partition the engine keeps M_p (largest valid
// window time: the event time, or for interval-end datasets the interval's last instant, t − 1
// ms), L_p (clock time of its last valid record) and whether it is aligned. A partition
// is idle when now − L_p ≥ idle_timeout (it then stops being aligned) and counts when not idle
// and aligned; an unaligned partition aligns again once M_p − grace ≥ W. The candidate C is the
// minimum of M_p − grace over counting partitions, or, when none counts, now − max(grace,
// idle_timeout) (an idle close); W = max(W, C). Windows with end ≤ W are closed, and every cell
// that received a record is emitted exactly once. Not thread-safe.
#ifndef POLDER_COMMON_VIEWS_ENGINE_H_
#define POLDER_COMMON_VIEWS_ENGINE_H_

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/time/time.h"
#include "common/views/spec.h"
#include "common/views/window.h"

namespace polder {
namespace views {

// The set-wide list of dimensions and numeric fields a record is reduced to, and how each view
// picks from it. Built once from the spec.
struct SetLayout {
  ViewSetSpec spec;
  bool event_time_ends_interval = false;
  std::vector<std::string> dimensions;  // Dimension::Name() of every dimension any view uses
  std::vector<std::string> fields;      // every field a measure names
  // Per view: indices into `dimensions` (in group_by order) and per measure an index into
  // `fields` (-1 for count).
  std::vector<std::vector<int>> view_dimensions;
  std::vector<std::vector<int>> view_fields;
  // Per view: its dimensions' names in group_by order (the group key's names).
  std::vector<std::vector<std::string>> view_dimension_names;

  static SetLayout Of(ViewSetSpec spec, bool event_time_ends_interval);
};

// One source record reduced to what the views need.
struct Fact {
  int32_t partition = 0;
  int64_t offset = 0;
  absl::Time event_time;
  uint64_t unit_key = 0;                      // the unit's record key (view_key.h)
  int64_t unit_count = 1;                     // PDA: the unit_count field; otherwise 1
  std::vector<std::string> dimensions;        // per SetLayout::dimensions; "unknown" if absent
  std::vector<std::optional<double>> fields;  // per SetLayout::fields; nullopt if unset
};

struct FieldStats {
  int64_t n = 0;  // records carrying the field
  double sum = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
};

// One unit's contributions to a cell, added up before any rule is applied.
struct UnitStats {
  int64_t records = 0;
  int64_t count = 0;               // Σ unit_count
  std::vector<FieldStats> fields;  // per measure of the view, in order (count: unused)
};

struct CellId {
  int view = 0;
  absl::Time window_start;
  std::string group_key;
  friend bool operator<(const CellId& a, const CellId& b) {
    return std::tie(a.view, a.window_start, a.group_key) <
           std::tie(b.view, b.window_start, b.group_key);
  }
  friend bool operator==(const CellId& a, const CellId& b) {
    return a.view == b.view && a.window_start == b.window_start && a.group_key == b.group_key;
  }
};

struct Cell {
  Window window;
  std::vector<std::string> group;       // values in the view's group_by order
  std::map<uint64_t, UnitStats> units;  // by unit key
  bool dirty = false;                   // changed since the last TakeDirty (engine-internal)
};

struct ClosedCell {
  CellId id;
  Cell cell;
};

enum class Outcome { kMerged, kTooNew, kTooOld, kLate };
enum class CloseCause { kWatermark, kIdle };

struct PartitionClock {
  absl::Time max_event = absl::InfinitePast();  // M_p
  absl::Time last_seen;                         // L_p (node clock)
  bool aligned = true;
};

// "dim=value/dim=value", or "all" for a view without dimensions: the output's Kafka key.
std::string GroupKey(const std::vector<std::string>& names, const std::vector<std::string>& values);

class Engine {
 public:
  Engine(const SetLayout* layout, const WindowClock* clock, const std::vector<int32_t>& partitions,
         absl::Time now);

  Outcome Offer(const Fact& fact, absl::Time now);
  // Notes that the input moved past `next_offset` on `partition` without a record (markers,
  // records that are not Polder's), so positions stay exact.
  void Skip(int32_t partition, int64_t next_offset);

  struct Advance {
    absl::Time watermark;
    CloseCause cause;
  };
  // Evaluates the watermark at `now`; the new W when it moved.
  std::optional<Advance> Evaluate(absl::Time now);
  // Moves W to `w` (≥ W) directly: recovery and the recomputation oracle replay decisions.
  void AdvanceTo(absl::Time w);
  // The cells of windows that are closed (end ≤ W), removed from the open state, ordered by
  // (view, window start, group key).
  std::vector<ClosedCell> TakeClosed();

  absl::Time watermark() const { return watermark_; }
  const std::map<int32_t, PartitionClock>& clocks() const { return clocks_; }
  const std::map<int32_t, int64_t>& positions() const { return positions_; }
  const std::map<CellId, Cell>& open_cells() const { return cells_; }
  const SetLayout& layout() const { return *layout_; }

  // State restored from a changelog (recovery): every partition's clock is re-based on `now`.
  void Restore(absl::Time watermark, std::map<int32_t, PartitionClock> clocks,
               std::map<int32_t, int64_t> positions, std::map<CellId, Cell> cells, absl::Time now);
  // Cell ids changed since the last call (merged into, or closed), for the changelog.
  std::vector<CellId> TakeDirty();

 private:
  const SetLayout* layout_;
  const WindowClock* clock_;
  absl::Time watermark_ = absl::InfinitePast();
  std::map<int32_t, PartitionClock> clocks_;
  std::map<int32_t, int64_t> positions_;
  std::map<CellId, Cell> cells_;
  std::set<CellId> dirty_;
};

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_ENGINE_H_
