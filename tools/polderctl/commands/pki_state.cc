#include "tools/polderctl/commands/pki_state.h"

#include "absl/status/status.h"

namespace polder {
namespace polderctl {

absl::StatusOr<PkiState> ParsePkiState(const nlohmann::json& document) {
  if (!document.is_object()) return absl::InvalidArgumentError("not a JSON object");
  PkiState state;
  state.document = document;
  auto federation = document.find("federation");
  if (federation == document.end() || !federation->is_string()) {
    return absl::InvalidArgumentError("\"federation\" must be a string");
  }
  state.federation = federation->get<std::string>();
  auto crl_number = document.find("crl_number");
  if (crl_number == document.end() || !crl_number->is_number_integer()) {
    return absl::InvalidArgumentError("\"crl_number\" must be an integer");
  }
  if (crl_number->is_number_unsigned()) {
    const uint64_t n = crl_number->get<uint64_t>();
    if (n > static_cast<uint64_t>(INT64_MAX)) {
      return absl::InvalidArgumentError("\"crl_number\" is out of range");
    }
    state.crl_number = static_cast<int64_t>(n);
  } else {
    state.crl_number = crl_number->get<int64_t>();
  }
  auto revoked = document.find("revoked");
  if (revoked == document.end() || !revoked->is_array()) {
    return absl::InvalidArgumentError("\"revoked\" must be a list of serials");
  }
  for (const nlohmann::json& serial : *revoked) {
    if (!serial.is_string()) {
      return absl::InvalidArgumentError("\"revoked\" must be a list of serials");
    }
    state.revoked.push_back(serial.get<std::string>());
  }
  return state;
}

std::string PkiStateText(const PkiState& state) {
  nlohmann::json doc = state.document.is_object() ? state.document : nlohmann::json::object();
  doc["federation"] = state.federation;
  doc["crl_number"] = state.crl_number;
  doc["revoked"] = state.revoked;
  return doc.dump(2) + "\n";
}

}  // namespace polderctl
}  // namespace polder
