// The state `polderctl pki` keeps next to the CAs, in <dir>/pki.json:
//
//   {"crl_number": 2, "federation": "nl-smartcity", "revoked": ["4F1A..."]}
//
// the federation (the SPIFFE trust domain of issued certificates), the number of the last CRL
// published and the serials (hex) it revokes.
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_PKI_STATE_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_PKI_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace polderctl {

struct PkiState {
  std::string federation;
  int64_t crl_number = 1;
  std::vector<std::string> revoked;
  // The document as read: members other than the three above are written back unchanged.
  nlohmann::json document = nlohmann::json::object();
};

// Reads the state from a parsed pki.json; INVALID_ARGUMENT naming the member that is missing or
// of the wrong type. Never throws.
absl::StatusOr<PkiState> ParsePkiState(const nlohmann::json& document);

// The file text of `state`: its document with the three members set, indented by two, with a
// final newline.
std::string PkiStateText(const PkiState& state);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_PKI_STATE_H_
