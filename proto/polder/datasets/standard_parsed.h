// Tests: the standard datasets parsed at run time with Polder's in-process parser, each import
// resolved as a reference — as a node gets them from the registry.
#ifndef POLDER_PROTO_POLDER_DATASETS_STANDARD_PARSED_H_
#define POLDER_PROTO_POLDER_DATASETS_STANDARD_PARSED_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/schema/schema.h"

namespace polder {
namespace datasets {

// subject → parsed schema, for every standard file (imports under their import path).
absl::StatusOr<std::map<std::string, std::shared_ptr<const schema::ParsedSchema>>>
ParseStandardSchemas();

}  // namespace datasets
}  // namespace polder

#endif  // POLDER_PROTO_POLDER_DATASETS_STANDARD_PARSED_H_
