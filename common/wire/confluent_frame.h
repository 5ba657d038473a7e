// The Confluent wire format that Polder records use on Kafka (ARCHITECTURE §5):
//
//   0x00 | schema id (4 bytes, big-endian) | message indexes | Protobuf bytes
//
// Message indexes locate the record's message type in the schema's file: a zig-zag varint
// count, then that many zig-zag varint indexes (top-level message, then nested ones). The very
// common case [0] (the first top-level message) is written as the single byte 0x00 instead of
// count 1 + index 0. Any Confluent-compatible client reads and writes the same bytes.
#ifndef POLDER_COMMON_WIRE_CONFLUENT_FRAME_H_
#define POLDER_COMMON_WIRE_CONFLUENT_FRAME_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace polder {
namespace wire {

inline constexpr uint8_t kMagicByte = 0x00;
// More nesting than this is refused as corrupt (Protobuf itself allows deep nesting, but no
// schema Polder registers nests messages this deep).
inline constexpr int kMaxMessageIndexes = 32;

struct Frame {
  int32_t schema_id = 0;
  std::vector<int32_t> message_indexes;  // Never empty: [0] for the first top-level message.
  absl::string_view payload;             // Points into the decoded buffer.
};

// The frame header for `schema_id` and `message_indexes` (empty means [0]).
std::string EncodeHeader(int32_t schema_id, const std::vector<int32_t>& message_indexes);

// Header + payload.
std::string Encode(int32_t schema_id, const std::vector<int32_t>& message_indexes,
                   absl::string_view payload);

// Decodes a frame. INVALID_ARGUMENT with the byte offset and what was wrong: fewer than 6 bytes,
// a magic byte other than 0x00, a negative schema id, a truncated or overlong varint, a
// negative or huge index count, a negative index.
absl::StatusOr<Frame> Decode(absl::string_view frame);

// Zig-zag varint helpers (exposed for tests).
void AppendZigZagVarint(int64_t value, std::string* out);

}  // namespace wire
}  // namespace polder

#endif  // POLDER_COMMON_WIRE_CONFLUENT_FRAME_H_
