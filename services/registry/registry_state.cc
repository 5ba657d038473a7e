#include "services/registry/registry_state.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/json/bounded.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace registry {
namespace {

using nlohmann::json;

json Parse(absl::string_view text) { return json_input::ParseOrDiscarded(text); }

constexpr int64_t kMinInt32 = std::numeric_limits<int32_t>::min();
constexpr int64_t kMaxId = std::numeric_limits<int32_t>::max();
constexpr int64_t kMaxEpoch = std::numeric_limits<int64_t>::max();

// An integer in [min, max] (within int64), else INVALID_ARGUMENT naming `what`. Unlike
// json::get, refuses booleans, fractions and out-of-range values instead of converting them.
template <typename Int>
absl::StatusOr<Int> IntValue(const json& j, absl::string_view what, int64_t min, int64_t max) {
  bool in_range = false;
  int64_t v = 0;
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    in_range = u <= static_cast<uint64_t>(max);
    if (in_range) v = static_cast<int64_t>(u);
    in_range = in_range && v >= min;
  } else if (j.is_number_integer()) {
    v = j.get<int64_t>();
    in_range = v >= min && v <= max;
  }
  if (!in_range) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be an integer from ", min, " to ", max));
  }
  return static_cast<Int>(v);
}

template <typename Int = int32_t>
absl::StatusOr<Int> IntField(const json& object, const char* name, int64_t min, int64_t max) {
  auto it = object.find(name);
  if (it == object.end()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is missing"));
  }
  return IntValue<Int>(*it, absl::StrCat("\"", name, "\""), min, max);
}

absl::StatusOr<std::string> StringField(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is missing"));
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" must be a string"));
  }
  return it->get<std::string>();
}

// {"id", "schema", "references", "hash"}.
absl::StatusOr<StoredSchema> ReadSchema(const json& value) {
  StoredSchema s;
  absl::StatusOr<int32_t> id = IntField(value, "id", 1, kMaxId);
  if (!id.ok()) return id.status();
  s.id = *id;
  absl::StatusOr<std::string> text = StringField(value, "schema");
  if (!text.ok()) return text.status();
  s.schema = *std::move(text);
  absl::StatusOr<std::string> hash = StringField(value, "hash");
  if (!hash.ok()) return hash.status();
  s.hash = *std::move(hash);
  auto refs = value.find("references");
  if (refs == value.end()) return s;
  if (!refs->is_array()) return absl::InvalidArgumentError("\"references\" must be a list");
  for (size_t i = 0; i < refs->size(); ++i) {
    const json& r = (*refs)[i];
    const std::string which = absl::StrCat("reference ", i + 1);
    if (!r.is_object())
      return absl::InvalidArgumentError(absl::StrCat(which, " must be an object"));
    absl::StatusOr<std::string> name = StringField(r, "name");
    absl::StatusOr<std::string> subject = StringField(r, "subject");
    absl::StatusOr<int32_t> version = IntField(r, "version", kMinInt32, kMaxId);
    for (const absl::Status& field : {name.status(), subject.status(), version.status()}) {
      if (!field.ok())
        return absl::InvalidArgumentError(absl::StrCat(which, ": ", field.message()));
    }
    s.references.push_back({*std::move(name), *std::move(subject), *version});
  }
  return s;
}

// {"subject", "version", "id", "deleted"}: the key names the subject and version.
absl::StatusOr<SubjectVersion> ReadVersion(const json& value, int32_t version) {
  absl::StatusOr<int32_t> id = IntField(value, "id", 1, kMaxId);
  if (!id.ok()) return id.status();
  bool deleted = false;
  auto flag = value.find("deleted");
  if (flag != value.end()) {
    if (!flag->is_boolean()) return absl::InvalidArgumentError("\"deleted\" must be true or false");
    deleted = flag->get<bool>();
  }
  return SubjectVersion{version, *id, deleted};
}

// {"compatibility"} or {"mode"}: one of the known values.
absl::StatusOr<std::string> ReadSetting(bool compatibility, const json& value) {
  absl::StatusOr<std::string> setting =
      StringField(value, compatibility ? "compatibility" : "mode");
  if (!setting.ok()) return setting.status();
  if (compatibility ? !IsCompatibilityLevel(*setting) : !IsMode(*setting)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown ", compatibility ? "compatibility level" : "mode", " '", *setting, "'"));
  }
  return setting;
}

// {"replica", "epoch"}.
absl::StatusOr<Primary> ReadPrimary(const json& value) {
  absl::StatusOr<std::string> replica = StringField(value, "replica");
  if (!replica.ok()) return replica.status();
  absl::StatusOr<int64_t> epoch = IntField<int64_t>(value, "epoch", 0, kMaxEpoch);
  if (!epoch.ok()) return epoch.status();
  return Primary{*std::move(replica), *epoch};
}

}  // namespace

