#include "common/schema/schema.h"

#include <functional>
#include <set>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"
#include "google/protobuf/compiler/parser.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/stubs/common.h"
#include "openssl/sha.h"

namespace polder {
namespace schema {
namespace {

// Every string field of `m` (recursively) is valid UTF-8; INVALID_ARGUMENT naming the field path
// otherwise. `.proto` string literals may carry escapes ("\377") that make invalid UTF-8 in
// string options, which Protobuf then refuses to serialize correctly.
absl::Status CheckStringsAreUtf8(const google::protobuf::Message& m, const std::string& path) {
  namespace pb = ::google::protobuf;
  const pb::Reflection* r = m.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    const std::string at = path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
    const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
    for (int i = 0; i < n; ++i) {
      if (f->type() == pb::FieldDescriptor::TYPE_STRING) {
        std::string scratch;
        const std::string& v = f->is_repeated() ? r->GetRepeatedStringReference(m, f, i, &scratch)
                                                : r->GetStringReference(m, f, &scratch);
        if (!pb::internal::IsStructurallyValidUTF8(v.data(), static_cast<int>(v.size()))) {
          return absl::InvalidArgumentError(absl::StrCat(
              "invalid schema: ", at, f->is_repeated() ? absl::StrCat("[", i, "]") : "",
              " is not valid UTF-8 (string literals in a schema must be UTF-8)"));
        }
      } else if (f->type() == pb::FieldDescriptor::TYPE_MESSAGE) {
        const pb::Message& sub =
            f->is_repeated() ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f);
        RETURN_IF_ERROR(
            CheckStringsAreUtf8(sub, f->is_repeated() ? absl::StrCat(at, "[", i, "]") : at));
      }
    }
  }
  return absl::OkStatus();
}

namespace pb = ::google::protobuf;

class TextErrors : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (errors.size() < 10)
      errors.push_back(absl::StrCat("line ", line + 1, ":", column + 1, ": ", message));
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}
  std::vector<std::string> errors;
};

class PoolErrors : public pb::DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name, const pb::Message*,
                ErrorLocation, const std::string& message) override {
    if (errors.size() < 10) {
      errors.push_back(element_name.empty() || element_name == filename
                           ? message
                           : absl::StrCat(element_name, ": ", message));
    }
  }
  std::vector<std::string> errors;
};

std::string Deterministic(const pb::Message& m) {
  std::string out;
  {
    pb::io::StringOutputStream sos(&out);
    pb::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&cos);
  }
  return out;
}

