// JSON from clients, peers and files, parsed with a nesting bound.
//
// nlohmann::json parses iteratively but serialises (dump) and compares recursively, and
// Protobuf's JSON mapping recurses as well: a body of 100,000 nested arrays parses fine and then
// overflows the stack wherever it is used. Every parser of input Polder does not write itself
// goes through here (or checks CheckDepth before handing the text to another parser).
//
//   ASSIGN_OR_RETURN(nlohmann::json body, Parse(text));   // INVALID_ARGUMENT with the byte
//
// The scan is linear, allocation-free, and stops at the first byte past the bound, so a hostile
// body costs no more than reading it.
#ifndef POLDER_COMMON_JSON_BOUNDED_H_
#define POLDER_COMMON_JSON_BOUNDED_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace json_input {

// Deep enough for every document Polder defines (directories, contracts, audit entries, dataset
// records with nested locations) with room to spare; far below what recursion can survive.
inline constexpr int kMaxDepth = 64;

// INVALID_ARGUMENT ("nesting deeper than N at byte B") if arrays/objects nest deeper than
// `max_depth` anywhere in `text` (brackets inside strings do not count). Says nothing about the
// rest of the syntax.
absl::Status CheckDepth(absl::string_view text, int max_depth = kMaxDepth);

// Parses `text` after CheckDepth; INVALID_ARGUMENT ("is not valid JSON (byte B)", "nests deeper
// than N levels (at byte B)") names the byte of the error.
absl::StatusOr<nlohmann::json> Parse(absl::string_view text, int max_depth = kMaxDepth);

// For callers that only need "valid or not": a discarded value (is_discarded()) on any error.
nlohmann::json ParseOrDiscarded(absl::string_view text, int max_depth = kMaxDepth);

// Members of a parsed document that may be missing or of the wrong type (stored records, peers'
// documents): the member `key` of object `j` if it is present with the type asked for, otherwise
// `fallback`. Never throw, unlike nlohmann's value() on a member of another type. IntOr accepts
// integers (signed or unsigned within int64) only; UintOr non-negative integers only.
std::string StringOr(const nlohmann::json& j, absl::string_view key, absl::string_view fallback);
int64_t IntOr(const nlohmann::json& j, absl::string_view key, int64_t fallback);
uint64_t UintOr(const nlohmann::json& j, absl::string_view key, uint64_t fallback);
bool BoolOr(const nlohmann::json& j, absl::string_view key, bool fallback);

}  // namespace json_input
}  // namespace polder

#endif  // POLDER_COMMON_JSON_BOUNDED_H_
