#include "common/trust/jcs.h"

#include <cstdint>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace polder {
namespace trust {
namespace {

constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

// Appends `s` as an RFC 8785 string: only '"', '\\' and control characters are escaped
// (\b \t \n \f \r, others as lowercase \u00xx); everything else is copied as UTF-8.
void AppendString(const std::string& s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\r':
        out->append("\\r");
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

bool ValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values beyond Unicode.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += len;
  }
  return true;
}

absl::Status Append(const nlohmann::json& v, const std::string& path, std::string* out) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      out->append("null");
      return absl::OkStatus();
    case nlohmann::json::value_t::boolean:
      out->append(v.get<bool>() ? "true" : "false");
      return absl::OkStatus();
    case nlohmann::json::value_t::number_integer: {
      int64_t n = v.get<int64_t>();
      if (n > kMaxSafeInteger || n < -kMaxSafeInteger) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": integer ", n, " is beyond ±(2^53-1) and cannot be signed exactly"));
      }
      absl::StrAppend(out, n);
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t n = v.get<uint64_t>();
      if (n > static_cast<uint64_t>(kMaxSafeInteger)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": integer ", n, " is beyond 2^53-1 and cannot be signed exactly"));
      }
      absl::StrAppend(out, n);
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::number_float:
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": non-integral numbers are not allowed in signed documents"));
    case nlohmann::json::value_t::string: {
      const std::string& s = v.get_ref<const std::string&>();
      if (!ValidUtf8(s)) return absl::InvalidArgumentError(absl::StrCat(path, ": invalid UTF-8"));
      AppendString(s, out);
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::array: {
      out->push_back('[');
      size_t i = 0;
      for (const auto& item : v) {
        if (i > 0) out->push_back(',');
        absl::Status s = Append(item, absl::StrCat(path, "[", i, "]"), out);
        if (!s.ok()) return s;
        ++i;
      }
      out->push_back(']');
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::object: {
      // nlohmann::json keeps object keys in a std::map: sorted by bytes, which for ASCII keys
      // is RFC 8785's UTF-16 code-unit order.
      out->push_back('{');
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        for (unsigned char c : it.key()) {
          if (c >= 0x80) {
            return absl::InvalidArgumentError(
                absl::StrCat(path, ": object key '", it.key(), "' is not ASCII"));
          }
        }
        if (!first) out->push_back(',');
        first = false;
        AppendString(it.key(), out);
        out->push_back(':');
        absl::Status s = Append(it.value(), absl::StrCat(path, ".", it.key()), out);
        if (!s.ok()) return s;
      }
      out->push_back('}');
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(path, ": unsupported JSON value"));
  }
}

}  // namespace

absl::StatusOr<std::string> Canonicalize(const nlohmann::json& value) {
  std::string out;
  absl::Status s = Append(value, "$", &out);
  if (!s.ok()) return s;
  return out;
}

}  // namespace trust
}  // namespace polder
