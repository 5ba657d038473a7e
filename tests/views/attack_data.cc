// Publishes one synthetic Amsterdam day of a guarded dataset through Polder's view engine, guard
// and publication gate, and writes what an attacker sees — and, for the checker only, the true
// values — as JSON for tests/views/attack.py (ADR 0016 §13).
//
//   attack_data --class=aggregated|pseudonymised --gate=on|off --seed=N > day.json
//
// The day is 2025-03-30, 23 hours long (the spring DST change). AGGREGATED: bicycle counters
// (sensors) in clusters of 100 m cells, counting in both directions every quarter hour — busy
// by day, near zero at night, a few sparse counters that report single bicycles (the singleton
// pattern of the cell-key literature) and one counter far busier than its neighbours (dominance
// chains up the grid). PSEUDONYMISED: shuttles (entity ids) reporting positions, counted as
// distinct entities. Ten views nest in time (15 min ⊂ 1 h ⊂ day) and space (100 m ⊂ 500 m ⊂
// 1 km, direction, nothing), and two by municipality relate to the grid views through the map
// (three municipalities, two grid cells on a border).
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/views/engine.h"
#include "common/views/gate.h"
#include "common/views/guard.h"
#include "common/views/ptable.h"
#include "common/views/spec.h"
#include "common/views/window.h"
#include "nlohmann/json.hpp"
#include "proto/polder/views/v1/aggregate_cell.pb.h"
#include "services/aggregator/national.h"

namespace polder {
namespace views {
namespace {

struct Sensor {
  std::string cell;  // 100 m grid cell
  std::string municipality;
  double day_rate;    // mean count per quarter and direction by day
  double night_rate;  // … at night
  uint64_t key = 0;   // the unit's record key
};

// National figures over the municipality × hour view (ADR 0018), built by the aggregator's own
// National from the published cells: each municipality stands for a city that publishes its part
// of the view; every hour the first two (in code order) close by the national deadline and the
// third closes later, so each hour has a close (revision 0) and a revision. Written as
// out["national"]; out["national_leaky"] is the control — the same figures as an aggregator that
// un-suppressed withheld cells would write (their true values added), which the attack must catch.
absl::Status National(const nlohmann::json& cells, int view, nlohmann::json* out) {
  namespace vv1 = ::polder::views::v1;
  struct Part {
    std::vector<nlohmann::json> cells;
  };
  std::map<int64_t, std::map<std::string, Part>> hours;  // start → municipality → cells
  std::set<std::string> cities;
  for (const nlohmann::json& c : cells) {
    if (c["view"] != view) continue;
    const std::string m = c["group"][0];
    hours[c["start"].get<int64_t>()][m].cells.push_back(c);
    cities.insert(m);
  }
  aggregator::NationalViewSpec spec;
  spec.dataset = "mobility.bike-counts";
  spec.view = "hmun";
  spec.definition_hashes = {"attack"};
  for (const std::string& c : cities) spec.cities.insert(c);
  spec.grace = absl::ZeroDuration();
  spec.deadline = absl::ZeroDuration();
  spec.revision_horizon = absl::Hours(24 * 365 * 10);
  aggregator::National national(spec);
  auto base = [&](int64_t start, const std::string& city) {
    vv1::AggregateCell a;
    a.mutable_window_start()->set_seconds(start / 1000);
    a.mutable_window_end()->set_seconds(start / 1000 + 3600);
    a.set_dataset_id(spec.dataset);
    a.set_view_id(spec.view);
    a.set_definition_hash("attack");
    a.set_source_peer(city);
    return a;
  };
  auto offer_city = [&](int64_t start, const std::string& city, const Part& part, absl::Time now) {
    for (const nlohmann::json& c : part.cells) {
      vv1::AggregateCell a = base(start, city);
      a.set_group_key(absl::StrCat("municipality=", city));
      vv1::MeasureValue* m = a.add_measures();
      m->set_name("count");
      if (c.contains("published")) {
        m->set_value(c["published"].get<double>());
        m->set_perturbed(true);
      } else {
        m->set_protection(vv1::PROTECTION_SUPPRESSED);
      }
      national.Offer(city, a, now);
    }
    vv1::AggregateCell close = base(start, city);
    close.mutable_window_close()->set_cells(static_cast<int64_t>(part.cells.size()));
    close.mutable_window_close()->mutable_closed_through()->set_seconds(start / 1000 + 3600);
    national.Offer(city, close, now);
  };
  nlohmann::json figures = nlohmann::json::array(), leaky = nlohmann::json::array();
  const std::vector<std::string> order(cities.begin(), cities.end());
  for (const auto& [start, parts] : hours) {
    const absl::Time end = absl::FromUnixMillis(start) + absl::Hours(1);
    for (size_t i = 0; i + 1 < order.size(); ++i) {
      auto p = parts.find(order[i]);
      offer_city(start, order[i], p == parts.end() ? Part{} : p->second, end);
    }
    std::vector<aggregator::Decision> decided = national.Decide(end + absl::Seconds(1));
    auto last = parts.find(order.back());
    offer_city(start, order.back(), last == parts.end() ? Part{} : last->second,
               end + absl::Minutes(30));
    for (const aggregator::Decision& d : national.Decide(end + absl::Minutes(30))) {
      decided.push_back(d);
    }
    for (const aggregator::Decision& d : decided) {
      absl::StatusOr<national::v1::NationalFigure> f = national.Figure(d.window, d.revision);
      if (!f.ok()) return f.status();
      nlohmann::json j;
      j["start"] = start;
      j["revision"] = f->revision();
      j["cities"] = nlohmann::json::array();
      double hidden = 0;  // what an un-suppressing aggregator would add
      for (const national::v1::CityPart& c : f->cities()) {
        j["cities"].push_back(c.peer());
        auto p = parts.find(c.peer());
        if (p == parts.end()) continue;
        for (const nlohmann::json& cell : p->second.cells) {
          if (!cell.contains("published")) hidden += cell["truth"].get<double>();
        }
      }
      const national::v1::MeasureTotal* total = f->totals_size() > 0 ? &f->totals(0) : nullptr;
      j["value"] = total != nullptr && total->has_value() ? nlohmann::json(total->value())
                                                          : nlohmann::json();
      j["withheld"] = total != nullptr ? total->withheld_cells() : 0;
      figures.push_back(j);
      if (hidden > 0) j["value"] = (j["value"].is_null() ? 0.0 : j["value"].get<double>()) + hidden;
      leaky.push_back(std::move(j));
    }
  }
  (*out)["national"] = std::move(figures);
  (*out)["national_leaky"] = std::move(leaky);
  return absl::OkStatus();
}

int Fail(const std::string& message) {
  std::cerr << "attack_data: " << message << "\n";
  return 2;
}

ViewSpec View(const std::string& id, WindowSize size, std::vector<std::string> dims,
              const std::string& measure = "count") {
  ViewSpec v;
  v.id = id;
  v.window = size;
  for (const auto& d : dims) v.group_by.push_back(*ParseDimension(d));
  v.measures.push_back(*ParseMeasure(measure));
  return v;
}

int Main(int argc, char** argv) {
  std::string data_class = "aggregated";
  bool gate_on = true;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (absl::StartsWith(a, "--class=")) {
      data_class = a.substr(8);
    } else if (a == "--gate=on" || a == "--gate=off") {
      gate_on = a == "--gate=on";
    } else if (absl::StartsWith(a, "--seed=")) {
      if (!absl::SimpleAtoi(a.substr(7), &seed)) return Fail("--seed takes a number");
    } else {
      return Fail(absl::StrCat("unknown argument '", a, "'"));
    }
  }
  const bool aggregated = data_class == "aggregated";
  if (!aggregated && data_class != "pseudonymised") {
    return Fail("--class is aggregated or pseudonymised");
  }

