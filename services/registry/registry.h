// Registry: the schema registry's operations (Confluent semantics) over RegistryState, writing
// through a RecordLog. Transport-free: the gRPC and REST adapters call it, and tests drive it
// with an in-memory log.
//
// Writes are serialised: each builds the records it needs from the current state, commits
// them to the log (OK = committed), then applies them; so concurrent registrations of one
// canonical schema get one id, and ids only grow (the high-water record is written with every
// new id). Reads see committed state only.
#ifndef POLDER_SERVICES_REGISTRY_REGISTRY_H_
#define POLDER_SERVICES_REGISTRY_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/schema/schema.h"
#include "services/registry/compatibility.h"
#include "services/registry/registry_state.h"

namespace polder {
namespace registry {

// Where records are committed. Commit is atomic: all records or none; it returns the log
// offset of the last record, so the registry can skip records it applied itself when the
// log's reader delivers them again.
class RecordLog {
 public:
  virtual ~RecordLog() = default;
  virtual absl::StatusOr<int64_t> Commit(const std::vector<StoreRecord>& records) = 0;
  // Returns once every record committed so far has been applied through ApplyFromLog. The
  // registry calls it (without its lock) before the next write whenever a commit failed, since
  // a failed commit may still have landed.
  virtual absl::Status Sync() = 0;
};

enum class SchemaFormat { kDefault, kSerialized };

struct RegistryOptions {
  size_t max_schema_bytes = 1 << 20;
};

struct RegisterRequest {
  std::string subject;
  std::string schema;
  std::string schema_type = "PROTOBUF";
  std::vector<SchemaReference> references;
  // IMPORT mode only: the id and version to register under (as exported).
  std::optional<int32_t> id;
  std::optional<int32_t> version;
  // The writer's namespace (AccessPolicy::Namespace): non-empty for a city, whose schemas must
  // lie in it and be named after their record (CheckWriterNamespace).
  std::string writer_namespace;
};

struct RegisterResult {
  int32_t id = 0;
  int32_t version = 0;
  bool created = false;  // false: the subject already had this schema
};

struct SchemaView {
  int32_t id = 0;
  std::string subject;  // empty for lookups by id without subject
  int32_t version = 0;
  std::string schema_type = "PROTOBUF";
  std::string schema;  // .proto text, or base64 descriptor with kSerialized
  std::vector<SchemaReference> references;
  bool deleted = false;
};

// One entry of an export: everything needed to rebuild a registry with the same ids.
struct ExportedVersion {
  std::string subject;
  int32_t version = 0;
  int32_t id = 0;
  std::string schema;  // base64 descriptor
  std::vector<SchemaReference> references;
  bool deleted = false;
};

struct Export {
  std::vector<ExportedVersion> versions;
  // Schemas no version uses any more (kept so records naming their ids stay decodable).
  std::vector<StoredSchema> orphan_schemas;
  std::string global_compatibility;
  std::map<std::string, std::string> subject_compatibility;
  int32_t next_id = 0;
};

class Registry {
 public:
  Registry(RecordLog* log, RegistryOptions options,
           std::unique_ptr<CompatibilityChecker> checker = ProtobufCompatibilityChecker());

  // Applies a record read from the log at `offset` (replicas, and the primary's catch-up).
  // Records at or below the last applied offset are skipped (already applied).
  absl::Status ApplyFromLog(const StoreRecord& record, int64_t offset);
  // The offset of the last record applied (-1: none).
  int64_t applied_offset() const;
  // The current primary record, if any.
  std::optional<Primary> primary() const;

  // ---- reads ----
  // `subject` is accepted for Confluent compatibility (schema contexts) and does not filter.
  absl::StatusOr<SchemaView> GetById(int32_t id, const std::string& subject,
                                     SchemaFormat format) const;
  // `version` -1: latest. `deleted`: soft-deleted versions too.
  absl::StatusOr<SchemaView> GetVersion(const std::string& subject, int32_t version, bool deleted,
                                        SchemaFormat format) const;
  absl::StatusOr<std::vector<int32_t>> ListVersions(const std::string& subject, bool deleted) const;
  std::vector<std::string> ListSubjects(bool deleted) const;
  // Subjects starting with `prefix` (Confluent's `subjectPrefix`; empty: all).
  std::vector<std::string> ListSubjects(bool deleted, const std::string& prefix) const;
  // The (subject, version) pairs that use schema `id` (Confluent's /schemas/ids/{id}/versions;
  // soft-deleted ones with `deleted`). Error 40403 for an id no subject-version uses.
  absl::StatusOr<std::vector<std::pair<std::string, int32_t>>> VersionsOfId(int32_t id,
                                                                            bool deleted) const;
  // The ids of the schemas that reference `subject` at `version` (-1: latest; Confluent's
  // /subjects/{s}/versions/{v}/referencedby). 40401/40402 for an unknown subject or version.
  absl::StatusOr<std::vector<int32_t>> ReferencingIds(const std::string& subject,
                                                      int32_t version) const;
  // The version of `subject` registered with this schema.
  absl::StatusOr<SchemaView> Lookup(const RegisterRequest& request, bool deleted) const;
  // Compatibility of `request.schema` with `subject` at `version` (-1 latest; 0: per the
  // subject's level against its history). Empty reasons: compatible.
  absl::StatusOr<std::vector<std::string>> TestCompatibility(const RegisterRequest& request,
                                                             int32_t version) const;
  // Subject "" is global. `fallback`: a subject without its own level reports the global one.
  absl::StatusOr<std::string> GetCompatibility(const std::string& subject, bool fallback) const;
  absl::StatusOr<std::string> GetMode(const std::string& subject, bool fallback) const;
  Export ExportAll() const;
  int32_t next_id() const;

