// Detached JWS (RFC 7515 compact serialisation, Appendix F "detached content") with EdDSA, as
// FSC Core signs its contracts: "<base64url(protected header)>..<base64url(signature)>", where
// the signature covers "<base64url(header)>.<base64url(payload)>" and the payload (the
// document's JCS form) travels separately.
//
// The protected header carries alg "EdDSA", the signer's "kid" (RFC 7638 thumbprint), the
// document type "typ" and the signing time "iat" (seconds since the epoch).
#ifndef POLDER_COMMON_TRUST_JWS_H_
#define POLDER_COMMON_TRUST_JWS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/trust/keys.h"

namespace polder {
namespace trust {

struct JwsHeader {
  std::string alg;
  std::string kid;
  std::string typ;
  absl::Time signed_at;
};

// Signs `payload` with `key`.
absl::StatusOr<std::string> SignDetached(const PrivateKey& key, absl::string_view payload,
                                         absl::string_view typ, absl::Time now);

// Parses the protected header without verifying (to find the signer's key). INVALID_ARGUMENT
// for anything but "<header>..<signature>" with alg EdDSA, a kid, a typ and an iat (an integer
// that fits in int64_t).
absl::StatusOr<JwsHeader> ParseDetachedHeader(absl::string_view jws);

// Verifies `jws` over `payload` with `key`: the header's kid must be `key`'s and the typ
// `expected_typ`. INVALID_ARGUMENT with the reason otherwise.
absl::StatusOr<JwsHeader> VerifyDetached(absl::string_view jws, absl::string_view payload,
                                         const PublicKey& key, absl::string_view expected_typ);

}  // namespace trust
}  // namespace polder

#endif  // POLDER_COMMON_TRUST_JWS_H_
