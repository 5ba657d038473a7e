#include "common/views/grid.h"

#include <cmath>

#include "gtest/gtest.h"

namespace polder {
namespace views {
namespace {

TEST(GridTest, AmersfoortIsTheOriginOfRd) {
  auto p = WgsToRd(52.15517440, 5.38720621);
  ASSERT_TRUE(p.has_value());
  EXPECT_NEAR(p->x, 155000, 0.01);
  EXPECT_NEAR(p->y, 463000, 0.01);
  EXPECT_EQ(GridCell(52.15517440, 5.38720621, 100), "E1550N4630");
}

TEST(GridTest, KnownPlacesFallInTheirCells) {
  // The Dam in Amsterdam, about RD (121400, 487400); the Martinitoren in Groningen, about
  // (233900, 582100): within a cell or two of the published coordinates.
  auto dam = WgsToRd(52.37310, 4.89320);
  ASSERT_TRUE(dam.has_value());
  EXPECT_NEAR(dam->x, 121400, 300);
  EXPECT_NEAR(dam->y, 487400, 300);
  auto martini = WgsToRd(53.21924, 6.56822);
  ASSERT_TRUE(martini.has_value());
  EXPECT_NEAR(martini->x, 233900, 300);
  EXPECT_NEAR(martini->y, 582100, 300);
}

TEST(GridTest, CellsNestAndCodesUseTheLowerLeftCorner) {
  const double lat = 52.37310, lon = 4.89320;
  auto p = WgsToRd(lat, lon);
  ASSERT_TRUE(p.has_value());
  const auto hm = [](double v, int m) { return static_cast<int>(std::floor(v / m)) * m / 100; };
  char want[32];
  std::snprintf(want, sizeof(want), "E%04dN%04d", hm(p->x, 500), hm(p->y, 500));
  EXPECT_EQ(GridCell(lat, lon, 500), want);
  std::snprintf(want, sizeof(want), "E%04dN%04d", hm(p->x, 1000), hm(p->y, 1000));
  EXPECT_EQ(GridCell(lat, lon, 1000), want);
  EXPECT_EQ(GridCell(lat, lon, 250), std::nullopt);
}

TEST(GridTest, PointsOutsideRdHaveNoCell) {
  EXPECT_EQ(WgsToRd(48.8566, 2.3522), std::nullopt) << "Paris";
  EXPECT_EQ(GridCell(0, 0, 100), std::nullopt);
  EXPECT_EQ(GridCell(std::nan(""), 5, 100), std::nullopt);
}

}  // namespace
}  // namespace views
}  // namespace polder
