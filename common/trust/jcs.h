// JSON Canonicalization Scheme (RFC 8785) for the documents Polder signs.
//
// Signed documents (peer directory, contracts, audit receipts) are canonicalised before signing
// and verification, so whitespace, key order and escaping never change a signature. Polder's
// documents hold only objects, arrays, strings, booleans, null and integers; to stay exact and
// simple, Canonicalize refuses what RFC 8785 would serialise with floating-point rules:
// non-integral numbers and integers beyond ±(2^53 − 1). Object keys must be ASCII, so byte order
// equals the UTF-16 code-unit order RFC 8785 sorts by.
#ifndef POLDER_COMMON_TRUST_JCS_H_
#define POLDER_COMMON_TRUST_JCS_H_

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace trust {

// The canonical serialisation of `value`. INVALID_ARGUMENT naming the JSON path of a value that
// cannot be canonicalised exactly (a float, a too-large integer, a non-ASCII key, invalid UTF-8).
absl::StatusOr<std::string> Canonicalize(const nlohmann::json& value);

}  // namespace trust
}  // namespace polder

#endif  // POLDER_COMMON_TRUST_JCS_H_
