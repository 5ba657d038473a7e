// A registry in memory for tests of the node's schema users: the standard datasets registered
// as version 1 each, ids 1, 2, ... in bootstrap order. `down` makes every call UNAVAILABLE;
// `calls` counts them.
#ifndef POLDER_SERVICES_NODE_SCHEMA_CACHE_FAKE_SCHEMA_SOURCE_H_
#define POLDER_SERVICES_NODE_SCHEMA_CACHE_FAKE_SCHEMA_SOURCE_H_

#include <atomic>
#include <map>
#include <string>

#include "services/node/schema_cache/schema_cache.h"

namespace polder {
namespace node {

class FakeSchemaSource : public SchemaSource {
 public:
  FakeSchemaSource();
  absl::StatusOr<FetchedSchema> ById(int32_t id) override;
  absl::StatusOr<FetchedSchema> Version(const std::string& subject, int32_t version) override;
  // The id of `subject`'s version 1; 0 if it is not a standard dataset.
  int32_t IdOf(const std::string& subject) const;

  std::atomic<bool> down{false};
  std::atomic<int> calls{0};

 private:
  std::map<int32_t, FetchedSchema> schemas_;
  std::map<std::string, int32_t> subjects_;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_SCHEMA_CACHE_FAKE_SCHEMA_SOURCE_H_
