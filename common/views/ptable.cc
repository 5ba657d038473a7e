#include "common/views/ptable.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace polder {
namespace views {
namespace {

constexpr uint64_t kOne = uint64_t{1} << 32;  // probability 1 in units of 2⁻³²
constexpr double kTolerance = 1.0 / (1 << 20);

// The support S_n of row n.
std::vector<int64_t> Support(int64_t n, const PTableParams& p) {
  std::vector<int64_t> out;
  for (int64_t y = std::max<int64_t>(0, n - p.d); y <= n + p.d; ++y) {
    if (y == 0 || y > p.js) out.push_back(y);
  }
  return out;
}

// The maximum-entropy distribution on `support` with mean n and variance v: p(y) ∝ exp(λ₁·z +
// λ₂·(z² − v)/s), z = y − n, found by Newton's method on the convex dual log Σ exp(λ·f).
absl::StatusOr<std::vector<double>> MaxEntropy(const std::vector<int64_t>& support, int64_t n,
                                               double v, int d) {
  const double scale = std::max(1.0, static_cast<double>(d) * d);
  const size_t m = support.size();
  std::vector<double> f1(m), f2(m);
  for (size_t i = 0; i < m; ++i) {
    const double z = static_cast<double>(support[i] - n);
    f1[i] = z;
    f2[i] = (z * z - v) / scale;
  }
  double l1 = 0, l2 = 0;
  auto dual = [&](double a, double b) {
    double hi = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < m; ++i) hi = std::max(hi, a * f1[i] + b * f2[i]);
    double z = 0;
    for (size_t i = 0; i < m; ++i) z += std::exp(a * f1[i] + b * f2[i] - hi);
    return hi + std::log(z);
  };
  std::vector<double> p(m);
  for (int iter = 0; iter < 500; ++iter) {
    const double logz = dual(l1, l2);
    double g1 = 0, g2 = 0, h11 = 0, h12 = 0, h22 = 0;
    for (size_t i = 0; i < m; ++i) {
      p[i] = std::exp(l1 * f1[i] + l2 * f2[i] - logz);
      g1 += p[i] * f1[i];
      g2 += p[i] * f2[i];
    }
    for (size_t i = 0; i < m; ++i) {
      const double a = f1[i] - g1, b = f2[i] - g2;
      h11 += p[i] * a * a;
      h12 += p[i] * a * b;
      h22 += p[i] * b * b;
    }
    if (std::abs(g1) < 1e-15 && std::abs(g2) < 1e-15) return p;
    const double det = h11 * h22 - h12 * h12;
    if (!(det > 1e-300)) break;
    const double s1 = -(h22 * g1 - h12 * g2) / det;
    const double s2 = -(h11 * g2 - h12 * g1) / det;
    double t = 1;
    const double slope = g1 * s1 + g2 * s2;
    while (t > 1e-12 && dual(l1 + t * s1, l2 + t * s2) > logz + 1e-4 * t * slope) t /= 2;
    l1 += t * s1;
    l2 += t * s2;
  }
  // Close enough for the row checks, which decide.
  return p;
}

// Rounds probabilities to multiples of 2⁻³² summing to exactly 1 (largest remainders first,
// ties to the smaller y); outcomes that round to 0 leave the row.
std::vector<PTable::Entry> Round(const std::vector<int64_t>& support,
                                 const std::vector<double>& p) {
  std::vector<PTable::Entry> row;
  std::vector<std::pair<double, size_t>> remainders;
  uint64_t total = 0;
  std::vector<uint64_t> w(support.size());
  for (size_t i = 0; i < support.size(); ++i) {
    const double exact = p[i] * static_cast<double>(kOne);
    w[i] = static_cast<uint64_t>(std::floor(exact));
    total += w[i];
    remainders.push_back({exact - std::floor(exact), i});
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; total < kOne && k < remainders.size(); ++k, ++total) {
    ++w[remainders[k].second];
  }
  for (size_t i = 0; i < support.size(); ++i) {
    if (w[i] > 0) row.push_back({support[i], w[i]});
  }
  return row;
}

absl::Status CheckRow(int64_t n, const std::vector<PTable::Entry>& row, const PTableParams& p) {
  uint64_t sum = 0;
  double mean = 0, second = 0;
  for (const PTable::Entry& e : row) {
    if (std::llabs(e.y - n) > p.d) {
      return absl::InternalError(absl::StrCat("row ", n, " publishes ", e.y, ", beyond D"));
    }
    if (e.y >= 1 && e.y <= p.js) {
      return absl::InternalError(absl::StrCat("row ", n, " publishes ", e.y, ", within js"));
    }
    sum += e.weight;
    const double q = static_cast<double>(e.weight) / static_cast<double>(kOne);
    const double z = static_cast<double>(e.y - n);
    mean += q * z;
    second += q * z * z;
  }
  if (sum != kOne) return absl::InternalError(absl::StrCat("row ", n, " does not sum to 1"));
  const double target_v = n == 0 ? 0.0 : p.v;
  if (std::abs(mean) > kTolerance || std::abs(second - mean * mean - target_v) > kTolerance) {
    return absl::InvalidArgumentError(
        absl::StrFormat("row %d has mean %.9g and variance %.9g, not %d and %.9g", n, n + mean,
                        second - mean * mean, n, target_v));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PTable> PTable::Build(const PTableParams& params) {
  if (params.d < 1 || params.d > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("guard.d must be 1 … 1000, not ", params.d));
  }
  if (params.js < 0 || params.js >= params.d) {
    return absl::InvalidArgumentError(
        absl::StrCat("guard.js must be 0 … d − 1 (", params.d - 1, "), not ", params.js));
  }
  if (!(params.v > 0) || !std::isfinite(params.v)) {
    return absl::InvalidArgumentError(absl::StrCat("guard.v must be positive, not ", params.v));
  }
  PTable table(params);
  table.shift_from_ = params.d + params.js + 1;
  table.rows_.push_back({{0, kOne}});
  for (int64_t n = 1; n <= table.shift_from_; ++n) {
    const std::vector<int64_t> support = Support(n, params);
    // The variances a distribution on the support with mean n can have lie strictly between
    // the two-point extremes: the neighbours of n (0 if n is in the support) and the ends.
    int64_t below = support.front(), above = support.back();
    for (int64_t y : support) {
      if (y <= n) below = y;
      if (y >= n) {
        above = y;
        break;
      }
    }
    const double vmin = static_cast<double>((n - below) * (above - n));
    const double vmax = static_cast<double>((n - support.front()) * (support.back() - n));
    if (!(params.v > vmin && params.v < vmax)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "guard: with d = %d and js = %d the noise variance of true count %d must lie strictly "
          "between %.9g and %.9g; v = %.9g cannot be reached",
          params.d, params.js, n, vmin, vmax, params.v));
    }
    absl::StatusOr<std::vector<double>> p = MaxEntropy(support, n, params.v, params.d);
    if (!p.ok()) return p.status();
    table.rows_.push_back(Round(support, *p));
  }
  std::string text =
      absl::StrFormat("polder-ptable-1 d=%d v=%.17g js=%d\n", params.d, params.v, params.js);
  for (int64_t n = 0; n <= table.shift_from_; ++n) {
    if (absl::Status s = CheckRow(n, table.rows_[n], params); !s.ok()) return s;
    absl::StrAppend(&text, n, ":");
    for (const Entry& e : table.rows_[n]) absl::StrAppend(&text, " ", e.y, "=", e.weight);
    absl::StrAppend(&text, "\n");
  }
  // Existence sets must be ranges, so an attacker's (and the gate's) bounds are intervals.
  for (int64_t y = 0; y <= table.shift_from_ + 2 * params.d; ++y) {
    if (y >= 1 && y <= params.js) continue;
    const auto [lo, hi] = table.Existence(y);
    for (int64_t n = lo; n <= hi; ++n) {
      if (!table.CanPublish(n, y)) {
        return absl::InternalError(
            absl::StrCat("published ", y, " can come from ", lo, " and ", hi, " but not from ", n));
      }
    }
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  table.sha256_ = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
  return table;
}

const std::vector<PTable::Entry>& PTable::RowRef(int64_t n, int64_t* shift) const {
  if (n <= shift_from_) {
    *shift = 0;
    return rows_[static_cast<size_t>(n)];
  }
  *shift = n - shift_from_;
  return rows_.back();
}

int64_t PTable::Perturb(int64_t n, uint64_t cell_key) const {
  if (n <= 0) return 0;
  int64_t shift = 0;
  const std::vector<Entry>& row = RowRef(n, &shift);
  const uint64_t u = cell_key >> 32;  // uniform in [0, 2³²) for a uniform key
  uint64_t acc = 0;
  for (const Entry& e : row) {
    acc += e.weight;
    if (u < acc) return e.y + shift;
  }
  return row.back().y + shift;
}

std::vector<PTable::Entry> PTable::Row(int64_t n) const {
  int64_t shift = 0;
  std::vector<Entry> row = RowRef(std::max<int64_t>(0, n), &shift);
  for (Entry& e : row) e.y += shift;
  return row;
}

bool PTable::CanPublish(int64_t n, int64_t y) const {
  if (n < 0) return false;
  int64_t shift = 0;
  const std::vector<Entry>& row = RowRef(n, &shift);
  for (const Entry& e : row) {
    if (e.y + shift == y) return true;
  }
  return false;
}

std::pair<int64_t, int64_t> PTable::Existence(int64_t y) const {
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  for (int64_t n = std::max<int64_t>(0, y - params_.d); n <= y + params_.d; ++n) {
    if (CanPublish(n, y)) {
      lo = std::min(lo, n);
      hi = std::max(hi, n);
    }
  }
  if (lo > hi) return {1, 0};
  return {lo, hi};
}

}  // namespace views
}  // namespace polder
