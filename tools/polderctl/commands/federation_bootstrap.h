// `polderctl federation bootstrap`: registers the standard datasets compiled into this build (and
// the files they import) with the federation's registry, in dependency order, each under its
// subject with the federation's compatibility level.
//
// Idempotent: a schema already registered under its subject and a level already set on the
// subject are left alone, so a second run changes nothing. A dry run reads only: it reports what
// would change, and asks the registry whether each new schema would be accepted (a refusal is
// FAILED_PRECONDITION naming the subject and the registry's reasons).
//
//   RegistryClient registry(channel, absl::Seconds(60));
//   ASSIGN_OR_RETURN(auto schemas, datasets::StandardSchemas());
//   ASSIGN_OR_RETURN(BootstrapReport report,
//                    BootstrapSchemas(schemas, {"FULL_TRANSITIVE", false}, registry));
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_FEDERATION_BOOTSTRAP_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_FEDERATION_BOOTSTRAP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "proto/polder/datasets/standard_sources.h"
#include "tools/polderctl/commands/registry_client.h"

namespace polder {
namespace polderctl {

// `level` in upper case if it is one of the registry's compatibility levels (NONE, BACKWARD,
// BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE; any case);
// INVALID_ARGUMENT listing them otherwise.
absl::StatusOr<std::string> ParseCompatibilityLevel(absl::string_view level);

struct BootstrapOptions {
  std::string compatibility = "FULL_TRANSITIVE";  // as ParseCompatibilityLevel returns it
  bool dry_run = false;
};

// What happened to one schema.
struct SubjectOutcome {
  std::string subject;
  std::string dataset_id;  // empty for an imported file
  // The schema's version and id under the subject; 0 when it is not registered (a dry run).
  int32_t version = 0;
  int32_t id = 0;
  bool registered = false;  // registered by this run
  // The subject's own level before the run ("" for none: the global default applied), and
  // whether the run set it (a dry run: would set it).
  std::string previous_compatibility;
  bool compatibility_set = false;
};

struct BootstrapReport {
  BootstrapOptions options;
  std::vector<SubjectOutcome> subjects;  // in the order of the schemas
  int changes = 0;                       // levels set plus schemas registered (or to be)
};

// Registers `schemas` (in dependency order: a schema's imports come before it) as the file
// comment says. An import refers to the version its subject got in this run. A registry error
// is returned with its code, prefixed "<subject>: <what was being done>: "; the schemas before
// it stay registered.
absl::StatusOr<BootstrapReport> BootstrapSchemas(
    const std::vector<datasets::StandardSchema>& schemas, const BootstrapOptions& options,
    RegistryClient& registry);

// One line per subject and a summary line, as `polderctl federation bootstrap` prints them.
std::vector<std::string> BootstrapLines(const BootstrapReport& report);

// {"dry_run", "changes", "schemas": [{"subject", "dataset", "version", "id", "registered",
// "compatibility", "compatibility_set"}]}; "registered" is also true for a schema a dry run would
// register.
nlohmann::ordered_json BootstrapJson(const BootstrapReport& report);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_FEDERATION_BOOTSTRAP_H_
