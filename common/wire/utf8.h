// UTF-8 well-formedness as Protobuf's `string` fields and JSON text require it (RFC 3629): no
// overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence.
#ifndef POLDER_COMMON_WIRE_UTF8_H_
#define POLDER_COMMON_WIRE_UTF8_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace polder {
namespace wire {

// Offset of the first byte that does not start a well-formed UTF-8 sequence, or -1 if `s` is
// well-formed throughout.
int64_t InvalidUtf8At(absl::string_view s);

inline bool IsUtf8(absl::string_view s) { return InvalidUtf8At(s) < 0; }

}  // namespace wire
}  // namespace polder

#endif  // POLDER_COMMON_WIRE_UTF8_H_
