// Helpers shared by Polder's signed JSON documents (directory, contracts, revocations): strict
// field readers that name the JSON path of what is wrong, RFC 3339 times, peer-id checks and
// document hashes.
#ifndef POLDER_COMMON_TRUST_DOCUMENT_H_
#define POLDER_COMMON_TRUST_DOCUMENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace trust {

// True for a peer id: lowercase slug [a-z][a-z0-9-]{1,62}.
bool IsValidPeerId(absl::string_view id);

// RFC 3339 in UTC with second precision ("2026-11-28T10:00:00Z").
std::string FormatRfc3339(absl::Time t);
absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text);

// "sha256:" + base64url(SHA-256(JCS(value))): the identity of a document.
absl::StatusOr<std::string> DocumentHash(const nlohmann::json& value);

// Reads the fields of one JSON object, collecting the first error with its path.
class FieldReader {
 public:
  FieldReader(const nlohmann::json& object, std::string path);
  // False (and an error recorded) unless the value is an object.
  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }

  void String(absl::string_view key, std::string* out, bool required = true);
  // Int and IntList record an error for integers outside int64_t and for non-integral numbers.
  void Int(absl::string_view key, int64_t* out, bool required = true);
  void Bool(absl::string_view key, bool* out, bool required = true);
  void Time(absl::string_view key, absl::Time* out, bool required = true);
  void Duration(absl::string_view key, absl::Duration* out, bool required = true);
  void StringList(absl::string_view key, std::vector<std::string>* out, bool required = true);
  void IntList(absl::string_view key, std::vector<int64_t>* out, bool required = true);
  // The array at `key` (nullptr if absent and not required); elements are read by the caller.
  const nlohmann::json* Array(absl::string_view key, bool required = true);
  // The object at `key`, likewise.
  const nlohmann::json* Object(absl::string_view key, bool required = true);
  // Records an error at `key` unless `ok`.
  void Check(bool ok, absl::string_view key, absl::string_view message);
  // Fails on keys other than those read (a misspelt field must not pass unnoticed).
  void RejectUnknownKeys();
  std::string PathOf(absl::string_view key) const;

 private:
  const nlohmann::json* Find(absl::string_view key, bool required);
  void Fail(absl::string_view key, absl::string_view message);

  const nlohmann::json& object_;
  std::string path_;
  std::vector<std::string> seen_;
  absl::Status status_;
};

}  // namespace trust
}  // namespace polder

#endif  // POLDER_COMMON_TRUST_DOCUMENT_H_
