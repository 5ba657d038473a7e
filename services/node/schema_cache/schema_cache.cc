#include "services/node/schema_cache/schema_cache.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json/bounded.h"
#include "common/status/status_macros.h"
#include "common/trust/keys.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace node {

using nlohmann::json;

namespace {

constexpr int kMaxReferenceDepth = 16;
constexpr char kRootFileName[] = "polder-node-root.proto";

json RefsJson(const std::vector<SchemaRef>& refs) {
  json out = json::array();
  for (const SchemaRef& r : refs)
    out.push_back({{"name", r.name}, {"subject", r.subject}, {"version", r.version}});
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SchemaCache>> SchemaCache::Open(
    std::string state_file, std::shared_ptr<SchemaSource> source) {
  std::unique_ptr<SchemaCache> cache(new SchemaCache(std::move(state_file), std::move(source)));
  RETURN_IF_ERROR(cache->Load());
  return cache;
}

absl::Status SchemaCache::Load() {
  if (!std::filesystem::exists(state_file_)) return absl::OkStatus();
  std::ifstream in(state_file_);
  std::stringstream text;
  text << in.rdbuf();
  json doc = json_input::ParseOrDiscarded(text.str());
  auto corrupt = [this](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("schema cache ", state_file_, " is unreadable (", why,
                                            "); move it away to start with an empty cache"));
  };
  if (!doc.is_object() || !doc["schemas"].is_object()) return corrupt("not a cache document");
  absl::MutexLock lock(&mu_);
  const json versions_doc = doc.value("versions", json::object());
  const json latest_doc = doc.value("latest", json::object());
  const json pinned_doc = doc.value("pinned", json::array());
  if (!versions_doc.is_object() || !latest_doc.is_object() || !pinned_doc.is_array()) {
    return corrupt("versions, latest or pinned of the wrong type");
  }
  for (const auto& [subject, versions] : versions_doc.items()) {
    if (!versions.is_object()) return corrupt("bad versions entry");
    for (const auto& [v, id] : versions.items()) {
      int32_t version = 0;
      if (!absl::SimpleAtoi(v, &version) || !id.is_number_integer())
        return corrupt("bad versions entry");
      versions_[subject][version] = id.get<int32_t>();
    }
  }
  for (const json& id : pinned_doc) {
    if (!id.is_number_integer()) return corrupt("bad pinned entry");
    pinned_.insert(id.get<int32_t>());
  }
  for (const auto& [subject, version] : latest_doc.items()) {
    if (!version.is_number_integer()) return corrupt("bad latest entry");
    latest_[subject] = version.get<int32_t>();
  }
  std::map<int32_t, std::pair<std::string, std::vector<SchemaRef>>> raw;
  for (const auto& [key, s] : doc["schemas"].items()) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(key, &id) || !s.is_object() || !s["serialized"].is_string())
      return corrupt("bad schema");
    std::vector<SchemaRef> refs;
    const json refs_doc = s.value("references", json::array());
    if (!refs_doc.is_array()) return corrupt("bad references");
    for (const json& r : refs_doc) {
      if (!r.is_object()) return corrupt("bad reference");
      refs.push_back({json_input::StringOr(r, "name", ""), json_input::StringOr(r, "subject", ""),
                      static_cast<int32_t>(json_input::IntOr(r, "version", 0))});
    }
    raw[id] = {s["serialized"].get<std::string>(), std::move(refs)};
  }
  // Parse in an order where references come first.
  std::function<absl::Status(int32_t, int)> build =
      [&](int32_t id, int depth) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (by_id_.count(id)) return absl::OkStatus();
    if (depth > kMaxReferenceDepth) return corrupt("reference cycle");
    auto it = raw.find(id);
    if (it == raw.end()) return corrupt(absl::StrCat("schema ", id, " is referenced but missing"));
    std::vector<schema::ResolvedReference> refs;
    for (const SchemaRef& r : it->second.second) {
      auto v = versions_[r.subject].find(r.version);
      if (v == versions_[r.subject].end())
        return corrupt(absl::StrCat("reference ", r.subject, " v", r.version));
      RETURN_IF_ERROR(build(v->second, depth + 1));
      refs.push_back({r.name, r.subject, r.version, by_id_[v->second]->parsed});
    }
    schema::ParseOptions o;
    o.format = schema::InputFormat::kSerialized;
    o.file_name = kRootFileName;
    o.max_bytes = SIZE_MAX;
    absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> p =
        schema::ParsedSchema::Parse(it->second.first, refs, o);
    if (!p.ok()) return corrupt(absl::StrCat("schema ", id, ": ", p.status().message()));
    auto c = std::make_shared<CachedSchema>();
    c->id = id;
    c->serialized = it->second.first;
    c->references = it->second.second;
    c->parsed = *p;
    by_id_[id] = c;
    return absl::OkStatus();
  };
  for (const auto& [id, unused] : raw) RETURN_IF_ERROR(build(id, 0));
  stats_.schemas = static_cast<int64_t>(by_id_.size());
  return absl::OkStatus();
}

