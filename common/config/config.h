// YAML configuration → typed structs, with errors that name the offending key and value.
//
//   struct KafkaSection {
//     std::string bootstrap_servers;
//     absl::Duration request_timeout = absl::Seconds(10);  // default kept when the key is absent
//     int64_t max_record_bytes = 1 << 20;
//   };
//
//   absl::StatusOr<KafkaSection> Load(const std::string& path) {
//     ASSIGN_OR_RETURN(config::Document doc, config::Document::FromFile(path));
//     KafkaSection k;
//     config::ObjectReader kafka = doc.root().Object("kafka", config::kRequired);
//     kafka.Required("bootstrap_servers", &k.bootstrap_servers);
//     kafka.Optional("request_timeout", &k.request_timeout);
//     kafka.OptionalBytes("max_record_bytes", &k.max_record_bytes);
//     kafka.Check(k.max_record_bytes <= 4 << 20, "max_record_bytes", "must be at most 4MiB");
//     return doc.Finish(k);  // INVALID_ARGUMENT listing every error, or k
//   }
//
// Every error reads "<file>: <key.path> (line N): <what is wrong>, got '<value>'". All errors
// of a document are collected before Finish reports them; unknown and duplicate keys are errors
// too, so a misspelt key never silently leaves a default in place. Secrets are never values in
// a config: keys that hold secrets take file paths (see STYLE.md), so values may be quoted in
// errors.
//
// Scalars: std::string, bool (true/false), int32_t, int64_t, uint16_t, double, absl::Duration
// ("250ms", "5s", "1h30m"); sizes with OptionalBytes/RequiredBytes ("1048576", "512KiB",
// "1MiB", "1GiB"); std::vector<std::string> (a sequence of scalars);
// std::map<std::string, std::string> (a mapping of scalars).
#ifndef POLDER_COMMON_CONFIG_CONFIG_H_
#define POLDER_COMMON_CONFIG_CONFIG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "yaml-cpp/yaml.h"

namespace polder {
namespace config {

enum Presence { kOptional, kRequired };

namespace internal {
struct Errors {
  std::string source;
  std::vector<std::string> messages;
};
}  // namespace internal

// Reads one YAML mapping. Cheap to copy; all readers of a Document share its error list.
class ObjectReader {
 public:
  // The dotted path of this mapping ("" for the root).
  const std::string& path() const { return path_; }
  // False when the mapping is absent (an optional section) or not a mapping.
  bool present() const { return present_; }
  bool Has(absl::string_view key) const;

  template <typename T>
  ObjectReader& Required(absl::string_view key, T* out) {
    Read(key, out, kRequired);
    return *this;
  }
  template <typename T>
  ObjectReader& Optional(absl::string_view key, T* out) {
    Read(key, out, kOptional);
    return *this;
  }
  ObjectReader& RequiredBytes(absl::string_view key, int64_t* out);
  ObjectReader& OptionalBytes(absl::string_view key, int64_t* out);

  // A nested mapping. Absent and kOptional: a reader with present() false whose reads keep
  // defaults and report nothing.
  ObjectReader Object(absl::string_view key, Presence presence = kOptional);

  // A sequence of mappings, each decoded by `decode` into a new element of `out`.
  template <typename T>
  void ObjectList(absl::string_view key, std::vector<T>* out,
                  const std::function<void(ObjectReader&, T*)>& decode,
                  Presence presence = kOptional) {
    ForEachObject(key, presence, [&](ObjectReader& item) {
      T value{};
      decode(item, &value);
      out->push_back(std::move(value));
    });
  }

  // Records an error for `key` unless `ok`: "<path.key>: <message>, got '<value as written>'".
  void Check(bool ok, absl::string_view key, absl::string_view message);
  // Records an error for `key` (for checks that span several fields).
  void Error(absl::string_view key, absl::string_view message);

 private:
  friend class Document;
  ObjectReader(YAML::Node node, std::string path, std::shared_ptr<internal::Errors> errors,
               bool present, std::shared_ptr<std::vector<ObjectReader>> all);

  void ForEachObject(absl::string_view key, Presence presence,
                     const std::function<void(ObjectReader&)>& fn);
  // Finds `key`, marks it used; reports a missing required key. Null node if absent.
  YAML::Node Lookup(absl::string_view key, Presence presence);
  std::string KeyPath(absl::string_view key) const;
  std::string Where(absl::string_view key, const YAML::Node& node) const;
  void Fail(absl::string_view key, const YAML::Node& node, absl::string_view expected);
  // Unknown and duplicate keys of this mapping (called by Document::Finish).
  void CheckKeys();

  void Read(absl::string_view key, std::string* out, Presence presence);
  void Read(absl::string_view key, bool* out, Presence presence);
  void Read(absl::string_view key, int32_t* out, Presence presence);
  void Read(absl::string_view key, int64_t* out, Presence presence);
  void Read(absl::string_view key, uint16_t* out, Presence presence);
  void Read(absl::string_view key, double* out, Presence presence);
  void Read(absl::string_view key, absl::Duration* out, Presence presence);
  void Read(absl::string_view key, std::vector<std::string>* out, Presence presence);
  void Read(absl::string_view key, std::map<std::string, std::string>* out, Presence presence);
  void ReadBytes(absl::string_view key, int64_t* out, Presence presence);

  YAML::Node node_;
  std::string path_;
  std::shared_ptr<internal::Errors> errors_;
  bool present_;
  std::shared_ptr<std::set<std::string>> used_;
  // Every reader made from the document, so Finish can check each mapping's keys.
  std::shared_ptr<std::vector<ObjectReader>> all_;
};

// A parsed YAML document.
class Document {
 public:
  // Parses `path`. NOT_FOUND if it cannot be read; INVALID_ARGUMENT with line and column on a
  // YAML syntax error; INVALID_ARGUMENT if the top level is not a mapping.
  static absl::StatusOr<Document> FromFile(const std::string& path);
  // Parses `text`; `source` names it in errors.
  static absl::StatusOr<Document> FromString(const std::string& text,
                                             const std::string& source = "<config>");

  ObjectReader& root() { return root_; }

  // OK if no errors were recorded and every key was read; otherwise INVALID_ARGUMENT whose
  // message lists every error, one per line.
  absl::Status Finish();
  template <typename T>
  absl::StatusOr<T> Finish(T value) {
    absl::Status s = Finish();
    if (!s.ok()) return s;
    return value;
  }

 private:
  explicit Document(ObjectReader root) : root_(std::move(root)) {}
  ObjectReader root_;
};

// Parses a size: a plain number of bytes, or a number with KiB, MiB or GiB (also KB/MB/GB as
// powers of 1000). Errors name the accepted forms.
absl::StatusOr<int64_t> ParseBytes(absl::string_view text);

}  // namespace config
}  // namespace polder

#endif  // POLDER_COMMON_CONFIG_CONFIG_H_
