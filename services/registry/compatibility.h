// Compatibility checking behind one interface (tests inject their own checkers).
#ifndef POLDER_SERVICES_REGISTRY_COMPATIBILITY_H_
#define POLDER_SERVICES_REGISTRY_COMPATIBILITY_H_

#include <memory>
#include <string>
#include <vector>

#include "common/schema/schema.h"

namespace polder {
namespace registry {

class CompatibilityChecker {
 public:
  virtual ~CompatibilityChecker() = default;
  // Reasons `candidate` is incompatible with `previous` (oldest first) under `level`
  // (NONE, BACKWARD, ..., FULL_TRANSITIVE); empty if compatible. Non-transitive levels look at
  // the last element only.
  virtual std::vector<std::string> Check(
      const schema::ParsedSchema& candidate,
      const std::vector<std::shared_ptr<const schema::ParsedSchema>>& previous,
      const std::string& level) const = 0;
};

// The Protobuf engine (protobuf_compatibility.h) per level: BACKWARD — the candidate reads data
// written with the latest version; FORWARD — the latest reads the candidate's data; FULL —
// both; *_TRANSITIVE — against every earlier version, not only the latest.
std::unique_ptr<CompatibilityChecker> ProtobufCompatibilityChecker();

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_COMPATIBILITY_H_
