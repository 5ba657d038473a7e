// The trust section of a service's YAML configuration:
//
//   trust:
//     federation: nl-smartcity
//     directory_file: /etc/polder/directory.json        # the signed directory to install
//     directory_state: /var/lib/polder/directory.json   # last good copy (written by Polder)
//     expiry_warning: 168h
//     clock_skew: 5m
//     operator_keys:                                    # pinned; overlap them to rotate
//       - public_key_file: /etc/polder/operator-2026.pub
//         valid_until: 2027-06-30T00:00:00Z
//       - public_key_file: /etc/polder/operator-2027.pub
//         valid_from: 2027-06-01T00:00:00Z
#ifndef POLDER_COMMON_TRUST_TRUST_CONFIG_H_
#define POLDER_COMMON_TRUST_TRUST_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/config.h"
#include "common/trust/directory.h"

namespace polder {
namespace trust {

struct PinnedKeyConfig {
  std::string public_key_file;
  std::string valid_from;   // RFC 3339, optional
  std::string valid_until;  // RFC 3339, optional
};

struct TrustConfig {
  std::string federation;
  std::string directory_file;
  std::string directory_state;
  absl::Duration expiry_warning = absl::Hours(24 * 7);
  absl::Duration clock_skew = absl::Minutes(5);
  std::vector<PinnedKeyConfig> operator_keys;
};

// Reads the section (errors are recorded on the document with their key paths).
void ReadTrustConfig(config::ObjectReader& section, TrustConfig* out);

// Loads the pinned keys (files read, validity parsed); errors name the list entry.
absl::StatusOr<std::vector<PinnedKey>> LoadPinnedKeys(const TrustConfig& config);

// A DirectoryStore for `config`: opens the last good copy, then installs directory_file if set
// (an older or identical file is not an error on start: the newer state is kept).
absl::StatusOr<std::unique_ptr<DirectoryStore>> OpenDirectoryStore(const TrustConfig& config);

// Installs `config.directory_file` if it holds a newer directory than `store` (a rejected file is
// logged as a warning; an older or identical one silently kept), then logs a warning if the
// directory in force nears or passed its expiry. Services call it periodically.
void RefreshDirectory(DirectoryStore& store, const TrustConfig& config);

}  // namespace trust
}  // namespace polder

#endif  // POLDER_COMMON_TRUST_TRUST_CONFIG_H_