bool IsCompatibilityLevel(absl::string_view level) {
  for (const char* l : kCompatibilityLevels) {
    if (level == l) return true;
  }
  return false;
}

bool IsMode(absl::string_view mode) {
  for (const char* m : kModes) {
    if (mode == m) return true;
  }
  return false;
}

absl::Status RegistryState::Apply(const StoreRecord& record) {
  json key = Parse(record.key);
  if (!key.is_array() || key.empty() || !key[0].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("unreadable record key ", record.key));
  }
  const std::string kind = key[0].get<std::string>();
  json value = record.value.has_value() ? Parse(*record.value) : json();
  if (record.value.has_value() && !value.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("unreadable value for key ", record.key));
  }
  const bool tombstone = !record.value.has_value();
  // Each kind reads everything it needs first and changes the state only once all of it is
  // readable.
  absl::Status readable;
  if (kind == "schema" && key.size() == 2) {
    absl::StatusOr<int32_t> id = IntValue<int32_t>(key[1], "the key's schema id", 1, kMaxId);
    absl::StatusOr<StoredSchema> s = tombstone ? StoredSchema{} : ReadSchema(value);
    if (!id.ok()) {
      readable = id.status();
    } else if (!s.ok()) {
      readable = s.status();
    } else if (tombstone) {
      // Schema records are never deleted.
    } else if (s->id != *id) {
      readable = absl::InvalidArgumentError(
          absl::StrCat("the key's schema id ", *id, " differs from the value's \"id\" ", s->id));
    } else {
      // A rewritten record replaces the earlier one entirely, as compaction would.
      auto earlier = schemas_.find(s->id);
      if (earlier != schemas_.end()) {
        auto mapped = id_by_hash_.find(earlier->second.hash);
        if (mapped != id_by_hash_.end() && mapped->second == s->id) id_by_hash_.erase(mapped);
      }
      id_by_hash_[s->hash] = s->id;
      schemas_[s->id] = *std::move(s);
    }
  } else if (kind == "version" && key.size() == 3) {
    absl::StatusOr<int32_t> version = IntValue<int32_t>(key[2], "the key's version", 1, kMaxId);
    absl::StatusOr<SubjectVersion> v =
        tombstone || !version.ok() ? SubjectVersion{} : ReadVersion(value, *version);
    if (!key[1].is_string()) {
      readable = absl::InvalidArgumentError("the key's subject must be a string");
    } else if (!version.ok()) {
      readable = version.status();
    } else if (!v.ok()) {
      readable = v.status();
    } else if (tombstone) {
      auto it = subjects_.find(key[1].get<std::string>());
      if (it != subjects_.end()) {
        it->second.erase(*version);
        if (it->second.empty()) subjects_.erase(it);
      }
    } else {
      subjects_[key[1].get<std::string>()][*version] = *v;
    }
  } else if ((kind == "config" || kind == "mode") && key.size() == 2) {
    absl::StatusOr<std::string> setting =
        tombstone ? std::string() : ReadSetting(kind == "config", value);
    auto& target = kind == "config" ? config_ : mode_;
    if (!key[1].is_null() && !key[1].is_string()) {
      readable = absl::InvalidArgumentError("the key's subject must be a string or null");
    } else if (!setting.ok()) {
      readable = setting.status();
    } else {
      const std::string subject = key[1].is_null() ? "" : key[1].get<std::string>();
      if (tombstone) {
        target.erase(subject);
      } else {
        target[subject] = *std::move(setting);
      }
    }
  } else if (kind == "id-hwm" && key.size() == 1) {
    if (!tombstone) {  // Never deleted.
      absl::StatusOr<int32_t> next = IntField(value, "next_id", 1, kMaxId);
      if (next.ok()) {
        high_water_ = std::max(high_water_, *next);
      } else {
        readable = next.status();
      }
    }
  } else if (kind == "primary" && key.size() == 1) {
    if (!tombstone) {  // Never deleted.
      absl::StatusOr<Primary> p = ReadPrimary(value);
      if (p.ok()) {
        primary_ = *std::move(p);
      } else {
        readable = p.status();
      }
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown record key ", record.key));
  }
  if (!readable.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed record ", record.key, ": ", readable.message()));
  }
  ++applied_;
  return absl::OkStatus();
}

const StoredSchema* RegistryState::SchemaById(int32_t id) const {
  auto it = schemas_.find(id);
  return it == schemas_.end() ? nullptr : &it->second;
}

std::optional<int32_t> RegistryState::IdForHash(const std::string& hash) const {
  auto it = id_by_hash_.find(hash);
  if (it == id_by_hash_.end()) return std::nullopt;
  return it->second;
}

const std::map<int32_t, SubjectVersion>* RegistryState::Versions(const std::string& subject) const {
  auto it = subjects_.find(subject);
  return it == subjects_.end() ? nullptr : &it->second;
}

