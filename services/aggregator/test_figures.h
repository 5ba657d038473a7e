// National figures for the read API's and the live updates' unit tests: one view of two cities
// (amersfoort, groningen) on 2026-12-03, a figure per window and revision.
#ifndef POLDER_SERVICES_AGGREGATOR_TEST_FIGURES_H_
#define POLDER_SERVICES_AGGREGATOR_TEST_FIGURES_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/views/times.h"
#include "proto/polder/national/v1/national_figure.pb.h"
#include "services/aggregator/aggregator_job.h"
#include "services/aggregator/national.h"

namespace polder {
namespace aggregator {
namespace test_figures {

namespace nv1 = ::polder::national::v1;

inline constexpr char kDataset[] = "mobility.bike-counts";
inline constexpr char kView[] = "quarter-municipality";

inline absl::Time At(int h, int m) {
  return absl::FromCivil(absl::CivilMinute(2026, 12, 3, h, m), absl::UTCTimeZone());
}

inline nv1::MeasureTotal Measure(const std::string& name, std::optional<double> value,
                                 int64_t withheld = 0) {
  nv1::MeasureTotal m;
  m.set_name(name);
  if (value.has_value()) m.set_value(*value);
  m.set_withheld_cells(withheld);
  return m;
}

inline nv1::NationalFigure Figure(absl::Time start, int revision, std::vector<std::string> cities,
                                  double total) {
  nv1::NationalFigure f;
  f.set_figure_key(FigureKey(kDataset, kView, start));
  views::SetProtoTime(start, f.mutable_window_start());
  views::SetProtoTime(start + absl::Minutes(15), f.mutable_window_end());
  views::SetProtoTime(start + absl::Minutes(30 + revision), f.mutable_decided_at());
  f.set_dataset_id(kDataset);
  f.set_view_id(kView);
  f.set_revision(revision);
  f.set_reason(revision == 0 ? nv1::REVISION_REASON_DEADLINE : nv1::REVISION_REASON_LATE_CITY);
  for (const char* c : {"amersfoort", "groningen"}) f.add_cities_expected(c);
  for (const std::string& c : cities) {
    nv1::CityPart* p = f.add_cities();
    p->set_peer(c);
    p->set_cells(2);
    *p->add_measures() = Measure("count", c == "groningen" ? 40 : 30);
    *p->add_measures() = Measure("max:speed", std::nullopt, 2);
    views::SetProtoTime(start + absl::Minutes(16), p->mutable_watermark());
  }
  f.set_complete(cities.size() == 2);
  *f.add_totals() = Measure("count", total);
  *f.add_totals() = Measure("max:speed", std::nullopt, 2 * static_cast<int64_t>(cities.size()));
  return f;
}

// The view: amersfoort and groningen.
inline NationalViewSpec TwoCityView() {
  NationalViewSpec v;
  v.dataset = kDataset;
  v.view = kView;
  v.cities = {"amersfoort", "groningen"};
  return v;
}

// 10:00 (groningen, then revised with amersfoort: 40 → 70) and 10:15 (both: 71).
inline std::shared_ptr<AggregatorJob::Figures> TwoWindows() {
  auto figures = std::make_shared<AggregatorJob::Figures>();
  auto& windows = (*figures)[absl::StrCat(kDataset, "/", kView)];
  windows[At(10, 0)] = {Figure(At(10, 0), 0, {"groningen"}, 40),
                        Figure(At(10, 0), 1, {"groningen", "amersfoort"}, 70)};
  windows[At(10, 15)] = {Figure(At(10, 15), 0, {"groningen", "amersfoort"}, 71)};
  return figures;
}

}  // namespace test_figures
}  // namespace aggregator
}  // namespace polder

#endif  // POLDER_SERVICES_AGGREGATOR_TEST_FIGURES_H_
