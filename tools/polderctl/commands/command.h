// polderctl's command table. A command is a group and a name (`polderctl pki issue`; a command
// without a group, such as `polderctl tail`, is listed with its group and the name ""), a
// summary for the help text, its flags and a handler. Each group's file (pki_commands.h,
// audit_commands.h, ...) returns its entries; polderctl_main.cc lists them and dispatches.
//
// A handler fills an Output: the text lines printed on success, and the result object that
// -o json prints instead. A handler's error goes to stderr (and, with -o json, to stdout as
// {"ok": false, ...}) with exit status 1.
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_COMMAND_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_COMMAND_H_

#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "tools/polderctl/cli.h"

namespace polder {
namespace polderctl {

struct Output {
  bool json = false;  // -o json was given
  nlohmann::ordered_json result = nlohmann::ordered_json::object();
  std::vector<std::string> lines;
  void Line(std::string s) { lines.push_back(std::move(s)); }
};

using Handler = std::function<absl::Status(const cli::Args&, Output*)>;

struct Command {
  std::string group;
  std::string name;  // "" for a command without a group
  std::string summary;
  std::vector<cli::FlagSpec> flags;
  Handler run;
};

// Prints a handler's success on `os`: with json, {"ok": true} followed by the members of
// out.result, indented by two; otherwise out.lines, one per line.
void PrintSuccess(const Output& out, std::ostream& os);

// Prints a handler's error as JSON on `os`: {"ok": false, "code": "...", "error": "..."}.
void PrintJsonError(const absl::Status& status, std::ostream& os);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_COMMAND_H_
