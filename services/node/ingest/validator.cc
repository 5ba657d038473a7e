#include "services/node/ingest/validator.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/json/bounded.h"
#include "common/wire/confluent_frame.h"
#include "common/wire/record_headers.h"
#include "common/wire/utf8.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/wire_format_lite.h"

namespace polder {
namespace node {

namespace pb = ::google::protobuf;
using pb::internal::WireFormatLite;

namespace {

constexpr int kMaxDepth = 64;

std::string Join(const std::string& path, absl::string_view name) {
  return path.empty() ? std::string(name) : absl::StrCat(path, ".", name);
}

WireFormatLite::WireType ExpectedWireType(const pb::FieldDescriptor* f) {
  return WireFormatLite::WireTypeForFieldType(static_cast<WireFormatLite::FieldType>(f->type()));
}

absl::Status CheckEnum(const pb::FieldDescriptor* f, int64_t value, const std::string& path) {
  if (f->enum_type()->FindValueByNumber(static_cast<int>(value)) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", value, " is not a value of ", f->enum_type()->full_name()));
  }
  return absl::OkStatus();
}

// Where the wire walk leaves the record's metadata (top level only).
struct WireMetadata {
  const pb::FieldDescriptor* entity_id = nullptr;
  const pb::FieldDescriptor* event_time = nullptr;
  std::string entity;
  bool has_time = false;
  int64_t seconds = 0;
  int32_t nanos = 0;
};

absl::Status CheckMessage(const pb::Descriptor* type, absl::string_view data,
                          const std::string& path, int depth, WireMetadata* meta = nullptr);

// Reads seconds (1) and nanos (2) of a google.protobuf.Timestamp already checked by the walk;
// later occurrences win, as when parsing.
void ReadTimestamp(absl::string_view bytes, WireMetadata* meta) {
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                              static_cast<int>(bytes.size()));
  while (uint32_t tag = in.ReadTag()) {
    uint64_t v = 0;
    if (WireFormatLite::GetTagWireType(tag) != WireFormatLite::WIRETYPE_VARINT ||
        !in.ReadVarint64(&v))
      return;
    if (WireFormatLite::GetTagFieldNumber(tag) == 1) meta->seconds = static_cast<int64_t>(v);
    if (WireFormatLite::GetTagFieldNumber(tag) == 2) meta->nanos = static_cast<int32_t>(v);
  }
}

absl::Status CheckPacked(const pb::FieldDescriptor* f, const std::string& bytes,
                         const std::string& path) {
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                              static_cast<int>(bytes.size()));
  const WireFormatLite::WireType wt = ExpectedWireType(f);
  while (in.BytesUntilLimit() > 0) {
    bool ok = true;
    if (wt == WireFormatLite::WIRETYPE_VARINT) {
      uint64_t v;
      ok = in.ReadVarint64(&v);
      if (ok && f->type() == pb::FieldDescriptor::TYPE_ENUM) {
        absl::Status s = CheckEnum(f, static_cast<int32_t>(v), path);
        if (!s.ok()) return s;
      }
    } else if (wt == WireFormatLite::WIRETYPE_FIXED64) {
      uint64_t v;
      ok = in.ReadLittleEndian64(&v);
    } else if (wt == WireFormatLite::WIRETYPE_FIXED32) {
      uint32_t v;
      ok = in.ReadLittleEndian32(&v);
    } else {
      ok = false;
    }
    if (!ok) return absl::InvalidArgumentError(absl::StrCat(path, ": malformed packed values"));
  }
  return absl::OkStatus();
}

absl::Status CheckMessage(const pb::Descriptor* type, absl::string_view data,
                          const std::string& path, int depth, WireMetadata* meta) {
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": messages nested deeper than ", kMaxDepth));
  }
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(data.data()),
                              static_cast<int>(data.size()));
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) {
      if (in.BytesUntilLimit() > 0 || !in.ConsumedEntireMessage()) {
        return absl::InvalidArgumentError(absl::StrCat(path.empty() ? "" : absl::StrCat(path, ": "),
                                                       "malformed Protobuf data (bad tag) in ",
                                                       type->full_name()));
      }
      return absl::OkStatus();
    }
    const int number = static_cast<int>(WireFormatLite::GetTagFieldNumber(tag));
    const WireFormatLite::WireType wt = WireFormatLite::GetTagWireType(tag);
    const pb::FieldDescriptor* f = type->FindFieldByNumber(number);
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.empty() ? "" : absl::StrCat(path, ": "), "field number ", number,
                       " is not a field of ", type->full_name(), " (unknown fields are refused)"));
    }
    const std::string where = Join(path, f->name());
    const bool packable = f->is_repeated() &&
                          f->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING &&
                          f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE;
    const WireFormatLite::WireType expected = ExpectedWireType(f);
    if (wt != expected && !(packable && wt == WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": wire type ", static_cast<int>(wt),
                                                     " does not match the field's type ",
                                                     f->type_name()));
    }
    bool ok = true;
    switch (wt) {
      case WireFormatLite::WIRETYPE_VARINT: {
        uint64_t v;
        ok = in.ReadVarint64(&v);
        if (ok && f->type() == pb::FieldDescriptor::TYPE_ENUM) {
          absl::Status s = CheckEnum(f, static_cast<int32_t>(v), where);
          if (!s.ok()) return s;
        }
        break;
      }
      case WireFormatLite::WIRETYPE_FIXED64: {
        uint64_t v;
        ok = in.ReadLittleEndian64(&v);
        break;
      }
      case WireFormatLite::WIRETYPE_FIXED32: {
        uint32_t v;
        ok = in.ReadLittleEndian32(&v);
        break;
      }
      case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
        uint32_t len;
        std::string bytes;
        ok = in.ReadVarint32(&len) && in.ReadString(&bytes, static_cast<int>(len));
        if (!ok) break;
        if (f->type() == pb::FieldDescriptor::TYPE_STRING) {
          if (int64_t at = wire::InvalidUtf8At(bytes); at >= 0) {
            return absl::InvalidArgumentError(
                absl::StrCat(where, ": not valid UTF-8 (byte ", at, " of the string)"));
          }
          if (meta != nullptr && f == meta->entity_id) meta->entity = std::move(bytes);
        } else if (f->type() == pb::FieldDescriptor::TYPE_MESSAGE) {
          absl::Status s = CheckMessage(f->message_type(), bytes, where, depth + 1);
          if (!s.ok()) return s;
          if (meta != nullptr && f == meta->event_time) {
            meta->has_time = true;
            ReadTimestamp(bytes, meta);
          }
        } else if (packable) {
          absl::Status s = CheckPacked(f, bytes, where);
          if (!s.ok()) return s;
        }
        break;
      }
      default:
        return absl::InvalidArgumentError(absl::StrCat(where, ": groups are not supported"));
    }
    if (!ok) return absl::InvalidArgumentError(absl::StrCat(where, ": truncated Protobuf data"));
  }
}