  ViewSetSpec spec;
  spec.dataset = aggregated ? "mobility.bike-counts" : "mobility.shuttle-telemetry";
  spec.grace = absl::Minutes(5);
  spec.idle_timeout = absl::Hours(24 * 3650);
  spec.max_event_lead = absl::Hours(24 * 3650);
  spec.max_event_age = absl::Hours(24 * 3650);
  spec.views = {
      View("q100", WindowSize::kQuarterHour, {"grid:100m"}),
      View("h100", WindowSize::kHour, {"grid:100m"}),
      View("h500", WindowSize::kHour, {"grid:500m"}), View("d1km", WindowSize::kDay, {"grid:1km"}),
      View("qdir", WindowSize::kQuarterHour, {"direction"}), View("hall", WindowSize::kHour, {}),
      View("ddir", WindowSize::kDay, {"direction"}), View("dall", WindowSize::kDay, {}),
      View("hmun", WindowSize::kHour, {"municipality"}),
      View("dmun", WindowSize::kDay, {"municipality"}),
      // Feed quality's entities reporting (ADR 0018 §6): sensors or shuttles per hour
      // against those of the day.
      View("hent", WindowSize::kHour, {}, "entities"),
      View("dent", WindowSize::kDay, {}, "entities")};
  const SetLayout layout = SetLayout::Of(spec, false);
  absl::StatusOr<WindowClock> clock = WindowClock::Amsterdam();
  if (!clock.ok()) return Fail(std::string(clock.status().message()));
  absl::StatusOr<PTable> table = PTable::Build(spec.guard.ptable);
  if (!table.ok()) return Fail(std::string(table.status().message()));
  const DataClass cls = aggregated ? DataClass::kAggregated : DataClass::kPseudonymised;
  const Guard guard(spec.guard, cls, &*table);
  Gate gate(&layout, &*clock, spec.guard, cls, &*table);

