// Input files of `polderctl publish`, read into records (each with the line it starts on):
//
// NDJSON  one proto3-JSON object per line, sent as written; blank lines are skipped.
// CSV     RFC 4180: comma-separated, fields optionally in double quotes ("" is a quote inside
//         one; a quoted field may span lines), LF or CRLF line ends, an optional UTF-8 BOM.
//         The first row names the columns; every later row is one record, turned into a
//         proto3-JSON object:
//           - a column name is a field name, or a dotted path into nested messages:
//             `location.latitude` fills {"location": {"latitude": ...}};
//           - each name segment is converted to the field's JSON name as protoc derives it
//             (snake_case → lowerCamelCase: `counter_id` → `counterId`; a name already in
//             lowerCamelCase stays as it is);
//           - every non-empty cell becomes a JSON string: proto3 JSON accepts strings for
//             integers, floating point numbers, enums (by name), bytes (base64), Timestamps and
//             Durations, and Protobuf's parser (which the node uses) also for bools
//             ("true"/"false");
//           - an empty cell leaves the field unset;
//           - repeated fields and maps cannot be expressed in CSV (use NDJSON).
//         A row with another number of fields than the header, an unclosed quote, a quote
//         inside an unquoted field, or a header with an empty, invalid or duplicate name (or a
//         name that is both a field and a message: `location` and `location.latitude`) is an
//         error naming file:line.
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_PUBLISH_INPUT_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_PUBLISH_INPUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace polder {
namespace polderctl {

enum class InputFormat { kNdjson, kCsv };

// `flag` "csv" or "ndjson"; "auto" (or empty) decides by the file's extension: .csv is CSV,
// .ndjson, .jsonl and .json are NDJSON; anything else is INVALID_ARGUMENT asking for --format.
absl::StatusOr<InputFormat> FormatFor(const std::string& path, const std::string& flag);

// One record of an input file: the line it starts on (1-based) and its proto3 JSON.
struct InputRecord {
  int64_t line = 0;
  std::string json;
};

struct InputFile {
  std::string path;
  std::string sha256_hex;  // of the file's bytes
  std::vector<InputRecord> records;
};

// Parses `text` (the contents of `path`). Every bad line is an INVALID_ARGUMENT line
// "path:line: what is wrong"; up to 20 are reported together, one per line of the message.
absl::StatusOr<std::vector<InputRecord>> ParseNdjson(const std::string& path,
                                                     absl::string_view text);
absl::StatusOr<std::vector<InputRecord>> ParseCsv(const std::string& path, absl::string_view text);

// Reads and parses a file. INVALID_ARGUMENT for an empty file (no records).
absl::StatusOr<InputFile> ReadInputFile(const std::string& path, InputFormat format);

// protoc's JSON name of a field: underscores dropped, the letter after each one upper-cased.
std::string ToJsonName(absl::string_view field_name);

// SHA-256 of `data`, lower-case hex.
std::string Sha256Hex(absl::string_view data);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_PUBLISH_INPUT_H_