std::string UuidFromBytes(const unsigned char b[16], int version) {
  unsigned char u[16];
  std::copy(b, b + 16, u);
  u[6] = static_cast<unsigned char>((u[6] & 0x0F) | (version << 4));
  u[8] = static_cast<unsigned char>((u[8] & 0x3F) | 0x80);
  std::string hex = absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(u), 16));
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                      hex.substr(16, 4), "-", hex.substr(20));
}

std::string MakeCeId(const std::string& seed, size_t index) {
  unsigned char b[SHA256_DIGEST_LENGTH];
  if (seed.empty()) {
    RAND_bytes(b, 16);
    return UuidFromBytes(b, 4);
  }
  std::string input = absl::StrCat(seed, "\n", index);
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), b);
  return UuidFromBytes(b, 5);  // name-based, as RFC 4122 version 5 (with SHA-256 here)
}

absl::Status CheckCeId(const std::string& id) {
  if (id.size() > 200)
    return absl::InvalidArgumentError(absl::StrCat("ce_id: ", id.size(), " bytes, over 200"));
  for (unsigned char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError("ce_id: only printable ASCII without spaces is allowed");
    }
  }
  return absl::OkStatus();
}

// protobuf's JSON errors name the place as "(parent.path) field: problem" or "(path): problem";
// Polder's errors say "parent.path.field: problem".
std::string JsonError(const std::string& message) {
  if (message.empty() || message[0] != '(') return message;
  const size_t close = message.find(')');
  const size_t colon = message.find(':', close == std::string::npos ? 0 : close);
  if (close == std::string::npos || colon == std::string::npos) return message;
  std::string path = message.substr(1, close - 1);
  std::string field(absl::StripAsciiWhitespace(message.substr(close + 1, colon - close - 1)));
  if (!field.empty()) path = path.empty() ? field : absl::StrCat(path, ".", field);
  std::string rest(absl::StripAsciiWhitespace(message.substr(colon + 1)));
  return path.empty() ? rest : absl::StrCat(path, ": ", rest);
}

}  // namespace

int64_t RecordBytes(const kafka::ProducerRecord& r) {
  int64_t n =
      static_cast<int64_t>(r.value.size()) + (r.key ? static_cast<int64_t>(r.key->size()) : 0);
  for (const kafka::Header& h : r.headers) n += static_cast<int64_t>(h.key.size() + h.value.size());
  return n;
}

absl::Status CheckBinary(const pb::Descriptor* type, absl::string_view data) {
  return CheckMessage(type, data, "", 0);
}

