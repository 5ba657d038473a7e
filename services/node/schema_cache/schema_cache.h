// The node's schema cache: the registry's schemas as this node needs them — by id (to validate
// and to serve deserializers) and each configured subject's latest version — kept in a file
// under the node's state directory, so validation and the schema endpoint continue from the last
// known state while the registry is unreachable, also across restarts.
//
// Schemas are fetched as base64 FileDescriptorProtos (the registry's canonical form) with their
// references, which are fetched and parsed first. The latest version of each subject is
// refreshed periodically (Refresh); ids never change meaning, so they are cached for good.
#ifndef POLDER_SERVICES_NODE_SCHEMA_CACHE_SCHEMA_CACHE_H_
#define POLDER_SERVICES_NODE_SCHEMA_CACHE_SCHEMA_CACHE_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/schema/schema.h"

namespace polder {
namespace node {

struct SchemaRef {
  std::string name;  // import path
  std::string subject;
  int32_t version = 0;
};

// A schema as the registry returns it.
struct FetchedSchema {
  int32_t id = 0;
  std::string subject;     // empty when fetched by id
  int32_t version = 0;     // 0 when fetched by id
  std::string serialized;  // base64 FileDescriptorProto
  std::vector<SchemaRef> references;
};

// Where schemas come from: the registry (RegistryGrpcSource) or a fake in tests.
class SchemaSource {
 public:
  virtual ~SchemaSource() = default;
  virtual absl::StatusOr<FetchedSchema> ById(int32_t id) = 0;
  // version -1: the latest.
  virtual absl::StatusOr<FetchedSchema> Version(const std::string& subject, int32_t version) = 0;
};

struct CachedSchema {
  int32_t id = 0;
  std::string serialized;
  std::vector<SchemaRef> references;
  std::shared_ptr<const schema::ParsedSchema> parsed;
};

class SchemaCache {
 public:
  struct Stats {
    int64_t schemas = 0;
    int64_t fetches = 0;
    int64_t fetch_errors = 0;
    absl::Time last_refresh_ok = absl::InfinitePast();
    bool registry_reachable = false;
  };

  // Loads `state_file` if it exists (a corrupt file is an error naming it).
  static absl::StatusOr<std::unique_ptr<SchemaCache>> Open(std::string state_file,
                                                           std::shared_ptr<SchemaSource> source);

  // The schema with this id: cached, or fetched (with its references) and cached.
  absl::StatusOr<std::shared_ptr<const CachedSchema>> ById(int32_t id);
  // The id of `subject`'s `version` (-1: the latest known): cached, or fetched.
  absl::StatusOr<int32_t> IdOf(const std::string& subject, int32_t version);
  // (subject, version) pairs known for an id (for the endpoint's answers).
  std::vector<std::pair<std::string, int32_t>> VersionsOf(int32_t id) const;
  // The version under which `subject` registered schema `id`: from the cache, else by looking
  // up the subject's versions up to its latest (each cached). NOT_FOUND if `id` is no version
  // of `subject` — e.g. a schema registered under another subject that declares the same message.
  absl::StatusOr<int32_t> VersionUnder(const std::string& subject, int32_t id);

  // Asks the registry for the latest version of each subject and caches it; on failure the
  // last known versions stay in force. OK if every subject was refreshed.
  absl::Status Refresh(const std::vector<std::string>& subjects);

  // What the node's public schema endpoint may serve: every cached version of the `subjects`
  // (this node's datasets), the pinned ids (schemas of records this node mirrors), and what they
  // reference — nothing else, so the endpoint is no proxy to the registry. The Served* lookups
  // read the cache only, never the registry: NOT_FOUND for anything outside that scope or not
  // cached.
  void SetServedSubjects(std::vector<std::string> subjects);
  absl::Status Pin(int32_t id);  // persisted with the cache
  absl::StatusOr<std::shared_ptr<const CachedSchema>> Served(int32_t id) const;
  absl::StatusOr<int32_t> ServedIdOf(const std::string& subject,
                                     int32_t version) const;  // -1: latest

  Stats stats() const;

 private:
  SchemaCache(std::string state_file, std::shared_ptr<SchemaSource> source)
      : state_file_(std::move(state_file)), source_(std::move(source)) {}
  absl::Status Load();
  absl::Status Save() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::shared_ptr<const CachedSchema>> Build(int32_t id,
                                                            const std::string& serialized,
                                                            const std::vector<SchemaRef>& refs,
                                                            int depth);
  absl::StatusOr<std::shared_ptr<const CachedSchema>> Fetch(int32_t id, int depth);
  absl::StatusOr<int32_t> FetchVersion(const std::string& subject, int32_t version);
  // The ids and subjects in the served scope (see SetServedSubjects).
  void ServedScope(std::set<int32_t>* ids, std::set<std::string>* subjects) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string state_file_;
  const std::shared_ptr<SchemaSource> source_;
  mutable absl::Mutex mu_;
  std::map<int32_t, std::shared_ptr<const CachedSchema>> by_id_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::map<int32_t, int32_t>> versions_
      ABSL_GUARDED_BY(mu_);                                     // subject → version → id
  std::map<std::string, int32_t> latest_ ABSL_GUARDED_BY(mu_);  // subject → version
  std::vector<std::string> served_subjects_ ABSL_GUARDED_BY(mu_);
  std::set<int32_t> pinned_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_SCHEMA_CACHE_SCHEMA_CACHE_H_
