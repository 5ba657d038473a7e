// Protobuf schemas as the registry stores them: parsed in-process from `.proto` text
// (protobuf's compiler library) or from a base64 FileDescriptorProto, imports resolved through
// references, a canonical form that decides identity, and dynamic messages.
//
//   ASSIGN_OR_RETURN(auto common,
//                    ParsedSchema::Parse(common_text, {}, {.file_name = "polder/common.proto"}));
//   ASSIGN_OR_RETURN(auto bikes, ParsedSchema::Parse(bikes_text,
//       {{"polder/common.proto", "polder.common.Location", 1, common}}));
//   bikes->CanonicalBytes();  // equal for equal schemas, whichever form was sent
//   ASSIGN_OR_RETURN(const Descriptor* d, bikes->MessageByIndexes({0}));
//   std::unique_ptr<Message> m = bikes->NewMessage(d);
//
// Canonical form: the file's FileDescriptorProto as the descriptor pool normalises it (no
// source info, no json_name, the root file's own name cleared), serialised deterministically,
// followed by each resolved reference (import name, subject, version) in order.
#ifndef POLDER_COMMON_SCHEMA_SCHEMA_H_
#define POLDER_COMMON_SCHEMA_SCHEMA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"

namespace polder {
namespace schema {

class ParsedSchema;

// An import of a schema, resolved to the registered schema it names.
struct ResolvedReference {
  std::string name;  // The import path as written in the importing file.
  std::string subject;
  int32_t version = 0;
  std::shared_ptr<const ParsedSchema> schema;
};

enum class InputFormat {
  kAuto,  // base64 FileDescriptorProto if it decodes to one, otherwise .proto text
  kProtoText,
  kSerialized,  // base64 of a FileDescriptorProto
};

struct ParseOptions {
  InputFormat format = InputFormat::kAuto;
  // The root file's name inside the pool (imports of other schemas must not collide with it).
  std::string file_name = "schema.proto";
  // Largest schema text accepted.
  size_t max_bytes = 1 << 20;
};

class ParsedSchema {
 public:
  // Parses `text`. INVALID_ARGUMENT with line:column for syntax errors, the unresolved import
  // for a missing reference, the element for semantic errors (undefined types, duplicate
  // field numbers...), or what is wrong with the base64/descriptor.
  static absl::StatusOr<std::shared_ptr<const ParsedSchema>> Parse(
      absl::string_view text, const std::vector<ResolvedReference>& references,
      const ParseOptions& options = {});

  const google::protobuf::FileDescriptor* file() const { return file_; }
  const std::vector<ResolvedReference>& references() const { return references_; }

  // The bytes that decide identity (see the file comment) and their SHA-256, hex.
  const std::string& CanonicalBytes() const { return canonical_; }
  std::string CanonicalHash() const;

  // `.proto` text of the file (normalised: as the descriptor prints it; computed once).
  const std::string& ToProtoText() const { return proto_text_; }
  // base64 of the FileDescriptorProto (no source info), with the file's name, as
  // Confluent's `format=serialized` returns it.
  std::string ToSerializedBase64() const;
  // The FileDescriptorProto itself.
  const google::protobuf::FileDescriptorProto& descriptor_proto() const { return proto_; }

  // The message at `indexes` ([i] top-level, [i, j] the j-th nested message of i...).
  // INVALID_ARGUMENT naming the index out of range (with a hint that the producer may have
  // omitted the indexes when the path is implausible).
  absl::StatusOr<const google::protobuf::Descriptor*> MessageByIndexes(
      const std::vector<int32_t>& indexes) const;
  // The indexes of a message by full name; NOT_FOUND if this file does not define it.
  absl::StatusOr<std::vector<int32_t>> IndexesOf(absl::string_view full_name) const;
  // Every message (top-level and nested) defined in this file, by full name.
  std::vector<std::string> MessageNames() const;

  // A new, empty dynamic message of type `descriptor` (which must come from this schema).
  std::unique_ptr<google::protobuf::Message> NewMessage(
      const google::protobuf::Descriptor* descriptor) const;

 private:
  ParsedSchema() = default;

  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
  std::unique_ptr<google::protobuf::DynamicMessageFactory> factory_;
  const google::protobuf::FileDescriptor* file_ = nullptr;
  google::protobuf::FileDescriptorProto proto_;
  std::vector<ResolvedReference> references_;
  std::string canonical_;
  std::string proto_text_;
};

}  // namespace schema
}  // namespace polder

#endif  // POLDER_COMMON_SCHEMA_SCHEMA_H_