absl::StatusOr<std::vector<kafka::ProducerRecord>> BatchValidator::Validate(
    const IngestTarget& target, const std::vector<IncomingRecord>& records, absl::Time now,
    const std::string& ce_id_seed, absl::Time* newest_event_time) const {
  if (records.empty()) return absl::InvalidArgumentError("the batch has no records");
  if (static_cast<int64_t>(records.size()) > limits_.max_batch_records) {
    return absl::InvalidArgumentError(absl::StrCat("the batch has ", records.size(),
                                                   " records, over the limit of ",
                                                   limits_.max_batch_records));
  }
  const pb::Descriptor* type = target.layout.message;
  const std::string source =
      absl::StrCat("/peers/", target.peer_id, "/datasets/", target.dataset_id);
  const std::string data_schema = wire::DataSchemaUrn(target.federation, target.schema_id);
  const std::string header = wire::EncodeHeader(target.schema_id, target.message_indexes);
  const int64_t now_ms = absl::ToUnixMillis(now);
  std::vector<kafka::ProducerRecord> out;
  out.reserve(records.size());
  int64_t batch_bytes = 0;
  std::unique_ptr<pb::Message> message(target.schema->NewMessage(type));
  pb::util::JsonParseOptions json_options;
  json_options.ignore_unknown_fields = false;
  absl::Time last_time;
  absl::Time newest = absl::InfinitePast();
  std::string ce_time;
  for (size_t i = 0; i < records.size(); ++i) {
    const IncomingRecord& in = records[i];
    auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("record ", i, ": ", what));
    };
    message->Clear();
    std::string binary;
    absl::StatusOr<schema::RecordMetadata> meta = absl::UnknownError("not read");
    if (in.format == IncomingRecord::Format::kBinary) {
      // The wire walk checks everything a parse would and reads the metadata on the way, so
      // binary records are never materialised as messages.
      WireMetadata wire;
      wire.entity_id = target.layout.entity_id;
      wire.event_time = target.layout.event_time;
      if (absl::Status s = CheckMessage(type, in.data, "", 0, &wire); !s.ok())
        return bad(s.message());
      meta = schema::RecordMetadataFrom(target.layout, std::move(wire.entity), wire.has_time,
                                        wire.seconds, wire.nanos);
      binary = in.data;
    } else {
      if (int64_t at = wire::InvalidUtf8At(in.data); at >= 0) {
        return bad(absl::StrCat("not valid UTF-8 (byte ", at, " of the record's JSON)"));
      }
      // Protobuf's JSON parser recurses (bounded at 100, but stack-hungry); the dataset messages
      // nest a few levels, so anything deep is refused before it starts.
      if (absl::Status d = json_input::CheckDepth(in.data); !d.ok())
        return bad(absl::StrCat("JSON ", d.message()));
      pb::util::Status s = pb::util::JsonStringToMessage(in.data, message.get(), json_options);
      if (!s.ok()) return bad(JsonError(std::string(s.message())));
      if (!message->SerializeToString(&binary)) return bad("cannot be serialized");
      meta = schema::ReadRecordMetadata(target.layout, *message);
    }
    if (!meta.ok()) return bad(meta.status().message());
    if (meta->event_time < now - limits_.max_event_age ||
        meta->event_time > now + limits_.max_event_lead) {
      return bad(absl::StrCat(
          target.layout.event_time->name(), ": ",
          absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", meta->event_time, absl::UTCTimeZone()),
          " is outside the accepted window (", absl::FormatDuration(limits_.max_event_age),
          " before now to ", absl::FormatDuration(limits_.max_event_lead), " after)"));
    }
    std::string ce_id = in.ce_id;
    if (ce_id.empty()) {
      ce_id = MakeCeId(ce_id_seed, i);
    } else if (absl::Status s = CheckCeId(ce_id); !s.ok()) {
      return bad(s.message());
    }
    newest = std::max(newest, meta->event_time);
    // Records of a batch often share their event time: format it once.
    if (meta->event_time != last_time || ce_time.empty()) {
      last_time = meta->event_time;
      ce_time = absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", meta->event_time, absl::UTCTimeZone());
    }
    kafka::ProducerRecord r;
    r.topic = target.topic;
    r.key = meta->entity_id;
    r.value.reserve(header.size() + binary.size());
    r.value = header;
    r.value += binary;
    r.timestamp_ms = now_ms;
    r.headers = {{"ce_specversion", "1.0"},
                 {"ce_id", std::move(ce_id)},
                 {"ce_source", source},
                 {"ce_type", type->full_name()},
                 {"ce_time", ce_time},
                 {wire::kDataSchemaHeader, data_schema},
                 {wire::kContentTypeHeader, wire::kConfluentProtobufContentType}};
    const int64_t size = RecordBytes(r);
    if (size > limits_.max_record_bytes) {
      return bad(absl::StrCat(
          size, " bytes as a Kafka record (key, headers and value), over the limit of ",
          limits_.max_record_bytes));
    }
    batch_bytes += size;
    if (batch_bytes > limits_.max_batch_bytes) {
      return bad(absl::StrCat("the batch reaches ", batch_bytes, " bytes here, over the limit of ",
                              limits_.max_batch_bytes));
    }
    out.push_back(std::move(r));
  }
  if (newest_event_time != nullptr) *newest_event_time = newest;
  return out;
}

}  // namespace node
}  // namespace polder
