#include "services/registry/registry.h"

#include <algorithm>
#include <functional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"
#include "services/registry/errors.h"

namespace polder {
namespace registry {
namespace {

constexpr char kRootFileName[] = "polder-registry-root.proto";

schema::ParseOptions ParseOpts(size_t max_bytes, schema::InputFormat format) {
  schema::ParseOptions o;
  o.format = format;
  o.file_name = kRootFileName;
  o.max_bytes = max_bytes;
  return o;
}

}  // namespace

absl::Status ValidateSubject(const std::string& subject) {
  if (subject.empty()) return RegistryError(kInvalidSubject, "subject name is empty");
  if (subject.size() > 255)
    return RegistryError(kInvalidSubject, "subject name is longer than 255 bytes");
  for (unsigned char c : subject) {
    if (c < 0x20 || c == 0x7f) {
      return RegistryError(kInvalidSubject, "subject name contains a control character");
    }
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-' && c != '/') {
      return RegistryError(
          kInvalidSubject,
          absl::StrCat("subject name '", subject, "' contains '", std::string(1, c),
                       "': use letters, digits and . _ - / (a message's full name ",
                       "or an import path)"));
    }
  }
  if (subject.front() == '.' || subject.front() == '/' || absl::StrContains(subject, "..") ||
      absl::StrContains(subject, "//") || absl::StrContains(subject, "./") ||
      absl::StrContains(subject, "/.")) {
    return RegistryError(kInvalidSubject, absl::StrCat("subject name '", subject,
                                                       "' has an empty or dot path segment"));
  }
  return absl::OkStatus();
}

absl::Status CheckWriterNamespace(const std::string& subject, const schema::ParsedSchema& schema,
                                  const std::string& writer_namespace) {
  if (writer_namespace.empty()) return absl::OkStatus();
  const std::string& package = schema.file()->package();
  if (package != writer_namespace && !absl::StartsWith(package, writer_namespace + ".")) {
    return RegistryError(
        kForbidden, absl::StrCat("package '", package, "' of subject '", subject,
                                 "' lies outside the writer's namespace '", writer_namespace, "'"));
  }
  // Record-name strategy: a subject that is not an import path is its record's full name.
  if (!absl::EndsWith(subject, ".proto")) {
    if (schema.file()->message_type_count() == 0) {
      return RegistryError(kInvalidSchema,
                           absl::StrCat("subject '", subject, "' declares no message"));
    }
    const std::string& record = schema.file()->message_type(0)->full_name();
    if (record != subject) {
      return RegistryError(
          kInvalidSchema, absl::StrCat("the record (first message) of subject '", subject, "' is '",
                                       record, "': a subject is named after its record"));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> Registry::NamespaceOffenders(
    const std::function<std::string(const std::string& subject)>& namespace_of) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const std::string& subject : state_.Subjects(/*deleted=*/false)) {
    const std::string ns = namespace_of(subject);
    const auto* versions = state_.Versions(subject);
    if (ns.empty() || versions == nullptr) continue;
    for (const auto& [v, sv] : *versions) {
      if (sv.deleted) continue;
      const StoredSchema* stored = state_.SchemaById(sv.id);
      if (stored == nullptr) continue;
      absl::StatusOr<std::vector<schema::ResolvedReference>> refs = Resolve(stored->references);
      if (!refs.ok()) continue;
      absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> parsed =
          schema::ParsedSchema::Parse(
              stored->schema, *refs,
              ParseOpts(options_.max_schema_bytes, schema::InputFormat::kAuto));
      if (!parsed.ok()) continue;
      if (absl::Status s = CheckWriterNamespace(subject, **parsed, ns); !s.ok()) {
        out.push_back(absl::StrCat(subject, " version ", v, " (id ", sv.id, "): ", s.message()));
      }
    }
  }
  return out;
}

Registry::Registry(RecordLog* log, RegistryOptions options,
                   std::unique_ptr<CompatibilityChecker> checker)
    : log_(log), options_(options), checker_(std::move(checker)) {}

absl::Status Registry::ApplyFromLog(const StoreRecord& record, int64_t offset) {
  absl::MutexLock lock(&mu_);
  if (offset <= applied_offset_) return absl::OkStatus();
  applied_offset_ = offset;
  return state_.Apply(record);
}

int64_t Registry::applied_offset() const {
  absl::ReaderMutexLock lock(&mu_);
  return applied_offset_;
}

std::optional<Primary> Registry::primary() const {
  absl::ReaderMutexLock lock(&mu_);
  return state_.primary();
}

int32_t Registry::next_id() const {
  absl::ReaderMutexLock lock(&mu_);
  return state_.next_id();
}

absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> Registry::Parsed(int32_t id) const {
  absl::ReaderMutexLock lock(&mu_);
  return ParsedLocked(id);
}

absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> Registry::ParsedLocked(
    int32_t id) const {
  {
    absl::MutexLock c(&cache_mu_);
    auto it = parsed_.find(id);
    if (it != parsed_.end()) return it->second;
  }
  const StoredSchema* s = state_.SchemaById(id);
  if (s == nullptr)
    return RegistryError(kSchemaNotFound, absl::StrCat("Schema ", id, " not found"));
  ASSIGN_OR_RETURN(std::vector<schema::ResolvedReference> refs, Resolve(s->references));
  ASSIGN_OR_RETURN(std::shared_ptr<const schema::ParsedSchema> parsed,
                   schema::ParsedSchema::Parse(
                       s->schema, refs, ParseOpts(SIZE_MAX, schema::InputFormat::kSerialized)),
                   _.Prepend(absl::StrCat("stored schema ", id, " unreadable: ")));
  absl::MutexLock c(&cache_mu_);
  parsed_[id] = parsed;
  return parsed;
}

absl::StatusOr<std::vector<schema::ResolvedReference>> Registry::Resolve(
    const std::vector<SchemaReference>& refs) const {
  std::vector<schema::ResolvedReference> out;
  for (const SchemaReference& r : refs) {
    if (r.name.empty())
      return RegistryError(kInvalidSchema, "a reference has no name (import path)");
    const auto* versions = state_.Versions(r.subject);
    if (versions == nullptr) {
      return RegistryError(kInvalidSchema, absl::StrCat("reference '", r.name, "': subject '",
                                                        r.subject, "' not found"));
    }
    auto it = versions->end();
    if (r.version == -1) {
      for (auto v = versions->rbegin(); v != versions->rend(); ++v) {
        if (!v->second.deleted) {
          it = std::prev(v.base());
          break;
        }
      }
    } else {
      it = versions->find(r.version);
    }
    if (it == versions->end() || it->second.deleted) {
      return RegistryError(kInvalidSchema,
                           absl::StrCat("reference '", r.name, "': version ", r.version,
                                        " of subject '", r.subject, "' not found"));
    }
    ASSIGN_OR_RETURN(std::shared_ptr<const schema::ParsedSchema> p, ParsedLocked(it->second.id));
    out.push_back({r.name, r.subject, it->second.version, std::move(p)});
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> Registry::ParseRequest(
    const RegisterRequest& request) const {
  RETURN_IF_ERROR(ValidateSubject(request.subject));
  if (!request.schema_type.empty() && request.schema_type != "PROTOBUF") {
    return RegistryError(kInvalidSchema,
                         absl::StrCat("schema type '", request.schema_type,
                                      "' is not supported; Polder registers PROTOBUF schemas"));
  }
  ASSIGN_OR_RETURN(std::vector<schema::ResolvedReference> refs, Resolve(request.references));
  absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> parsed = schema::ParsedSchema::Parse(
      request.schema, refs, ParseOpts(options_.max_schema_bytes, schema::InputFormat::kAuto));
  if (!parsed.ok()) return RegistryError(kInvalidSchema, parsed.status().message());
  return parsed;
}

absl::StatusOr<SchemaView> Registry::View(int32_t id, const std::string& subject,
                                          const SubjectVersion* v, SchemaFormat format) const {
  const StoredSchema* s = state_.SchemaById(id);
  if (s == nullptr)
    return RegistryError(kSchemaNotFound, absl::StrCat("Schema ", id, " not found"));
  SchemaView view;
  view.id = id;
  view.subject = subject;
  view.version = v != nullptr ? v->version : 0;
  view.deleted = v != nullptr && v->deleted;
  view.references = s->references;
  if (format == SchemaFormat::kSerialized) {
    view.schema = s->schema;
  } else {
    ASSIGN_OR_RETURN(std::shared_ptr<const schema::ParsedSchema> p, ParsedLocked(id));
    view.schema = p->ToProtoText();
  }
  return view;
}

absl::StatusOr<SchemaView> Registry::GetById(int32_t id, const std::string& subject,
                                             SchemaFormat format) const {
  absl::ReaderMutexLock lock(&mu_);
  // Confluent uses `subject` only to pick a schema context; ids are global here, so the schema
  // is returned whichever subject (if any) the client names — as Confluent falls back to the
  // default context. Deserializers pass their topic's subject even for RecordNameStrategy.
  (void)subject;
  return View(id, "", nullptr, format);
}

absl::StatusOr<SchemaView> Registry::GetVersion(const std::string& subject, int32_t version,
                                                bool deleted, SchemaFormat format) const {
  absl::ReaderMutexLock lock(&mu_);
  if (version == 0 || version < -1) {
    return RegistryError(kInvalidVersion,
                         absl::StrCat("The specified version '", version,
                                      "' is not a valid version id. Allowed values are between [1, "
                                      "2^31-1] and the string \"latest\""));
  }
  const auto* versions = state_.Versions(subject);
  if (versions == nullptr ||
      (!deleted && std::none_of(versions->begin(), versions->end(),
                                [](const auto& v) { return !v.second.deleted; }))) {
    return RegistryError(kSubjectNotFound, absl::StrCat("Subject '", subject, "' not found."));
  }
  const SubjectVersion* found = nullptr;
  if (version == -1) {
    for (auto it = versions->rbegin(); it != versions->rend(); ++it) {
      if (deleted || !it->second.deleted) {
        found = &it->second;
        break;
      }
    }
  } else {
    auto it = versions->find(version);
    if (it != versions->end() && (deleted || !it->second.deleted)) found = &it->second;
  }
  if (found == nullptr) {
    return RegistryError(
        kVersionNotFound,
        absl::StrCat("Version ", version == -1 ? std::string("latest") : std::to_string(version),
                     " not found."));
  }
  return View(found->id, subject, found, format);
}

absl::StatusOr<std::vector<int32_t>> Registry::ListVersions(const std::string& subject,
                                                            bool deleted) const {
  absl::ReaderMutexLock lock(&mu_);
  const auto* versions = state_.Versions(subject);
  std::vector<int32_t> out;
  if (versions != nullptr) {
    for (const auto& [v, sv] : *versions) {
      if (deleted || !sv.deleted) out.push_back(v);
    }
  }
  if (out.empty())
    return RegistryError(kSubjectNotFound, absl::StrCat("Subject '", subject, "' not found."));
  return out;
}

std::vector<std::string> Registry::ListSubjects(bool deleted) const {
  absl::ReaderMutexLock lock(&mu_);
  return state_.Subjects(deleted);
}

std::vector<std::string> Registry::ListSubjects(bool deleted, const std::string& prefix) const {
  std::vector<std::string> out;
  for (std::string& s : ListSubjects(deleted)) {
    if (absl::StartsWith(s, prefix)) out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, int32_t>>> Registry::VersionsOfId(
    int32_t id, bool deleted) const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::pair<std::string, int32_t>> out;
  for (const auto& [subject, version] : state_.UsesOf(id)) {
    const auto* versions = state_.Versions(subject);
    auto it = versions == nullptr ? decltype(versions->end()){} : versions->find(version);
    if (versions == nullptr || it == versions->end() || (it->second.deleted && !deleted)) continue;
    out.emplace_back(subject, version);
  }
  if (out.empty()) return RegistryError(kSchemaNotFound, absl::StrCat("Schema ", id, " not found"));
  return out;
}

absl::StatusOr<std::vector<int32_t>> Registry::ReferencingIds(const std::string& subject,
                                                              int32_t version) const {
  ASSIGN_OR_RETURN(SchemaView v,
                   GetVersion(subject, version, /*deleted=*/false, SchemaFormat::kDefault));
  absl::ReaderMutexLock lock(&mu_);
  std::vector<int32_t> out;
  for (const auto& [id, schema] : state_.schemas()) {
    for (const SchemaReference& r : schema.references) {
      if (r.subject == subject && r.version == v.version) {
        out.push_back(id);
        break;
      }
    }
  }
  return out;
}

absl::StatusOr<SchemaView> Registry::Lookup(const RegisterRequest& request, bool deleted) const {
  absl::ReaderMutexLock lock(&mu_);
  const auto* versions = state_.Versions(request.subject);
  if (versions == nullptr) {
    return RegistryError(kSubjectNotFound,
                         absl::StrCat("Subject '", request.subject, "' not found."));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const schema::ParsedSchema> candidate, ParseRequest(request));
  const std::string hash = candidate->CanonicalHash();
  for (auto it = versions->rbegin(); it != versions->rend(); ++it) {
    if (it->second.deleted && !deleted) continue;
    const StoredSchema* s = state_.SchemaById(it->second.id);
    if (s != nullptr && s->hash == hash)
      return View(s->id, request.subject, &it->second, SchemaFormat::kDefault);
  }
  return RegistryError(kSchemaNotFound, "Schema not found");
}

absl::StatusOr<std::vector<std::string>> Registry::CheckAgainstHistory(
    const std::string& subject, const schema::ParsedSchema& candidate, const std::string& level,
    std::optional<int32_t> only_version) const {
  std::vector<std::shared_ptr<const schema::ParsedSchema>> previous;
  const auto* versions = state_.Versions(subject);
  if (versions != nullptr) {
    for (const auto& [v, sv] : *versions) {
      if (sv.deleted) continue;
      if (only_version.has_value() && v != *only_version) continue;
      ASSIGN_OR_RETURN(std::shared_ptr<const schema::ParsedSchema> p, ParsedLocked(sv.id));
      previous.push_back(std::move(p));
    }
  }
  return checker_->Check(candidate, previous, level);
}

absl::StatusOr<std::vector<std::string>> Registry::TestCompatibility(const RegisterRequest& request,
                                                                     int32_t version) const {
  absl::ReaderMutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::shared_ptr<const schema::ParsedSchema> candidate, ParseRequest(request));
  const auto* versions = state_.Versions(request.subject);
  std::optional<int32_t> only;
  if (version != 0) {
    if (versions == nullptr) {
      return RegistryError(kSubjectNotFound,
                           absl::StrCat("Subject '", request.subject, "' not found."));
    }
    int32_t v = version;
    if (v == -1) {
      v = 0;
      for (const auto& [n, sv] : *versions) {
        if (!sv.deleted) v = n;
      }
    }
    auto it = versions->find(v);
    if (it == versions->end() || it->second.deleted) {
      return RegistryError(kVersionNotFound, absl::StrCat("Version ", version, " not found."));
    }
    only = v;
  }
  return CheckAgainstHistory(request.subject, *candidate,
                             state_.EffectiveCompatibility(request.subject), only);
}

absl::StatusOr<std::string> Registry::GetCompatibility(const std::string& subject,
                                                       bool fallback) const {
  absl::ReaderMutexLock lock(&mu_);
  if (subject.empty()) return state_.GlobalCompatibility();
  auto own = state_.SubjectCompatibility(subject);
  if (own.has_value()) return *own;
  if (fallback) return state_.GlobalCompatibility();
  return RegistryError(
      kSubjectCompatibilityNotConfigured,
      absl::StrCat("Subject '", subject, "' does not have subject-level compatibility configured"));
}

absl::StatusOr<std::string> Registry::GetMode(const std::string& subject, bool fallback) const {
  absl::ReaderMutexLock lock(&mu_);
  if (subject.empty()) return state_.GlobalMode();
  auto own = state_.SubjectMode(subject);
  if (own.has_value()) return *own;
  if (fallback) return state_.GlobalMode();
  return RegistryError(
      kSubjectModeNotConfigured,
      absl::StrCat("Subject '", subject, "' does not have subject-level mode configured"));
}

absl::Status Registry::SyncIfNeeded() {
  if (!needs_sync_) return absl::OkStatus();
  absl::Status s = log_->Sync();
  if (!s.ok())
    return Prepend(s, "the registry could not confirm the outcome of an earlier write: ");
  needs_sync_ = false;
  return absl::OkStatus();
}

absl::Status Registry::CommitAndApply(const std::vector<StoreRecord>& records) {
  mu_.Unlock();
  absl::StatusOr<int64_t> last = log_->Commit(records);
  mu_.Lock();
  if (!last.ok()) {
    // The records may have landed anyway: the next write first waits until the log's reader
    // has applied whatever was committed.
    needs_sync_ = true;
    return last.status();
  }
  for (const StoreRecord& r : records) {
    absl::Status a = state_.Apply(r);
    if (!a.ok()) return RegistryError(kStoreError, a.message());
  }
  applied_offset_ = std::max(applied_offset_, *last);
  return absl::OkStatus();
}

absl::StatusOr<RegisterResult> Registry::Register(const RegisterRequest& request) {
  absl::StatusOr<RegisterResult> r = RegisterOnce(request);
  if (!r.ok()) {
    ++refused_;
  } else if (r->created) {
    ++created_;
  } else {
    ++existing_;
  }
  return r;
}

absl::StatusOr<RegisterResult> Registry::RegisterOnce(const RegisterRequest& request) {
  Waiter self{&request, std::nullopt};
  {
    absl::MutexLock queue(&queue_mu_);
    queue_.push_back(&self);
  }
  absl::MutexLock write(&write_mu_);
  // An earlier holder of write_mu_ may have committed this registration with its group.
  while (!self.result.has_value()) CommitGroup();
  return *std::move(self.result);
}

void Registry::CommitGroup() {
  std::vector<Waiter*> group;
  {
    absl::MutexLock queue(&queue_mu_);
    while (!queue_.empty() && group.size() < kMaxGroup) {
      group.push_back(queue_.front());
      queue_.pop_front();
    }
  }
  if (group.empty()) return;
  if (absl::Status synced = SyncIfNeeded(); !synced.ok()) {
    for (Waiter* w : group) w->result = synced;
    return;
  }
  absl::MutexLock lock(&mu_);
  std::vector<Waiter*> admitted, deferred;
  std::vector<Decision> decisions;
  std::set<std::string> subjects, hashes;
  std::set<int32_t> ids;
  int32_t ids_ahead = 0;
  bool exclusive = false;  // an import with its own id is committed alone
  for (Waiter* w : group) {
    const RegisterRequest& r = *w->request;
    bool depends =
        exclusive || subjects.count(r.subject) > 0 || (r.id.has_value() && !admitted.empty());
    for (const SchemaReference& ref : r.references) depends |= subjects.count(ref.subject) > 0;
    if (depends) {
      deferred.push_back(w);
      continue;
    }
    absl::StatusOr<Decision> d = Decide(r, ids_ahead);
    if (!d.ok()) {
      w->result = d.status();
      continue;
    }
    if (d->records.empty()) {  // the subject has this schema already
      w->result = d->result;
      continue;
    }
    if (hashes.count(d->hash) > 0 || ids.count(d->result.id) > 0) {
      deferred.push_back(w);  // the same schema, new in this group: decided after it commits
      continue;
    }
    subjects.insert(r.subject);
    hashes.insert(d->hash);
    ids.insert(d->result.id);
    if (d->new_id) ++ids_ahead;
    exclusive = r.id.has_value();
    admitted.push_back(w);
    decisions.push_back(*std::move(d));
  }
  if (!deferred.empty()) {
    absl::MutexLock queue(&queue_mu_);
    queue_.insert(queue_.begin(), deferred.begin(), deferred.end());
  }
  if (admitted.empty()) return;
  std::vector<StoreRecord> records;
  for (const Decision& d : decisions)
    records.insert(records.end(), d.records.begin(), d.records.end());
  const absl::Status committed = CommitAndApply(records);
  ++register_commits_;
  for (size_t i = 0; i < admitted.size(); ++i) {
    if (committed.ok()) {
      admitted[i]->result = decisions[i].result;
    } else {
      admitted[i]->result = committed;
    }
  }
}

absl::StatusOr<Registry::Decision> Registry::Decide(const RegisterRequest& request,
                                                    int32_t ids_ahead) const {
  Decision d;
  if (request.schema.empty()) return RegistryError(kInvalidSchema, "Empty schema");
  const std::string mode = state_.EffectiveMode(request.subject);
  if (mode == "READONLY") {
    return RegistryError(kOperationNotPermitted,
                         absl::StrCat("Subject ", request.subject, " is in read-only mode"));
  }
  if (request.id.has_value() != (mode == "IMPORT") ||
      (request.version.has_value() && mode != "IMPORT")) {
    return RegistryError(kOperationNotPermitted,
                         mode == "IMPORT"
                             ? "in IMPORT mode a registration must give the schema id"
                             : "a schema id or version can only be given in IMPORT mode");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const schema::ParsedSchema> candidate, ParseRequest(request));
  RETURN_IF_ERROR(CheckWriterNamespace(request.subject, *candidate, request.writer_namespace));
  const std::string hash = candidate->CanonicalHash();
  const auto* versions = state_.Versions(request.subject);
  int32_t max_version = 0;
  if (versions != nullptr) {
    for (const auto& [v, sv] : *versions) {
      max_version = std::max(max_version, v);
      const StoredSchema* s = state_.SchemaById(sv.id);
      if (!sv.deleted && s != nullptr && s->hash == hash && !request.version.has_value()) {
        d.result = RegisterResult{sv.id, v, false};
        d.hash = hash;
        return d;
      }
    }
  }
  std::vector<StoreRecord>& records = d.records;
  const int32_t next_id = state_.next_id() + ids_ahead;
  std::optional<int32_t> existing = state_.IdForHash(hash);
  int32_t id;
  if (request.id.has_value()) {
    id = *request.id;
    const StoredSchema* at = state_.SchemaById(id);
    if (id < 1) return RegistryError(kInvalidSchema, "schema ids start at 1");
    if (request.version.has_value() && *request.version < 1) {
      return RegistryError(kInvalidVersion, absl::StrCat("version ", *request.version,
                                                         " is not valid; versions start at 1"));
    }
    if (at != nullptr && at->hash != hash) {
      return RegistryError(kOperationNotPermitted,
                           absl::StrCat("Overwrite new schema with id ", id, " is not permitted."));
    }
  } else {
    if (mode != "IMPORT") {
      ASSIGN_OR_RETURN(
          std::vector<std::string> reasons,
          CheckAgainstHistory(request.subject, *candidate,
                              state_.EffectiveCompatibility(request.subject), std::nullopt));
      if (!reasons.empty()) {
        return RegistryError(
            kIncompatibleSchema,
            absl::StrCat(
                "Schema being registered is incompatible with an earlier schema for subject \"",
                request.subject, "\", details: [", absl::StrJoin(reasons, "; "), "]"));
      }
    }
    id = existing.has_value() ? *existing : next_id;
    d.new_id = !existing.has_value();
  }
  if (state_.SchemaById(id) == nullptr) {
    StoredSchema s;
    s.id = id;
    s.schema = candidate->ToSerializedBase64();
    s.references = request.references;
    for (size_t i = 0; i < s.references.size(); ++i) {
      s.references[i].version = candidate->references()[i].version;  // "latest" made explicit
    }
    s.hash = hash;
    records.push_back(RegistryState::SchemaRecord(s));
    records.push_back(RegistryState::HighWaterRecord(std::max(next_id, id + 1)));
  }
  int32_t version = request.version.value_or(max_version + 1);
  if (request.version.has_value() && versions != nullptr && versions->count(version) > 0) {
    return RegistryError(kOperationNotPermitted, absl::StrCat("version ", version, " of subject '",
                                                              request.subject, "' already exists"));
  }
  records.push_back(RegistryState::VersionRecord(request.subject, {version, id, false}));
  d.result = RegisterResult{id, version, true};
  d.hash = hash;
  return d;
}

absl::StatusOr<std::vector<int32_t>> Registry::DeleteSubject(const std::string& subject,
                                                             bool permanent) {
  absl::MutexLock write(&write_mu_);
  RETURN_IF_ERROR(SyncIfNeeded());
  absl::MutexLock lock(&mu_);
  const auto* versions = state_.Versions(subject);
  if (versions == nullptr)
    return RegistryError(kSubjectNotFound, absl::StrCat("Subject '", subject, "' not found."));
  if (state_.EffectiveMode(subject) == "READONLY") {
    return RegistryError(kOperationNotPermitted,
                         absl::StrCat("Subject ", subject, " is in read-only mode"));
  }
  std::vector<int32_t> out;
  std::vector<StoreRecord> records;
  bool any_live = false;
  for (const auto& [v, sv] : *versions) any_live = any_live || !sv.deleted;
  if (!permanent) {
    if (!any_live) {
      return RegistryError(
          kSubjectSoftDeleted,
          absl::StrCat("Subject '", subject,
                       "' was soft deleted. Set permanent=true to delete permanently"));
    }
    for (const auto& [v, sv] : *versions) {
      if (sv.deleted) continue;
      if (!state_.ReferencedBy(subject, v).empty()) {
        return RegistryError(kReferenceExists,
                             absl::StrCat("One or more references exist to the schema {subject=",
                                          subject, ",version=", v, "}"));
      }
      records.push_back(RegistryState::VersionRecord(subject, {v, sv.id, true}));
      out.push_back(v);
    }
  } else {
    if (any_live) {
      return RegistryError(
          kSubjectNotSoftDeleted,
          absl::StrCat("Subject '", subject,
                       "' was not deleted first before being permanently deleted"));
    }
    for (const auto& [v, sv] : *versions) {
      if (!state_.ReferencedBy(subject, v).empty()) {
        return RegistryError(kReferenceExists,
                             absl::StrCat("One or more references exist to the schema {subject=",
                                          subject, ",version=", v, "}"));
      }
      records.push_back(RegistryState::VersionTombstone(subject, v));
      out.push_back(v);
    }
    if (state_.SubjectCompatibility(subject).has_value())
      records.push_back(RegistryState::ConfigRecord(subject, std::nullopt));
    if (state_.SubjectMode(subject).has_value())
      records.push_back(RegistryState::ModeRecord(subject, std::nullopt));
  }
  RETURN_IF_ERROR(CommitAndApply(records));
  return out;
}

absl::StatusOr<int32_t> Registry::DeleteVersion(const std::string& subject, int32_t version,
                                                bool permanent) {
  absl::MutexLock write(&write_mu_);
  RETURN_IF_ERROR(SyncIfNeeded());
  absl::MutexLock lock(&mu_);
  const auto* versions = state_.Versions(subject);
  if (versions == nullptr)
    return RegistryError(kSubjectNotFound, absl::StrCat("Subject '", subject, "' not found."));
  if (version == 0 || version < -1)
    return RegistryError(kInvalidVersion, absl::StrCat("The specified version '", version,
                                                       "' is not a valid version id."));
  if (state_.EffectiveMode(subject) == "READONLY") {
    return RegistryError(kOperationNotPermitted,
                         absl::StrCat("Subject ", subject, " is in read-only mode"));
  }
  int32_t v = version;
  if (v == -1) {
    v = 0;
    for (const auto& [n, sv] : *versions) {
      if (!sv.deleted || permanent) v = n;
    }
  }
  auto it = versions->find(v);
  if (it == versions->end())
    return RegistryError(kVersionNotFound, absl::StrCat("Version ", version, " not found."));
  const SubjectVersion sv = it->second;
  if (!state_.ReferencedBy(subject, v).empty()) {
    return RegistryError(kReferenceExists,
                         absl::StrCat("One or more references exist to the schema {subject=",
                                      subject, ",version=", v, "}"));
  }
  std::vector<StoreRecord> records;
  if (!permanent) {
    if (sv.deleted) {
      return RegistryError(
          kVersionSoftDeleted,
          absl::StrCat("Subject '", subject, "' Version ", v,
                       " was soft deleted. Set permanent=true to delete permanently"));
    }
    records.push_back(RegistryState::VersionRecord(subject, {v, sv.id, true}));
  } else {
    if (!sv.deleted) {
      return RegistryError(kVersionNotSoftDeleted,
                           absl::StrCat("Subject '", subject, "' Version ", v,
                                        " was not deleted first before being permanently deleted"));
    }
    records.push_back(RegistryState::VersionTombstone(subject, v));
  }
  RETURN_IF_ERROR(CommitAndApply(records));
  return v;
}

absl::StatusOr<std::string> Registry::SetCompatibility(const std::string& subject,
                                                       const std::string& level) {
  if (!IsCompatibilityLevel(level)) {
    return RegistryError(
        kInvalidCompatibilityLevel,
        absl::StrCat("Invalid compatibility level. Valid values are none, backward, forward, full, "
                     "backward_transitive, forward_transitive, and full_transitive; got '",
                     level, "'"));
  }
  if (!subject.empty()) RETURN_IF_ERROR(ValidateSubject(subject));
  absl::MutexLock write(&write_mu_);
  RETURN_IF_ERROR(SyncIfNeeded());
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CommitAndApply({RegistryState::ConfigRecord(subject, level)}));
  return level;
}

absl::StatusOr<std::string> Registry::DeleteCompatibility(const std::string& subject) {
  absl::MutexLock write(&write_mu_);
  RETURN_IF_ERROR(SyncIfNeeded());
  absl::MutexLock lock(&mu_);
  std::string previous = subject.empty() ? state_.GlobalCompatibility()
                                         : state_.SubjectCompatibility(subject).value_or("");
  if (!subject.empty() && previous.empty()) {
    return RegistryError(kSubjectCompatibilityNotConfigured,
                         absl::StrCat("Subject '", subject,
                                      "' does not have subject-level compatibility configured"));
  }
  RETURN_IF_ERROR(CommitAndApply({RegistryState::ConfigRecord(subject, std::nullopt)}));
  return previous;
}

absl::StatusOr<std::string> Registry::SetMode(const std::string& subject, const std::string& mode,
                                              bool force) {
  if (!IsMode(mode)) {
    return RegistryError(
        kInvalidMode,
        absl::StrCat("Invalid mode. Valid values are READWRITE, READONLY and IMPORT; got '", mode,
                     "'"));
  }
  if (!subject.empty()) RETURN_IF_ERROR(ValidateSubject(subject));
  absl::MutexLock write(&write_mu_);
  RETURN_IF_ERROR(SyncIfNeeded());
  absl::MutexLock lock(&mu_);
  if (mode == "IMPORT" && !force) {
    bool empty =
        subject.empty() ? state_.Subjects(true).empty() : state_.Versions(subject) == nullptr;
    if (!empty) {
      return RegistryError(kOperationNotPermitted, "Cannot import since found existing subjects");
    }
  }
  RETURN_IF_ERROR(CommitAndApply({RegistryState::ModeRecord(subject, mode)}));
  return mode;
}

Export Registry::ExportAll() const {
  absl::ReaderMutexLock lock(&mu_);
  Export e;
  e.global_compatibility = state_.GlobalCompatibility();
  e.next_id = state_.next_id();
  for (const std::string& subject : state_.Subjects(true)) {
    auto level = state_.SubjectCompatibility(subject);
    if (level.has_value()) e.subject_compatibility[subject] = *level;
    for (const auto& [v, sv] : *state_.Versions(subject)) {
      const StoredSchema* s = state_.SchemaById(sv.id);
      if (s == nullptr) continue;
      e.versions.push_back({subject, v, sv.id, s->schema, s->references, sv.deleted});
    }
  }
  for (const auto& [id, schema] : state_.schemas()) {
    if (state_.UsesOf(id).empty()) e.orphan_schemas.push_back(schema);
  }
  return e;
}

absl::Status Registry::WritePrimary(const Primary& primary) {
  absl::MutexLock write(&write_mu_);
  RETURN_IF_ERROR(SyncIfNeeded());
  absl::MutexLock lock(&mu_);
  return CommitAndApply({RegistryState::PrimaryRecord(primary)});
}

absl::Status Registry::Import(const Export& data) {
  // Settings and orphan schemas are written after the versions: check them before anything is.
  std::vector<std::pair<std::string, std::string>> levels = {{"", data.global_compatibility}};
  levels.insert(levels.end(), data.subject_compatibility.begin(), data.subject_compatibility.end());
  for (const auto& [subject, level] : levels) {
    if (!subject.empty()) RETURN_IF_ERROR(Prepend(ValidateSubject(subject), "import: "));
    if (!IsCompatibilityLevel(level)) {
      return RegistryError(kInvalidCompatibilityLevel,
                           absl::StrCat("import: invalid compatibility level '", level, "' for ",
                                        subject.empty() ? std::string("the registry")
                                                        : absl::StrCat("subject '", subject, "'")));
    }
  }
  for (const StoredSchema& orphan : data.orphan_schemas) {
    if (orphan.id < 1) {
      return RegistryError(kInvalidSchema, absl::StrCat("import: schema id ", orphan.id,
                                                        " is not valid; ids start at 1"));
    }
  }
  {
    absl::ReaderMutexLock lock(&mu_);
    if (state_.GlobalMode() != "IMPORT") {
      return RegistryError(kOperationNotPermitted, "import needs the global mode IMPORT");
    }
  }
  // Referenced schemas first: an export lists versions per subject; resolve in passes.
  std::vector<const ExportedVersion*> pending;
  for (const ExportedVersion& v : data.versions) pending.push_back(&v);
  while (!pending.empty()) {
    std::vector<const ExportedVersion*> next;
    absl::Status last;
    for (const ExportedVersion* v : pending) {
      RegisterRequest r;
      r.subject = v->subject;
      r.schema = v->schema;
      r.references = v->references;
      r.id = v->id;
      r.version = v->version;
      absl::StatusOr<RegisterResult> res = Register(r);
      if (!res.ok()) {
        last = res.status();
        next.push_back(v);
        continue;
      }
      if (v->deleted) RETURN_IF_ERROR(DeleteVersion(v->subject, v->version, false).status());
    }
    if (next.size() == pending.size()) return Prepend(last, "import: ");
    pending = std::move(next);
  }
  absl::MutexLock write(&write_mu_);
  RETURN_IF_ERROR(SyncIfNeeded());
  absl::MutexLock lock(&mu_);
  std::vector<StoreRecord> records;
  for (const StoredSchema& orphan : data.orphan_schemas) {
    const StoredSchema* existing = state_.SchemaById(orphan.id);
    if (existing != nullptr && existing->hash != orphan.hash) {
      return RegistryError(kOperationNotPermitted, absl::StrCat("import: schema id ", orphan.id,
                                                                " is taken by another schema"));
    }
    if (existing == nullptr) records.push_back(RegistryState::SchemaRecord(orphan));
  }
  std::vector<StoreRecord> settings = {
      RegistryState::HighWaterRecord(std::max(state_.next_id(), data.next_id)),
      RegistryState::ConfigRecord("", data.global_compatibility)};
  records.insert(records.end(), settings.begin(), settings.end());
  for (const auto& [subject, level] : data.subject_compatibility) {
    records.push_back(RegistryState::ConfigRecord(subject, level));
  }
  return CommitAndApply(records);
}

}  // namespace registry
}  // namespace polder