  std::mt19937_64 rng(seed);
  // Clusters of 100 m cells: (cell, sensors in it).
  const std::vector<std::pair<std::string, int>> clusters = {
      {"E1550N4630", 4}, {"E1551N4630", 3}, {"E1553N4632", 5}, {"E1556N4631", 3},
      {"E1555N4636", 4}, {"E1561N4630", 4}, {"E1562N4634", 3}, {"E1567N4638", 2}};
  // Three municipalities; two cells lie on a border, their counters in either municipality.
  auto municipality_of = [](const std::string& cell, int i) -> std::string {
    if (cell == "E1553N4632") return i < 3 ? "GM0014" : "GM1966";
    if (cell == "E1562N4634") return i < 2 ? "GM1952" : "GM0014";
    if (cell == "E1556N4631" || cell == "E1555N4636") return "GM1966";
    if (cell == "E1567N4638") return "GM1952";
    return "GM0014";
  };
  std::vector<Sensor> sensors;
  for (const auto& [cell, count] : clusters) {
    for (int i = 0; i < count; ++i) {
      Sensor s;
      s.cell = cell;
      s.municipality = municipality_of(cell, i);
      s.day_rate = aggregated ? 1.0 + static_cast<double>(rng() % 60) / 10 : 0.8;
      s.night_rate = aggregated ? 0.2 : 0.1;
      if (i == 0 && cell == "E1567N4638") s.day_rate = 90;  // the dominant counter
      if (i == 1 && (cell == "E1556N4631" || cell == "E1562N4634")) {
        s.day_rate = 0.15;  // sparse: mostly 0, sometimes 1
        s.night_rate = 0.02;
      }
      s.key = rng();
      sensors.push_back(s);
    }
  }

  const absl::TimeZone& zone = clock->zone();
  const Window day = clock->WindowOf(
      WindowSize::kDay, absl::FromCivil(absl::CivilSecond(2025, 3, 30, 12, 0, 0), zone));
  std::vector<Fact> facts;
  std::vector<std::string> dims = layout.dimensions;
  for (absl::Time q = day.start; q < day.end; q += absl::Minutes(15)) {
    const int hour = absl::ToCivilHour(q, zone).hour();
    const bool daytime = hour >= 7 && hour < 20;
    for (size_t s = 0; s < sensors.size(); ++s) {
      for (const char* direction : {"IN", "OUT"}) {
        const double rate = daytime ? sensors[s].day_rate : sensors[s].night_rate;
        std::poisson_distribution<int64_t> count(rate);
        const int64_t n = count(rng);
        // PSEUDONYMISED: one record per entity seen (n records of n distinct shuttles would be
        // one record each); shuttles are sensors here, seen or not in the quarter.
        // AGGREGATED: every third counter sleeps at night (battery-powered), so the sensors
        // reporting per hour vary.
        const bool asleep = aggregated && !daytime && s % 3 == 0;
        const int64_t records = aggregated ? (asleep ? 0 : 1) : (n > 0 ? 1 : 0);
        for (int64_t r = 0; r < records; ++r) {
          Fact f;
          f.partition = 0;
          f.event_time = q + absl::Seconds(static_cast<int64_t>(rng() % 900));
          f.unit_key = sensors[s].key;
          f.unit_count = aggregated ? n : 1;
          for (const std::string& d : dims) {
            if (d == "direction") {
              f.dimensions.push_back(direction);
            } else if (d == "grid:100m") {
              f.dimensions.push_back(sensors[s].cell);
            } else if (d == "grid:500m") {
              f.dimensions.push_back(CoarsenGridCode(sensors[s].cell, 500));
            } else if (d == "grid:1km") {
              f.dimensions.push_back(CoarsenGridCode(sensors[s].cell, 1000));
            } else {
              f.dimensions.push_back(sensors[s].municipality);
            }
          }
          facts.push_back(std::move(f));
        }
      }
    }
  }
  std::stable_sort(facts.begin(), facts.end(),
                   [](const Fact& a, const Fact& b) { return a.event_time < b.event_time; });
  for (size_t i = 0; i < facts.size(); ++i) facts[i].offset = static_cast<int64_t>(i);

