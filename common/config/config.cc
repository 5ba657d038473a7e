#include "common/config/config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace polder {
namespace config {
namespace {

std::string Shorten(const std::string& s) { return s.size() > 80 ? s.substr(0, 77) + "..." : s; }

// The value as written, for error messages.
std::string AsWritten(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "";
  if (node.IsScalar()) return Shorten(node.Scalar());
  if (node.IsSequence()) return "<a list>";
  if (node.IsMap()) return "<a mapping>";
  return "<?>";
}

const char* KindName(const YAML::Node& node) {
  if (node.IsNull()) return "empty";
  if (node.IsScalar()) return "a scalar";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "undefined";
}

}  // namespace

absl::StatusOr<int64_t> ParseBytes(absl::string_view text) {
  std::string t(absl::StripAsciiWhitespace(text));
  static const std::pair<const char*, int64_t> kUnits[] = {{"KiB", int64_t{1} << 10},
                                                           {"MiB", int64_t{1} << 20},
                                                           {"GiB", int64_t{1} << 30},
                                                           {"KB", 1000},
                                                           {"MB", 1000 * 1000},
                                                           {"GB", 1000 * 1000 * 1000},
                                                           {"B", 1}};
  int64_t multiplier = 1;
  for (const auto& [suffix, mult] : kUnits) {
    absl::string_view sv(t);
    if (sv.size() > strlen(suffix) && sv.substr(sv.size() - strlen(suffix)) == suffix) {
      t = std::string(absl::StripAsciiWhitespace(sv.substr(0, sv.size() - strlen(suffix))));
      multiplier = mult;
      break;
    }
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(t, &n) || n < 0) {
    return absl::InvalidArgumentError(
        "expected a size in bytes: a non-negative number, optionally with KiB, MiB, GiB, KB, "
        "MB or GB");
  }
  if (n > std::numeric_limits<int64_t>::max() / multiplier) {
    return absl::InvalidArgumentError("size too large");
  }
  return n * multiplier;
}

ObjectReader::ObjectReader(YAML::Node node, std::string path,
                           std::shared_ptr<internal::Errors> errors, bool present,
                           std::shared_ptr<std::vector<ObjectReader>> all)
    : node_(node),
      path_(std::move(path)),
      errors_(std::move(errors)),
      present_(present),
      used_(std::make_shared<std::set<std::string>>()),
      all_(std::move(all)) {}

std::string ObjectReader::KeyPath(absl::string_view key) const {
  return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", key);
}

std::string ObjectReader::Where(absl::string_view key, const YAML::Node& node) const {
  std::string where = KeyPath(key);
  if (node.IsDefined() && node.Mark().line >= 0) {
    absl::StrAppend(&where, " (line ", node.Mark().line + 1, ")");
  }
  return where;
}

bool ObjectReader::Has(absl::string_view key) const {
  if (!present_) return false;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return true;
  }
  return false;
}

YAML::Node ObjectReader::Lookup(absl::string_view key, Presence presence) {
  if (!present_) return YAML::Node(YAML::NodeType::Undefined);
  used_->insert(std::string(key));
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) {
      if (it->second.IsNull() && presence == kRequired) {
        errors_->messages.push_back(
            absl::StrCat(Where(key, it->first), ": required key has no value"));
        return YAML::Node(YAML::NodeType::Undefined);
      }
      return it->second;
    }
  }
  if (presence == kRequired) {
    std::string where = KeyPath(key);
    if (node_.Mark().line >= 0 && !path_.empty()) {
      absl::StrAppend(&where, " (in the mapping at line ", node_.Mark().line + 1, ")");
    }
    errors_->messages.push_back(absl::StrCat(where, ": required key is missing"));
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

void ObjectReader::Fail(absl::string_view key, const YAML::Node& node, absl::string_view expected) {
  errors_->messages.push_back(absl::StrCat(
      Where(key, node), ": ", expected, ", got ",
      node.IsScalar() ? absl::StrCat("'", AsWritten(node), "'") : std::string(KindName(node))));
}

void ObjectReader::Check(bool ok, absl::string_view key, absl::string_view message) {
  if (ok) return;
  YAML::Node node(YAML::NodeType::Undefined);
  if (present_) {
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == key) node = it->second;
    }
  }
  if (node.IsDefined()) {
    errors_->messages.push_back(
        absl::StrCat(Where(key, node), ": ", message, ", got '", AsWritten(node), "'"));
  } else {
    errors_->messages.push_back(absl::StrCat(KeyPath(key), ": ", message));
  }
}

