#include "common/wire/confluent_frame.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace polder {
namespace wire {
namespace {

constexpr char kOmittedHint[] =
    " (if the producer omitted the message indexes, as @kafkajs/confluent-schema-registry does,"
    " Protobuf bytes stand here; such records cannot be decoded reliably)";

// Reads a zig-zag varint of at most 5 bytes (32-bit values) at `*pos`.
absl::StatusOr<int64_t> ReadZigZag(absl::string_view data, size_t* pos, const char* what) {
  uint64_t raw = 0;
  const size_t start = *pos;
  for (int shift = 0; shift < 35; shift += 7) {
    if (*pos >= data.size()) {
      return absl::InvalidArgumentError(absl::StrCat("Confluent frame truncated in the ", what,
                                                     " at byte ", start, " (frame is ", data.size(),
                                                     " bytes)"));
    }
    uint8_t b = static_cast<uint8_t>(data[(*pos)++]);
    raw |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      return static_cast<int64_t>(raw >> 1) ^ -static_cast<int64_t>(raw & 1);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("Confluent frame: the ", what, " at byte ", start,
                                                 " is a varint longer than 5 bytes"));
}

}  // namespace

void AppendZigZagVarint(int64_t value, std::string* out) {
  uint64_t v = (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

std::string EncodeHeader(int32_t schema_id, const std::vector<int32_t>& message_indexes) {
  std::string out;
  out.push_back(static_cast<char>(kMagicByte));
  uint32_t id = static_cast<uint32_t>(schema_id);
  out.push_back(static_cast<char>((id >> 24) & 0xff));
  out.push_back(static_cast<char>((id >> 16) & 0xff));
  out.push_back(static_cast<char>((id >> 8) & 0xff));
  out.push_back(static_cast<char>(id & 0xff));
  if (message_indexes.empty() || (message_indexes.size() == 1 && message_indexes[0] == 0)) {
    out.push_back('\0');  // [0]: the single byte 0x00.
    return out;
  }
  AppendZigZagVarint(static_cast<int64_t>(message_indexes.size()), &out);
  for (int32_t i : message_indexes) AppendZigZagVarint(i, &out);
  return out;
}

std::string Encode(int32_t schema_id, const std::vector<int32_t>& message_indexes,
                   absl::string_view payload) {
  std::string out = EncodeHeader(schema_id, message_indexes);
  out.append(payload.data(), payload.size());
  return out;
}

absl::StatusOr<Frame> Decode(absl::string_view data) {
  if (data.size() < 6) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Confluent frame is ", data.size(),
        " bytes; it needs at least 6 (magic byte, 4-byte schema id, message indexes)"));
  }
  if (static_cast<uint8_t>(data[0]) != kMagicByte) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Confluent frame starts with 0x%02x, not the magic byte 0x00 (not a schema-registry "
        "framed record%s)",
        static_cast<uint8_t>(data[0]), data[0] == '{' || data[0] == '[' ? "; plain JSON?" : ""));
  }
  Frame f;
  uint32_t id = (static_cast<uint32_t>(static_cast<uint8_t>(data[1])) << 24) |
                (static_cast<uint32_t>(static_cast<uint8_t>(data[2])) << 16) |
                (static_cast<uint32_t>(static_cast<uint8_t>(data[3])) << 8) |
                static_cast<uint32_t>(static_cast<uint8_t>(data[4]));
  f.schema_id = static_cast<int32_t>(id);
  if (f.schema_id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Confluent frame names a negative schema id ", f.schema_id));
  }
  size_t pos = 5;
  absl::StatusOr<int64_t> count = ReadZigZag(data, &pos, "message-index count");
  if (!count.ok()) return count.status();
  if (*count == 0) {
    f.message_indexes = {0};
  } else {
    if (*count < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Confluent frame: negative message-index count ", *count, " at byte 5", kOmittedHint));
    }
    if (*count > kMaxMessageIndexes) {
      return absl::InvalidArgumentError(absl::StrCat("Confluent frame: message-index count ",
                                                     *count, " at byte 5 exceeds ",
                                                     kMaxMessageIndexes, kOmittedHint));
    }
    for (int64_t i = 0; i < *count; ++i) {
      size_t at = pos;
      absl::StatusOr<int64_t> index = ReadZigZag(data, &pos, "message indexes");
      if (!index.ok())
        return absl::InvalidArgumentError(absl::StrCat(index.status().message(), kOmittedHint));
      if (*index < 0 || *index > INT32_MAX) {
        return absl::InvalidArgumentError(absl::StrCat("Confluent frame: message index ", *index,
                                                       " at byte ", at, " is negative or too large",
                                                       kOmittedHint));
      }
      f.message_indexes.push_back(static_cast<int32_t>(*index));
    }
  }
  f.payload = data.substr(pos);
  return f;
}

}  // namespace wire
}  // namespace polder