absl::Status SchemaCache::Save() {
  json doc = {
      {"schemas", json::object()}, {"versions", json::object()}, {"latest", json::object()}};
  for (const auto& [id, c] : by_id_) {
    doc["schemas"][std::to_string(id)] = {{"serialized", c->serialized},
                                          {"references", RefsJson(c->references)}};
  }
  for (const auto& [subject, versions] : versions_) {
    for (const auto& [v, id] : versions) doc["versions"][subject][std::to_string(v)] = id;
  }
  for (const auto& [subject, v] : latest_) doc["latest"][subject] = v;
  doc["pinned"] = pinned_;
  return trust::WriteFileAtomically(state_file_, doc.dump(1), 0644);
}

absl::StatusOr<std::shared_ptr<const CachedSchema>> SchemaCache::ById(int32_t id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = by_id_.find(id);
    if (it != by_id_.end()) return it->second;
  }
  return Fetch(id, 0);
}

absl::StatusOr<std::shared_ptr<const CachedSchema>> SchemaCache::Fetch(int32_t id, int depth) {
  if (depth > kMaxReferenceDepth)
    return absl::FailedPreconditionError("schema references nest too deep");
  absl::StatusOr<FetchedSchema> f = source_->ById(id);
  {
    absl::MutexLock lock(&mu_);
    ++stats_.fetches;
    if (!f.ok()) ++stats_.fetch_errors;
  }
  if (!f.ok()) return f.status();
  return Build(id, f->serialized, f->references, depth);
}

absl::StatusOr<std::shared_ptr<const CachedSchema>> SchemaCache::Build(
    int32_t id, const std::string& serialized, const std::vector<SchemaRef>& refs, int depth) {
  std::vector<schema::ResolvedReference> resolved;
  for (const SchemaRef& r : refs) {
    ASSIGN_OR_RETURN(int32_t ref_id, IdOf(r.subject, r.version));
    std::shared_ptr<const CachedSchema> ref;
    {
      absl::MutexLock lock(&mu_);
      auto it = by_id_.find(ref_id);
      if (it != by_id_.end()) ref = it->second;
    }
    if (ref == nullptr) {
      ASSIGN_OR_RETURN(ref, Fetch(ref_id, depth + 1));
    }
    resolved.push_back({r.name, r.subject, r.version, ref->parsed});
  }
  schema::ParseOptions o;
  o.format = schema::InputFormat::kSerialized;
  o.file_name = kRootFileName;
  o.max_bytes = SIZE_MAX;
  ASSIGN_OR_RETURN(std::shared_ptr<const schema::ParsedSchema> parsed,
                   schema::ParsedSchema::Parse(serialized, resolved, o),
                   _.Prepend(absl::StrCat("schema ", id, " from the registry: ")));
  auto c = std::make_shared<CachedSchema>();
  c->id = id;
  c->serialized = serialized;
  c->references = refs;
  c->parsed = std::move(parsed);
  absl::MutexLock lock(&mu_);
  by_id_.emplace(id, c);
  stats_.schemas = static_cast<int64_t>(by_id_.size());
  RETURN_IF_ERROR(Save());
  return by_id_[id];
}

absl::StatusOr<int32_t> SchemaCache::FetchVersion(const std::string& subject, int32_t version) {
  absl::StatusOr<FetchedSchema> f = source_->Version(subject, version);
  {
    absl::MutexLock lock(&mu_);
    ++stats_.fetches;
    if (!f.ok()) ++stats_.fetch_errors;
  }
  if (!f.ok()) return f.status();
  ASSIGN_OR_RETURN(std::shared_ptr<const CachedSchema> unused, ById(f->id));
  (void)unused;
  absl::MutexLock lock(&mu_);
  versions_[subject][f->version] = f->id;
  if (version == -1) latest_[subject] = f->version;
  RETURN_IF_ERROR(Save());
  return f->id;
}

absl::StatusOr<int32_t> SchemaCache::IdOf(const std::string& subject, int32_t version) {
  {
    absl::MutexLock lock(&mu_);
    int32_t v = version;
    if (v == -1) {
      auto l = latest_.find(subject);
      v = l == latest_.end() ? 0 : l->second;
    }
    auto s = versions_.find(subject);
    if (v > 0 && s != versions_.end()) {
      auto it = s->second.find(v);
      if (it != s->second.end()) return it->second;
    }
  }
  return FetchVersion(subject, version);
}

