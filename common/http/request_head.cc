#include "common/http/request_head.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace polder {
namespace http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(c) || absl::StrContains("!#$%&'*+-.^_`|~", c);
}

}  // namespace

bool PercentDecode(absl::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') return false;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    out->push_back(c);
  }
  return true;
}

absl::Status ParseRequestLine(absl::string_view line, HttpRequest* request, std::string* version) {
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3) return absl::InvalidArgumentError("malformed request line");
  const absl::string_view method = parts[0], target = parts[1];
  *version = std::string(parts[2]);
  if (*version != "HTTP/1.1" && *version != "HTTP/1.0") {
    return absl::UnimplementedError(
        absl::StrCat("HTTP version '", absl::CHexEscape(*version), "' is not supported"));
  }
  if (method.empty() || !std::all_of(method.begin(), method.end(), IsTokenChar)) {
    return absl::InvalidArgumentError("malformed method");
  }
  if (target.empty() || target[0] != '/') {
    return absl::InvalidArgumentError("the request target must be an absolute path");
  }
  request->method = std::string(method);
  const size_t q = target.find('?');
  if (!PercentDecode(target.substr(0, q), false, &request->path)) {
    return absl::InvalidArgumentError("malformed percent-encoding in the path");
  }
  if (q != absl::string_view::npos) {
    for (absl::string_view pair : absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
      const size_t eq = pair.find('=');
      std::string k, v;
      if (!PercentDecode(pair.substr(0, eq), true, &k) ||
          !PercentDecode(eq == absl::string_view::npos ? "" : pair.substr(eq + 1), true, &v)) {
        return absl::InvalidArgumentError("malformed percent-encoding in the query");
      }
      request->query.emplace(std::move(k), std::move(v));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseHeaderLine(absl::string_view line, HttpRequest* request) {
  if (line.empty()) return absl::InvalidArgumentError("empty header line");
  if (line[0] == ' ' || line[0] == '\t')
    return absl::InvalidArgumentError("folded header lines are not accepted");
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos || colon == 0)
    return absl::InvalidArgumentError("malformed header line");
  const absl::string_view name = line.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), IsTokenChar))
    return absl::InvalidArgumentError("malformed header name");
  request->headers.emplace(std::string(name),
                           std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  return absl::OkStatus();
}

}  // namespace http
}  // namespace polder
