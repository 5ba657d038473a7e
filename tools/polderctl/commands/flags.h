// Flag and file helpers shared by polderctl's command groups. Errors name the flag or the file,
// as the operator typed it.
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_FLAGS_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/trust/directory.h"
#include "nlohmann/json.hpp"
#include "tools/polderctl/cli.h"

namespace polder {
namespace polderctl {

// --<name> (or its default) as a positive duration such as 90s, 30m, 720h; INVALID_ARGUMENT
// naming the flag otherwise.
absl::StatusOr<absl::Duration> DurationFlag(const cli::Args& args, const std::string& name);

// --<name> as an RFC 3339 time; now when the flag is absent.
absl::StatusOr<absl::Time> TimeFlag(const cli::Args& args, const std::string& name);

// The pinned operator keys of the repeatable --operator-key (public key files); INVALID_ARGUMENT
// when none is given.
absl::StatusOr<std::vector<trust::PinnedKey>> OperatorKeys(const cli::Args& args);

// The signed directory in `path`, verified now against --operator-key (five minutes of clock
// skew allowed).
absl::StatusOr<trust::SignedDirectory> ReadVerifiedDirectory(const cli::Args& args,
                                                             const std::string& path);

// Writes `text` to `path` atomically, readable by all (mode 0644).
absl::Status WritePublic(const std::string& path, const std::string& text);

// Writes `text` to `path` atomically with mode 0600; ALREADY_EXISTS if `path` exists, so that a
// key is never overwritten.
absl::Status WriteSecret(const std::string& path, const std::string& text);

// The JSON document in `path`; INVALID_ARGUMENT naming the file if it is not valid JSON.
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_FLAGS_H_
