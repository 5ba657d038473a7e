#include "common/views/grid.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace polder {
namespace views {
namespace {

constexpr double kPhi0 = 52.15517440;    // Amersfoort, degrees
constexpr double kLambda0 = 5.38720621;  // degrees
constexpr double kX0 = 155000.0;
constexpr double kY0 = 463000.0;

struct Term {
  int p, q;
  double c;
};
// X = X0 + Σ R_pq dφ^p dλ^q, Y = Y0 + Σ S_pq dφ^p dλ^q, dφ, dλ in units of 10⁴ arc seconds.
constexpr Term kR[] = {{0, 1, 190094.945}, {1, 1, -11832.228}, {2, 1, -114.221},
                       {0, 3, -32.391},    {1, 0, -0.705},     {3, 1, -2.340},
                       {1, 3, -0.608},     {0, 2, -0.008},     {2, 3, 0.148}};
constexpr Term kS[] = {{1, 0, 309056.544}, {0, 2, 3638.893}, {2, 0, 73.077}, {1, 2, -157.984},
                       {3, 0, 59.788},     {0, 1, 0.433},    {2, 2, -6.439}, {1, 1, -0.032},
                       {0, 4, 0.092},      {1, 4, -0.054}};

}  // namespace

std::optional<RdPoint> WgsToRd(double latitude, double longitude) {
  if (!std::isfinite(latitude) || !std::isfinite(longitude)) return std::nullopt;
  const double dphi = 0.36 * (latitude - kPhi0);
  const double dlam = 0.36 * (longitude - kLambda0);
  RdPoint p{kX0, kY0};
  for (const Term& t : kR) p.x += t.c * std::pow(dphi, t.p) * std::pow(dlam, t.q);
  for (const Term& t : kS) p.y += t.c * std::pow(dphi, t.p) * std::pow(dlam, t.q);
  if (p.x < -7000 || p.x > 300000 || p.y < 289000 || p.y > 629000) return std::nullopt;
  return p;
}

std::optional<std::string> GridCell(double latitude, double longitude, int metres) {
  if (metres != 100 && metres != 500 && metres != 1000) return std::nullopt;
  const std::optional<RdPoint> p = WgsToRd(latitude, longitude);
  if (!p.has_value() || p->x < 0) return std::nullopt;  // codes have no sign
  const auto corner = [metres](double v) {
    return static_cast<long long>(std::floor(v / metres)) * metres / 100;
  };
  return absl::StrFormat("E%04dN%04d", corner(p->x), corner(p->y));
}

}  // namespace views
}  // namespace polder
