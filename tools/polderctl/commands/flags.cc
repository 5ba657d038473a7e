#include "tools/polderctl/commands/flags.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/json/bounded.h"
#include "common/status/status_macros.h"
#include "common/trust/document.h"
#include "common/trust/keys.h"

namespace polder {
namespace polderctl {

absl::StatusOr<absl::Duration> DurationFlag(const cli::Args& args, const std::string& name) {
  absl::Duration d;
  const std::string v = args.Get(name);
  if (!absl::ParseDuration(v, &d) || d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": '", v, "' is not a positive duration such as 90s, 30m, 720h"));
  }
  return d;
}

absl::StatusOr<absl::Time> TimeFlag(const cli::Args& args, const std::string& name) {
  if (!args.Has(name)) return absl::Now();
  ASSIGN_OR_RETURN(absl::Time t, trust::ParseRfc3339(args.Get(name)),
                   _.Prepend(absl::StrCat("--", name, ": ")));
  return t;
}

absl::StatusOr<std::vector<trust::PinnedKey>> OperatorKeys(const cli::Args& args) {
  std::vector<trust::PinnedKey> pins;
  for (const std::string& path : args.GetAll("operator-key")) {
    ASSIGN_OR_RETURN(trust::PublicKey k, trust::PublicKey::ReadFile(path));
    pins.push_back({k});
  }
  if (pins.empty()) {
    return absl::InvalidArgumentError("give the pinned --operator-key (a .pub file)");
  }
  return pins;
}

absl::StatusOr<trust::SignedDirectory> ReadVerifiedDirectory(const cli::Args& args,
                                                             const std::string& path) {
  ASSIGN_OR_RETURN(trust::SignedDirectory d, trust::SignedDirectory::ReadFile(path));
  ASSIGN_OR_RETURN(std::vector<trust::PinnedKey> pins, OperatorKeys(args));
  RETURN_IF_ERROR(trust::VerifyDirectory(d, pins, absl::Now(), absl::Minutes(5)));
  return d;
}

absl::Status WritePublic(const std::string& path, const std::string& text) {
  return trust::WriteFileAtomically(path, text, 0644);
}

absl::Status WriteSecret(const std::string& path, const std::string& text) {
  if (std::filesystem::exists(path)) {
    return absl::AlreadyExistsError(
        absl::StrCat("'", path, "' exists; refusing to overwrite a key"));
  }
  return trust::WriteFileAtomically(path, text, 0600);
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, trust::ReadFileToString(path));
  nlohmann::json j = json_input::ParseOrDiscarded(text);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  return j;
}

}  // namespace polderctl
}  // namespace polder
