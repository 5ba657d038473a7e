#include "common/json/bounded.h"

#include "absl/strings/str_cat.h"

namespace polder {
namespace json_input {

absl::Status CheckDepth(absl::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, whatever it is
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) {
          return absl::InvalidArgumentError(
              absl::StrCat("nests deeper than ", max_depth, " levels (at byte ", i, ")"));
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> Parse(absl::string_view text, int max_depth) {
  if (absl::Status s = CheckDepth(text, max_depth); !s.ok()) return s;
  nlohmann::json j =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) return j;
  // Again with exceptions, for the position of the error (only on the error path).
  try {
    nlohmann::json again = nlohmann::json::parse(text.begin(), text.end());
    (void)again;
  } catch (const nlohmann::json::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat("is not valid JSON (byte ", e.byte, ")"));
  }
  return absl::InvalidArgumentError("is not valid JSON");
}

nlohmann::json ParseOrDiscarded(absl::string_view text, int max_depth) {
  if (!CheckDepth(text, max_depth).ok()) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}

namespace {

const nlohmann::json* Member(const nlohmann::json& j, absl::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(std::string(key));
  return it == j.end() ? nullptr : &*it;
}

}  // namespace

std::string StringOr(const nlohmann::json& j, absl::string_view key, absl::string_view fallback) {
  const nlohmann::json* m = Member(j, key);
  if (m == nullptr || !m->is_string()) return std::string(fallback);
  return m->get_ref<const std::string&>();
}

int64_t IntOr(const nlohmann::json& j, absl::string_view key, int64_t fallback) {
  const nlohmann::json* m = Member(j, key);
  if (m == nullptr) return fallback;
  if (m->is_number_integer() && !m->is_number_unsigned()) return m->get<int64_t>();
  if (m->is_number_unsigned()) {
    const uint64_t u = m->get<uint64_t>();
    if (u <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(u);
  }
  return fallback;
}

uint64_t UintOr(const nlohmann::json& j, absl::string_view key, uint64_t fallback) {
  const nlohmann::json* m = Member(j, key);
  if (m == nullptr) return fallback;
  if (m->is_number_unsigned()) return m->get<uint64_t>();
  if (m->is_number_integer() && m->get<int64_t>() >= 0) {
    return static_cast<uint64_t>(m->get<int64_t>());
  }
  return fallback;
}

bool BoolOr(const nlohmann::json& j, absl::string_view key, bool fallback) {
  const nlohmann::json* m = Member(j, key);
  if (m == nullptr || !m->is_boolean()) return fallback;
  return m->get<bool>();
}

}  // namespace json_input
}  // namespace polder
