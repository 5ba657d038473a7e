#include "common/views/lp.h"

#include <cmath>
#include <coin/ClpSimplex.hpp>
#include <memory>

#include "absl/strings/str_cat.h"

namespace polder {
namespace views {
namespace {

// CLP's own representation of an infinite bound.
constexpr double kClpInfinity = 1e30;

double ToClp(double v) {
  if (v == LinearProgram::kInfinity) return kClpInfinity;
  if (v == -LinearProgram::kInfinity) return -kClpInfinity;
  return v;
}

// ClpSimplex::primal's startFinishActions: keep the work areas and the factorization after a
// solve (1), reuse the factorization when the rows are the same (2), and skip what can be
// skipped of the set-up (4). Between two bounds only column bounds and the objective change,
// neither of which touches the basis matrix, so each solve starts where the last ended.
constexpr int kKeepFactorization = 1 | 2 | 4;

}  // namespace

struct LinearProgram::Solver {
  std::unique_ptr<ClpSimplex> model;
  std::vector<double> col_lo, col_hi, obj;
  bool bounds_dirty = false;
  int objective = -1;  // the variable the objective currently selects
};

LinearProgram::LinearProgram() = default;
LinearProgram::~LinearProgram() = default;
LinearProgram::LinearProgram(LinearProgram&&) noexcept = default;

int LinearProgram::AddVariable(double lo, double hi) {
  solver_.reset();
  lo_.push_back(lo);
  hi_.push_back(hi);
  return static_cast<int>(lo_.size()) - 1;
}

void LinearProgram::AddRow(std::vector<std::pair<int, double>> terms, double lo, double hi) {
  solver_.reset();
  rows_.push_back(Row{std::move(terms), lo, hi});
}

void LinearProgram::SetBounds(int variable, double lo, double hi) {
  lo_[variable] = lo;
  hi_[variable] = hi;
  if (solver_) {
    solver_->col_lo[variable] = ToClp(lo);
    solver_->col_hi[variable] = ToClp(hi);
    solver_->bounds_dirty = true;
  }
}

bool LinearProgram::Satisfies(const std::vector<double>& x, double tolerance) const {
  if (x.size() != lo_.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] < lo_[i] - tolerance || x[i] > hi_[i] + tolerance) return false;
  }
  for (const Row& row : rows_) {
    double sum = 0;
    for (const auto& [v, c] : row.terms) sum += c * x[v];
    if (sum < row.lo - tolerance || sum > row.hi + tolerance) return false;
  }
  return true;
}

absl::StatusOr<LinearProgram::Range> LinearProgram::Bound(int variable) {
  const int n = variables();
  const int m = static_cast<int>(rows_.size());
  if (!solver_) {
    auto solver = std::make_unique<Solver>();
    // Column-major matrix, as CLP loads it.
    std::vector<std::vector<std::pair<int, double>>> columns(n);
    for (int r = 0; r < m; ++r) {
      for (const auto& [v, c] : rows_[r].terms) columns[v].push_back({r, c});
    }
    std::vector<CoinBigIndex> start(n + 1, 0);
    std::vector<int> index;
    std::vector<double> value;
    for (int v = 0; v < n; ++v) {
      start[v] = static_cast<CoinBigIndex>(index.size());
      for (const auto& [r, c] : columns[v]) {
        index.push_back(r);
        value.push_back(c);
      }
    }
    start[n] = static_cast<CoinBigIndex>(index.size());
    solver->col_lo.resize(n);
    solver->col_hi.resize(n);
    solver->obj.assign(n, 0.0);
    std::vector<double> row_lo(m), row_hi(m);
    for (int v = 0; v < n; ++v) {
      solver->col_lo[v] = ToClp(lo_[v]);
      solver->col_hi[v] = ToClp(hi_[v]);
    }
    for (int r = 0; r < m; ++r) {
      row_lo[r] = ToClp(rows_[r].lo);
      row_hi[r] = ToClp(rows_[r].hi);
    }
    solver->model = std::make_unique<ClpSimplex>();
    solver->model->setLogLevel(0);
    solver->model->loadProblem(n, m, start.data(), index.data(), value.data(),
                               solver->col_lo.data(), solver->col_hi.data(), solver->obj.data(),
                               row_lo.data(), row_hi.data());
    solver_ = std::move(solver);
  }
  Solver& s = *solver_;
  ClpSimplex* model = s.model.get();
  if (s.bounds_dirty) {
    model->chgColumnLower(s.col_lo.data());
    model->chgColumnUpper(s.col_hi.data());
    s.bounds_dirty = false;
  }
  if (s.objective != variable) {
    if (s.objective >= 0) s.obj[s.objective] = 0.0;
    s.obj[variable] = 1.0;
    s.objective = variable;
    model->chgObjCoefficients(s.obj.data());
  }
  Range range;
  for (double sense : {1.0, -1.0}) {  // minimise, then maximise; each from the last basis
    model->setOptimizationDirection(sense);
    model->primal(0, kKeepFactorization);
    int status = model->status();
    if (status != 0 && status != 1 && status != 2) {
      // Stopped without an answer from the warm start: solve from scratch once.
      model->initialSolve();
      status = model->status();
    }
    if (status == 1) {
      return absl::FailedPreconditionError("the linear program has no feasible point");
    }
    if (status == 2 && sense < 0) {  // dual infeasible: unbounded above
      range.hi = kInfinity;
      continue;
    }
    if (status != 0) {
      return absl::InternalError(
          absl::StrCat("CLP stopped with status ", status, " bounding x", variable));
    }
    const double* solution = model->getColSolution();
    (sense > 0 ? range.lo : range.hi) = solution[variable];
    (sense > 0 ? range.at_lo : range.at_hi).assign(solution, solution + n);
  }
  return range;
}

}  // namespace views
}  // namespace polder
