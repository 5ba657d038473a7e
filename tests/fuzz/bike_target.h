// The ingest target the fuzz targets validate against: the standard BikeCount dataset of
// Groningen, schema id 42. Aborts if the standard schemas do not parse (a build error, not an
// input).
#ifndef POLDER_TESTS_FUZZ_BIKE_TARGET_H_
#define POLDER_TESTS_FUZZ_BIKE_TARGET_H_

#include <cstdlib>

#include "common/schema/record_layout.h"
#include "proto/polder/datasets/standard_parsed.h"
#include "services/node/ingest/validator.h"

namespace polder {
namespace fuzzing {

inline const node::IngestTarget& BikeCountTarget() {
  static const node::IngestTarget* target = [] {
    constexpr char kSubject[] = "polder.datasets.mobility.v1.BikeCount";
    auto parsed = datasets::ParseStandardSchemas();
    if (!parsed.ok()) std::abort();
    auto* t = new node::IngestTarget;
    t->peer_id = "groningen";
    t->federation = "nl-smartcity";
    t->dataset_id = "mobility.bike-counts";
    t->topic = "groningen.mobility.bike-counts";
    t->schema_id = 42;
    t->schema = (*parsed)[kSubject];
    const auto* d = t->schema->file()->pool()->FindMessageTypeByName(kSubject);
    if (d == nullptr) std::abort();
    auto layout = schema::RecordLayoutOf(d);
    auto indexes = t->schema->IndexesOf(kSubject);
    if (!layout.ok() || !indexes.ok()) std::abort();
    t->layout = *layout;
    t->message_indexes = *indexes;
    return t;
  }();
  return *target;
}

}  // namespace fuzzing
}  // namespace polder

#endif  // POLDER_TESTS_FUZZ_BIKE_TARGET_H_