void ObjectReader::Error(absl::string_view key, absl::string_view message) {
  errors_->messages.push_back(absl::StrCat(KeyPath(key), ": ", message));
}

void ObjectReader::Read(absl::string_view key, std::string* out, Presence presence) {
  YAML::Node n = Lookup(key, presence);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsScalar()) return Fail(key, n, "expected a string");
  *out = n.Scalar();
}

void ObjectReader::Read(absl::string_view key, bool* out, Presence presence) {
  YAML::Node n = Lookup(key, presence);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsScalar()) return Fail(key, n, "expected true or false");
  std::string v = absl::AsciiStrToLower(n.Scalar());
  if (v == "true") {
    *out = true;
  } else if (v == "false") {
    *out = false;
  } else {
    Fail(key, n, "expected true or false");
  }
}

void ObjectReader::Read(absl::string_view key, int64_t* out, Presence presence) {
  YAML::Node n = Lookup(key, presence);
  if (!n.IsDefined() || n.IsNull()) return;
  int64_t v = 0;
  if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v))
    return Fail(key, n, "expected an integer");
  *out = v;
}

void ObjectReader::Read(absl::string_view key, int32_t* out, Presence presence) {
  YAML::Node n = Lookup(key, presence);
  if (!n.IsDefined() || n.IsNull()) return;
  int32_t v = 0;
  if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v)) {
    return Fail(key, n, "expected an integer (32-bit)");
  }
  *out = v;
}

void ObjectReader::Read(absl::string_view key, uint16_t* out, Presence presence) {
  YAML::Node n = Lookup(key, presence);
  if (!n.IsDefined() || n.IsNull()) return;
  uint32_t v = 0;
  if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v) || v > 65535) {
    return Fail(key, n, "expected an integer from 0 to 65535");
  }
  *out = static_cast<uint16_t>(v);
}

void ObjectReader::Read(absl::string_view key, double* out, Presence presence) {
  YAML::Node n = Lookup(key, presence);
  if (!n.IsDefined() || n.IsNull()) return;
  double v = 0;
  if (!n.IsScalar() || !absl::SimpleAtod(n.Scalar(), &v)) return Fail(key, n, "expected a number");
  *out = v;
}

void ObjectReader::Read(absl::string_view key, absl::Duration* out, Presence presence) {
  YAML::Node n = Lookup(key, presence);
  if (!n.IsDefined() || n.IsNull()) return;
  absl::Duration d;
  if (!n.IsScalar() || !absl::ParseDuration(n.Scalar(), &d) || d < absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return Fail(key, n, "expected a duration such as '250ms', '5s' or '1h30m'");
  }
  *out = d;
}

void ObjectReader::Read(absl::string_view key, std::vector<std::string>* out, Presence presence) {
  YAML::Node n = Lookup(key, presence);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsSequence()) return Fail(key, n, "expected a list of strings");
  std::vector<std::string> values;
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) {
      return Fail(absl::StrCat(key, "[", i, "]"), n[i], "expected a string");
    }
    values.push_back(n[i].Scalar());
  }
  *out = std::move(values);
}

void ObjectReader::Read(absl::string_view key, std::map<std::string, std::string>* out,
                        Presence presence) {
  YAML::Node n = Lookup(key, presence);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsMap()) return Fail(key, n, "expected a mapping of names to strings");
  std::map<std::string, std::string> values;
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string k = it->first.Scalar();
    if (!it->second.IsScalar())
      return Fail(absl::StrCat(key, ".", k), it->second, "expected a string");
    if (!values.emplace(k, it->second.Scalar()).second) {
      return Fail(absl::StrCat(key, ".", k), it->second, "duplicate key");
    }
  }
  *out = std::move(values);
}

