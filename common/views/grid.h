// Grid cells of aggregate views (ADR 0016 §1): CBS's squares in RD New (EPSG:28992), coded
// E<x>N<y> by the cell's lower-left corner in whole hectometres, four digits each
// ("E1550N4630" is the 100 m cell at (155000, 463000)).
//
// WGS84 → RD uses the approximation polynomial of Schreutelkamp & Strang van Hees (2001)
// without the RDNAPTRANS correction grids: its error of the order of a metre only moves points
// within a metre of a cell edge, identically on every node.
#ifndef POLDER_COMMON_VIEWS_GRID_H_
#define POLDER_COMMON_VIEWS_GRID_H_

#include <optional>
#include <string>

namespace polder {
namespace views {

struct RdPoint {
  double x = 0;  // easting, metres
  double y = 0;  // northing, metres
};

// RD New coordinates of a WGS84 latitude/longitude; nullopt outside RD's domain (the
// Netherlands and a margin: x in [-7000, 300000], y in [289000, 629000]) or for non-finite input.
std::optional<RdPoint> WgsToRd(double latitude, double longitude);

// The code of the `metres` (100, 500 or 1000) cell holding the point; nullopt as WgsToRd.
std::optional<std::string> GridCell(double latitude, double longitude, int metres);

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_GRID_H_
