#include "tools/generator/generator.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace generator {
namespace {

using nlohmann::ordered_json;
constexpr double kPi = 3.14159265358979323846;

struct Place {
  const char* name;
  double dlat;  // offset from the centre, degrees
  double dlon;
};

struct CityData {
  City city;
  const char* prefix;
  std::vector<Place> places;
};

const std::vector<CityData>& Data() {
  static const auto* kData = new std::vector<CityData>{
      {{"groningen", "Groningen", "GM0014", 53.2194, 6.5665},
       "gn",
       {{"herestraat", -0.0050, 0.0010},
        {"vismarkt", 0.0000, -0.0010},
        {"emmaviaduct", -0.0075, -0.0030},
        {"hereweg", -0.0120, 0.0080},
        {"zernikelaan", 0.0260, -0.0050},
        {"stationsplein", -0.0095, -0.0040},
        {"oosterstraat", -0.0030, 0.0035},
        {"paterswoldseweg", -0.0150, -0.0120}}},
      {{"amersfoort", "Amersfoort", "GM0307", 52.1561, 5.3878},
       "amf",
       {{"eemplein", 0.0040, -0.0020},
        {"flint", 0.0035, 0.0010},
        {"stadhuisplein", 0.0015, -0.0005},
        {"utrechtseweg", -0.0060, -0.0080},
        {"hof", 0.0010, 0.0025},
        {"soesterkwartier", 0.0050, -0.0150},
        {"vathorst", 0.0280, 0.0250},
        {"langestraat", 0.0005, 0.0015}}},
      {{"enschede", "Enschede", "GM0153", 52.2215, 6.8937},
       "ens",
       {{"oude-markt", 0.0005, 0.0005},
        {"haaksbergerstraat", -0.0040, -0.0030},
        {"kalanderstraat", 0.0010, -0.0015},
        {"van-heekplein", -0.0010, -0.0005},
        {"hengelosestraat", 0.0050, -0.0100},
        {"roombeek", 0.0100, 0.0020},
        {"marktstraat", 0.0000, 0.0020},
        {"stationsplein", 0.0030, -0.0025}}},
      {{"ede-wageningen", "Ede-Wageningen", "GM0228", 52.0402, 5.6649},
       "ew",
       {{"ede-centrum", 0.0000, 0.0000},
        {"stationsweg", -0.0060, 0.0040},
        {"ede-wageningen-station", -0.0106, 0.0057},
        {"campus-forum", -0.0710, 0.0020},
        {"campus-atlas", -0.0700, -0.0010},
        {"wageningen-markt", -0.0710, -0.0010},
        {"nijenoord-allee", -0.0680, 0.0060},
        {"bennekom", -0.0400, -0.0120}}},
  };
  return *kData;
}

const CityData* FindCity(const std::string& peer) {
  for (const CityData& c : Data()) {
    if (c.city.peer_id == peer) return &c;
  }
  return nullptr;
}

// Deterministic uniform [0, 1) from a key (splitmix64 over the key's bytes).
double Uniform(uint64_t seed, const std::string& key, int64_t a, int64_t b = 0) {
  uint64_t x = seed ^ 0x9E3779B97F4A7C15ULL;
  auto mix = [&x](uint64_t v) {
    x += v + 0x9E3779B97F4A7C15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    x = z ^ (z >> 31);
  };
  for (unsigned char c : key) mix(c);
  mix(static_cast<uint64_t>(a));
  mix(static_cast<uint64_t>(b));
  return static_cast<double>(x >> 11) / 9007199254740992.0;
}

double Round(double v, int decimals) {
  const double f = std::pow(10.0, decimals);
  return std::round(v * f) / f;
}

struct Local {
  double hour;      // 0..24, local time
  int weekday;      // 0 = Monday .. 6 = Sunday
  int day_of_year;  // 1..366
};

Local LocalTime(absl::Time t) {
  static const absl::TimeZone kZone = [] {
    absl::TimeZone tz;
    if (!absl::LoadTimeZone("Europe/Amsterdam", &tz)) tz = absl::FixedTimeZone(3600);
    return tz;
  }();
  absl::TimeZone::CivilInfo ci = kZone.At(t);
  Local l;
  l.hour = ci.cs.hour() + ci.cs.minute() / 60.0 + ci.cs.second() / 3600.0;
  l.weekday = (static_cast<int>(absl::GetWeekday(ci.cs)) + 7) % 7;  // absl: Monday = 0
  l.day_of_year = absl::GetYearDay(ci.cs);
  return l;
}

double Bump(double hour, double centre, double width) {
  const double d = (hour - centre) / width;
  return std::exp(-0.5 * d * d);
}

// Hours of daylight in the Netherlands (≈7.7 h in December, ≈16.7 h in June) and solar noon.
bool Daylight(const Local& l) {
  const double length = 12.2 + 4.5 * std::sin(2 * kPi * (l.day_of_year - 80) / 365.0);
  const double noon =
      13.6 - (l.day_of_year > 88 && l.day_of_year < 301 ? 0.0 : 1.0);  // CEST vs CET
  return std::fabs(l.hour - noon) < length / 2;
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

ordered_json LocationJson(const CityData& c, const Place& p, const std::string& description) {
  return {{"latitude", Round(c.city.latitude + p.dlat, 5)},
          {"longitude", Round(c.city.longitude + p.dlon, 5)},
          {"municipalityCode", c.city.municipality_code},
          {"description", description}};
}

struct Entity {
  std::string id;
  const Place* place;
  int index;
};

std::vector<Entity> Entities(const CityData& c, const std::string& dataset) {
  std::vector<Entity> out;
  auto each_place = [&](const char* kind, int n) {
    for (int i = 0; i < n; ++i) {
      const Place& p = c.places[i % c.places.size()];
      out.push_back({absl::StrCat(c.prefix, "-", kind, "-", p.name), &p, i});
    }
  };
  if (dataset == "mobility.bike-counts") each_place("bike", 6);
  if (dataset == "parking.occupancy") each_place("garage", 5);
  if (dataset == "environment.air-quality") each_place("aq", 3);
  if (dataset == "economy.footfall") each_place("ff", 6);
  if (dataset == "safety.incident-counts") each_place("area", 5);
  if (dataset == "energy.streetlights") {
    for (int i = 0; i < 24; ++i) {
      const Place& p = c.places[i % c.places.size()];
      out.push_back({absl::StrFormat("%s-lamp-%04d", c.prefix, i + 1), &p, i});
    }
  }
  if (dataset == "mobility.shuttle-telemetry") {
    for (int i = 0; i < 3; ++i)
      out.push_back({absl::StrFormat("%s-shuttle-%d", c.prefix, i + 1), &c.places[0], i});
  }
  return out;
}

}  // namespace

const std::vector<City>& Cities() {
  static const auto* kCities = [] {
    auto* v = new std::vector<City>;
    for (const CityData& c : Data()) v->push_back(c.city);
    return v;
  }();
  return *kCities;
}

const std::vector<std::string>& DatasetIds() {
  static const auto* kIds = new std::vector<std::string>{
      "mobility.bike-counts",    "mobility.shuttle-telemetry", "parking.occupancy",
      "environment.air-quality", "energy.streetlights",        "economy.footfall",
      "safety.incident-counts"};
  return *kIds;
}

absl::Duration Interval(const std::string& dataset) {
  if (dataset == "mobility.shuttle-telemetry") return absl::Seconds(10);
  if (dataset == "parking.occupancy") return absl::Minutes(5);
  if (dataset == "environment.air-quality" || dataset == "safety.incident-counts")
    return absl::Hours(1);
  return absl::Minutes(15);
}

absl::StatusOr<std::vector<std::string>> EntityIds(const std::string& city,
                                                   const std::string& dataset) {
  const CityData* c = FindCity(city);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("no city '", city, "'"));
  std::vector<std::string> ids;
  for (const Entity& e : Entities(*c, dataset)) ids.push_back(e.id);
  if (ids.empty()) return absl::NotFoundError(absl::StrCat("no standard dataset '", dataset, "'"));
  return ids;
}

