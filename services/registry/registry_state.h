// RegistryState: the registry's entire state, rebuilt by applying the records of the compacted
// topic `_polder.schemas` in order. Every replica applies the same records and so holds the same
// ids, versions, configs, modes and deletions.
//
// Records (key and value are JSON; a null value is a tombstone that compaction removes):
//   ["schema", <id>]               {"id", "schema", "references", "hash"}   never deleted
//   ["version", <subject>, <v>]    {"subject", "version", "id", "deleted"}  tombstone = hard delete
//   ["config", <subject>|null]     {"compatibility"}                        tombstone = unset
//   ["mode", <subject>|null]       {"mode"}                                 tombstone = unset
//   ["id-hwm"]                     {"next_id"}                              never deleted
//   ["primary"]                    {"replica", "epoch"}                     who may write
// Schema records are kept after their versions are hard-deleted, so a record that names an id
// (also one mirrored to another city) can always be decoded, and the id high-water record keeps
// ids from being reused.
#ifndef POLDER_SERVICES_REGISTRY_REGISTRY_STATE_H_
#define POLDER_SERVICES_REGISTRY_REGISTRY_STATE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace polder {
namespace registry {

struct SchemaReference {
  std::string name;  // import path
  std::string subject;
  int32_t version = 0;
  bool operator==(const SchemaReference& o) const {
    return name == o.name && subject == o.subject && version == o.version;
  }
};

struct StoredSchema {
  int32_t id = 0;
  std::string schema;  // base64 FileDescriptorProto (the canonical descriptor, with its name)
  std::vector<SchemaReference> references;
  std::string hash;  // hex SHA-256 of the canonical form
};

struct SubjectVersion {
  int32_t version = 0;
  int32_t id = 0;
  bool deleted = false;
};

struct Primary {
  std::string replica;
  int64_t epoch = 0;
};

struct StoreRecord {
  std::string key;
  std::optional<std::string> value;  // nullopt: tombstone
};

inline constexpr char kCompatibilityLevels[][20] = {
    "NONE", "BACKWARD",       "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
    "FULL", "FULL_TRANSITIVE"};
inline constexpr char kModes[][12] = {"READWRITE", "READONLY", "IMPORT"};

bool IsCompatibilityLevel(absl::string_view level);
bool IsMode(absl::string_view mode);

class RegistryState {
 public:
  // Applies one record. INVALID_ARGUMENT for a record this version cannot read (the caller logs
  // and skips it; state is unchanged).
  absl::Status Apply(const StoreRecord& record);

  const StoredSchema* SchemaById(int32_t id) const;
  // The id already assigned to a canonical form, if any.
  std::optional<int32_t> IdForHash(const std::string& hash) const;
  // All versions of a subject (soft-deleted included), or nullptr.
  const std::map<int32_t, SubjectVersion>* Versions(const std::string& subject) const;
  std::vector<std::string> Subjects(bool include_deleted) const;
  // Every schema record, by id.
  const std::map<int32_t, StoredSchema>& schemas() const { return schemas_; }
  // Subjects and versions that use schema `id`.
  std::vector<std::pair<std::string, int32_t>> UsesOf(int32_t id) const;
  // Subject-versions whose schema references `subject` at `version`.
  std::vector<std::pair<std::string, int32_t>> ReferencedBy(const std::string& subject,
                                                            int32_t version) const;

  // Compatibility and mode: the subject's own, if set.
  std::optional<std::string> SubjectCompatibility(const std::string& subject) const;
  std::optional<std::string> SubjectMode(const std::string& subject) const;
  // Global values, with the defaults when unset.
  std::string GlobalCompatibility() const;
  std::string GlobalMode() const;
  // The subject's value, else the global one.
  std::string EffectiveCompatibility(const std::string& subject) const;
  std::string EffectiveMode(const std::string& subject) const;

  // The next id to assign: above every id ever assigned (from the high-water record and the
  // schema records, whichever is higher).
  int32_t next_id() const;
  const std::optional<Primary>& primary() const { return primary_; }

  int64_t applied() const { return applied_; }

  // Record builders.
  static StoreRecord SchemaRecord(const StoredSchema& schema);
  static StoreRecord VersionRecord(const std::string& subject, const SubjectVersion& v);
  static StoreRecord VersionTombstone(const std::string& subject, int32_t version);
  // `subject` empty: the global setting. `value` nullopt: a tombstone (unset).
  static StoreRecord ConfigRecord(const std::string& subject, std::optional<std::string> level);
  static StoreRecord ModeRecord(const std::string& subject, std::optional<std::string> mode);
  static StoreRecord HighWaterRecord(int32_t next_id);
  static StoreRecord PrimaryRecord(const Primary& primary);

  static constexpr char kDefaultCompatibility[] = "BACKWARD";
  static constexpr char kDefaultMode[] = "READWRITE";

 private:
  std::map<int32_t, StoredSchema> schemas_;
  std::map<std::string, int32_t> id_by_hash_;
  std::map<std::string, std::map<int32_t, SubjectVersion>> subjects_;
  std::map<std::string, std::string> config_;  // "" = global
  std::map<std::string, std::string> mode_;    // "" = global
  int32_t high_water_ = 0;                     // next id per the high-water record
  std::optional<Primary> primary_;
  int64_t applied_ = 0;
};

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_REGISTRY_STATE_H_
