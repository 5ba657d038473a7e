// Statistical disclosure control of closed cells (ADR 0016 §6–§9), applied before anything is
// written. What a cell may publish depends on the dataset's personal-data class:
//
//   NONE           exact: count of distinct units, sums, means, minima and maxima;
//   AGGREGATED     count = Σ of the unit_count field (people or events counted by sensors):
//                  threshold on the count, p% dominance over sensors, cell-key perturbation;
//   PSEUDONYMISED  count = distinct entity ids: threshold, cell-key perturbation;
//   PERSONAL       no views at all (refused when the set is bound).
//
// The `entities` measure (distinct units reporting) is guarded in every guarded class as a
// PSEUDONYMISED count is: threshold on the number of units, cell-key perturbation, no dominance
// (each unit contributes one).
//
// Guarded classes publish counts only: magnitude perturbation needs a δ the ADR leaves open,
// so binding refuses their sums, means and extremes. A protected measure publishes neither its
// value nor a contributor count, only the rule that protected it.
//
//   Guard guard(spec.guard, DataClass::kAggregated, &table);
//   PublishedCell out = guard.Apply(layout, closed_cell);
#ifndef POLDER_COMMON_VIEWS_GUARD_H_
#define POLDER_COMMON_VIEWS_GUARD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/views/engine.h"
#include "common/views/ptable.h"
#include "common/views/spec.h"

namespace polder {
namespace views {

enum class DataClass { kNone, kAggregated, kPseudonymised, kPersonal };

enum class Protection { kNone, kThreshold, kDominance, kSecondary, kGate };
const char* ProtectionName(Protection p);

struct PublishedMeasure {
  std::string name;             // Measure::Name()
  std::optional<double> value;  // absent when protected
  Protection protection = Protection::kNone;
  bool perturbed = false;  // the value is a cell-key perturbed count
};

struct PublishedCell {
  CellId id;
  Window window;
  std::vector<std::pair<std::string, std::string>> group;  // dimension name, value
  std::vector<PublishedMeasure> measures;
};

// p% rule (HB2 §4.2.1): sensitive when X − x₁ − x₂ < (p/100)·x₁, contributions sorted
// x₁ ≥ x₂ ≥ … summing to X. A negative contribution makes the cell sensitive (the rule needs
// non-negative data); one or two contributors are always sensitive.
bool DominanceSensitive(std::vector<double> contributions, double p);
// The upper protection level (p/100)·x₁ − (X − x₁ − x₂) the attack test holds a dominated
// cell's interval to (C3).
double UpperProtectionLevel(std::vector<double> contributions, double p);

class Guard {
 public:
  // `table` must outlive the guard.
  Guard(GuardSpec spec, DataClass data_class, const PTable* table)
      : spec_(spec), class_(data_class), table_(table) {}

  // The cell as it may be published; its cell key is the sum of its units' keys.
  PublishedCell Apply(const SetLayout& layout, const ClosedCell& closed) const;

  // Whether `view`'s counts are of distinct units (its measure is entities, or the class is not
  // AGGREGATED) rather than Σ unit_count: such cells have no dominance rule, and relations
  // between them are non-additive (ADR 0016 §10, ADR 0018 §9).
  bool CountsUnits(const ViewSpec& view) const;
  // The true frequency of a guarded cell of `view` (distinct units, or Σ unit_count for an
  // AGGREGATED count); exposed for the gate and tests, never published.
  int64_t Frequency(const ViewSpec& view, const Cell& cell) const;
  static uint64_t CellKey(const Cell& cell);

 private:
  GuardSpec spec_;
  DataClass class_;
  const PTable* table_;
};

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_GUARD_H_
