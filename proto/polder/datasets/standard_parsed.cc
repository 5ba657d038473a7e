#include "proto/polder/datasets/standard_parsed.h"

#include "absl/strings/str_cat.h"
#include "proto/polder/datasets/standard_sources.h"

namespace polder {
namespace datasets {

absl::StatusOr<std::map<std::string, std::shared_ptr<const schema::ParsedSchema>>>
ParseStandardSchemas() {
  absl::StatusOr<std::vector<StandardSchema>> standard = StandardSchemas();
  if (!standard.ok()) return standard.status();
  std::map<std::string, std::shared_ptr<const schema::ParsedSchema>> parsed;
  for (const StandardSchema& s : *standard) {
    std::vector<schema::ResolvedReference> refs;
    for (const std::string& i : s.imports) refs.push_back({i, i, 1, parsed[i]});
    schema::ParseOptions o;
    o.file_name = s.path;
    absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> p =
        schema::ParsedSchema::Parse(s.source, refs, o);
    if (!p.ok())
      return absl::Status(p.status().code(), absl::StrCat(s.path, ": ", p.status().message()));
    parsed[s.subject] = *p;
  }
  return parsed;
}

}  // namespace datasets
}  // namespace polder
