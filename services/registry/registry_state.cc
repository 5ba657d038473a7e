#include "services/registry/registry_state.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/json/bounded.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace registry {
namespace {

using nlohmann::json;

json Parse(absl::string_view text) { return json_input::ParseOrDiscarded(text); }

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
  try {
    if (kind == "schema" && key.size() == 2) {
      if (!record.value.has_value()) return absl::OkStatus();  // Schema records are never deleted.
      StoredSchema s;
      s.id = value.at("id").get<int32_t>();
      s.schema = value.at("schema").get<std::string>();
      s.hash = value.at("hash").get<std::string>();
      for (const json& r : value.value("references", json::array())) {
        s.references.push_back({r.at("name").get<std::string>(), r.at("subject").get<std::string>(),
                                r.at("version").get<int32_t>()});
      }
      id_by_hash_[s.hash] = s.id;
      schemas_[s.id] = std::move(s);
    } else if (kind == "version" && key.size() == 3) {
      const std::string subject = key[1].get<std::string>();
      const int32_t version = key[2].get<int32_t>();
      if (!record.value.has_value()) {
        auto it = subjects_.find(subject);
        if (it != subjects_.end()) {
          it->second.erase(version);
          if (it->second.empty()) subjects_.erase(it);
        }
      } else {
        SubjectVersion v{version, value.at("id").get<int32_t>(), value.value("deleted", false)};
        subjects_[subject][version] = v;
      }
    } else if ((kind == "config" || kind == "mode") && key.size() == 2) {
      const std::string subject = key[1].is_null() ? "" : key[1].get<std::string>();
      auto& target = kind == "config" ? config_ : mode_;
      if (!record.value.has_value()) {
        target.erase(subject);
      } else {
        target[subject] = value.at(kind == "config" ? "compatibility" : "mode").get<std::string>();
      }
    } else if (kind == "id-hwm" && key.size() == 1) {
      if (record.value.has_value())
        high_water_ = std::max(high_water_, value.at("next_id").get<int32_t>());
    } else if (kind == "primary" && key.size() == 1) {
      if (record.value.has_value()) {
        primary_ =
            Primary{value.at("replica").get<std::string>(), value.at("epoch").get<int64_t>()};
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown record key ", record.key));
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed record ", record.key, ": ", e.what()));
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