  // ---- writes ----
  absl::StatusOr<RegisterResult> Register(const RegisterRequest& request);
  // Register calls answered by this replica since start: a new version created, the schema
  // already registered under the subject, refused (any error).
  // `commits`: transactions that stored new versions (concurrent registrations share one).
  struct RegistrationCounts {
    int64_t created = 0, existing = 0, refused = 0, commits = 0;
  };
  // Registrations waiting for the write lock (the next group commit).
  int64_t WaitingRegistrations() const {
    absl::MutexLock lock(&queue_mu_);
    return static_cast<int64_t>(queue_.size());
  }
  RegistrationCounts registrations() const {
    return {created_.load(), existing_.load(), refused_.load(), register_commits_.load()};
  }
  // Registered versions that break their writer's namespace rules (registered before the rules
  // existed): "subject version N (id I): reason", for the start-up report. `namespace_of` gives
  // the namespace a subject's writer had ("" for none to check).
  std::vector<std::string> NamespaceOffenders(
      const std::function<std::string(const std::string& subject)>& namespace_of) const;
  absl::StatusOr<std::vector<int32_t>> DeleteSubject(const std::string& subject, bool permanent);
  absl::StatusOr<int32_t> DeleteVersion(const std::string& subject, int32_t version,
                                        bool permanent);
  absl::StatusOr<std::string> SetCompatibility(const std::string& subject,
                                               const std::string& level);
  absl::StatusOr<std::string> DeleteCompatibility(const std::string& subject);
  absl::StatusOr<std::string> SetMode(const std::string& subject, const std::string& mode,
                                      bool force);
  // Restores an export into an empty registry (global mode must be IMPORT).
  absl::Status Import(const Export& data);
  // Records who the primary is (written by the primary itself, through the log).
  absl::Status WritePrimary(const Primary& primary);

  // Parses a stored schema (cached).
  absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> Parsed(int32_t id) const;

 private:
  absl::StatusOr<std::vector<schema::ResolvedReference>> Resolve(
      const std::vector<SchemaReference>& refs) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> ParseRequest(
      const RegisterRequest& request) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> ParsedLocked(int32_t id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Commits with mu_ released (readers go on; writers are excluded by write_mu_), then applies.
  absl::Status CommitAndApply(const std::vector<StoreRecord>& records)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_, write_mu_);
  absl::Status SyncIfNeeded() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<SchemaView> View(int32_t id, const std::string& subject, const SubjectVersion* v,
                                  SchemaFormat format) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<std::string>> CheckAgainstHistory(
      const std::string& subject, const schema::ParsedSchema& candidate, const std::string& level,
      std::optional<int32_t> only_version) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  RecordLog* const log_;
  const RegistryOptions options_;
  const std::unique_ptr<CompatibilityChecker> checker_;
  // Serialises writes; taken before mu_.
  absl::Mutex write_mu_;
  bool needs_sync_ ABSL_GUARDED_BY(write_mu_) = false;
  mutable absl::Mutex mu_;
  RegistryState state_ ABSL_GUARDED_BY(mu_);
  absl::StatusOr<RegisterResult> RegisterOnce(const RegisterRequest& request);

  // Group commit of registrations: each waits in queue_ for write_mu_; whoever holds it decides
  // the queued registrations in order and commits every new one in one transaction
  // (CommitGroup), so concurrent registrations share a commit. A registration that depends on an
  // earlier one in the group (same subject, a reference to its subject, the same schema, an
  // explicit id) waits for the next group, so each decision is exactly what it would be alone.
  struct Waiter {
    const RegisterRequest* request;
    std::optional<absl::StatusOr<RegisterResult>> result;  // set under write_mu_
  };
  // A registration decided against state_: its answer, the records that store it (none when
  // the subject has the schema already), the schema's hash, and whether it takes a new id.
  struct Decision {
    RegisterResult result;
    std::vector<StoreRecord> records;
    std::string hash;
    bool new_id = false;
  };
  // Decides `request` as if `ids_ahead` new ids were already taken by registrations committed
  // in the same transaction before it.
  absl::StatusOr<Decision> Decide(const RegisterRequest& request, int32_t ids_ahead) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void CommitGroup() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  static constexpr size_t kMaxGroup = 64;
  mutable absl::Mutex queue_mu_;
  std::deque<Waiter*> queue_ ABSL_GUARDED_BY(queue_mu_);
  std::atomic<int64_t> register_commits_{0};
  std::atomic<int64_t> created_{0}, existing_{0}, refused_{0};
  int64_t applied_offset_ ABSL_GUARDED_BY(mu_) = -1;
  mutable std::map<int32_t, std::shared_ptr<const schema::ParsedSchema>> parsed_
      ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex cache_mu_;
};

// Subject names: non-empty, at most 255 bytes, printable, no control characters.
absl::Status ValidateSubject(const std::string& subject);

// A city's schema must lie in its namespace (the package is `writer_namespace` or below it) and,
// unless the subject is an import path (ends in .proto), be named after its record: the first
// message's full name is the subject. So no city can register a schema that declares a standard
// dataset's message under its own prefix. Empty namespace: nothing to check (the operator).
absl::Status CheckWriterNamespace(const std::string& subject, const schema::ParsedSchema& schema,
                                  const std::string& writer_namespace);

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_REGISTRY_H_
