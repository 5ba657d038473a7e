#include "tools/polderctl/commands/publish_input.h"

#include <openssl/sha.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/json/bounded.h"
#include "common/status/status_macros.h"
#include "common/trust/keys.h"
#include "common/wire/utf8.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace polderctl {

using nlohmann::ordered_json;

namespace {

constexpr size_t kMaxReportedErrors = 20;

// Bad lines of one file, reported together.
class LineErrors {
 public:
  explicit LineErrors(std::string path) : path_(std::move(path)) {}
  void Add(int64_t line, absl::string_view what) {
    if (lines_.size() < kMaxReportedErrors)
      lines_.push_back(absl::StrCat(path_, ":", line, ": ", what));
    ++count_;
  }
  bool empty() const { return count_ == 0; }
  absl::Status ToStatus() const {
    std::string text = absl::StrJoin(lines_, "\n");
    if (count_ > lines_.size())
      absl::StrAppend(&text, "\n(", count_ - lines_.size(), " more bad line(s) not shown)");
    return absl::InvalidArgumentError(text);
  }

 private:
  std::string path_;
  std::vector<std::string> lines_;
  size_t count_ = 0;
};

struct CsvRow {
  int64_t line = 0;
  std::vector<std::string> fields;
};

bool IsIdentifier(absl::string_view s) {
  if (s.empty() || !(absl::ascii_isalpha(s[0]) || s[0] == '_')) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

// Splits CSV text into rows (see the header for the dialect). A row with an error is reported
// and left out; an unclosed quote ends the file.
std::vector<CsvRow> SplitCsv(absl::string_view text, LineErrors* errors) {
  std::vector<CsvRow> rows;
  size_t i = 0;
  const size_t n = text.size();
  int64_t line = 1;
  if (absl::StartsWith(text, "\xEF\xBB\xBF")) i = 3;
  auto at_line_end = [&](size_t k) {
    return k >= n || text[k] == '\n' || (text[k] == '\r' && k + 1 < n && text[k + 1] == '\n');
  };
  while (i < n) {
    if (at_line_end(i)) {  // a blank line
      i += text[i] == '\r' ? 2 : 1;
      ++line;
      continue;
    }
    CsvRow row;
    row.line = line;
    bool bad = false;
    while (true) {
      std::string field;
      if (i < n && text[i] == '"') {
        const int64_t opened = line;
        ++i;
        bool closed = false;
        while (i < n) {
          if (text[i] == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field.push_back('"');
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (text[i] == '\n') ++line;
          field.push_back(text[i++]);
        }
        if (!closed) {
          errors->Add(opened, "a quoted field is not closed (a \" is missing)");
          return rows;
        }
        if (i < n && text[i] != ',' && !at_line_end(i)) {
          if (!bad) {
            errors->Add(line,
                        "text after a quoted field's closing quote (a quote inside a quoted field "
                        "is \"\")");
          }
          bad = true;
          while (i < n && text[i] != ',' && !at_line_end(i)) ++i;
        }
      } else {
        while (i < n && text[i] != ',' && !at_line_end(i)) {
          if (text[i] == '"' && !bad) {
            errors->Add(
                line,
                "a quote inside an unquoted field (quote the whole field and double the quote)");
            bad = true;
          }
          field.push_back(text[i++]);
        }
      }
      row.fields.push_back(std::move(field));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < n) {
        i += text[i] == '\r' ? 2 : 1;
        ++line;
      }
      break;
    }
    if (!bad) rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

std::string ToJsonName(absl::string_view field_name) {
  std::string out;
  bool upper_next = false;
  for (char c : field_name) {
    if (c == '_') {
      upper_next = true;
    } else if (upper_next) {
      out.push_back(absl::ascii_toupper(c));
      upper_next = false;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), sizeof md));
}

absl::StatusOr<InputFormat> FormatFor(const std::string& path, const std::string& flag) {
  if (flag == "csv") return InputFormat::kCsv;
  if (flag == "ndjson") return InputFormat::kNdjson;
  if (!flag.empty() && flag != "auto") {
    return absl::InvalidArgumentError(
        absl::StrCat("--format '", flag, "': use csv, ndjson or auto"));
  }
  const std::string lower = absl::AsciiStrToLower(path);
  if (absl::EndsWith(lower, ".csv")) return InputFormat::kCsv;
  if (absl::EndsWith(lower, ".ndjson") || absl::EndsWith(lower, ".jsonl") ||
      absl::EndsWith(lower, ".json")) {
    return InputFormat::kNdjson;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("cannot tell the format of '", path,
                   "' by its extension: give --format csv or --format ndjson"));
}

absl::StatusOr<std::vector<InputRecord>> ParseNdjson(const std::string& path,
                                                     absl::string_view text) {
  LineErrors errors(path);
  std::vector<InputRecord> out;
  int64_t line = 0;
  if (absl::StartsWith(text, "\xEF\xBB\xBF")) text.remove_prefix(3);
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    ++line;
    absl::string_view trimmed = absl::StripAsciiWhitespace(l);
    if (trimmed.empty()) continue;
    absl::StatusOr<nlohmann::json> doc = json_input::Parse(trimmed);
    if (!doc.ok()) {
      errors.Add(line, doc.status().message());
    } else if (!doc->is_object()) {
      errors.Add(line, "not a JSON object (one record per line, e.g. {\"counterId\": \"...\"})");
    } else {
      out.push_back({line, std::string(trimmed)});
    }
  }
  if (!errors.empty()) return errors.ToStatus();
  return out;
}

absl::StatusOr<std::vector<InputRecord>> ParseCsv(const std::string& path, absl::string_view text) {
  LineErrors errors(path);
  std::vector<CsvRow> rows = SplitCsv(text, &errors);
  if (rows.empty()) {
    if (!errors.empty()) return errors.ToStatus();
    return absl::InvalidArgumentError(absl::StrCat(path, ": no header row"));
  }
  // The header: each column's path of JSON names.
  const CsvRow& header = rows[0];
  std::vector<std::vector<std::string>> columns;
  std::map<std::string, std::string> seen;  // joined JSON path → the column name that gave it
  bool header_ok = true;
  for (const std::string& raw : header.fields) {
    const std::string name(absl::StripAsciiWhitespace(raw));
    std::vector<std::string> segments = absl::StrSplit(name, '.');
    std::vector<std::string> json_path;
    bool ok = !name.empty();
    for (const std::string& s : segments) {
      ok = ok && IsIdentifier(s);
      json_path.push_back(ToJsonName(s));
    }
    if (!ok) {
      errors.Add(header.line,
                 absl::StrCat("column '", name, "' is not a field name or a dotted path such as ",
                              "location.latitude"));
      header_ok = false;
      continue;
    }
    const std::string joined = absl::StrJoin(json_path, ".");
    if (auto it = seen.find(joined); it != seen.end()) {
      errors.Add(header.line, absl::StrCat("columns '", it->second, "' and '", name,
                                           "' name the same field ", joined));
      header_ok = false;
      continue;
    }
    seen[joined] = name;
    columns.push_back(std::move(json_path));
  }
  // A path may not be both a value and a message (`location` and `location.latitude`).
  for (const auto& [a, name_a] : seen) {
    for (const auto& [b, name_b] : seen) {
      if (absl::StartsWith(b, absl::StrCat(a, "."))) {
        errors.Add(header.line, absl::StrCat("column '", name_a, "' is a field, but '", name_b,
                                             "' treats it as a message"));
        header_ok = false;
      }
    }
  }
  if (!header_ok) return errors.ToStatus();
  std::vector<InputRecord> out;
  for (size_t r = 1; r < rows.size(); ++r) {
    const CsvRow& row = rows[r];
    if (row.fields.size() != columns.size()) {
      errors.Add(row.line,
                 absl::StrCat(row.fields.size(), " field(s), the header has ", columns.size()));
      continue;
    }
    if (!std::all_of(row.fields.begin(), row.fields.end(), wire::IsUtf8)) {
      errors.Add(row.line, "not UTF-8 text (save the CSV as UTF-8)");
      continue;
    }
    ordered_json record = ordered_json::object();
    for (size_t c = 0; c < columns.size(); ++c) {
      if (row.fields[c].empty()) continue;
      ordered_json* node = &record;
      for (size_t s = 0; s + 1 < columns[c].size(); ++s) node = &(*node)[columns[c][s]];
      (*node)[columns[c].back()] = row.fields[c];
    }
    out.push_back({row.line, record.dump()});
  }
  if (!errors.empty()) return errors.ToStatus();
  return out;
}

absl::StatusOr<InputFile> ReadInputFile(const std::string& path, InputFormat format) {
  ASSIGN_OR_RETURN(std::string text, trust::ReadFileToString(path));
  InputFile file;
  file.path = path;
  file.sha256_hex = Sha256Hex(text);
  if (format == InputFormat::kCsv) {
    ASSIGN_OR_RETURN(file.records, ParseCsv(path, text));
  } else {
    ASSIGN_OR_RETURN(file.records, ParseNdjson(path, text));
  }
  if (file.records.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no records"));
  return file;
}

}  // namespace polderctl
}  // namespace polder
