// The perturbation table of the cell-key method (ADR 0016 §8): for each true count n, the
// distribution of the published count n̂ = n + v. Built by Polder at start from three public
// parameters — the largest deviation D, the noise variance V and the "jump" js (no published
// 1 … js) — as the maximum-entropy distribution with mean n and variance V on
//   S_n = ({0} ∪ [js + 1, ∞)) ∩ [max(0, n − D), n + D],
// p(y) ∝ exp(a·y + b·y²), rounded to multiples of 2⁻³². Row 0 is {0: 1}: zeros stay zero.
//
//   ASSIGN_OR_RETURN(PTable table, PTable::Build(PTableParams{}));  // D = 6, V = 2.5, js = 2
//   int64_t published = table.Perturb(true_count, cell_key);   // the same key, the same noise
//
// Every row is checked when built (probabilities sum to 1, mean n and variance V within 2⁻²⁰,
// |y − n| ≤ D, no y in 1 … js); parameters that give no such table are INVALID_ARGUMENT, naming
// the first row that fails — a node never publishes with a table it could not check.
#ifndef POLDER_COMMON_VIEWS_PTABLE_H_
#define POLDER_COMMON_VIEWS_PTABLE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace polder {
namespace views {

struct PTableParams {
  int d = 6;       // largest deviation |n̂ − n|
  double v = 2.5;  // noise variance of every row n ≥ 1
  int js = 2;      // no published value in 1 … js
};

class PTable {
 public:
  // One outcome of a row: the published value y and its probability in units of 2⁻³².
  struct Entry {
    int64_t y;
    uint64_t weight;
  };

  static absl::StatusOr<PTable> Build(const PTableParams& params);

  // The published value for true count `n` (≥ 0) under `cell_key`: the y whose cumulative
  // interval [lb, ub) of the row, scaled to 2⁶⁴, holds the key.
  int64_t Perturb(int64_t n, uint64_t cell_key) const;
  // The row of true count `n`: its outcomes in increasing y, weights summing to 2³².
  std::vector<Entry> Row(int64_t n) const;
  // Whether true count `n` can be published as `y` (P(n → y) > 0).
  bool CanPublish(int64_t n, int64_t y) const;
  // The true counts that can give `y` — what an attacker who sees `y` knows: a closed range
  // [first, second] (every n in it has P(n → y) > 0). y = 0 gives [0, D]; y in 1 … js gives an
  // empty range (first > second).
  std::pair<int64_t, int64_t> Existence(int64_t y) const;

  const PTableParams& params() const { return params_; }
  // Hex SHA-256 of the rows, stored beside published cells so a table that changed (another
  // solver, other parameters) is noticed rather than drawing new noise for the same contents.
  const std::string& sha256() const { return sha256_; }

 private:
  explicit PTable(PTableParams params) : params_(params) {}
  // Rows 0 … shift_from_ as computed; rows above are row shift_from_ moved by n − shift_from_.
  const std::vector<Entry>& RowRef(int64_t n, int64_t* shift) const;

  PTableParams params_;
  int64_t shift_from_ = 0;
  std::vector<std::vector<Entry>> rows_;
  std::string sha256_;
};

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_PTABLE_H_
