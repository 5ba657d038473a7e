// What a node's config declares about aggregate views (ADR 0016 §1): per source dataset one
// view set — shared time parameters and guard — with its views, each a tumbling window, group-by
// dimensions and measures.
//
//   views:
//     - dataset: mobility.bike-counts
//       grace: 5m
//       views:
//         - id: quarter-municipality
//           window: 15m
//           group_by: [municipality, direction]
//           measures: [count]
//
// Parsing checks the spelling; whether a dimension or measure suits the dataset's schema and
// personal-data class is checked when the set is bound to the dataset's descriptor (binding.h).
#ifndef POLDER_COMMON_VIEWS_SPEC_H_
#define POLDER_COMMON_VIEWS_SPEC_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/views/ptable.h"
#include "common/views/window.h"

namespace polder {
namespace views {

struct Dimension {
  enum class Kind { kMunicipality, kGrid, kField };
  Kind kind = Kind::kMunicipality;
  int grid_metres = 0;  // kGrid: 100, 500 or 1000
  std::string field;    // kField: a top-level enum or bool field marked as a dimension

  // "municipality", "grid:100m", "grid:500m", "grid:1km" or the field's name.
  std::string Name() const;
  friend bool operator==(const Dimension& a, const Dimension& b) {
    return a.kind == b.kind && a.grid_metres == b.grid_metres && a.field == b.field;
  }
};

// "municipality", "grid:<100m|500m|1km>" or a field name ([a-z_][a-z0-9_]*).
absl::StatusOr<Dimension> ParseDimension(absl::string_view text);

// `entities` counts the distinct units (entity ids: people, vehicles, sensors) that reported in
// a cell — for AGGREGATED data, where `count` adds up the unit_count field, a frequency of its
// own (the entities reporting of feed quality, ADR 0018 §6); for other classes it equals
// `count`. A view that declares it declares no other measure.
struct Measure {
  enum class Kind { kCount, kSum, kMean, kMin, kMax, kEntities };
  Kind kind = Kind::kCount;
  std::string field;  // empty for kCount and kEntities

  // "count", "entities", "sum:<field>", …: also the measure's name in output records.
  std::string Name() const;
  friend bool operator==(const Measure& a, const Measure& b) {
    return a.kind == b.kind && a.field == b.field;
  }
};

absl::StatusOr<Measure> ParseMeasure(absl::string_view text);

struct ViewSpec {
  std::string id;
  WindowSize window = WindowSize::kQuarterHour;
  std::vector<Dimension> group_by;
  std::vector<Measure> measures;
  std::string epoch = "1";  // the view topic's federation epoch (ADR 0009 §10)
};

// The disclosure-control parameters of a set (ADR 0016 §7–§8). Public by design.
struct GuardSpec {
  int k = 5;            // threshold: frequencies 1 … k − 1 are protected (CBS)
  double p = 17.65;     // p% dominance rule, ≡ (2, 85)
  PTableParams ptable;  // D = 6, V = 2.5, js = 2
};

struct ViewSetSpec {
  std::string dataset;
  absl::Duration grace = absl::Minutes(5);
  absl::Duration idle_timeout = absl::Minutes(30);
  absl::Duration max_event_lead = absl::Minutes(5);
  absl::Duration max_event_age = absl::Hours(168);
  GuardSpec guard;
  std::vector<ViewSpec> views;
};

// Checks what does not need the dataset's schema: at least one view, unique valid ids, at
// least one measure per view, no dimension or measure twice, positive durations, k ≥ 3, p in
// (0, 100], a buildable p-table, a topic name within Kafka's limit for `peer`. The error names
// the set and view.
absl::Status ValidateViewSet(absl::string_view peer, const ViewSetSpec& set);

// Feed quality's entities reporting (ADR 0018 §6): every view set also computes the distinct
// units reporting per hour and per day, as views of the set — guarded, gated and published
// with the others — whose newest values the node offers its contract holders.
inline constexpr char kEntitiesHourView[] = "entities-hour";
inline constexpr char kEntitiesDayView[] = "entities-day";
// Whether `id` is one of the two.
bool IsFeedQualityView(absl::string_view id);
// `set` with the two views added (1 h and 1 d, no dimensions, measure entities). A set that
// declares either id itself is refused, naming it.
absl::StatusOr<ViewSetSpec> WithFeedQualityViews(ViewSetSpec set);

// The hex SHA-256 of the RFC 8785 JSON of everything that decides a view's output (ADR 0016
// §1): the set's time parameters and guard, the view's window, dimensions and measures — never
// its key, partitions or epoch. Contracts carry it, so a changed definition stops a stream.
std::string DefinitionHash(const ViewSetSpec& set, const ViewSpec& view);
// The JSON the hash is taken of, for `ListDatasets` and operators.
std::string DefinitionJson(const ViewSetSpec& set, const ViewSpec& view);

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_SPEC_H_
