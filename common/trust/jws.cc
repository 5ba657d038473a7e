#include "common/trust/jws.h"

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json/bounded.h"
#include "common/status/status_macros.h"
#include "common/trust/jcs.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace trust {

absl::StatusOr<std::string> SignDetached(const PrivateKey& key, absl::string_view payload,
                                         absl::string_view typ, absl::Time now) {
  nlohmann::json header = {{"alg", "EdDSA"},
                           {"kid", key.public_key().kid()},
                           {"typ", std::string(typ)},
                           {"iat", absl::ToUnixSeconds(now)}};
  ASSIGN_OR_RETURN(std::string header_json, Canonicalize(header));
  std::string header_b64 = Base64UrlEncode(header_json);
  ASSIGN_OR_RETURN(std::string sig,
                   key.Sign(absl::StrCat(header_b64, ".", Base64UrlEncode(payload))));
  return absl::StrCat(header_b64, "..", Base64UrlEncode(sig));
}

absl::StatusOr<JwsHeader> ParseDetachedHeader(absl::string_view jws) {
  std::vector<absl::string_view> parts = absl::StrSplit(jws, '.');
  if (parts.size() != 3 || parts[0].empty() || !parts[1].empty() || parts[2].empty()) {
    return absl::InvalidArgumentError(
        "malformed signature: expected a detached JWS '<header>..<signature>'");
  }
  ASSIGN_OR_RETURN(std::string header_json, Base64UrlDecode(parts[0]),
                   _.Prepend("malformed signature header: "));
  nlohmann::json header = json_input::ParseOrDiscarded(header_json);
  if (!header.is_object())
    return absl::InvalidArgumentError("malformed signature header: not JSON");
  JwsHeader h;
  if (!header.contains("alg") || !header["alg"].is_string() || !header.contains("kid") ||
      !header["kid"].is_string() || !header.contains("typ") || !header["typ"].is_string() ||
      !header.contains("iat") || !header["iat"].is_number_integer()) {
    return absl::InvalidArgumentError(
        "malformed signature header: alg, kid, typ and iat are required");
  }
  // nlohmann keeps integers above INT64_MAX as unsigned; get<int64_t>() would wrap them.
  if (header["iat"].is_number_unsigned() &&
      header["iat"].get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError("malformed signature header: iat is out of range");
  }
  h.alg = header["alg"].get<std::string>();
  h.kid = header["kid"].get<std::string>();
  h.typ = header["typ"].get<std::string>();
  h.signed_at = absl::FromUnixSeconds(header["iat"].get<int64_t>());
  if (h.alg != "EdDSA") {
    return absl::InvalidArgumentError(
        absl::StrCat("signature algorithm '", h.alg, "' is not allowed (only EdDSA)"));
  }
  if (header.contains("crit") || header.contains("b64")) {
    return absl::InvalidArgumentError("signature header uses unsupported extensions (crit/b64)");
  }
  return h;
}

absl::StatusOr<JwsHeader> VerifyDetached(absl::string_view jws, absl::string_view payload,
                                         const PublicKey& key, absl::string_view expected_typ) {
  ASSIGN_OR_RETURN(JwsHeader h, ParseDetachedHeader(jws));
  if (h.kid != key.kid()) {
    return absl::InvalidArgumentError(
        absl::StrCat("signature names key ", h.kid, ", not ", key.kid()));
  }
  if (h.typ != expected_typ) {
    return absl::InvalidArgumentError(
        absl::StrCat("signature is for a '", h.typ, "', not a '", expected_typ, "'"));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(jws, '.');
  ASSIGN_OR_RETURN(std::string sig, Base64UrlDecode(parts[2]), _.Prepend("malformed signature: "));
  absl::Status s = key.Verify(absl::StrCat(parts[0], ".", Base64UrlEncode(payload)), sig);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "signature by key ", key.kid(), " does not match the document (changed after signing?)"));
  }
  return h;
}

}  // namespace trust
}  // namespace polder
