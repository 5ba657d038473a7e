#include "services/registry/protobuf_compatibility.h"

#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/schema/record_layout.h"

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
  if (f->type() == pb::FieldDescriptor::TYPE_MESSAGE ||
      f->type() == pb::FieldDescriptor::TYPE_GROUP) {
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

std::string Path(const std::vector<int32_t>& p) {
  return absl::StrCat("[", absl::StrJoin(p, ", "), "]");
}

// The newer version keeps every reservation of the older one (buf: RESERVED_*_NO_DELETE): a
// dropped reservation invites reuse of a number or name with another meaning.
template <typename D>
void CheckReservationsKept(const D* older, const D* newer, absl::string_view what,
                           int range_end_adjust, std::vector<std::string>* out) {
  for (int i = 0; i < older->reserved_range_count(); ++i) {
    const auto* o = older->reserved_range(i);
    bool kept = false;
    for (int j = 0; j < newer->reserved_range_count() && !kept; ++j) {
      kept = newer->reserved_range(j)->start <= o->start && o->end <= newer->reserved_range(j)->end;
    }
    if (!kept) {
      out->push_back(absl::StrCat(what, " ", older->full_name(), ": reserved numbers ", o->start,
                                  " to ", o->end + range_end_adjust,
                                  " are no longer reserved in the newer version"));
    }
  }
  for (int i = 0; i < older->reserved_name_count(); ++i) {
    if (!newer->IsReservedName(older->reserved_name(i))) {
      out->push_back(absl::StrCat(what, " ", older->full_name(), ": reserved name '",
                                  older->reserved_name(i),
                                  "' is no longer reserved in the newer version"));
    }
  }
}

void CompareFields(const pb::Descriptor* r, const pb::Descriptor* w, ReaderIs reader_is,
                   std::vector<std::string>* out) {
  for (int i = 0; i < w->field_count(); ++i) {
    const pb::FieldDescriptor* wf = w->field(i);
    const pb::FieldDescriptor* rf = r->FindFieldByNumber(wf->number());
    if (rf == nullptr) {
      const bool number_reserved = NumberReserved(r, wf->number());
      const bool name_reserved = r->IsReservedName(wf->name());
      if (const pb::FieldDescriptor* same_name = r->FindFieldByName(wf->name());
          same_name != nullptr) {
        out->push_back(absl::StrCat("field ", Where(wf), " is numbered ", same_name->number(),
                                    " on the other side: renumbering changes the wire format"));
        continue;
      }
      if (reader_is == ReaderIs::kNewer) {
        // The field was deleted: old records still carry it.
        if (!number_reserved || !name_reserved) {
          out->push_back(absl::StrCat("field ", Where(wf), " was deleted without reserving its ",
                                      number_reserved ? "name"
                                      : name_reserved ? "number"
                                                      : "number and name"));
        }
      } else if (number_reserved != name_reserved) {
        // The field was added: older readers skip it, unless they hold a half reservation for it.
        out->push_back(absl::StrCat("field ", Where(wf), " takes a ",
                                    number_reserved ? "number" : "name",
                                    " the older version reserves for another field"));
      }
      continue;
    }
    if (rf->name() != wf->name() || rf->json_name() != wf->json_name()) {
      out->push_back(absl::StrCat("field ", Where(wf), " is named '", rf->name(), "' (JSON '",
                                  rf->json_name(), "') in the ",
                                  reader_is == ReaderIs::kNewer ? "newer" : "older",
                                  " version; JSON uses names"));
    }
    if (rf->type() != wf->type() || TypeName(rf) != TypeName(wf)) {
      out->push_back(absl::StrCat("field ", Where(wf), " changed type between ", TypeName(wf),
                                  " and ", TypeName(rf)));
    }
    if (rf->is_repeated() != wf->is_repeated() || rf->is_map() != wf->is_map()) {
      out->push_back(absl::StrCat("field ", Where(wf), " changed between repeated and singular"));
    }
    for (auto [option, role] : {std::pair<int, const char*>{schema::kEntityIdOption, "entity id"},
                                {schema::kEventTimeOption, "event time"},
                                {schema::kLocationOption, "location"}}) {
      if (schema::HasFieldOption(rf, option) != schema::HasFieldOption(wf, option)) {
        out->push_back(absl::StrCat(
            "field ", Where(wf), " is the record's ", role, " on one side only: ",
            "Kafka keys, event times or locations of the dataset would change meaning"));
      }
    }
    if (OneofOf(rf) != OneofOf(wf)) {
      out->push_back(absl::StrCat("field ", Where(wf), " moved between oneofs ('", OneofOf(wf),
                                  "' and '", OneofOf(rf), "')"));
    }
  }
  const pb::Descriptor* older = reader_is == ReaderIs::kOlder ? r : w;
  const pb::Descriptor* newer = reader_is == ReaderIs::kOlder ? w : r;
  CheckReservationsKept(older, newer, "message", -1, out);
}

void CompareEnums(const pb::EnumDescriptor* r, const pb::EnumDescriptor* w, ReaderIs reader_is,
                  std::vector<std::string>* out) {
  for (int i = 0; i < w->value_count(); ++i) {
    const pb::EnumValueDescriptor* wv = w->value(i);
    const pb::EnumValueDescriptor* rv = r->FindValueByNumber(wv->number());
    if (rv == nullptr) {
      const bool number_reserved = EnumNumberReserved(r, wv->number());
      const bool name_reserved = r->IsReservedName(wv->name());
      if (const pb::EnumValueDescriptor* same_name = r->FindValueByName(wv->name());
          same_name != nullptr) {
        out->push_back(absl::StrCat("enum value ", w->full_name(), ".", wv->name(), " (",
                                    wv->number(), ") is numbered ", same_name->number(),
                                    " on the other side: renumbering changes the wire format"));
        continue;
      }
      if (reader_is == ReaderIs::kNewer) {
        if (!number_reserved || !name_reserved) {
          out->push_back(absl::StrCat("enum value ", w->full_name(), ".", wv->name(), " (",
                                      wv->number(), ") was deleted without reserving its ",
                                      number_reserved ? "name"
                                      : name_reserved ? "number"
                                                      : "number and name"));
        }
      } else if (number_reserved != name_reserved) {
        out->push_back(absl::StrCat("enum value ", w->full_name(), ".", wv->name(), " (",
                                    wv->number(), ") takes a ", number_reserved ? "number" : "name",
                                    " the older version reserves for another value"));
      }
      continue;
    }
    if (rv->name() != wv->name()) {
      out->push_back(absl::StrCat("enum value ", wv->number(), " of ", w->full_name(),
                                  " is named '", rv->name(), "' and '", wv->name(),
                                  "'; JSON uses names"));
    }
  }
  const pb::EnumDescriptor* older = reader_is == ReaderIs::kOlder ? r : w;
  const pb::EnumDescriptor* newer = reader_is == ReaderIs::kOlder ? w : r;
  CheckReservationsKept(older, newer, "enum", 0, out);
}

}  // namespace

