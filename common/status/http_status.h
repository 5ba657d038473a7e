// The one mapping from absl::Status to HTTP status codes, used by every REST adapter.
//
// ARCHITECTURE §7: INVALID_ARGUMENT → 400, UNAUTHENTICATED → 401, PERMISSION_DENIED → 403,
// RESOURCE_EXHAUSTED → 429, UNAVAILABLE → 503; the rest follow google.rpc.Code's documented
// HTTP equivalents (NOT_FOUND → 404, ALREADY_EXISTS and ABORTED → 409, FAILED_PRECONDITION and
// OUT_OF_RANGE → 400, DEADLINE_EXCEEDED → 504, UNIMPLEMENTED → 501, others → 500).
#ifndef POLDER_COMMON_STATUS_HTTP_STATUS_H_
#define POLDER_COMMON_STATUS_HTTP_STATUS_H_

#include "absl/status/status.h"

namespace polder {

// Returns the HTTP status code for `code` (200 for kOk).
int HttpStatusCode(absl::StatusCode code);

// Returns the absl::StatusCode a REST client reports for an HTTP response code: the inverse of
// HttpStatusCode where one code maps back (404 → kNotFound, 503 → kUnavailable, ...). 409 maps
// to kAborted (retry at a higher level), other 5xx to kInternal, other codes to kUnknown.
absl::StatusCode StatusCodeFromHttp(int http_code);

}  // namespace polder

#endif  // POLDER_COMMON_STATUS_HTTP_STATUS_H_
