#include "services/node/schema_cache/schema_cache.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/polder/datasets/standard_parsed.h"
#include "proto/polder/datasets/standard_sources.h"

namespace polder {
namespace node {
namespace {

using ::polder::testing::StatusIs;

// A registry holding the standard datasets as version 1 each, ids in bootstrap order.
class FakeRegistry : public SchemaSource {
 public:
  FakeRegistry() {
    auto standard = datasets::StandardSchemas();
    auto parsed = datasets::ParseStandardSchemas();
    EXPECT_OK(parsed.status());
    int32_t id = 0;
    for (const datasets::StandardSchema& s : *standard) {
      FetchedSchema f;
      f.id = ++id;
      f.subject = s.subject;
      f.version = 1;
      f.serialized = (*parsed)[s.subject]->ToSerializedBase64();
      for (const std::string& i : s.imports) f.references.push_back({i, i, 1});
      schemas_[f.id] = f;
      subjects_[s.subject] = f.id;
    }
  }
  absl::StatusOr<FetchedSchema> ById(int32_t id) override {
    ++calls;
    if (down) return absl::UnavailableError("registry down");
    auto it = schemas_.find(id);
    if (it == schemas_.end()) return absl::NotFoundError(absl::StrCat("Schema ", id, " not found"));
    FetchedSchema f = it->second;
    f.subject.clear();
    f.version = 0;
    return f;
  }
  absl::StatusOr<FetchedSchema> Version(const std::string& subject, int32_t version) override {
    ++calls;
    if (down) return absl::UnavailableError("registry down");
    auto it = subjects_.find(subject);
    if (it == subjects_.end() || (version != -1 && version != 1))
      return absl::NotFoundError("Subject not found");
    return schemas_[it->second];
  }
  bool down = false;
  int calls = 0;

 private:
  std::map<int32_t, FetchedSchema> schemas_;
  std::map<std::string, int32_t> subjects_;
};

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
}

}  // namespace
}  // namespace node
}  // namespace polder
