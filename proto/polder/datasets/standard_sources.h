// The standard datasets' .proto sources as compiled into Polder's binaries, so that
// `polderctl federation bootstrap` registers exactly the schemas this build was made with.
// Linking this library also links the generated descriptors of every standard dataset.
#ifndef POLDER_PROTO_POLDER_DATASETS_STANDARD_SOURCES_H_
#define POLDER_PROTO_POLDER_DATASETS_STANDARD_SOURCES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace polder {
namespace datasets {

struct EmbeddedProto {
  const char* path;    // import path, e.g. "polder/datasets/mobility/v1/bike_count.proto"
  const char* source;  // the file's text
};

// In dependency order: a file's imports (other than google/protobuf/...) come before it.
const std::vector<EmbeddedProto>& StandardSources();

// One schema to register: a dataset or a record schema (subject = its message's full name,
// RecordNameStrategy) or a file the datasets import (subject = its import path, the reference
// name).
struct StandardSchema {
  std::string path;
  std::string source;
  std::string subject;
  std::string dataset_id;            // empty for an imported file and a record schema
  std::vector<std::string> imports;  // import paths of other standard files, in order
  bool record_schema = false;        // a record Polder writes (polder.views.v1.AggregateCell)
};

// The embedded sources with their subjects and imports, in dependency order. Fails if a file
// is not in the build's generated descriptors, declares more than one dataset, or imports a
// file that does not come before it.
absl::StatusOr<std::vector<StandardSchema>> StandardSchemas();

}  // namespace datasets
}  // namespace polder

#endif  // POLDER_PROTO_POLDER_DATASETS_STANDARD_SOURCES_H_
