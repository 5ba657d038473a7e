#include "services/registry/protobuf_compatibility.h"

#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace polder {
namespace registry {
namespace {

namespace pb = ::google::protobuf;

bool NumberReserved(const pb::Descriptor* d, int number) {
  for (int i = 0; i < d->reserved_range_count(); ++i) {
    const auto* r = d->reserved_range(i);
    if (number >= r->start && number < r->end) return true;
  }
  return false;
}

bool EnumNumberReserved(const pb::EnumDescriptor* e, int number) {
  for (int i = 0; i < e->reserved_range_count(); ++i) {
    const auto* r = e->reserved_range(i);
    if (number >= r->start && number <= r->end) return true;  // enum ranges are inclusive
  }
  return false;
}

std::string TypeName(const pb::FieldDescriptor* f) {
  if (f->type() == pb::FieldDescriptor::TYPE_MESSAGE || f->type() == pb::FieldDescriptor::TYPE_GROUP) {
    return f->message_type()->full_name();
  }
  if (f->type() == pb::FieldDescriptor::TYPE_ENUM) return f->enum_type()->full_name();
  return f->type_name();
}

std::string Where(const pb::FieldDescriptor* f) {
  return absl::StrCat(f->containing_type()->full_name(), ".", f->name(), " (", f->number(), ")");
}

std::string OneofOf(const pb::FieldDescriptor* f) {
  const pb::OneofDescriptor* o = f->real_containing_oneof();
  return o == nullptr ? "" : o->name();
}

std::string Path(const std::vector<int32_t>& p) { return absl::StrCat("[", absl::StrJoin(p, ", "), "]"); }

void CompareFields(const pb::Descriptor* r, const pb::Descriptor* w, std::vector<std::string>* out) {
  for (int i = 0; i < w->field_count(); ++i) {
    const pb::FieldDescriptor* wf = w->field(i);
    const pb::FieldDescriptor* rf = r->FindFieldByNumber(wf->number());
    if (rf == nullptr) {
      if (!NumberReserved(r, wf->number()) || !r->IsReservedName(wf->name())) {
        out->push_back(absl::StrCat("field ", Where(wf), " is missing on one side without its number and name "
                                    "reserved there"));
      }
      continue;
    }
    if (rf->name() != wf->name() || rf->json_name() != wf->json_name()) {
      out->push_back(absl::StrCat("field ", Where(wf), " is named '", rf->name(), "' (JSON '", rf->json_name(),
                                  "') on the other side; JSON uses names"));
    }
    if (rf->type() != wf->type() || TypeName(rf) != TypeName(wf)) {
      out->push_back(absl::StrCat("field ", Where(wf), " changed type between ", TypeName(wf), " and ",
                                  TypeName(rf)));
    }
    if (rf->is_repeated() != wf->is_repeated() || rf->is_map() != wf->is_map()) {
      out->push_back(absl::StrCat("field ", Where(wf), " changed between repeated and singular"));
    }
    if (OneofOf(rf) != OneofOf(wf)) {
      out->push_back(absl::StrCat("field ", Where(wf), " moved between oneofs ('", OneofOf(wf), "' and '",
                                  OneofOf(rf), "')"));
    }
  }
  // Reservations are kept (buf: RESERVED_MESSAGE_NO_DELETE): a dropped one invites reuse.
  for (int i = 0; i < w->reserved_range_count(); ++i) {
    const auto* wr = w->reserved_range(i);
    bool kept = false;
    for (int j = 0; j < r->reserved_range_count() && !kept; ++j) {
      kept = r->reserved_range(j)->start <= wr->start && wr->end <= r->reserved_range(j)->end;
    }
    if (!kept) {
      out->push_back(absl::StrCat("message ", w->full_name(), ": reserved numbers ", wr->start, " to ",
                                  wr->end - 1, " are not reserved on the other side"));
    }
  }
  for (int i = 0; i < w->reserved_name_count(); ++i) {
    if (!r->IsReservedName(w->reserved_name(i))) {
      out->push_back(absl::StrCat("message ", w->full_name(), ": reserved name '", w->reserved_name(i),
                                  "' is not reserved on the other side"));
    }
  }
  // Numbers and names one side reserves must not be in use on the other.
  for (int i = 0; i < r->field_count(); ++i) {
    const pb::FieldDescriptor* rf = r->field(i);
    if (NumberReserved(w, rf->number())) {
      out->push_back(absl::StrCat("field ", Where(rf), " uses a number the other side reserves"));
    }
    if (w->IsReservedName(rf->name())) {
      out->push_back(absl::StrCat("field ", Where(rf), " uses a name the other side reserves"));
    }
  }
}

void CompareEnums(const pb::EnumDescriptor* r, const pb::EnumDescriptor* w, std::vector<std::string>* out) {
  for (int i = 0; i < w->reserved_range_count(); ++i) {
    const auto* wr = w->reserved_range(i);
    bool kept = false;
    for (int j = 0; j < r->reserved_range_count() && !kept; ++j) {
      kept = r->reserved_range(j)->start <= wr->start && wr->end <= r->reserved_range(j)->end;
    }
    if (!kept) {
      out->push_back(absl::StrCat("enum ", w->full_name(), ": reserved numbers ", wr->start, " to ", wr->end,
                                  " are not reserved on the other side"));
    }
  }
  for (int i = 0; i < w->value_count(); ++i) {
    const pb::EnumValueDescriptor* wv = w->value(i);
    const pb::EnumValueDescriptor* rv = r->FindValueByNumber(wv->number());
    if (rv == nullptr) {
      if (!EnumNumberReserved(r, wv->number()) || !r->IsReservedName(wv->name())) {
        out->push_back(absl::StrCat("enum value ", w->full_name(), ".", wv->name(), " (", wv->number(),
                                    ") is missing on one side without its number and name reserved there"));
      }
      continue;
    }
    if (rv->name() != wv->name()) {
      out->push_back(absl::StrCat("enum value ", wv->number(), " of ", w->full_name(), " is named '", rv->name(),
                                  "' and '", wv->name(), "'; JSON uses names"));
    }
  }
}

}  // namespace

std::vector<std::string> CompareForReading(const schema::ParsedSchema& reader,
                                           const schema::ParsedSchema& writer) {
  std::vector<std::string> out;
  const pb::DescriptorPool* rpool = reader.file()->pool();
  // Every message of the writer's file: same full name at the same index path on the reader's.
  for (const std::string& name : writer.MessageNames()) {
    absl::StatusOr<std::vector<int32_t>> wpath = writer.IndexesOf(name);
    absl::StatusOr<std::vector<int32_t>> rpath = reader.IndexesOf(name);
    if (!rpath.ok()) {
      out.push_back(absl::StrCat("message ", name, " ", Path(*wpath),
                                 " is gone (package renamed or message removed): records naming it cannot be read"));
      continue;
    }
    if (*rpath != *wpath) {
      out.push_back(absl::StrCat("message ", name, " moved from index ", Path(*wpath), " to ", Path(*rpath),
                                 ": Confluent records name their type by index"));
    }
    const pb::Descriptor* w = writer.file()->pool()->FindMessageTypeByName(name);
    const pb::Descriptor* r = rpool->FindMessageTypeByName(name);
    if (w != nullptr && r != nullptr) {
      CompareFields(r, w, &out);
      for (int e = 0; e < w->enum_type_count(); ++e) {
        const pb::EnumDescriptor* re = r->FindEnumTypeByName(w->enum_type(e)->name());
        if (re != nullptr) CompareEnums(re, w->enum_type(e), &out);
      }
    }
  }
  for (int e = 0; e < writer.file()->enum_type_count(); ++e) {
    const pb::EnumDescriptor* we = writer.file()->enum_type(e);
    const pb::EnumDescriptor* re = rpool->FindEnumTypeByName(we->full_name());
    if (re != nullptr) CompareEnums(re, we, &out);
  }
  return out;
}

}  // namespace registry
}  // namespace polder
