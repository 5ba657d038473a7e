#include "common/views/guard.h"

#include <algorithm>
#include <functional>
#include <numeric>

namespace polder {
namespace views {

const char* ProtectionName(Protection p) {
  switch (p) {
    case Protection::kNone:
      return "NONE";
    case Protection::kThreshold:
      return "THRESHOLD";
    case Protection::kDominance:
      return "DOMINANCE";
    case Protection::kSecondary:
      return "SECONDARY";
    case Protection::kGate:
      return "GATE";
  }
  return "NONE";
}

bool DominanceSensitive(std::vector<double> x, double p) {
  for (double v : x) {
    if (v < 0) return true;
  }
  if (x.size() <= 2) return true;
  std::sort(x.begin(), x.end(), std::greater<double>());
  const double total = std::accumulate(x.begin(), x.end(), 0.0);
  return total - x[0] - x[1] < (p / 100.0) * x[0];
}

double UpperProtectionLevel(std::vector<double> x, double p) {
  if (x.empty()) return 0;
  std::sort(x.begin(), x.end(), std::greater<double>());
  const double total = std::accumulate(x.begin(), x.end(), 0.0);
  const double x2 = x.size() > 1 ? x[1] : 0.0;
  return (p / 100.0) * x[0] - (total - x[0] - x2);
}

bool Guard::CountsUnits(const ViewSpec& view) const {
  if (class_ != DataClass::kAggregated) return true;
  for (const Measure& m : view.measures) {
    if (m.kind == Measure::Kind::kEntities) return true;
  }
  return false;
}

int64_t Guard::Frequency(const ViewSpec& view, const Cell& cell) const {
  if (CountsUnits(view)) return static_cast<int64_t>(cell.units.size());
  int64_t n = 0;
  for (const auto& [key, u] : cell.units) n += u.count;
  return n;
}

uint64_t Guard::CellKey(const Cell& cell) {
  uint64_t key = 0;
  for (const auto& [unit, u] : cell.units) key += unit;  // mod 2⁶⁴
  return key;
}

PublishedCell Guard::Apply(const SetLayout& layout, const ClosedCell& closed) const {
  PublishedCell out;
  out.id = closed.id;
  out.window = closed.cell.window;
  const std::vector<int>& dims = layout.view_dimensions[closed.id.view];
  for (size_t i = 0; i < dims.size() && i < closed.cell.group.size(); ++i) {
    out.group.push_back({layout.dimensions[dims[i]], closed.cell.group[i]});
  }
  const ViewSpec& view = layout.spec.views[closed.id.view];
  const Cell& cell = closed.cell;

  if (class_ == DataClass::kNone) {
    for (size_t m = 0; m < view.measures.size(); ++m) {
      const Measure& measure = view.measures[m];
      PublishedMeasure pm;
      pm.name = measure.Name();
      if (measure.kind == Measure::Kind::kCount || measure.kind == Measure::Kind::kEntities) {
        pm.value = static_cast<double>(cell.units.size());
      } else {
        FieldStats all;
        for (const auto& [key, u] : cell.units) {
          const FieldStats& s = u.fields[m];
          all.n += s.n;
          all.sum += s.sum;
          all.min = std::min(all.min, s.min);
          all.max = std::max(all.max, s.max);
        }
        switch (measure.kind) {
          case Measure::Kind::kSum:
            pm.value = all.sum;
            break;
          case Measure::Kind::kMean:
            if (all.n > 0) pm.value = all.sum / static_cast<double>(all.n);
            break;
          case Measure::Kind::kMin:
            if (all.n > 0) pm.value = all.min;
            break;
          case Measure::Kind::kMax:
            if (all.n > 0) pm.value = all.max;
            break;
          case Measure::Kind::kCount:
          case Measure::Kind::kEntities:
            break;
        }
      }
      out.measures.push_back(std::move(pm));
    }
    return out;
  }

  // Guarded classes: counts only (binding refuses other measures).
  const int64_t n = Frequency(view, cell);
  Protection protection = Protection::kNone;
  if (n >= 1 && n <= spec_.k - 1) {
    protection = Protection::kThreshold;
  } else if (!CountsUnits(view) && n > 0) {
    std::vector<double> per_sensor;
    per_sensor.reserve(cell.units.size());
    for (const auto& [key, u] : cell.units) per_sensor.push_back(static_cast<double>(u.count));
    if (DominanceSensitive(per_sensor, spec_.p)) protection = Protection::kDominance;
  } else if (n < 0) {
    protection = Protection::kDominance;  // negative counts: the rules do not apply
  }
  for (const Measure& measure : view.measures) {
    PublishedMeasure pm;
    pm.name = measure.Name();
    pm.protection = protection;
    const bool counts =
        measure.kind == Measure::Kind::kCount || measure.kind == Measure::Kind::kEntities;
    if (protection == Protection::kNone && counts) {
      pm.value = static_cast<double>(table_->Perturb(n, CellKey(cell)));
      pm.perturbed = true;
    } else if (protection == Protection::kNone) {
      pm.protection = Protection::kGate;  // not reached: binding refuses guarded magnitudes
    }
    out.measures.push_back(std::move(pm));
  }
  return out;
}

}  // namespace views
}  // namespace polder