std::vector<std::string> CompareForReading(const schema::ParsedSchema& reader,
                                           const schema::ParsedSchema& writer, ReaderIs reader_is) {
  std::vector<std::string> out;
  const pb::DescriptorPool* rpool = reader.file()->pool();
  // Every message of the writer's file: same full name at the same index path on the reader's.
  for (const std::string& name : writer.MessageNames()) {
    absl::StatusOr<std::vector<int32_t>> wpath = writer.IndexesOf(name);
    absl::StatusOr<std::vector<int32_t>> rpath = reader.IndexesOf(name);
    if (!rpath.ok()) {
      // A message only the newer writer has was added: records of the subject never name it
      // unless a field refers to it, and fields are compared on their own.
      if (reader_is == ReaderIs::kOlder) continue;
      out.push_back(absl::StrCat(
          "message ", name, " ", Path(*wpath),
          " is gone (package renamed or message removed): records naming it cannot be read"));
      continue;
    }
    if (*rpath != *wpath) {
      out.push_back(absl::StrCat("message ", name, " moved from index ", Path(*wpath), " to ",
                                 Path(*rpath), ": Confluent records name their type by index"));
    }
    const pb::Descriptor* w = writer.file()->pool()->FindMessageTypeByName(name);
    const pb::Descriptor* r = rpool->FindMessageTypeByName(name);
    if (w != nullptr && r != nullptr) {
      CompareFields(r, w, reader_is, &out);
      for (int e = 0; e < w->enum_type_count(); ++e) {
        const pb::EnumDescriptor* re = r->FindEnumTypeByName(w->enum_type(e)->name());
        if (re != nullptr) CompareEnums(re, w->enum_type(e), reader_is, &out);
      }
    }
  }
  // Messages are never removed, whichever side reads: the subject names one, and records of
  // older versions keep naming the others by index.
  if (reader_is == ReaderIs::kOlder) {
    for (const std::string& name : reader.MessageNames()) {
      if (!writer.IndexesOf(name).ok()) {
        out.push_back(
            absl::StrCat("message ", name, " ", Path(*reader.IndexesOf(name)),
                         " is gone from the newer version (package renamed or message removed)"));
      }
    }
  }
  for (int e = 0; e < writer.file()->enum_type_count(); ++e) {
    const pb::EnumDescriptor* we = writer.file()->enum_type(e);
    const pb::EnumDescriptor* re = rpool->FindEnumTypeByName(we->full_name());
    if (re != nullptr) CompareEnums(re, we, reader_is, &out);
  }
  return out;
}

}  // namespace registry
}  // namespace polder
