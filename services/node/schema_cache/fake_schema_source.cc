#include "services/node/schema_cache/fake_schema_source.h"

#include "absl/strings/str_cat.h"
#include "proto/polder/datasets/standard_parsed.h"
#include "proto/polder/datasets/standard_sources.h"

namespace polder {
namespace node {

FakeSchemaSource::FakeSchemaSource() {
  auto standard = datasets::StandardSchemas();
  auto parsed = datasets::ParseStandardSchemas();
  if (!standard.ok() || !parsed.ok()) return;
  int32_t id = 0;
  for (const datasets::StandardSchema& s : *standard) {
    FetchedSchema f;
    f.id = ++id;
    f.subject = s.subject;
    f.version = 1;
    f.serialized = (*parsed)[s.subject]->ToSerializedBase64();
    for (const std::string& i : s.imports) f.references.push_back({i, i, 1});
    schemas_[f.id] = f;
    subjects_[s.subject] = f.id;
  }
}

absl::StatusOr<FetchedSchema> FakeSchemaSource::ById(int32_t id) {
  ++calls;
  if (down) return absl::UnavailableError("registry down");
  auto it = schemas_.find(id);
  if (it == schemas_.end()) return absl::NotFoundError(absl::StrCat("Schema ", id, " not found"));
  FetchedSchema f = it->second;
  f.subject.clear();
  f.version = 0;
  return f;
}

absl::StatusOr<FetchedSchema> FakeSchemaSource::Version(const std::string& subject,
                                                        int32_t version) {
  ++calls;
  if (down) return absl::UnavailableError("registry down");
  auto it = subjects_.find(subject);
  if (it == subjects_.end() || (version != -1 && version != 1))
    return absl::NotFoundError("Subject not found");
  return schemas_.at(it->second);
}

int32_t FakeSchemaSource::IdOf(const std::string& subject) const {
  auto it = subjects_.find(subject);
  return it == subjects_.end() ? 0 : it->second;
}

}  // namespace node
}  // namespace polder
