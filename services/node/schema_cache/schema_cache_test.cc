#include "services/node/schema_cache/schema_cache.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/polder/datasets/standard_parsed.h"
#include "proto/polder/datasets/standard_sources.h"
#include "services/node/schema_cache/fake_schema_source.h"

namespace polder {
namespace node {
namespace {

using ::polder::testing::StatusIs;

using FakeRegistry = FakeSchemaSource;

constexpr char kBikes[] = "polder.datasets.mobility.v1.BikeCount";

TEST(SchemaCacheTest, FetchesWithReferencesPersistsAndServesWhileTheRegistryIsDown) {
  const std::string file = absl::StrCat(std::getenv("TEST_TMPDIR"), "/cache.json");
  std::filesystem::remove(file);
  auto registry = std::make_shared<FakeRegistry>();
  {
    ASSERT_OK_AND_ASSIGN(auto cache, SchemaCache::Open(file, registry));
    ASSERT_OK(cache->Refresh({kBikes}));
    ASSERT_OK_AND_ASSIGN(int32_t id, cache->IdOf(kBikes, -1));
    ASSERT_OK_AND_ASSIGN(auto schema, cache->ById(id));
    EXPECT_OK(schema->parsed->IndexesOf(kBikes).status());
    EXPECT_EQ(schema->references.size(), 2u) << "options.proto and location.proto";
    EXPECT_EQ(cache->stats().schemas, 3);
    const int calls = registry->calls;
    ASSERT_OK(cache->ById(id).status());
    EXPECT_EQ(registry->calls, calls) << "ids are cached for good";
  }
  // A restarted node with the registry down still knows the latest version and the schemas.
  registry->down = true;
  ASSERT_OK_AND_ASSIGN(auto cache, SchemaCache::Open(file, registry));
  ASSERT_OK_AND_ASSIGN(int32_t id, cache->IdOf(kBikes, -1));
  ASSERT_OK_AND_ASSIGN(auto schema, cache->ById(id));
  EXPECT_OK(schema->parsed->IndexesOf(kBikes).status());
  EXPECT_THAT(cache->Refresh({kBikes}), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(cache->stats().registry_reachable);
  EXPECT_OK(cache->IdOf(kBikes, -1).status()) << "the last known latest stays in force";
  EXPECT_THAT(cache->ById(999), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(cache->VersionsOf(id),
              ::testing::ElementsAre(std::make_pair(std::string(kBikes), 1)));
}

TEST(SchemaCacheTest, UnknownSubjectsAndIdsAreNotFoundAndACorruptFileIsNamed) {
  const std::string file = absl::StrCat(std::getenv("TEST_TMPDIR"), "/cache2.json");
  auto registry = std::make_shared<FakeRegistry>();
  ASSERT_OK_AND_ASSIGN(auto cache, SchemaCache::Open(file, registry));
  EXPECT_THAT(cache->IdOf("polder.datasets.nope.v1.Nope", -1),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(cache->ById(12345), StatusIs(absl::StatusCode::kNotFound));
  std::ofstream(file) << "{not json";
  EXPECT_THAT(
      SchemaCache::Open(file, registry),
      StatusIs(absl::StatusCode::kDataLoss, ::testing::HasSubstr("cache2.json is unreadable")));
  // Valid JSON of the wrong shape is refused with a reason, never thrown.
  for (const char* doc :
       {R"({"schemas": {"1": {"serialized": "", "references": [1]}}})",
        R"({"schemas": {"1": {"serialized": "", "references": [{"name": 7}]}}})",
        R"({"schemas": {"1": {"serialized": "", "references": "x"}}})",
        R"({"schemas": {}, "versions": [1]})", R"({"schemas": {}, "versions": {"s": 3}})",
        R"({"schemas": {}, "pinned": {"a": 1}})", R"({"schemas": {}, "latest": 5})"}) {
    std::ofstream(file) << doc;
    EXPECT_THAT(SchemaCache::Open(file, registry),
                StatusIs(absl::StatusCode::kDataLoss, ::testing::HasSubstr("is unreadable")))
        << doc;
  }
}

}  // namespace
}  // namespace node
}  // namespace polder