  Engine engine(&layout, &*clock, {0}, day.start);
  nlohmann::json cells = nlohmann::json::array();
  Gate::Report total;
  auto publish = [&](std::vector<ClosedCell> closed) -> bool {
    if (closed.empty()) return true;
    std::vector<PublishedCell> out;
    for (const ClosedCell& c : closed) out.push_back(guard.Apply(layout, c));
    if (gate_on) {
      absl::StatusOr<Gate::Report> r = gate.Apply(closed, &out);
      if (!r.ok()) {
        std::cerr << "attack_data: gate: " << r.status() << "\n";
        return false;
      }
      total.moves += r->moves;
      total.fallbacks += r->fallbacks;
      total.secondary += r->secondary;
      total.relabelled += r->relabelled;
      total.c2_violations += r->c2_violations;
      total.c3_violations += r->c3_violations;
      total.lps += r->lps;
    }
    for (size_t i = 0; i < closed.size(); ++i) {
      const PublishedMeasure& m = out[i].measures[0];
      nlohmann::json j;
      j["view"] = closed[i].id.view;
      j["start"] = absl::ToUnixMillis(closed[i].cell.window.start);
      j["end"] = absl::ToUnixMillis(closed[i].cell.window.end);
      j["group"] = closed[i].cell.group;
      j["protection"] = ProtectionName(m.protection);
      if (m.value) j["published"] = static_cast<int64_t>(*m.value);
      // For the checker only: never part of a publication.
      const ViewSpec& view = spec.views[closed[i].id.view];
      j["truth"] = guard.Frequency(view, closed[i].cell);
      std::vector<double> contributions;
      for (const auto& [key, u] : closed[i].cell.units) {
        contributions.push_back(guard.CountsUnits(view) ? 1.0 : static_cast<double>(u.count));
      }
      j["upl"] = UpperProtectionLevel(contributions, spec.guard.p);
      cells.push_back(std::move(j));
    }
    return true;
  };
  for (const Fact& f : facts) {
    if (engine.Offer(f, f.event_time) == Outcome::kMerged) gate.Note(f);
    if (engine.Evaluate(f.event_time) && !publish(engine.TakeClosed())) return 1;
  }
  engine.AdvanceTo(day.end);
  if (!publish(engine.TakeClosed())) return 1;

  nlohmann::json out;
  out["class"] = data_class;
  out["gate"] = gate_on;
  out["seed"] = seed;
  out["k"] = spec.guard.k;
  out["p"] = spec.guard.p;
  out["D"] = spec.guard.ptable.d;
  out["js"] = spec.guard.ptable.js;
  out["day"] = {absl::ToUnixMillis(day.start), absl::ToUnixMillis(day.end)};
  for (const ViewSpec& v : spec.views) {
    nlohmann::json jv;
    jv["id"] = v.id;
    jv["window"] = std::string(WindowSizeName(v.window));
    jv["measure"] = v.measures[0].Name();
    jv["group_by"] = nlohmann::json::array();
    for (const Dimension& d : v.group_by) jv["group_by"].push_back(d.Name());
    out["views"].push_back(jv);
  }
  // The p-table's existence sets of every value published: public knowledge.
  nlohmann::json existence = nlohmann::json::object();
  for (const nlohmann::json& c : cells) {
    if (!c.contains("published")) continue;
    const int64_t y = c["published"];
    const auto [lo, hi] = table->Existence(y);
    existence[std::to_string(y)] = {lo, hi};
  }
  out["existence"] = existence;
  // The attacker's map: which grid cells (each size) lie in which municipality — public
  // geography, here the counters' places.
  std::set<std::vector<std::string>> map;
  for (const Sensor& s : sensors) {
    map.insert({"grid:100m", s.cell, s.municipality});
    map.insert({"grid:500m", CoarsenGridCode(s.cell, 500), s.municipality});
    map.insert({"grid:1km", CoarsenGridCode(s.cell, 1000), s.municipality});
  }
  out["map"] = map;
  out["cells"] = cells;
  int hmun = -1;
  for (size_t i = 0; i < spec.views.size(); ++i) {
    if (spec.views[i].id == "hmun") hmun = static_cast<int>(i);
  }
  if (absl::Status s = National(cells, hmun, &out); !s.ok()) {
    std::cerr << "attack_data: national: " << s << "\n";
    return 1;
  }
  out["records"] = facts.size();
  out["gate_report"] = {{"moves", total.moves},
                        {"fallbacks", total.fallbacks},
                        {"secondary", total.secondary},
                        {"relabelled", total.relabelled},
                        {"c2_violations", total.c2_violations},
                        {"c3_violations", total.c3_violations},
                        {"lps", total.lps}};
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace views
}  // namespace polder

int main(int argc, char** argv) { return polder::views::Main(argc, argv); }
