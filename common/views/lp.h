// Bounds of one variable over a polyhedron, by linear programming (COIN-OR CLP): the tool of the
// views' publication gate (ADR 0016 §10), which bounds cells as an attacker would.
//
//   LinearProgram lp;
//   int a = lp.AddVariable(0, 10), b = lp.AddVariable(2, LinearProgram::kInfinity);
//   lp.AddRow({{a, 1}, {b, -1}}, 0, 0);                 // a = b
//   ASSIGN_OR_RETURN(LinearProgram::Range r, lp.Bound(a));  // [2, 10]
//
// Not thread-safe. The CLP model is loaded on the first Bound and kept: later calls change only
// bounds and the objective and start from the previous basis, so a sequence of bounds over one
// model costs a few simplex iterations each.
#ifndef POLDER_COMMON_VIEWS_LP_H_
#define POLDER_COMMON_VIEWS_LP_H_

#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace polder {
namespace views {

class LinearProgram {
 public:
  static constexpr double kInfinity = std::numeric_limits<double>::infinity();

  LinearProgram();
  ~LinearProgram();
  LinearProgram(LinearProgram&&) noexcept;
  LinearProgram(const LinearProgram&) = delete;
  LinearProgram& operator=(const LinearProgram&) = delete;

  // A variable with lo ≤ x ≤ hi (hi may be kInfinity); its index.
  int AddVariable(double lo, double hi);
  // lo ≤ Σ coefficient·x ≤ hi (either side may be infinite).
  void AddRow(std::vector<std::pair<int, double>> terms, double lo, double hi);
  // Changes a variable's bounds (the rows stay).
  void SetBounds(int variable, double lo, double hi);
  int variables() const { return static_cast<int>(lo_.size()); }

  struct Range {
    double lo = 0;
    double hi = 0;  // kInfinity when unbounded above
    // The points where the minimum and the maximum are reached (one value per variable); at_hi
    // is empty when unbounded.
    std::vector<double> at_lo, at_hi;
  };
  // min and max of `variable` over the feasible set. FAILED_PRECONDITION when the set is empty,
  // INTERNAL when the solver stops without an answer.
  absl::StatusOr<Range> Bound(int variable);

  // Whether `x` (one value per variable) satisfies every bound and row within `tolerance`.
  bool Satisfies(const std::vector<double>& x, double tolerance = 1e-6) const;

 private:
  struct Solver;
  std::unique_ptr<Solver> solver_;  // the loaded CLP model; reset when variables or rows change
  std::vector<double> lo_, hi_;
  struct Row {
    std::vector<std::pair<int, double>> terms;
    double lo, hi;
  };
  std::vector<Row> rows_;
};

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_LP_H_
