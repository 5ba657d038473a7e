#include "common/audit/audit_index.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json/bounded.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace audit {

using nlohmann::json;

std::string IndexRecord::Key() const {
  switch (kind) {
    case Kind::kStream:
      return absl::StrCat("stream/", stream_id);
    case Kind::kCheckpoint:
      return absl::StrCat("checkpoint/", stream_id, "/", sequence);
    case Kind::kEnd:
      return absl::StrCat("end/", stream_id);
    case Kind::kThrough:
      return "through";
  }
  return "";
}

std::string IndexRecord::Value() const {
  switch (kind) {
    case Kind::kStream:
      return json{{"source", source},
                  {"destination", destination},
                  {"direction", direction},
                  {"offset", offset}}
          .dump();
    case Kind::kCheckpoint:
      return json{{"offset", offset}, {"hash", hash}}.dump();
    case Kind::kEnd:
      return json{{"sequence", sequence}, {"hash", hash}}.dump();
    case Kind::kThrough:
      return json{{"offset", offset}}.dump();
  }
  return "";
}

IndexRecord StreamRecord(const std::string& stream_id, const std::string& source,
                         const std::string& destination, const std::string& direction,
                         int64_t offset) {
  IndexRecord r;
  r.kind = IndexRecord::Kind::kStream;
  r.stream_id = stream_id;
  r.source = source;
  r.destination = destination;
  r.direction = direction;
  r.offset = offset;
  return r;
}

IndexRecord CheckpointRecord(const std::string& stream_id, uint64_t sequence,
                             const std::string& hash, int64_t offset) {
  IndexRecord r;
  r.kind = IndexRecord::Kind::kCheckpoint;
  r.stream_id = stream_id;
  r.sequence = sequence;
  r.hash = hash;
  r.offset = offset;
  return r;
}

IndexRecord EndRecord(const std::string& stream_id, uint64_t sequence, const std::string& hash) {
  IndexRecord r;
  r.kind = IndexRecord::Kind::kEnd;
  r.stream_id = stream_id;
  r.sequence = sequence;
  r.hash = hash;
  return r;
}

IndexRecord ThroughRecord(int64_t offset) {
  IndexRecord r;
  r.kind = IndexRecord::Kind::kThrough;
  r.offset = offset;
  return r;
}

absl::StatusOr<IndexRecord> DecodeIndexRecord(const std::string& key, const std::string& value) {
  auto bad = [&](const std::string& why) {
    return absl::DataLossError(
        absl::StrCat("audit index record '", key.substr(0, 200), "': ", why));
  };
  json j = json_input::ParseOrDiscarded(value);
  if (!j.is_object()) return bad("the value is not a JSON object");
  auto integer = [&](const char* field, int64_t& out) -> bool {
    auto it = j.find(field);
    if (it == j.end() || !it->is_number_integer()) return false;
    out = it->get<int64_t>();
    return out >= 0;
  };
  auto text = [&](const char* field, std::string& out) -> bool {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  IndexRecord r;
  if (key == "through") {
    r.kind = IndexRecord::Kind::kThrough;
    if (!integer("offset", r.offset)) return bad("offset: a non-negative integer is required");
    return r;
  }
  if (absl::StartsWith(key, "stream/")) {
    r.kind = IndexRecord::Kind::kStream;
    r.stream_id = key.substr(7);
    if (r.stream_id.empty()) return bad("no stream id");
    if (!integer("offset", r.offset)) return bad("offset: a non-negative integer is required");
    if (!text("source", r.source) || !text("destination", r.destination) ||
        !text("direction", r.direction)) {
      return bad("source, destination and direction are required strings");
    }
    return r;
  }
  if (absl::StartsWith(key, "checkpoint/") || absl::StartsWith(key, "end/")) {
    const bool checkpoint = absl::StartsWith(key, "checkpoint/");
    r.kind = checkpoint ? IndexRecord::Kind::kCheckpoint : IndexRecord::Kind::kEnd;
    std::string rest = key.substr(checkpoint ? 11 : 4);
    if (checkpoint) {
      const size_t slash = rest.rfind('/');
      if (slash == std::string::npos || !absl::SimpleAtoi(rest.substr(slash + 1), &r.sequence) ||
          r.sequence == 0) {
        return bad("the key must be checkpoint/<stream>/<sequence>");
      }
      rest = rest.substr(0, slash);
      if (!integer("offset", r.offset)) return bad("offset: a non-negative integer is required");
    } else {
      int64_t sequence = 0;
      if (!integer("sequence", sequence) || sequence == 0)
        return bad("sequence: a positive integer is required");
      r.sequence = static_cast<uint64_t>(sequence);
    }
    r.stream_id = rest;
    if (r.stream_id.empty()) return bad("no stream id");
    if (!text("hash", r.hash) || r.hash.size() != 64)
      return bad("hash: 64 hex digits are required");
    return r;
  }
  return bad("unknown kind of index record");
}

}  // namespace audit
}  // namespace polder