void ObjectReader::ReadBytes(absl::string_view key, int64_t* out, Presence presence) {
  YAML::Node n = Lookup(key, presence);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsScalar()) return Fail(key, n, "expected a size in bytes");
  absl::StatusOr<int64_t> v = ParseBytes(n.Scalar());
  if (!v.ok()) return Fail(key, n, v.status().message());
  *out = *v;
}

ObjectReader& ObjectReader::RequiredBytes(absl::string_view key, int64_t* out) {
  ReadBytes(key, out, kRequired);
  return *this;
}

ObjectReader& ObjectReader::OptionalBytes(absl::string_view key, int64_t* out) {
  ReadBytes(key, out, kOptional);
  return *this;
}

ObjectReader ObjectReader::Object(absl::string_view key, Presence presence) {
  YAML::Node n = Lookup(key, presence);
  bool ok = n.IsDefined() && n.IsMap();
  if (n.IsDefined() && !n.IsNull() && !n.IsMap()) Fail(key, n, "expected a mapping");
  if (n.IsDefined() && n.IsNull() && presence == kRequired) Fail(key, n, "expected a mapping");
  ObjectReader child(ok ? n : YAML::Node(YAML::NodeType::Map), KeyPath(key), errors_, ok, all_);
  if (ok) all_->push_back(child);
  return child;
}

void ObjectReader::ForEachObject(absl::string_view key, Presence presence,
                                 const std::function<void(ObjectReader&)>& fn) {
  YAML::Node n = Lookup(key, presence);
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsSequence()) return Fail(key, n, "expected a list of mappings");
  for (size_t i = 0; i < n.size(); ++i) {
    std::string item_key = absl::StrCat(key, "[", i, "]");
    if (!n[i].IsMap()) {
      Fail(item_key, n[i], "expected a mapping");
      continue;
    }
    ObjectReader child(n[i], KeyPath(item_key), errors_, true, all_);
    all_->push_back(child);
    fn(child);
  }
}

void ObjectReader::CheckKeys() {
  if (!present_) return;
  std::map<std::string, int> seen;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (!it->first.IsScalar()) {
      errors_->messages.push_back(
          absl::StrCat(path_.empty() ? "<top level>" : path_, ": keys must be plain strings"));
      continue;
    }
    const std::string& k = it->first.Scalar();
    if (++seen[k] == 2) {
      errors_->messages.push_back(absl::StrCat(Where(k, it->second), ": key given twice"));
    }
    if (used_->count(k) == 0) {
      errors_->messages.push_back(absl::StrCat(Where(k, it->second), ": unknown key"));
    }
  }
}

absl::StatusOr<Document> Document::FromFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file '", path, "' is not a regular file"));
  }
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read config file '", path, "': ", std::strerror(errno)));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return FromString(buf.str(), path);
}

absl::StatusOr<Document> Document::FromString(const std::string& text, const std::string& source) {
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": YAML syntax error at line ",
                                                   e.mark.line + 1, ", column ", e.mark.column + 1,
                                                   ": ", e.msg));
  }
  if (node.IsNull()) node = YAML::Node(YAML::NodeType::Map);  // An empty file: all defaults.
  if (!node.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": the top level must be a mapping of keys to values"));
  }
  auto errors = std::make_shared<internal::Errors>();
  errors->source = source;
  auto all = std::make_shared<std::vector<ObjectReader>>();
  ObjectReader root(node, "", errors, true, all);
  all->push_back(root);
  return Document(root);
}

absl::Status Document::Finish() {
  // Copy: CheckKeys may not add readers, but keep iteration independent of the vector anyway.
  std::vector<ObjectReader> readers = *root_.all_;
  for (ObjectReader& r : readers) r.CheckKeys();
  const auto& e = *root_.errors_;
  if (e.messages.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid configuration in ", e.source, " (", e.messages.size(), " error",
                   e.messages.size() == 1 ? "" : "s", "):\n  ", absl::StrJoin(e.messages, "\n  ")));
}

}  // namespace config
}  // namespace polder