absl::StatusOr<std::vector<GeneratedRecord>> Generate(const std::string& city,
                                                      const std::string& dataset,
                                                      absl::Time interval_end, uint64_t seed) {
  const CityData* c = FindCity(city);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("no city '", city, "'"));
  const absl::Duration interval = Interval(dataset);
  const int64_t n =
      absl::ToInt64Seconds(interval_end - absl::UnixEpoch()) / absl::ToInt64Seconds(interval);
  const absl::Time end = absl::UnixEpoch() + n * interval;
  const absl::Time start = end - interval;
  const Local l = LocalTime(start + interval / 2);
  const bool weekend = l.weekday >= 5;
  std::vector<GeneratedRecord> out;
  for (const Entity& e : Entities(*c, dataset)) {
    auto u = [&](int64_t salt) { return Uniform(seed, absl::StrCat(dataset, "/", e.id), n, salt); };
    auto fixed = [&](int64_t salt) {
      return Uniform(seed, absl::StrCat(dataset, "/", e.id), -1, salt);
    };
    ordered_json j;
    if (dataset == "mobility.bike-counts") {
      // Commuter peaks on weekdays (inbound in the morning, outbound in the evening), a broad
      // afternoon bump at weekends; 30–180 bicycles per 15 minutes at the busiest counters.
      const double base = 30 + 150 * fixed(1);
      const double profile = weekend
                                 ? 0.05 + 0.55 * Bump(l.hour, 14, 3.0)
                                 : 0.04 + Bump(l.hour, 8.1, 0.9) + 0.85 * Bump(l.hour, 17.2, 1.2) +
                                       0.35 * Bump(l.hour, 12.5, 2.0);
      const int64_t count = std::llround(base * profile * (0.85 + 0.3 * u(1)));
      j = {{"counterId", e.id},
           {"eventTime", Rfc3339(end)},
           {"location", LocationJson(*c, *e.place, absl::StrCat("cycle counter ", e.place->name))},
           {"intervalStart", Rfc3339(start)},
           {"count", std::to_string(count)},
           {"direction", l.hour < 12.5 ? "DIRECTION_INBOUND" : "DIRECTION_OUTBOUND"}};
    } else if (dataset == "parking.occupancy") {
      const int total = 250 + 50 * static_cast<int>(12 * fixed(1));
      const double busy = weekend ? (l.weekday == 5 ? 0.95 : 0.55) : 0.85;
      double occ = 0.12 + (busy - 0.12) * (Bump(l.hour, 13.5, 3.2) + 0.2 * Bump(l.hour, 20, 1.5)) +
                   0.06 * (u(1) - 0.5);
      occ = std::min(1.0, std::max(0.0, occ));
      const bool closed = e.index == 4 && (l.hour < 6 || l.hour >= 23.5);
      const int available = closed ? 0 : static_cast<int>(std::lround(total * (1 - occ)));
      j = {{"facilityId", e.id},
           {"eventTime", Rfc3339(end)},
           {"location", LocationJson(*c, *e.place, absl::StrCat("parking garage ", e.place->name))},
           {"totalSpots", total},
           {"availableSpots", available},
           {"occupancyPercent", closed ? 0.0 : Round(100.0 * (total - available) / total, 1)},
           {"status", closed           ? "STATUS_CLOSED"
                      : available == 0 ? "STATUS_FULL"
                                       : "STATUS_OPEN"}};
    } else if (dataset == "environment.air-quality") {
      const double traffic =
          weekend ? 0.5 * Bump(l.hour, 14, 4) : Bump(l.hour, 8.3, 1.5) + Bump(l.hour, 17.5, 1.8);
      const double season = std::cos(2 * kPi * (l.day_of_year - 200) / 365.0);  // 1 in summer
      const double temperature =
          10.5 + 7.5 * season + 4.0 * Bump(l.hour, 15, 4.0) - 2.0 + 2.0 * (u(1) - 0.5);
      j = {{"stationId", e.id},
           {"eventTime", Rfc3339(end)},
           {"location",
            LocationJson(*c, *e.place, absl::StrCat("air quality station ", e.place->name))},
           {"no2Ugm3", Round(12 + 30 * traffic * (0.7 + 0.6 * fixed(2)) + 5 * u(2), 1)},
           {"pm10Ugm3", Round(14 + 10 * traffic + 8 * u(3), 1)},
           {"pm25Ugm3", Round(7 + 6 * traffic + 5 * u(4), 1)},
           {"o3Ugm3", Round(35 + 35 * Bump(l.hour, 15, 3.5) * (0.6 + 0.4 * season) + 8 * u(5), 1)},
           {"temperatureCelsius", Round(temperature, 1)},
           {"relativeHumidityPercent",
            Round(std::min(99.0, 88 - 2.2 * (temperature - 8) + 6 * u(6)), 1)}};
    } else if (dataset == "energy.streetlights") {
      // LED lamp posts (Amersfoort smart grid): on from dusk to dawn, dimmed to 50% after
      // midnight; some posts carry a solar panel and export energy by day.
      const bool on = !Daylight(l);
      const double dimming = !on ? 0.0 : (l.hour >= 0 && l.hour < 5.5 ? 50.0 : 100.0);
      const double rated = 35 + 5 * static_cast<int>(8 * fixed(1));
      const bool solar = fixed(2) < 0.3;
      const double days =
          absl::ToDoubleHours(end - absl::FromUnixSeconds(1735689600)) / 24.0;  // since 2025-01-01
      const bool failed = u(9) < 0.002;
      j = {
          {"lampId", e.id},
          {"eventTime", Rfc3339(end)},
          {"location", LocationJson(*c, *e.place, absl::StrCat("lamp post ", e.place->name))},
          {"powerOn", on && !failed},
          {"dimmingPercent", failed ? 0.0 : dimming},
          {"activePowerW", failed ? 0.0 : Round(rated * dimming / 100.0 * (0.97 + 0.06 * u(3)), 1)},
          {"energyImportKwh", Round(days * rated * 9.5 / 1000.0, 3)},
          {"energyExportKwh", solar ? Round(days * 0.12, 3) : 0.0},
          {"fault", failed ? "lamp does not light" : ""}};
    } else if (dataset == "mobility.shuttle-telemetry") {
      // Shuttles between Ede-Wageningen station and the Wageningen campus, 7:00–19:00 on
      // weekdays: 20 minutes each way, 5 minutes at each stop, staggered by 15 minutes.
      const double route_lat0 = c->city.latitude - 0.0106, route_lon0 = c->city.longitude + 0.0057;
      const double route_lat1 = c->city.latitude - 0.0710, route_lon1 = c->city.longitude + 0.0020;
      const bool service = !weekend && l.hour >= 7 && l.hour < 19;
      const double minutes = std::fmod((l.hour - 7) * 60 + 15 * e.index + 600, 50.0);
      double f;  // position along the route, 0 = station, 1 = campus
      std::string mode = "MODE_AUTONOMOUS";
      double speed = 0;
      if (!service) {
        f = 0;
        mode = "MODE_STOPPED";
      } else if (minutes < 20) {
        f = minutes / 20;
        speed = 16 + 8 * u(1);
      } else if (minutes < 25) {
        f = 1;
        mode = "MODE_STOPPED";
      } else if (minutes < 45) {
        f = 1 - (minutes - 25) / 20;
        speed = 16 + 8 * u(1);
      } else {
        f = 0;
        mode = "MODE_STOPPED";
      }
      if (mode == "MODE_AUTONOMOUS" && u(2) < 0.03) mode = "MODE_MANUAL";
      const bool outbound = minutes < 20;
      const double heading = outbound ? 183.0 : 3.0;
      const double battery = service ? 100 - 5.5 * (l.hour - 7) - 3 * fixed(3) : 100.0;
      ordered_json loc = {{"latitude", Round(route_lat0 + f * (route_lat1 - route_lat0), 5)},
                          {"longitude", Round(route_lon0 + f * (route_lon1 - route_lon0), 5)},
                          {"municipalityCode", f < 0.5 ? "GM0228" : "GM0289"},
                          {"description", "Ede-Wageningen station – Wageningen campus"}};
      j = {{"shuttleId", e.id},
           {"eventTime", Rfc3339(end)},
           {"location", loc},
           {"speedKmh", Round(speed, 1)},
           {"headingDegrees", heading},
           {"mode", mode},
           {"passengers",
            service ? static_cast<int>(8 * u(4) *
                                       (0.3 + Bump(l.hour, 8.5, 1.2) + Bump(l.hour, 17, 1.2)))
                    : 0},
           {"batteryPercent", Round(std::max(12.0, battery), 1)}};
    } else if (dataset == "economy.footfall") {
      // Shopping streets: shops 9–18 (Thursday until 21, Sunday 12–17), Saturday busiest.
      const double open = l.weekday == 6   ? Bump(l.hour, 14.5, 1.8) * 0.6
                          : l.weekday == 5 ? Bump(l.hour, 14, 2.6) * 1.4
                          : l.weekday == 3 ? Bump(l.hour, 14, 2.8) + 0.5 * Bump(l.hour, 19.5, 1.0)
                                           : Bump(l.hour, 13.5, 2.6);
      const double base = 150 + 500 * fixed(1);
      const int64_t count = std::llround(base * (0.02 + open) * (0.85 + 0.3 * u(1)));
      j = {
          {"sensorId", e.id},
          {"eventTime", Rfc3339(end)},
          {"location", LocationJson(*c, *e.place, absl::StrCat("footfall sensor ", e.place->name))},
          {"intervalStart", Rfc3339(start)},
          {"count", std::to_string(count)}};
    } else if (dataset == "safety.incident-counts") {
      // Aggregated counts per area and category per hour (no individual incidents).
      const char* categories[] = {"CATEGORY_TRAFFIC_ACCIDENT", "CATEGORY_BICYCLE_THEFT",
                                  "CATEGORY_NUISANCE", "CATEGORY_VANDALISM"};
      const bool night_out = (l.weekday == 4 || l.weekday == 5) && (l.hour >= 22 || l.hour < 4);
      const double rates[] = {0.05 + 0.2 * (Bump(l.hour, 8, 1) + Bump(l.hour, 17.5, 1.2)),
                              0.08 + 0.5 * Bump(l.hour, 14, 4) * (e.index == 0 ? 2 : 1),
                              0.05 + (night_out ? 1.2 : 0.1), 0.03 + (night_out ? 0.4 : 0.05)};
      for (int k = 0; k < 4; ++k) {
        // Poisson by inversion.
        double p = std::exp(-rates[k]), s = p, x = u(10 + k);
        int64_t count = 0;
        while (x > s && count < 50) {
          ++count;
          p *= rates[k] / count;
          s += p;
        }
        ordered_json r = {
            {"areaId", e.id},
            {"eventTime", Rfc3339(end)},
            {"location", LocationJson(*c, *e.place, absl::StrCat("area ", e.place->name))},
            {"periodStart", Rfc3339(start)},
            {"category", categories[k]},
            {"count", std::to_string(count)}};
        out.push_back({e.id, end, r.dump()});
      }
      continue;
    } else {
      return absl::NotFoundError(absl::StrCat("no standard dataset '", dataset, "'"));
    }
    out.push_back({e.id, end, j.dump()});
  }
  return out;
}

}  // namespace generator
}  // namespace polder
