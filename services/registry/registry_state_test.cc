#include "services/registry/registry_state.h"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace registry {
namespace {

using ::nlohmann::json;
using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

StoreRecord Rec(const std::string& key, std::optional<std::string> value) {
  return {key, std::move(value)};
}

StoredSchema Schema(int32_t id, const std::string& hash, std::vector<SchemaReference> refs = {}) {
  StoredSchema s;
  s.id = id;
  s.schema = absl::StrCat("c2NoZW1h", id);
  s.hash = hash;
  s.references = std::move(refs);
  return s;
}

// Everything RegistryState answers, as text: two states that print alike answer alike.
std::string Snapshot(const RegistryState& state) {
  std::vector<std::string> lines;
  for (const auto& [id, s] : state.schemas()) {
    std::vector<std::string> refs;
    for (const SchemaReference& r : s.references) {
      refs.push_back(absl::StrCat(r.name, "=", r.subject, "@", r.version));
    }
    const std::optional<int32_t> by_hash = state.IdForHash(s.hash);
    lines.push_back(absl::StrCat("schema ", id, " ", s.schema, " hash ", s.hash, " -> ",
                                 by_hash.has_value() ? *by_hash : -1, " refs ",
                                 absl::StrJoin(refs, ",")));
  }
  std::vector<std::string> probes = state.Subjects(/*include_deleted=*/true);
  for (const char* extra : {"p.Bike", "q", "s", "gone"}) probes.push_back(extra);
  for (const std::string& subject : probes) {
    std::string line = absl::StrCat("subject ", subject, ":");
    if (const auto* versions = state.Versions(subject)) {
      for (const auto& [v, sv] : *versions) {
        absl::StrAppend(&line, " v", v, "=", sv.id, sv.deleted ? "(deleted)" : "");
      }
    }
    absl::StrAppend(&line, " config ", state.SubjectCompatibility(subject).value_or("-"), " mode ",
                    state.SubjectMode(subject).value_or("-"));
    lines.push_back(line);
  }
  lines.push_back(absl::StrCat("global ", state.GlobalCompatibility(), " ", state.GlobalMode()));
  lines.push_back(absl::StrCat("live subjects ", absl::StrJoin(state.Subjects(false), ",")));
  lines.push_back(absl::StrCat("next id ", state.next_id()));
  if (state.primary().has_value()) {
    lines.push_back(
        absl::StrCat("primary ", state.primary()->replica, " epoch ", state.primary()->epoch));
  }
  return absl::StrJoin(lines, "\n");
}

// A history as the registry writes it: registrations, a reference, soft and hard deletes,
// settings set and unset, a change of primary.
std::vector<StoreRecord> History() {
  return {
      RegistryState::PrimaryRecord({"reg-a", 1}),
      RegistryState::SchemaRecord(Schema(1, "h1")),
      RegistryState::HighWaterRecord(2),
      RegistryState::VersionRecord("p.Bike", {1, 1, false}),
      RegistryState::SchemaRecord(Schema(2, "h2", {{"loc.proto", "s", 1}})),
      RegistryState::HighWaterRecord(3),
      RegistryState::VersionRecord("p.Bike", {2, 2, false}),
      RegistryState::SchemaRecord(Schema(3, "h3")),
      RegistryState::HighWaterRecord(4),
      RegistryState::VersionRecord("s", {1, 3, false}),
      RegistryState::VersionRecord("q", {1, 1, false}),
      RegistryState::ConfigRecord("", "FULL"),
      RegistryState::ConfigRecord("p.Bike", "NONE"),
      RegistryState::ModeRecord("q", "READONLY"),
      RegistryState::VersionRecord("p.Bike", {1, 1, true}),
      RegistryState::VersionRecord("q", {1, 1, true}),
      RegistryState::VersionTombstone("q", 1),
      RegistryState::ModeRecord("q", std::nullopt),
      RegistryState::ConfigRecord("", std::nullopt),
      RegistryState::ModeRecord("", "READONLY"),
      RegistryState::PrimaryRecord({"reg-b", 2}),
  };
}

RegistryState Rebuild(const std::vector<StoreRecord>& records) {
  RegistryState state;
  for (const StoreRecord& r : records) EXPECT_OK(state.Apply(r)) << r.key;
  return state;
}

TEST(RegistryStateTest, StoredRecordFormatIsStable) {
  StoreRecord schema = RegistryState::SchemaRecord(Schema(7, "ab12", {{"a.proto", "a", 3}}));
  EXPECT_EQ(schema.key, R"(["schema",7])");
  ASSERT_TRUE(schema.value.has_value());
  EXPECT_EQ(json::parse(*schema.value),
            json::parse(R"({"id": 7, "schema": "c2NoZW1h7", "hash": "ab12",
                            "references": [{"name": "a.proto", "subject": "a", "version": 3}]})"));
  StoreRecord version = RegistryState::VersionRecord("p.Bike", {2, 7, true});
  EXPECT_EQ(version.key, R"(["version","p.Bike",2])");
  EXPECT_EQ(json::parse(*version.value),
            json::parse(R"({"subject": "p.Bike", "version": 2, "id": 7, "deleted": true})"));
  EXPECT_EQ(RegistryState::VersionTombstone("p.Bike", 2).key, R"(["version","p.Bike",2])");
  EXPECT_FALSE(RegistryState::VersionTombstone("p.Bike", 2).value.has_value());
  StoreRecord global = RegistryState::ConfigRecord("", "FULL");
  EXPECT_EQ(global.key, R"(["config",null])");
  EXPECT_EQ(json::parse(*global.value), json::parse(R"({"compatibility": "FULL"})"));
  EXPECT_EQ(RegistryState::ConfigRecord("s", std::nullopt).key, R"(["config","s"])");
  EXPECT_FALSE(RegistryState::ConfigRecord("s", std::nullopt).value.has_value());
  StoreRecord mode = RegistryState::ModeRecord("s", "IMPORT");
  EXPECT_EQ(mode.key, R"(["mode","s"])");
  EXPECT_EQ(json::parse(*mode.value), json::parse(R"({"mode": "IMPORT"})"));
  StoreRecord hwm = RegistryState::HighWaterRecord(9);
  EXPECT_EQ(hwm.key, R"(["id-hwm"])");
  EXPECT_EQ(json::parse(*hwm.value), json::parse(R"({"next_id": 9})"));
  StoreRecord primary = RegistryState::PrimaryRecord({"reg-a", 4});
  EXPECT_EQ(primary.key, R"(["primary"])");
  EXPECT_EQ(json::parse(*primary.value), json::parse(R"({"replica": "reg-a", "epoch": 4})"));
}

TEST(RegistryStateTest, AppliesRecordsWrittenByHand) {
  RegistryState state;
  ASSERT_OK(state.Apply(Rec(R"(["schema", 4])",
                            R"({"id": 4, "schema": "AAAA", "hash": "h4",
                                "references": [{"name": "l.proto", "subject": "l", "version": 2}]})")));
  ASSERT_OK(state.Apply(
      Rec(R"(["version", "p.Bike", 1])", R"({"subject": "p.Bike", "version": 1, "id": 4})")));
  ASSERT_OK(state.Apply(Rec(R"(["config", null])", R"({"compatibility": "FORWARD"})")));
  ASSERT_OK(state.Apply(Rec(R"(["mode", "p.Bike"])", R"({"mode": "IMPORT"})")));
  ASSERT_OK(state.Apply(Rec(R"(["id-hwm"])", R"({"next_id": 10})")));
  ASSERT_OK(state.Apply(Rec(R"(["primary"])", R"({"replica": "reg-b", "epoch": 7})")));

  const StoredSchema* s = state.SchemaById(4);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->schema, "AAAA");
  EXPECT_EQ(s->hash, "h4");
  EXPECT_THAT(s->references, ElementsAre(SchemaReference{"l.proto", "l", 2}));
  EXPECT_EQ(state.IdForHash("h4"), 4);
  const auto* versions = state.Versions("p.Bike");
  ASSERT_NE(versions, nullptr);
  ASSERT_EQ(versions->size(), 1u);
  EXPECT_EQ(versions->at(1).id, 4);
  EXPECT_FALSE(versions->at(1).deleted) << "\"deleted\" is optional and defaults to false";
  EXPECT_EQ(state.GlobalCompatibility(), "FORWARD");
  EXPECT_EQ(state.EffectiveMode("p.Bike"), "IMPORT");
  EXPECT_EQ(state.GlobalMode(), "READWRITE");
  EXPECT_EQ(state.next_id(), 10);
  ASSERT_TRUE(state.primary().has_value());
  EXPECT_EQ(state.primary()->replica, "reg-b");
  EXPECT_EQ(state.primary()->epoch, 7);
  EXPECT_EQ(state.applied(), 6);
}

TEST(RegistryStateTest, EmptyStateHasTheDefaults) {
  RegistryState state;
  EXPECT_EQ(state.SchemaById(1), nullptr);
  EXPECT_EQ(state.IdForHash("h"), std::nullopt);
  EXPECT_EQ(state.Versions("p.Bike"), nullptr);
  EXPECT_THAT(state.Subjects(true), IsEmpty());
  EXPECT_EQ(state.GlobalCompatibility(), "BACKWARD");
  EXPECT_EQ(state.GlobalMode(), "READWRITE");
  EXPECT_EQ(state.EffectiveCompatibility("p.Bike"), "BACKWARD");
  EXPECT_EQ(state.EffectiveMode("p.Bike"), "READWRITE");
  EXPECT_EQ(state.SubjectCompatibility("p.Bike"), std::nullopt);
  EXPECT_EQ(state.next_id(), 1) << "ids start at 1";
  EXPECT_FALSE(state.primary().has_value());
  EXPECT_EQ(state.applied(), 0);
}

TEST(RegistryStateTest, SchemaRecordsAreKeptByIdAndHash) {
  RegistryState state;
  ASSERT_OK(state.Apply(RegistryState::SchemaRecord(Schema(1, "h1"))));
  ASSERT_OK(state.Apply(RegistryState::SchemaRecord(Schema(5, "h5", {{"a.proto", "a", 1}}))));
  EXPECT_EQ(state.IdForHash("h1"), 1);
  EXPECT_EQ(state.IdForHash("h5"), 5);
  EXPECT_EQ(state.next_id(), 6) << "above the highest schema id";
  EXPECT_THAT(state.UsesOf(1), IsEmpty());
  // A schema record is never deleted: its tombstone changes nothing.
  ASSERT_OK(state.Apply(Rec(R"(["schema",5])", std::nullopt)));
  EXPECT_NE(state.SchemaById(5), nullptr);
  EXPECT_EQ(state.IdForHash("h5"), 5);
  // A schema referencing a:1 that no version uses is still reported as a referrer.
  EXPECT_THAT(state.ReferencedBy("a", 1), ElementsAre(Pair("schema id 5", 0)));
  ASSERT_OK(state.Apply(RegistryState::VersionRecord("user", {1, 5, false})));
  EXPECT_THAT(state.ReferencedBy("a", 1), ElementsAre(Pair("user", 1)));
  EXPECT_THAT(state.ReferencedBy("a", 2), IsEmpty());
}

TEST(RegistryStateTest, RewrittenSchemaRecordLeavesNoStaleHash) {
  // Compaction keeps only the last record of a key: a replica that read both records must
  // answer as one that read only the second.
  const StoreRecord first = RegistryState::SchemaRecord(Schema(1, "old"));
  const StoreRecord second = RegistryState::SchemaRecord(Schema(1, "new"));
  RegistryState full = Rebuild({first, second});
  RegistryState compacted = Rebuild({second});
  EXPECT_EQ(full.IdForHash("old"), std::nullopt);
  EXPECT_EQ(full.IdForHash("new"), 1);
  EXPECT_EQ(Snapshot(full), Snapshot(compacted));
}

TEST(RegistryStateTest, VersionsAreSoftDeletedByFlagAndHardDeletedByTombstone) {
  RegistryState state;
  ASSERT_OK(state.Apply(RegistryState::VersionRecord("p.Bike", {1, 1, false})));
  ASSERT_OK(state.Apply(RegistryState::VersionRecord("p.Bike", {2, 2, false})));
  ASSERT_OK(state.Apply(RegistryState::VersionRecord("q", {1, 2, false})));
  EXPECT_THAT(state.Subjects(false), ElementsAre("p.Bike", "q"));
  EXPECT_THAT(state.UsesOf(2), ElementsAre(Pair("p.Bike", 2), Pair("q", 1)));

  ASSERT_OK(state.Apply(RegistryState::VersionRecord("q", {1, 2, true})));
  EXPECT_THAT(state.Subjects(false), ElementsAre("p.Bike"));
  EXPECT_THAT(state.Subjects(true), ElementsAre("p.Bike", "q"));
  ASSERT_NE(state.Versions("q"), nullptr);
  EXPECT_TRUE(state.Versions("q")->at(1).deleted);

  ASSERT_OK(state.Apply(RegistryState::VersionTombstone("p.Bike", 1)));
  ASSERT_NE(state.Versions("p.Bike"), nullptr);
  EXPECT_EQ(state.Versions("p.Bike")->count(1), 0u);
  EXPECT_EQ(state.Versions("p.Bike")->count(2), 1u);
  ASSERT_OK(state.Apply(RegistryState::VersionTombstone("q", 1)));
  EXPECT_EQ(state.Versions("q"), nullptr) << "the subject goes with its last version";
  EXPECT_THAT(state.Subjects(true), ElementsAre("p.Bike"));
  // A tombstone for what is not there is not an error (compaction may have removed it first).
  EXPECT_OK(state.Apply(RegistryState::VersionTombstone("never", 3)));
  EXPECT_OK(state.Apply(RegistryState::VersionTombstone("p.Bike", 9)));
  EXPECT_THAT(state.Subjects(true), ElementsAre("p.Bike"));
}

TEST(RegistryStateTest, CompatibilityAndModeAreSetPerSubjectOrGloballyAndUnset) {
  RegistryState state;
  ASSERT_OK(state.Apply(RegistryState::ConfigRecord("", "FULL_TRANSITIVE")));
  ASSERT_OK(state.Apply(RegistryState::ConfigRecord("p.Bike", "NONE")));
  ASSERT_OK(state.Apply(RegistryState::ModeRecord("", "READONLY")));
  ASSERT_OK(state.Apply(RegistryState::ModeRecord("p.Bike", "READWRITE")));
  EXPECT_EQ(state.GlobalCompatibility(), "FULL_TRANSITIVE");
  EXPECT_EQ(state.SubjectCompatibility("p.Bike"), "NONE");
  EXPECT_EQ(state.EffectiveCompatibility("p.Bike"), "NONE");
  EXPECT_EQ(state.EffectiveCompatibility("other"), "FULL_TRANSITIVE");
  EXPECT_EQ(state.EffectiveCompatibility(""), "FULL_TRANSITIVE");
  EXPECT_EQ(state.EffectiveMode("p.Bike"), "READWRITE");
  EXPECT_EQ(state.EffectiveMode("other"), "READONLY");
  ASSERT_OK(state.Apply(RegistryState::ConfigRecord("p.Bike", std::nullopt)));
  ASSERT_OK(state.Apply(RegistryState::ModeRecord("", std::nullopt)));
  EXPECT_EQ(state.SubjectCompatibility("p.Bike"), std::nullopt);
  EXPECT_EQ(state.EffectiveCompatibility("p.Bike"), "FULL_TRANSITIVE");
  EXPECT_EQ(state.GlobalMode(), "READWRITE") << "an unset global mode is the default again";
  EXPECT_EQ(state.SubjectMode("p.Bike"), "READWRITE");
  ASSERT_OK(state.Apply(RegistryState::ConfigRecord("", std::nullopt)));
  EXPECT_EQ(state.GlobalCompatibility(), "BACKWARD");
}

TEST(RegistryStateTest, HighWaterKeepsIdsFromBeingReused) {
  RegistryState state;
  ASSERT_OK(state.Apply(RegistryState::HighWaterRecord(10)));
  EXPECT_EQ(state.next_id(), 10);
  ASSERT_OK(state.Apply(RegistryState::HighWaterRecord(4)));
  EXPECT_EQ(state.next_id(), 10) << "the high-water mark never goes down";
  ASSERT_OK(state.Apply(RegistryState::SchemaRecord(Schema(12, "h12"))));
  EXPECT_EQ(state.next_id(), 13) << "a schema above the mark raises it";
  ASSERT_OK(state.Apply(Rec(R"(["id-hwm"])", std::nullopt)));
  EXPECT_EQ(state.next_id(), 13);
}

TEST(RegistryStateTest, TheLatestPrimaryRecordNamesThePrimary) {
  RegistryState state;
  ASSERT_OK(state.Apply(RegistryState::PrimaryRecord({"reg-a", 1})));
  ASSERT_OK(state.Apply(RegistryState::PrimaryRecord({"reg-b", 2})));
  ASSERT_TRUE(state.primary().has_value());
  EXPECT_EQ(state.primary()->replica, "reg-b");
  EXPECT_EQ(state.primary()->epoch, 2);
  ASSERT_OK(state.Apply(Rec(R"(["primary"])", std::nullopt)));
  ASSERT_TRUE(state.primary().has_value()) << "a primary record is never deleted";
  EXPECT_EQ(state.primary()->replica, "reg-b");
}

TEST(RegistryStateTest, ReplicasRebuildTheSameStateFromTheSameRecords) {
  RegistryState a = Rebuild(History());
  RegistryState b = Rebuild(History());
  EXPECT_EQ(Snapshot(a), Snapshot(b));
  EXPECT_EQ(a.applied(), static_cast<int64_t>(History().size()));
  // What the history leaves.
  EXPECT_THAT(a.Subjects(false), ElementsAre("p.Bike", "s"));
  EXPECT_EQ(a.Versions("q"), nullptr);
  EXPECT_TRUE(a.Versions("p.Bike")->at(1).deleted);
  EXPECT_FALSE(a.Versions("p.Bike")->at(2).deleted);
  EXPECT_EQ(a.EffectiveCompatibility("p.Bike"), "NONE");
  EXPECT_EQ(a.GlobalCompatibility(), "BACKWARD");
  EXPECT_EQ(a.SubjectMode("q"), std::nullopt);
  EXPECT_EQ(a.GlobalMode(), "READONLY");
  EXPECT_EQ(a.next_id(), 4);
  EXPECT_EQ(a.primary()->replica, "reg-b");
  EXPECT_THAT(a.ReferencedBy("s", 1), ElementsAre(Pair("p.Bike", 2)));
}

TEST(RegistryStateTest, ReapplyingRecordsChangesNothing) {
  const std::string once = Snapshot(Rebuild(History()));
  std::vector<StoreRecord> twice = History();
  for (const StoreRecord& r : History()) twice.push_back(r);
  EXPECT_EQ(Snapshot(Rebuild(twice)), once) << "the whole history applied again";
  std::vector<StoreRecord> doubled;
  for (const StoreRecord& r : History()) {
    doubled.push_back(r);
    doubled.push_back(r);
  }
  EXPECT_EQ(Snapshot(Rebuild(doubled)), once) << "every record applied twice in a row";
}

TEST(RegistryStateTest, TheCompactedLogGivesTheSameState) {
  // Compaction keeps the last record of each key and drops tombstones eventually.
  std::vector<StoreRecord> history = History();
  std::map<std::string, size_t> last;
  for (size_t i = 0; i < history.size(); ++i) last[history[i].key] = i;
  std::vector<StoreRecord> with_tombstones, without;
  for (size_t i = 0; i < history.size(); ++i) {
    if (last[history[i].key] != i) continue;
    with_tombstones.push_back(history[i]);
    if (history[i].value.has_value()) without.push_back(history[i]);
  }
  ASSERT_LT(without.size(), with_tombstones.size());
  const std::string full = Snapshot(Rebuild(history));
  EXPECT_EQ(Snapshot(Rebuild(with_tombstones)), full);
  EXPECT_EQ(Snapshot(Rebuild(without)), full);
}

struct Malformed {
  std::string key;
  std::optional<std::string> value;
  std::string reason;  // part of the expected message
};

TEST(RegistryStateTest, MalformedRecordsAreRefusedWithAReasonAndChangeNothing) {
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  const std::string bad_id = "\"id\" must be an integer from 1 to 2147483647";
  const std::string bad_version = "the key's version must be an integer from 1 to 2147483647";
  const std::vector<Malformed> cases = {
      {"not json", R"({"id": 1})", "unreadable record key not json"},
      {R"({"schema": 1})", R"({"id": 1})", "unreadable record key"},
      {"[]", R"({"id": 1})", "unreadable record key"},
      {"[1]", R"({"id": 1})", "unreadable record key"},
      {deep, R"({"id": 1})", "unreadable record key"},
      {R"(["bogus"])", R"({"id": 1})", "unknown record key [\"bogus\"]"},
      {R"(["schema"])", R"({"id": 1})", "unknown record key"},
      {R"(["version", "s"])", R"({"id": 1})", "unknown record key"},
      {R"(["id-hwm", 1])", R"({"next_id": 1})", "unknown record key"},
      {R"(["schema", 1])", "{", "unreadable value for key [\"schema\", 1]"},
      {R"(["schema", 1])", "[1]", "unreadable value"},
      {R"(["schema", 1])", "\"text\"", "unreadable value"},
      {R"(["schema", 1])", "{\"id\": " + deep + "}", "unreadable value"},
      // Schema records.
      {R"(["schema", 1])", R"({"id": 1, "hash": "h"})", "\"schema\" is missing"},
      {R"(["schema", 1])", R"({"id": 1, "schema": "AA"})", "\"hash\" is missing"},
      {R"(["schema", 1])", R"({"schema": "AA", "hash": "h"})", "\"id\" is missing"},
      {R"(["schema", 1])", R"({"id": "1", "schema": "AA", "hash": "h"})", bad_id},
      {R"(["schema", 1])", R"({"id": true, "schema": "AA", "hash": "h"})", bad_id},
      {R"(["schema", 1])", R"({"id": 1.5, "schema": "AA", "hash": "h"})", bad_id},
      {R"(["schema", 1])", R"({"id": 4294967297, "schema": "AA", "hash": "h"})", bad_id},
      {R"(["schema", 1])", R"({"id": 18446744073709551615, "schema": "AA", "hash": "h"})", bad_id},
      {R"(["schema", 0])", R"({"id": 0, "schema": "AA", "hash": "h"})", "key's schema id"},
      {R"(["schema", 1])", R"({"id": -1, "schema": "AA", "hash": "h"})", bad_id},
      {R"(["schema", 2])", R"({"id": 1, "schema": "AA", "hash": "h"})",
       "the key's schema id 2 differs from the value's \"id\" 1"},
      {R"(["schema", "1"])", R"({"id": 1, "schema": "AA", "hash": "h"})",
       "the key's schema id must be an integer"},
      {R"(["schema", "1"])", std::nullopt, "the key's schema id must be an integer"},
      {R"(["schema", 1])", R"({"id": 1, "schema": 5, "hash": "h"})", "\"schema\" must be a string"},
      {R"(["schema", 1])", R"({"id": 1, "schema": "AA", "hash": "h", "references": "a"})",
       "\"references\" must be a list"},
      {R"(["schema", 1])", R"({"id": 1, "schema": "AA", "hash": "h", "references": ["a"]})",
       "reference 1 must be an object"},
      {R"(["schema", 1])",
       R"({"id": 1, "schema": "AA", "hash": "h", "references": [{"name": "a", "subject": "a"}]})",
       "reference 1: \"version\" is missing"},
      {R"(["schema", 1])",
       R"({"id": 1, "schema": "AA", "hash": "h",
           "references": [{"name": "a", "subject": "a", "version": 1},
                          {"name": "b", "subject": "b", "version": "1"}]})",
       "reference 2: \"version\" must be an integer"},
      {R"(["schema", 1])",
       R"({"id": 1, "schema": "AA", "hash": "h",
           "references": [{"name": 1, "subject": "a", "version": 1}]})",
       "reference 1: \"name\" must be a string"},
      // Version records.
      {R"(["version", 5, 1])", R"({"id": 1})", "the key's subject must be a string"},
      {R"(["version", null, 1])", std::nullopt, "the key's subject must be a string"},
      {R"(["version", "s", "1"])", R"({"id": 1})", bad_version},
      {R"(["version", "s", 0])", R"({"id": 1})", bad_version},
      {R"(["version", "s", 1.5])", R"({"id": 1})", bad_version},
      {R"(["version", "s", "x"])", std::nullopt, bad_version},
      {R"(["version", "s", 1])", R"({"subject": "s"})", "\"id\" is missing"},
      {R"(["version", "s", 1])", R"({"id": "1"})", bad_id},
      {R"(["version", "s", 1])", R"({"id": 1, "deleted": "yes"})",
       "\"deleted\" must be true or false"},
      {R"(["version", "s", 1])", R"({"id": 1, "deleted": 1})", "\"deleted\" must be true or false"},
      // Settings.
      {R"(["config", 7])", R"({"compatibility": "FULL"})",
       "the key's subject must be a string or null"},
      {R"(["mode", ["s"]])", std::nullopt, "the key's subject must be a string or null"},
      {R"(["config", null])", R"({"level": "FULL"})", "\"compatibility\" is missing"},
      {R"(["config", null])", R"({"compatibility": 5})", "\"compatibility\" must be a string"},
      {R"(["config", null])", R"({"compatibility": "SOMETIMES"})",
       "unknown compatibility level 'SOMETIMES'"},
      {R"(["config", "s"])", R"({"compatibility": "backward"})",
       "unknown compatibility level 'backward'"},
      {R"(["mode", null])", R"({"mode": "SLEEP"})", "unknown mode 'SLEEP'"},
      {R"(["mode", "s"])", R"({"mode": null})", "\"mode\" must be a string"},
      {R"(["id-hwm"])", R"({"next_id": "9"})", "\"next_id\" must be an integer from 1"},
      {R"(["id-hwm"])", R"({"next_id": 0})", "\"next_id\" must be an integer from 1"},
      {R"(["id-hwm"])", R"({})", "\"next_id\" is missing"},
      {R"(["primary"])", R"({"replica": "reg-a"})", "\"epoch\" is missing"},
      {R"(["primary"])", R"({"replica": 3, "epoch": 1})", "\"replica\" must be a string"},
      {R"(["primary"])", R"({"replica": "reg-a", "epoch": "1"})",
       "\"epoch\" must be an integer from 0"},
      {R"(["primary"])", R"({"replica": "reg-a", "epoch": -1})",
       "\"epoch\" must be an integer from 0"},
  };
  RegistryState state = Rebuild(History());
  const std::string before = Snapshot(state);
  const int64_t applied = state.applied();
  for (const Malformed& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.key.substr(0, 40), " => ", c.value.value_or("<tombstone>")));
    const absl::Status status = state.Apply(Rec(c.key, c.value));
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.reason)));
    if (c.key.size() < 100) {
      EXPECT_THAT(std::string(status.message()), HasSubstr(c.key));
    }
    EXPECT_EQ(Snapshot(state), before);
  }
  EXPECT_EQ(state.applied(), applied) << "refused records are not counted as applied";
}

