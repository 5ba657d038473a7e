// `.proto` parsing in the registry (common/schema:ParsedSchema::Parse): any text parses or is
// refused with a reason; a schema that parses prints (normalised) to text that parses again to
// the same canonical bytes.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/schema/schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = polder::schema::ParsedSchema::Parse(text, {});
  if (!parsed.ok()) return 0;
  auto again = polder::schema::ParsedSchema::Parse((*parsed)->ToProtoText(), {});
  if (!again.ok() || (*again)->CanonicalBytes() != (*parsed)->CanonicalBytes()) std::abort();
  return 0;
}