// protoc's default JSON name: lowerCamelCase of the field name.
std::string DefaultJsonName(const std::string& name) {
  std::string out;
  bool upper = false;
  for (char c : name) {
    if (c == '_') {
      upper = true;
    } else if (upper) {
      out.push_back(static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c));
      upper = false;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Clears json_name where it is the default (protoc fills it in, .proto text does not), so
// only a custom JSON name — which changes the JSON mapping — is part of the identity.
void ClearDefaultJsonNames(pb::DescriptorProto* m) {
  for (auto& f : *m->mutable_field()) {
    if (f.has_json_name() && f.json_name() == DefaultJsonName(f.name())) f.clear_json_name();
  }
  for (auto& f : *m->mutable_extension()) {
    if (f.has_json_name() && f.json_name() == DefaultJsonName(f.name())) f.clear_json_name();
  }
  for (auto& n : *m->mutable_nested_type()) ClearDefaultJsonNames(&n);
}

bool IsWellKnown(const std::string& name) {
  return name.rfind("google/protobuf/", 0) == 0 &&
         pb::DescriptorPool::generated_pool()->FindFileByName(name) != nullptr;
}

// Adds `file` and, first, everything it depends on to `pool` (each once).
absl::Status AddWithDependencies(const pb::FileDescriptor* file, pb::DescriptorPool* pool,
                                 std::set<std::string>* added) {
  if (added->count(file->name()) > 0) return absl::OkStatus();
  for (int i = 0; i < file->dependency_count(); ++i) {
    RETURN_IF_ERROR(AddWithDependencies(file->dependency(i), pool, added));
  }
  pb::FileDescriptorProto p;
  file->CopyTo(&p);
  if (pool->BuildFile(p) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot load dependency '", file->name(), "'"));
  }
  added->insert(file->name());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const ParsedSchema>> ParsedSchema::Parse(
    absl::string_view text, const std::vector<ResolvedReference>& references,
    const ParseOptions& options) {
  if (text.size() > options.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("schema is ", text.size(), " bytes; the limit is ", options.max_bytes));
  }
  if (text.empty()) return absl::InvalidArgumentError("schema is empty");

  pb::FileDescriptorProto proto;
  bool parsed_binary = false;
  if (options.format != InputFormat::kProtoText) {
    std::string bytes;
    bool b64 = absl::Base64Unescape(text, &bytes) || absl::WebSafeBase64Unescape(text, &bytes);
    if (b64 && proto.ParseFromString(bytes) &&
        (proto.message_type_size() > 0 || proto.enum_type_size() > 0 || !proto.package().empty() ||
         !proto.syntax().empty())) {
      parsed_binary = true;
    } else if (options.format == InputFormat::kSerialized) {
      return absl::InvalidArgumentError(b64 ? "schema is not a serialized FileDescriptorProto"
                                            : "schema is not valid base64 (format=serialized "
                                              "expects a base64 FileDescriptorProto)");
    }
  }
  if (!parsed_binary) {
    proto.Clear();
    std::string copy(text);
    pb::io::ArrayInputStream input(copy.data(), static_cast<int>(copy.size()));
    TextErrors errors;
    pb::io::Tokenizer tokenizer(&input, &errors);
    pb::compiler::Parser parser;
    parser.RecordErrorsTo(&errors);
    if (!parser.Parse(&tokenizer, &proto) || !errors.errors.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid .proto schema: ", absl::StrJoin(errors.errors, "; ")));
    }
  }
  proto.clear_source_code_info();
  proto.set_name(options.file_name);

  auto schema = std::shared_ptr<ParsedSchema>(new ParsedSchema());
  schema->pool_ = std::make_unique<pb::DescriptorPool>();
  schema->references_ = references;
  std::set<std::string> added;
  // Referenced schemas, under the names the importing file uses.
  std::set<std::string> provided;
  for (const ResolvedReference& ref : references) {
    if (ref.schema == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("reference '", ref.name, "' is not resolved"));
    }
    // Its own dependencies first, then the file itself renamed to the import name.
    const pb::FileDescriptor* f = ref.schema->file();
    for (int i = 0; i < f->dependency_count(); ++i) {
      RETURN_IF_ERROR(AddWithDependencies(f->dependency(i), schema->pool_.get(), &added));
    }
    if (added.count(ref.name) == 0) {
      pb::FileDescriptorProto p;
      f->CopyTo(&p);
      p.set_name(ref.name);
      PoolErrors errs;
      if (schema->pool_->BuildFileCollectingErrors(p, &errs) == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("reference '", ref.name, "' (", ref.subject, " version ", ref.version,
                         ") conflicts: ", absl::StrJoin(errs.errors, "; ")));
      }
      added.insert(ref.name);
    }
    provided.insert(ref.name);
  }
  for (const std::string& dep : proto.dependency()) {
    if (provided.count(dep) > 0 || added.count(dep) > 0) continue;
    if (IsWellKnown(dep)) {
      RETURN_IF_ERROR(AddWithDependencies(pb::DescriptorPool::generated_pool()->FindFileByName(dep),
                                          schema->pool_.get(), &added));
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "import \"", dep, "\" is not resolved: register it and pass it as a reference named '", dep,
        "'"));
  }
  PoolErrors errs;
  schema->file_ = schema->pool_->BuildFileCollectingErrors(proto, &errs);
  if (schema->file_ == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid schema: ", absl::StrJoin(errs.errors, "; ")));
  }
  schema->file_->CopyTo(&schema->proto_);
  // Options are interpreted while building, so check the built file.
  RETURN_IF_ERROR(CheckStringsAreUtf8(schema->proto_, ""));
  schema->factory_ = std::make_unique<pb::DynamicMessageFactory>(schema->pool_.get());
  schema->proto_text_ = schema->file_->DebugString();

  for (auto& m : *schema->proto_.mutable_message_type()) ClearDefaultJsonNames(&m);
  pb::FileDescriptorProto canonical = schema->proto_;
  canonical.clear_name();
  schema->canonical_ = Deterministic(canonical);
  for (const ResolvedReference& ref : references) {
    absl::StrAppend(&schema->canonical_, "\n@ref ", ref.name, " ", ref.subject, " ", ref.version);
  }
  return std::shared_ptr<const ParsedSchema>(std::move(schema));
}

