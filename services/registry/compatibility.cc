#include "services/registry/compatibility.h"

#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace polder {
namespace registry {
namespace {

namespace pb = ::google::protobuf;

int WireType(const pb::FieldDescriptor* f) {
  if (f->is_packed()) return 2;
  switch (f->type()) {
    case pb::FieldDescriptor::TYPE_INT32:
    case pb::FieldDescriptor::TYPE_INT64:
    case pb::FieldDescriptor::TYPE_UINT32:
    case pb::FieldDescriptor::TYPE_UINT64:
    case pb::FieldDescriptor::TYPE_SINT32:
    case pb::FieldDescriptor::TYPE_SINT64:
    case pb::FieldDescriptor::TYPE_BOOL:
    case pb::FieldDescriptor::TYPE_ENUM:
      return 0;
    case pb::FieldDescriptor::TYPE_FIXED64:
    case pb::FieldDescriptor::TYPE_SFIXED64:
    case pb::FieldDescriptor::TYPE_DOUBLE:
      return 1;
    case pb::FieldDescriptor::TYPE_FIXED32:
    case pb::FieldDescriptor::TYPE_SFIXED32:
    case pb::FieldDescriptor::TYPE_FLOAT:
      return 5;
    case pb::FieldDescriptor::TYPE_GROUP:
      return 3;
    default:
      return 2;
  }
}

class Minimal : public CompatibilityChecker {
 public:
  std::vector<std::string> Check(const schema::ParsedSchema& candidate,
                                 const std::vector<std::shared_ptr<const schema::ParsedSchema>>& previous,
                                 const std::string& level) const override {
    std::vector<std::string> reasons;
    if (level == "NONE" || previous.empty()) return reasons;
    const bool transitive = absl::EndsWith(level, "_TRANSITIVE");
    size_t first = transitive ? 0 : previous.size() - 1;
    for (size_t i = first; i < previous.size(); ++i) Compare(candidate, *previous[i], &reasons);
    return reasons;
  }

 private:
  static void Compare(const schema::ParsedSchema& now, const schema::ParsedSchema& before,
                      std::vector<std::string>* reasons) {
    std::function<void(const pb::Descriptor*)> walk = [&](const pb::Descriptor* d) {
      const pb::Descriptor* old = before.file()->pool()->FindMessageTypeByName(d->full_name());
      if (old != nullptr) {
        for (int f = 0; f < d->field_count(); ++f) {
          const pb::FieldDescriptor* nf = d->field(f);
          const pb::FieldDescriptor* of = old->FindFieldByNumber(nf->number());
          if (of != nullptr && WireType(of) != WireType(nf)) {
            reasons->push_back(absl::StrCat("field ", d->full_name(), ".", nf->name(), " (number ",
                                            nf->number(), ") changed from ", of->type_name(), " to ",
                                            nf->type_name(), ", another wire type: old data would be misread"));
          }
        }
      }
      for (int n = 0; n < d->nested_type_count(); ++n) walk(d->nested_type(n));
    };
    for (int m = 0; m < now.file()->message_type_count(); ++m) walk(now.file()->message_type(m));
  }
};

}  // namespace

std::unique_ptr<CompatibilityChecker> MinimalCompatibilityChecker() { return std::make_unique<Minimal>(); }

}  // namespace registry
}  // namespace polder
