// The HTTP/1.1 request head, parsed line by line: the request line and header fields, with
// percent-decoded paths and query parameters. Pure functions (no I/O), shared by the server's
// event loop and the fuzz targets; every error is INVALID_ARGUMENT naming what is wrong.
#ifndef POLDER_COMMON_HTTP_REQUEST_HEAD_H_
#define POLDER_COMMON_HTTP_REQUEST_HEAD_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/http/https_server.h"

namespace polder {
namespace http {

// "METHOD /path?query HTTP/1.x": fills method, path (percent-decoded) and query (decoded, '+'
// as space) of `request` and sets `version`. An unsupported version is UNIMPLEMENTED.
absl::Status ParseRequestLine(absl::string_view line, HttpRequest* request, std::string* version);

// "Name: value": adds the field to `request` (the value trimmed). Folded lines are refused.
absl::Status ParseHeaderLine(absl::string_view line, HttpRequest* request);

// %XX decoding; `plus_is_space` for query strings. False on a malformed escape or a NUL.
bool PercentDecode(absl::string_view in, bool plus_is_space, std::string* out);

}  // namespace http
}  // namespace polder

#endif  // POLDER_COMMON_HTTP_REQUEST_HEAD_H_