TEST(RegistryStateTest, AMalformedRecordDoesNotStopTheRecordsAfterIt) {
  std::vector<StoreRecord> records = History();
  records.insert(records.begin() + 3, Rec(R"(["version", "p.Bike", 1])", R"({"id": "one"})"));
  records.insert(records.begin() + 1, Rec(R"(["config", null])", R"({"compatibility": 1})"));
  RegistryState state;
  int refused = 0;
  for (const StoreRecord& r : records) {
    if (!state.Apply(r).ok()) ++refused;
  }
  EXPECT_EQ(refused, 2);
  EXPECT_EQ(Snapshot(state), Snapshot(Rebuild(History())));
}

TEST(RegistryStateTest, LevelsAndModesAreTheConfluentOnes) {
  for (const char* level : {"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD",
                            "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"}) {
    EXPECT_TRUE(IsCompatibilityLevel(level)) << level;
  }
  for (const char* level : {"", "backward", "FULL ", "TRANSITIVE", "READWRITE"}) {
    EXPECT_FALSE(IsCompatibilityLevel(level)) << level;
  }
  for (const char* mode : {"READWRITE", "READONLY", "IMPORT"}) EXPECT_TRUE(IsMode(mode)) << mode;
  for (const char* mode : {"", "readonly", "IMPORT_ONLY", "NONE"}) {
    EXPECT_FALSE(IsMode(mode)) << mode;
  }
}

}  // namespace
}  // namespace registry
}  // namespace polder
