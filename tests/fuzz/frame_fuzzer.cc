// The Confluent wire frame and its message-index list (common/wire): any bytes either decode or
// are refused; what decodes re-encodes to the same header bytes.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/wire/confluent_frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<polder::wire::Frame> frame = polder::wire::Decode(input);
  if (!frame.ok()) return 0;
  const std::string header = polder::wire::EncodeHeader(frame->schema_id, frame->message_indexes);
  absl::StatusOr<polder::wire::Frame> again = polder::wire::Decode(header);
  if (!again.ok() || again->schema_id != frame->schema_id ||
      again->message_indexes != frame->message_indexes) {
    std::abort();  // decode ∘ encode must be the identity on what decodes
  }
  return 0;
}
