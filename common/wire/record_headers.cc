#include "common/wire/record_headers.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace polder {
namespace wire {

bool IsConfluentProtobuf(absl::string_view content_type) {
  absl::string_view media = content_type.substr(0, content_type.find(';'));
  media = absl::StripAsciiWhitespace(media);
  return absl::EqualsIgnoreCase(media, kConfluentProtobufContentType) ||
         absl::EqualsIgnoreCase(media, kLegacyContentType);
}

std::string DataSchemaUrn(absl::string_view federation, int32_t schema_id) {
  return absl::StrCat("urn:polder:", federation, ":schemas:", schema_id);
}

absl::StatusOr<DataSchema> ParseDataSchemaUrn(absl::string_view urn) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ce_dataschema '", urn, "': ", why, " (expected urn:polder:<federation>:schemas:<id>)"));
  };
  absl::string_view rest = urn;
  // RFC 8141: the "urn" scheme and the namespace id compare case-insensitively.
  if (rest.size() < 11 || !absl::EqualsIgnoreCase(rest.substr(0, 11), "urn:polder:")) {
    return bad("not a urn:polder: URN");
  }
  rest.remove_prefix(11);
  std::vector<absl::string_view> parts = absl::StrSplit(rest, ':');
  if (parts.size() != 3) return bad("wrong number of parts");
  if (parts[0].empty()) return bad("no federation");
  if (parts[1] != "schemas") return bad("not a schemas name");
  int32_t id = 0;
  if (!absl::SimpleAtoi(parts[2], &id) || id <= 0 || parts[2].front() == '+' ||
      parts[2].front() == '0') {
    return bad("the schema id is not a positive number");
  }
  return DataSchema{std::string(parts[0]), id};
}

absl::StatusOr<DecodedRecord> ReadRecordValue(
    const std::vector<std::pair<std::string, std::string>>& headers, absl::string_view value,
    absl::string_view federation) {
  const std::string* content_type = nullptr;
  const std::string* data_schema = nullptr;
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, kContentTypeHeader)) content_type = &v;
    if (k == kDataSchemaHeader) data_schema = &v;
  }
  if (content_type == nullptr)
    return absl::InvalidArgumentError("the record has no content-type header");
  if (!IsConfluentProtobuf(*content_type)) {
    return absl::InvalidArgumentError(absl::StrCat("content-type '", *content_type, "' is not ",
                                                   kConfluentProtobufContentType,
                                                   " (nor the older ", kLegacyContentType, ")"));
  }
  DecodedRecord out;
  out.legacy_content_type = absl::EqualsIgnoreCase(
      absl::StripAsciiWhitespace(
          absl::string_view(*content_type).substr(0, content_type->find(';'))),
      kLegacyContentType);
  absl::StatusOr<Frame> frame = Decode(value);
  if (!frame.ok())
    return absl::InvalidArgumentError(absl::StrCat("the value: ", frame.status().message()));
  out.frame = *frame;
  if (data_schema != nullptr) {
    absl::StatusOr<DataSchema> ds = ParseDataSchemaUrn(*data_schema);
    if (!ds.ok()) return ds.status();
    if (!federation.empty() && ds->federation != federation) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ce_dataschema names federation '", ds->federation, "', this is '", federation, "'"));
    }
    if (ds->schema_id != frame->schema_id) {
      return absl::InvalidArgumentError(absl::StrCat("ce_dataschema names schema ", ds->schema_id,
                                                     " but the value is framed with schema ",
                                                     frame->schema_id));
    }
    out.data_schema = *ds;
  }
  return out;
}

}  // namespace wire
}  // namespace polder
