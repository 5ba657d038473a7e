#include "tools/polderctl/commands/command.h"

namespace polder {
namespace polderctl {

void PrintSuccess(const Output& out, std::ostream& os) {
  if (!out.json) {
    for (const std::string& l : out.lines) os << l << "\n";
    return;
  }
  nlohmann::ordered_json j = {{"ok", true}};
  for (auto it = out.result.begin(); it != out.result.end(); ++it) j[it.key()] = it.value();
  os << j.dump(2) << "\n";
}

void PrintJsonError(const absl::Status& status, std::ostream& os) {
  os << nlohmann::ordered_json{{"ok", false},
                               {"code", absl::StatusCodeToString(status.code())},
                               {"error", std::string(status.message())}}
            .dump(2)
     << "\n";
}

}  // namespace polderctl
}  // namespace polder
