#include "tools/polderctl/commands/federation_bootstrap.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"

namespace polder {
namespace polderctl {
namespace {

constexpr const char* kLevels[] = {"NONE",           "BACKWARD",           "BACKWARD_TRANSITIVE",
                                   "FORWARD",        "FORWARD_TRANSITIVE", "FULL",
                                   "FULL_TRANSITIVE"};

// Registers (or in a dry run checks) one schema; `versions` holds the versions of the subjects
// registered before it.
absl::StatusOr<SubjectOutcome> BootstrapOne(const datasets::StandardSchema& s,
                                            const BootstrapOptions& options,
                                            const std::map<std::string, int32_t>& versions,
                                            RegistryClient& registry) {
  auto failed = [&s](absl::string_view what) { return absl::StrCat(s.subject, ": ", what, ": "); };
  SubjectOutcome o;
  o.subject = s.subject;
  o.dataset_id = s.dataset_id;
  // 1. Compatibility: set only when the subject's own level differs.
  ASSIGN_OR_RETURN(std::optional<std::string> level, registry.SubjectCompatibility(s.subject),
                   _.Prepend(failed("reading its compatibility")));
  o.previous_compatibility = level.value_or("");
  o.compatibility_set = o.previous_compatibility != options.compatibility;
  if (o.compatibility_set && !options.dry_run) {
    absl::Status set = registry.SetSubjectCompatibility(s.subject, options.compatibility);
    if (!set.ok()) return Prepend(set, failed("setting its compatibility"));
  }
  // 2. The schema: look it up under the subject (any version); register it if absent. Its
  // imports refer to the versions they got; in a dry run an import it would register has none,
  // and then neither lookup nor check can be asked.
  SubjectSchema schema{s.subject, s.source, {}};
  bool imports_registered = true;
  for (const std::string& import : s.imports) {
    auto it = versions.find(import);
    const int32_t version = it == versions.end() ? 0 : it->second;
    imports_registered &= version > 0;
    schema.references.push_back({import, import, version});
  }
  if (imports_registered) {
    ASSIGN_OR_RETURN(std::optional<RegisteredSchema> found, registry.LookupSchema(schema),
                     _.Prepend(failed("looking it up")));
    if (found) {
      o.version = found->version;
      o.id = found->id;
    }
  }
  if (o.version == 0 && options.dry_run && imports_registered) {
    ASSIGN_OR_RETURN(std::optional<CompatibilityVerdict> verdict,
                     registry.CheckCompatibility(schema), _.Prepend(failed("checking it")));
    if (verdict && !verdict->compatible) {
      return absl::FailedPreconditionError(
          absl::StrCat(s.subject, ": would be refused: ", absl::StrJoin(verdict->messages, "; ")));
    }
  } else if (o.version == 0 && !options.dry_run) {
    ASSIGN_OR_RETURN(RegisteredSchema registered, registry.RegisterSchema(schema),
                     _.Prepend(failed("registering it")));
    o.version = registered.version;
    o.id = registered.id;
    o.registered = true;
  }
  return o;
}

}  // namespace

absl::StatusOr<std::string> ParseCompatibilityLevel(absl::string_view level) {
  std::string upper = absl::AsciiStrToUpper(level);
  if (std::find(std::begin(kLevels), std::end(kLevels), upper) == std::end(kLevels)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", level, "' is not one of ", absl::StrJoin(kLevels, ", ")));
  }
  return upper;
}

absl::StatusOr<BootstrapReport> BootstrapSchemas(
    const std::vector<datasets::StandardSchema>& schemas, const BootstrapOptions& options,
    RegistryClient& registry) {
  BootstrapReport report;
  report.options = options;
  std::map<std::string, int32_t> versions;  // subject → the version this build's schema has
  for (const datasets::StandardSchema& s : schemas) {
    ASSIGN_OR_RETURN(SubjectOutcome o, BootstrapOne(s, options, versions, registry));
    versions[s.subject] = o.version;
    report.changes += (o.compatibility_set ? 1 : 0) + (o.version == 0 || o.registered ? 1 : 0);
    report.subjects.push_back(std::move(o));
  }
  return report;
}

std::vector<std::string> BootstrapLines(const BootstrapReport& report) {
  const BootstrapOptions& options = report.options;
  const std::string verb = options.dry_run ? "would be " : "";
  std::vector<std::string> lines;
  for (const SubjectOutcome& o : report.subjects) {
    lines.push_back(absl::StrCat(
        o.subject, ": ",
        o.version == 0 ? absl::StrCat(verb, "registered")
                       : absl::StrCat(o.registered ? "registered" : "unchanged", " as version ",
                                      o.version, " (schema id ", o.id, ")"),
        "; compatibility ", options.compatibility,
        o.compatibility_set
            ? absl::StrCat(" ", verb, "set (was ",
                           o.previous_compatibility.empty() ? "the global default"
                                                            : o.previous_compatibility,
                           ")")
            : " already set"));
  }
  lines.push_back(absl::StrCat(
      report.changes == 0 ? "nothing to change"
                          : absl::StrCat(report.changes, options.dry_run ? " change(s) to make"
                                                                         : " change(s) made"),
      ": ", report.subjects.size(), " standard schemas"));
  return lines;
}

nlohmann::ordered_json BootstrapJson(const BootstrapReport& report) {
  nlohmann::ordered_json schemas = nlohmann::ordered_json::array();
  for (const SubjectOutcome& o : report.subjects) {
    schemas.push_back({{"subject", o.subject},
                       {"dataset", o.dataset_id},
                       {"version", o.version},
                       {"id", o.id},
                       {"registered", o.registered || (report.options.dry_run && o.version == 0)},
                       {"compatibility", report.options.compatibility},
                       {"compatibility_set", o.compatibility_set}});
  }
  return {{"dry_run", report.options.dry_run}, {"changes", report.changes}, {"schemas", schemas}};
}

}  // namespace polderctl
}  // namespace polder
