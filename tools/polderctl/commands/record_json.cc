#include "tools/polderctl/commands/record_json.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"
#include "common/wire/record_headers.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace polderctl {

using nlohmann::ordered_json;

namespace {

// The last value of header `name` (Kafka allows repeats; the last one wins, as in the CloudEvents
// Kafka binding's readers), or null.
ordered_json HeaderOrNull(const kafka::ConsumedRecord& record, const std::string& name) {
  ordered_json out = nullptr;
  for (const kafka::Header& h : record.headers) {
    if (h.key == name) out = h.value;
  }
  return out;
}

}  // namespace

bool IsRecordError(const absl::Status& status) {
  return absl::IsInvalidArgument(status) || absl::IsNotFound(status);
}

absl::StatusOr<std::string> RecordToJsonLine(const kafka::ConsumedRecord& record,
                                             SchemaSource* schemas, const std::string& federation) {
  if (record.tombstone) return absl::InvalidArgumentError("a tombstone (no value)");
  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(record.headers.size());
  for (const kafka::Header& h : record.headers) headers.emplace_back(h.key, h.value);
  ASSIGN_OR_RETURN(wire::DecodedRecord decoded,
                   wire::ReadRecordValue(headers, record.value, federation));
  const int32_t id = decoded.frame.schema_id;
  ASSIGN_OR_RETURN(std::shared_ptr<const schema::ParsedSchema> parsed, schemas->ById(id));
  absl::StatusOr<const google::protobuf::Descriptor*> type =
      parsed->MessageByIndexes(decoded.frame.message_indexes);
  if (!type.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("message indexes [", absl::StrJoin(decoded.frame.message_indexes, ","),
                     "] in schema ", id, ": ", type.status().message()));
  }
  std::unique_ptr<google::protobuf::Message> message = parsed->NewMessage(*type);
  const absl::string_view payload = decoded.frame.payload;
  if (!message->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::InvalidArgumentError(absl::StrCat("the value's Protobuf bytes do not parse as ",
                                                   (*type)->full_name(), " (schema ", id, ")"));
  }
  std::string value_json;
  google::protobuf::util::JsonPrintOptions print;
  google::protobuf::util::Status printed =
      google::protobuf::util::MessageToJsonString(*message, &value_json, print);
  if (!printed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        (*type)->full_name(), " has no proto3 JSON form: ", std::string(printed.message())));
  }
  ordered_json line = ordered_json::object();
  line["topic"] = record.topic;
  line["partition"] = record.partition;
  line["offset"] = record.offset;
  line["key"] = record.key.has_value() ? ordered_json(*record.key) : ordered_json(nullptr);
  line["ce_id"] = HeaderOrNull(record, "ce_id");
  line["ce_type"] = HeaderOrNull(record, "ce_type");
  line["ce_time"] = HeaderOrNull(record, "ce_time");
  line["ce_source"] = HeaderOrNull(record, "ce_source");
  line["schema_id"] = id;
  // Protobuf's JSON printer wrote it; should it ever not parse, the text is kept as a string.
  ordered_json value = ordered_json::parse(value_json, nullptr, /*allow_exceptions=*/false);
  line["value"] = value.is_discarded() ? ordered_json(value_json) : std::move(value);
  // Keys and headers are bytes on Kafka: invalid UTF-8 is replaced (U+FFFD) rather than failing.
  return line.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

}  // namespace polderctl
}  // namespace polder
