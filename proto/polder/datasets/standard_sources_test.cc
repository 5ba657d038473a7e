// The embedded standard sources: in dependency order, parseable by the registry's in-process
// parser exactly as `polderctl federation bootstrap` sends them, one dataset per file, and the
// seven datasets of ARCHITECTURE §4.
#include "proto/polder/datasets/standard_sources.h"

#include <map>
#include <set>

#include "common/schema/schema.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace datasets {
namespace {

TEST(StandardSourcesTest, ParseInDependencyOrderWithReferences) {
  ASSERT_OK_AND_ASSIGN(std::vector<StandardSchema> schemas, StandardSchemas());
  std::map<std::string, std::shared_ptr<const schema::ParsedSchema>> parsed;
  std::set<std::string> dataset_ids;
  for (const StandardSchema& s : schemas) {
    std::vector<schema::ResolvedReference> refs;
    for (const std::string& import : s.imports) {
      ASSERT_TRUE(parsed.count(import))
          << s.path << " imports " << import << " before it is registered";
      refs.push_back({import, import, 1, parsed[import]});
    }
    schema::ParseOptions options;
    options.file_name = s.path;
    auto one = schema::ParsedSchema::Parse(s.source, refs, options);
    ASSERT_OK(one.status()) << s.path;
    parsed[s.path] = *one;
    if (s.record_schema) {
      EXPECT_THAT(s.subject, ::testing::AnyOf("polder.views.v1.AggregateCell",
                                              "polder.national.v1.NationalFigure"))
          << s.path;
      EXPECT_OK(parsed[s.path]->IndexesOf(s.subject).status()) << s.subject << " is in " << s.path;
    } else if (s.dataset_id.empty()) {
      EXPECT_EQ(s.subject, s.path) << "imported files are registered under their import path";
    } else {
      EXPECT_TRUE(dataset_ids.insert(s.dataset_id).second) << "dataset id twice: " << s.dataset_id;
      EXPECT_THAT(s.subject, ::testing::StartsWith("polder.datasets.")) << s.path;
      EXPECT_OK(parsed[s.path]->IndexesOf(s.subject).status()) << s.subject << " is in " << s.path;
    }
  }
  EXPECT_THAT(dataset_ids,
              ::testing::UnorderedElementsAre("mobility.bike-counts", "parking.occupancy",
                                              "environment.air-quality", "energy.streetlights",
                                              "mobility.shuttle-telemetry",
                                              "safety.incident-counts", "economy.footfall"));
}

}  // namespace
}  // namespace datasets
}  // namespace polder