std::vector<std::string> RegistryState::Subjects(bool include_deleted) const {
  std::vector<std::string> out;
  for (const auto& [subject, versions] : subjects_) {
    bool live = std::any_of(versions.begin(), versions.end(),
                            [](const auto& v) { return !v.second.deleted; });
    if (live || include_deleted) out.push_back(subject);
  }
  return out;
}

std::vector<std::pair<std::string, int32_t>> RegistryState::UsesOf(int32_t id) const {
  std::vector<std::pair<std::string, int32_t>> out;
  for (const auto& [subject, versions] : subjects_) {
    for (const auto& [v, sv] : versions) {
      if (sv.id == id) out.emplace_back(subject, v);
    }
  }
  return out;
}

std::vector<std::pair<std::string, int32_t>> RegistryState::ReferencedBy(const std::string& subject,
                                                                         int32_t version) const {
  // Every schema record counts, also one whose versions were hard-deleted: records naming its
  // id may still need to be decoded, and that needs the referenced version unchanged.
  std::vector<std::pair<std::string, int32_t>> out;
  for (const auto& [id, schema] : schemas_) {
    for (const SchemaReference& r : schema.references) {
      if (r.subject == subject && r.version == version) {
        std::vector<std::pair<std::string, int32_t>> uses = UsesOf(id);
        if (uses.empty()) out.emplace_back(absl::StrCat("schema id ", id), 0);
        out.insert(out.end(), uses.begin(), uses.end());
      }
    }
  }
  return out;
}

std::optional<std::string> RegistryState::SubjectCompatibility(const std::string& subject) const {
  auto it = config_.find(subject);
  if (it == config_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> RegistryState::SubjectMode(const std::string& subject) const {
  auto it = mode_.find(subject);
  if (it == mode_.end()) return std::nullopt;
  return it->second;
}

std::string RegistryState::GlobalCompatibility() const {
  auto it = config_.find("");
  return it == config_.end() ? kDefaultCompatibility : it->second;
}

std::string RegistryState::GlobalMode() const {
  auto it = mode_.find("");
  return it == mode_.end() ? kDefaultMode : it->second;
}

std::string RegistryState::EffectiveCompatibility(const std::string& subject) const {
  auto s = SubjectCompatibility(subject);
  return s.has_value() && !subject.empty() ? *s : GlobalCompatibility();
}

std::string RegistryState::EffectiveMode(const std::string& subject) const {
  auto s = SubjectMode(subject);
  return s.has_value() && !subject.empty() ? *s : GlobalMode();
}

int32_t RegistryState::next_id() const {
  int32_t next = std::max<int32_t>(high_water_, 1);
  if (!schemas_.empty()) next = std::max(next, schemas_.rbegin()->first + 1);
  return next;
}

StoreRecord RegistryState::SchemaRecord(const StoredSchema& s) {
  json refs = json::array();
  for (const SchemaReference& r : s.references) {
    refs.push_back({{"name", r.name}, {"subject", r.subject}, {"version", r.version}});
  }
  return {json::array({"schema", s.id}).dump(),
          json{{"id", s.id}, {"schema", s.schema}, {"references", refs}, {"hash", s.hash}}.dump()};
}

StoreRecord RegistryState::VersionRecord(const std::string& subject, const SubjectVersion& v) {
  return {json::array({"version", subject, v.version}).dump(),
          json{{"subject", subject}, {"version", v.version}, {"id", v.id}, {"deleted", v.deleted}}
              .dump()};
}

StoreRecord RegistryState::VersionTombstone(const std::string& subject, int32_t version) {
  return {json::array({"version", subject, version}).dump(), std::nullopt};
}

StoreRecord RegistryState::ConfigRecord(const std::string& subject,
                                        std::optional<std::string> level) {
  json key = json::array({"config", subject.empty() ? json() : json(subject)});
  if (!level.has_value()) return {key.dump(), std::nullopt};
  return {key.dump(), json{{"compatibility", *level}}.dump()};
}

StoreRecord RegistryState::ModeRecord(const std::string& subject, std::optional<std::string> mode) {
  json key = json::array({"mode", subject.empty() ? json() : json(subject)});
  if (!mode.has_value()) return {key.dump(), std::nullopt};
  return {key.dump(), json{{"mode", *mode}}.dump()};
}

StoreRecord RegistryState::HighWaterRecord(int32_t next_id) {
  return {json::array({"id-hwm"}).dump(), json{{"next_id", next_id}}.dump()};
}

StoreRecord RegistryState::PrimaryRecord(const Primary& p) {
  return {json::array({"primary"}).dump(), json{{"replica", p.replica}, {"epoch", p.epoch}}.dump()};
}

}  // namespace registry
}  // namespace polder
