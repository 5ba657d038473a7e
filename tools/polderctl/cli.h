// A small command-line parser for polderctl's subcommands: `--name value`, `--name=value`,
// repeatable flags and boolean switches, with generated --help text. Unknown flags and missing
// required flags are usage errors naming the flag.
#ifndef POLDER_TOOLS_POLDERCTL_CLI_H_
#define POLDER_TOOLS_POLDERCTL_CLI_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace polder {
namespace cli {

struct FlagSpec {
  std::string name;
  std::string help;
  bool required = false;
  bool repeated = false;
  bool boolean = false;
  std::string default_value;
};

class Args {
 public:
  // Parses `argv` against `specs`; INVALID_ARGUMENT names an unknown, repeated or missing flag.
  static absl::StatusOr<Args> Parse(const std::vector<std::string>& argv,
                                    const std::vector<FlagSpec>& specs);
  std::string Get(const std::string& name) const;
  std::vector<std::string> GetAll(const std::string& name) const;
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  bool Bool(const std::string& name) const { return Has(name); }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::map<std::string, std::string> defaults_;
};

// "  --name VALUE   help (required)" lines for --help.
std::string FlagHelp(const std::vector<FlagSpec>& specs);

}  // namespace cli
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_CLI_H_
