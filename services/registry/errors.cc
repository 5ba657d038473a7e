#include "services/registry/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"

namespace polder {
namespace registry {
namespace {

constexpr char kPayload[] = "type.polder.nl/polder.registry.ErrorCode";

absl::StatusCode CanonicalFor(ErrorCode code) {
  int http = HttpStatusForErrorCode(code);
  switch (http) {
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return absl::StatusCode::kFailedPrecondition;
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    default:
      break;
  }
  if (code == kOperationTimeout) return absl::StatusCode::kDeadlineExceeded;
  if (code == kNotPrimary) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kInternal;
}

}  // namespace

int HttpStatusForErrorCode(int error_code) {
  if (error_code < 1000) return error_code;
  return error_code / 100;
}

absl::Status RegistryError(ErrorCode code, absl::string_view message) {
  absl::Status s(CanonicalFor(code), message);
  s.SetPayload(kPayload, absl::Cord(std::to_string(static_cast<int>(code))));
  return s;
}

bool HasRegistryErrorCode(const absl::Status& status) {
  return status.GetPayload(kPayload).has_value();
}

int ConfluentErrorCode(const absl::Status& status) {
  auto p = status.GetPayload(kPayload);
  int code = 0;
  if (p.has_value() && absl::SimpleAtoi(std::string(*p), &code)) return code;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return kInvalidSchema;
    case absl::StatusCode::kNotFound:
      return kSchemaNotFound;
    case absl::StatusCode::kUnauthenticated:
      return kUnauthorized;
    case absl::StatusCode::kPermissionDenied:
      return kForbidden;
    case absl::StatusCode::kDeadlineExceeded:
      return kOperationTimeout;
    case absl::StatusCode::kUnavailable:
      return kStoreError;
    default:
      return kStoreError;
  }
}

}  // namespace registry
}  // namespace polder
