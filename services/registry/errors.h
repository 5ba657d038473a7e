// Registry errors: an absl::Status carrying the Confluent Schema Registry error code, so the
// REST adapter answers exactly what Confluent clients expect and the gRPC adapter maps the
// canonical code.
#ifndef POLDER_SERVICES_REGISTRY_ERRORS_H_
#define POLDER_SERVICES_REGISTRY_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace polder {
namespace registry {

// Confluent's error codes (io.confluent.kafka.schemaregistry.rest.exceptions).
enum ErrorCode {
  kSubjectNotFound = 40401,
  kVersionNotFound = 40402,
  kSchemaNotFound = 40403,
  kSubjectSoftDeleted = 40404,
  kSubjectNotSoftDeleted = 40405,
  kVersionSoftDeleted = 40406,
  kVersionNotSoftDeleted = 40407,
  kSubjectCompatibilityNotConfigured = 40408,
  kSubjectModeNotConfigured = 40409,
  kIncompatibleSchema = 409,
  kInvalidSchema = 42201,
  kInvalidVersion = 42202,
  kInvalidCompatibilityLevel = 42203,
  kInvalidMode = 42204,
  kOperationNotPermitted = 42205,
  kReferenceExists = 42206,
  kInvalidSubject = 42208,
  kUnauthorized = 40101,
  kForbidden = 40301,
  kStoreError = 50001,
  kOperationTimeout = 50002,
  kNotPrimary = 50003,
};

// A status with `code`'s canonical code and the Confluent code in a payload.
absl::Status RegistryError(ErrorCode code, absl::string_view message);

// The Confluent error code of `status` (its payload, or one derived from the canonical code).
int ConfluentErrorCode(const absl::Status& status);
// True if `status` carries a registry error code (made by RegistryError).
bool HasRegistryErrorCode(const absl::Status& status);

// The HTTP status for a Confluent error code (40401 → 404, 42201 → 422, 409 → 409, ...).
int HttpStatusForErrorCode(int error_code);

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_ERRORS_H_
