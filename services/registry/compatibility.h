// Compatibility checking behind one interface. This issue ships a minimal checker; the full
// engine (Protobuf wire and JSON rules, every mode) replaces it without touching the registry.
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

// Accepts everything under NONE; under any other level refuses the one change that corrupts
// data whatever the direction: a field number kept with another wire type in a message of the
// same name.
std::unique_ptr<CompatibilityChecker> MinimalCompatibilityChecker();

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_COMPATIBILITY_H_