std::vector<std::pair<std::string, int32_t>> SchemaCache::VersionsOf(int32_t id) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, int32_t>> out;
  for (const auto& [subject, versions] : versions_) {
    for (const auto& [v, i] : versions) {
      if (i == id) out.push_back({subject, v});
    }
  }
  return out;
}

absl::StatusOr<int32_t> SchemaCache::VersionUnder(const std::string& subject, int32_t id) {
  int32_t latest = 0;
  {
    absl::MutexLock lock(&mu_);
    auto v = versions_.find(subject);
    if (v != versions_.end()) {
      for (const auto& [version, i] : v->second) {
        if (i == id) return version;
      }
    }
    auto l = latest_.find(subject);
    if (l != latest_.end()) latest = l->second;
  }
  if (latest == 0) {
    ASSIGN_OR_RETURN(int32_t unused, IdOf(subject, -1));
    (void)unused;
    absl::MutexLock lock(&mu_);
    latest = latest_[subject];
  }
  for (int32_t version = 1; version <= latest; ++version) {
    absl::StatusOr<int32_t> i = IdOf(subject, version);
    if (i.ok() && *i == id) return version;
    if (!i.ok() && i.status().code() != absl::StatusCode::kNotFound)
      return i.status();  // deleted versions are skipped
  }
  return absl::NotFoundError(absl::StrCat("schema ", id, " is not a version of ", subject));
}

absl::Status SchemaCache::Refresh(const std::vector<std::string>& subjects) {
  absl::Status first_error;
  for (const std::string& subject : subjects) {
    absl::StatusOr<int32_t> id = FetchVersion(subject, -1);
    if (!id.ok() && first_error.ok())
      first_error = Prepend(id.status(), absl::StrCat(subject, ": "));
  }
  absl::MutexLock lock(&mu_);
  stats_.registry_reachable = first_error.ok() || first_error.code() == absl::StatusCode::kNotFound;
  if (first_error.ok()) stats_.last_refresh_ok = absl::Now();
  return first_error;
}

void SchemaCache::SetServedSubjects(std::vector<std::string> subjects) {
  absl::MutexLock lock(&mu_);
  served_subjects_ = std::move(subjects);
}

absl::Status SchemaCache::Pin(int32_t id) {
  absl::MutexLock lock(&mu_);
  if (by_id_.count(id) == 0)
    return absl::NotFoundError(absl::StrCat("schema ", id, " is not cached"));
  if (!pinned_.insert(id).second) return absl::OkStatus();
  return Save();
}

void SchemaCache::ServedScope(std::set<int32_t>* ids, std::set<std::string>* subjects) const {
  std::vector<int32_t> todo(pinned_.begin(), pinned_.end());
  for (const std::string& s : served_subjects_) {
    subjects->insert(s);
    auto v = versions_.find(s);
    if (v == versions_.end()) continue;
    for (const auto& [version, id] : v->second) todo.push_back(id);
  }
  while (!todo.empty()) {
    const int32_t id = todo.back();
    todo.pop_back();
    auto it = by_id_.find(id);
    if (it == by_id_.end() || !ids->insert(id).second) continue;
    for (const SchemaRef& r : it->second->references) {
      subjects->insert(r.subject);
      auto v = versions_.find(r.subject);
      if (v == versions_.end()) continue;
      auto ref = v->second.find(r.version);
      if (ref != v->second.end()) todo.push_back(ref->second);
    }
  }
}

absl::StatusOr<std::shared_ptr<const CachedSchema>> SchemaCache::Served(int32_t id) const {
  absl::MutexLock lock(&mu_);
  std::set<int32_t> ids;
  std::set<std::string> subjects;
  ServedScope(&ids, &subjects);
  if (ids.count(id) == 0) return absl::NotFoundError(absl::StrCat("Schema ", id, " not found"));
  return by_id_.at(id);
}

absl::StatusOr<int32_t> SchemaCache::ServedIdOf(const std::string& subject, int32_t version) const {
  absl::MutexLock lock(&mu_);
  std::set<int32_t> ids;
  std::set<std::string> subjects;
  ServedScope(&ids, &subjects);
  auto v = versions_.find(subject);
  if (subjects.count(subject) == 0 || v == versions_.end() || v->second.empty()) {
    return absl::NotFoundError(absl::StrCat("Subject '", subject, "' not found"));
  }
  int32_t number = version;
  if (number == -1) {
    auto l = latest_.find(subject);
    number = l != latest_.end() ? l->second : v->second.rbegin()->first;
  }
  auto it = v->second.find(number);
  if (it == v->second.end() || ids.count(it->second) == 0) {
    return absl::NotFoundError(
        absl::StrCat("Subject '", subject, "' version ", version, " not found"));
  }
  return it->second;
}

SchemaCache::Stats SchemaCache::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace node
}  // namespace polder
