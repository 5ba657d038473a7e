// Synthetic city data for Polder's standard datasets: realistic, deterministic streams for
// Groningen, Amersfoort, Enschede and Ede–Wageningen — stable entity ids and places, daily and
// weekly rhythms in local time (Europe/Amsterdam), plausible ranges, correct event times.
// Used by the tests, the demo (`polder-generate --post`) and the benchmarks.
//
//   for (const auto& r :
//        generator::Generate("groningen", "mobility.bike-counts", interval_end, 42)) {
//     // r.entity_id, r.event_time, r.json (the dataset message in the proto3 JSON mapping)
//   }
#ifndef POLDER_TOOLS_GENERATOR_GENERATOR_H_
#define POLDER_TOOLS_GENERATOR_GENERATOR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace polder {
namespace generator {

struct City {
  std::string peer_id;  // groningen, amersfoort, enschede, ede-wageningen
  std::string name;
  std::string municipality_code;  // CBS code, e.g. GM0014
  double latitude;
  double longitude;
};

const std::vector<City>& Cities();
// The seven standard dataset ids, in catalogue order.
const std::vector<std::string>& DatasetIds();
// How often a dataset reports per entity (its update rhythm).
absl::Duration Interval(const std::string& dataset_id);

struct GeneratedRecord {
  std::string entity_id;
  absl::Time event_time;
  std::string json;
};

// One record per entity of `city` for the reporting interval that ends at `interval_end`
// (rounded down to the dataset's interval). Deterministic in (city, dataset, interval, seed).
absl::StatusOr<std::vector<GeneratedRecord>> Generate(const std::string& city,
                                                      const std::string& dataset_id,
                                                      absl::Time interval_end, uint64_t seed);

// The entity ids `Generate` uses for a city's dataset.
absl::StatusOr<std::vector<std::string>> EntityIds(const std::string& city,
                                                   const std::string& dataset_id);

}  // namespace generator
}  // namespace polder

#endif  // POLDER_TOOLS_GENERATOR_GENERATOR_H_
