#include "services/registry/compatibility.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/registry/protobuf_compatibility.h"

namespace polder {
namespace registry {
namespace {

class Full : public CompatibilityChecker {
 public:
  std::vector<std::string> Check(
      const schema::ParsedSchema& candidate,
      const std::vector<std::shared_ptr<const schema::ParsedSchema>>& previous,
      const std::string& level) const override {
    std::vector<std::string> reasons;
    if (level == "NONE" || previous.empty()) return reasons;
    const bool transitive = absl::EndsWith(level, "_TRANSITIVE");
    const bool backward = absl::StartsWith(level, "BACKWARD") || absl::StartsWith(level, "FULL");
    const bool forward = absl::StartsWith(level, "FORWARD") || absl::StartsWith(level, "FULL");
    const size_t first = transitive ? 0 : previous.size() - 1;
    for (size_t i = first; i < previous.size(); ++i) {
      const std::string against = i + 1 == previous.size()
                                      ? std::string("the latest version")
                                      : absl::StrCat("version #", i + 1, " of the history");
      if (backward) {
        for (const std::string& r : CompareForReading(candidate, *previous[i], ReaderIs::kNewer)) {
          reasons.push_back(absl::StrCat("BACKWARD vs ", against, ": ", r));
        }
      }
      if (forward) {
        for (const std::string& r : CompareForReading(*previous[i], candidate, ReaderIs::kOlder)) {
          reasons.push_back(absl::StrCat("FORWARD vs ", against, ": ", r));
        }
      }
    }
    return reasons;
  }
};

}  // namespace

std::unique_ptr<CompatibilityChecker> ProtobufCompatibilityChecker() {
  return std::make_unique<Full>();
}

}  // namespace registry
}  // namespace polder