std::string ParsedSchema::CanonicalHash() const {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(canonical_.data()), canonical_.size(), md);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(md), sizeof md));
}

std::string ParsedSchema::ToSerializedBase64() const {
  std::string out;
  absl::Base64Escape(Deterministic(proto_), &out);
  return out;
}

absl::StatusOr<const google::protobuf::Descriptor*> ParsedSchema::MessageByIndexes(
    const std::vector<int32_t>& indexes) const {
  if (indexes.empty()) return absl::InvalidArgumentError("empty message-index path");
  const pb::Descriptor* d = nullptr;
  for (size_t i = 0; i < indexes.size(); ++i) {
    int count = i == 0 ? file_->message_type_count() : d->nested_type_count();
    if (indexes[i] < 0 || indexes[i] >= count) {
      std::string where = i == 0
                              ? absl::StrCat("the schema has ", count, " top-level message(s)")
                              : absl::StrCat(d->full_name(), " has ", count, " nested message(s)");
      return absl::InvalidArgumentError(absl::StrCat(
          "message index path [", absl::StrJoin(indexes, ", "), "] is out of range at position ", i,
          ": ", where,
          "; if the producer omitted the message indexes (e.g. @kafkajs/confluent-schema-registry),"
          " its records cannot be decoded"));
    }
    d = i == 0 ? file_->message_type(indexes[i]) : d->nested_type(indexes[i]);
  }
  return d;
}

absl::StatusOr<std::vector<int32_t>> ParsedSchema::IndexesOf(absl::string_view full_name) const {
  std::vector<int32_t> path;
  std::function<bool(const pb::Descriptor*)> walk = [&](const pb::Descriptor* d) {
    if (d->full_name() == full_name) return true;
    for (int j = 0; j < d->nested_type_count(); ++j) {
      path.push_back(j);
      if (walk(d->nested_type(j))) return true;
      path.pop_back();
    }
    return false;
  };
  for (int i = 0; i < file_->message_type_count(); ++i) {
    path = {i};
    if (walk(file_->message_type(i))) return path;
  }
  return absl::NotFoundError(
      absl::StrCat("message '", full_name, "' is not defined in this schema"));
}

std::vector<std::string> ParsedSchema::MessageNames() const {
  std::vector<std::string> out;
  std::function<void(const pb::Descriptor*)> walk = [&](const pb::Descriptor* d) {
    out.push_back(d->full_name());
    for (int j = 0; j < d->nested_type_count(); ++j) walk(d->nested_type(j));
  };
  for (int i = 0; i < file_->message_type_count(); ++i) walk(file_->message_type(i));
  return out;
}

std::unique_ptr<google::protobuf::Message> ParsedSchema::NewMessage(
    const google::protobuf::Descriptor* descriptor) const {
  const pb::Message* prototype = factory_->GetPrototype(descriptor);
  return prototype == nullptr ? nullptr : std::unique_ptr<pb::Message>(prototype->New());
}

}  // namespace schema
}  // namespace polder
