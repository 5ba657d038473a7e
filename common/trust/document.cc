#include "common/trust/document.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/trust/jcs.h"
#include "common/trust/keys.h"

namespace polder {
namespace trust {
namespace {

// An integer that int64_t holds exactly. nlohmann keeps integers above INT64_MAX as unsigned, and
// get<int64_t>() would wrap them into negative numbers.
bool IsInt64(const nlohmann::json& v) {
  return v.is_number_integer() &&
         (!v.is_number_unsigned() ||
          v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
}

}  // namespace

bool IsValidPeerId(absl::string_view id) {
  if (id.size() < 2 || id.size() > 63) return false;
  if (id[0] < 'a' || id[0] > 'z') return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

std::string FormatRfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text) {
  absl::Time t;
  std::string err;
  // absl::ParseTime also takes "infinite-future" and "infinite-past": never a time a document
  // may name (a directory or contract valid forever).
  if (!absl::ParseTime(absl::RFC3339_full, std::string(text), &t, &err) ||
      t == absl::InfiniteFuture() || t == absl::InfinitePast()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not an RFC 3339 time such as 2026-11-28T10:00:00Z"));
  }
  return t;
}

absl::StatusOr<std::string> DocumentHash(const nlohmann::json& value) {
  ASSIGN_OR_RETURN(std::string canonical, Canonicalize(value));
  return absl::StrCat("sha256:", Base64UrlEncode(Sha256(canonical)));
}

FieldReader::FieldReader(const nlohmann::json& object, std::string path)
    : object_(object), path_(std::move(path)) {
  if (!object_.is_object()) {
    status_ = absl::InvalidArgumentError(absl::StrCat(path_, ": expected a JSON object"));
  }
}

std::string FieldReader::PathOf(absl::string_view key) const {
  return absl::StrCat(path_, ".", key);
}

void FieldReader::Fail(absl::string_view key, absl::string_view message) {
  if (status_.ok()) status_ = absl::InvalidArgumentError(absl::StrCat(PathOf(key), ": ", message));
}

void FieldReader::Check(bool ok, absl::string_view key, absl::string_view message) {
  if (!ok) Fail(key, message);
}

const nlohmann::json* FieldReader::Find(absl::string_view key, bool required) {
  if (!status_.ok()) return nullptr;
  seen_.emplace_back(key);
  auto it = object_.find(std::string(key));
  if (it == object_.end() || it->is_null()) {
    if (required) Fail(key, "required field is missing");
    return nullptr;
  }
  return &*it;
}

void FieldReader::String(absl::string_view key, std::string* out, bool required) {
  const nlohmann::json* v = Find(key, required);
  if (v == nullptr) return;
  if (!v->is_string()) return Fail(key, "expected a string");
  *out = v->get<std::string>();
  if (required && out->empty()) Fail(key, "must not be empty");
}

void FieldReader::Int(absl::string_view key, int64_t* out, bool required) {
  const nlohmann::json* v = Find(key, required);
  if (v == nullptr) return;
  if (!v->is_number_integer()) return Fail(key, "expected an integer");
  if (!IsInt64(*v)) return Fail(key, "integer is out of range (above 2^63-1)");
  *out = v->get<int64_t>();
}

void FieldReader::Bool(absl::string_view key, bool* out, bool required) {
  const nlohmann::json* v = Find(key, required);
  if (v == nullptr) return;
  if (!v->is_boolean()) return Fail(key, "expected true or false");
  *out = v->get<bool>();
}

void FieldReader::Time(absl::string_view key, absl::Time* out, bool required) {
  std::string text;
  String(key, &text, required);
  if (text.empty() || !status_.ok()) return;
  absl::StatusOr<absl::Time> t = ParseRfc3339(text);
  if (!t.ok()) return Fail(key, t.status().message());
  *out = *t;
}

void FieldReader::Duration(absl::string_view key, absl::Duration* out, bool required) {
  std::string text;
  String(key, &text, required);
  if (text.empty() || !status_.ok()) return;
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration()) {
    return Fail(key, absl::StrCat("'", text, "' is not a duration such as '720h' or '30m'"));
  }
  *out = d;
}

void FieldReader::StringList(absl::string_view key, std::vector<std::string>* out, bool required) {
  const nlohmann::json* v = Find(key, required);
  if (v == nullptr) return;
  if (!v->is_array()) return Fail(key, "expected a list of strings");
  out->clear();
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string()) return Fail(absl::StrCat(key, "[", i, "]"), "expected a string");
    out->push_back((*v)[i].get<std::string>());
  }
}

void FieldReader::IntList(absl::string_view key, std::vector<int64_t>* out, bool required) {
  const nlohmann::json* v = Find(key, required);
  if (v == nullptr) return;
  if (!v->is_array()) return Fail(key, "expected a list of integers");
  out->clear();
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_number_integer()) {
      return Fail(absl::StrCat(key, "[", i, "]"), "expected an integer");
    }
    if (!IsInt64((*v)[i])) {
      return Fail(absl::StrCat(key, "[", i, "]"), "integer is out of range (above 2^63-1)");
    }
    out->push_back((*v)[i].get<int64_t>());
  }
}

const nlohmann::json* FieldReader::Array(absl::string_view key, bool required) {
  const nlohmann::json* v = Find(key, required);
  if (v == nullptr) return nullptr;
  if (!v->is_array()) {
    Fail(key, "expected a list");
    return nullptr;
  }
  return v;
}

const nlohmann::json* FieldReader::Object(absl::string_view key, bool required) {
  const nlohmann::json* v = Find(key, required);
  if (v == nullptr) return nullptr;
  if (!v->is_object()) {
    Fail(key, "expected an object");
    return nullptr;
  }
  return v;
}

void FieldReader::RejectUnknownKeys() {
  if (!status_.ok()) return;
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (std::find(seen_.begin(), seen_.end(), it.key()) == seen_.end()) {
      return Fail(it.key(), "unknown field");
    }
  }
}

}  // namespace trust
}  // namespace polder
