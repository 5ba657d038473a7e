#include "common/kafka/errors.h"

#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace polder {
namespace kafka {
namespace {

struct Payload {
  std::string name;
  bool retriable = false;
  bool fatal = false;
  bool abort = false;
  bool fenced = false;
};

Payload ReadPayload(const absl::Status& status) {
  Payload p;
  auto cord = status.GetPayload(kKafkaErrorPayload);
  if (!cord.has_value()) return p;
  std::vector<std::string> parts = absl::StrSplit(std::string(*cord), ';');
  if (parts.empty()) return p;
  p.name = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i] == "retriable") p.retriable = true;
    if (parts[i] == "fatal") p.fatal = true;
    if (parts[i] == "abort") p.abort = true;
    if (parts[i] == "fenced") p.fenced = true;
  }
  return p;
}

}  // namespace

absl::Status MakeKafkaError(absl::StatusCode code, absl::string_view name,
                            absl::string_view context, absl::string_view description,
                            const KafkaErrorFlags& flags) {
  absl::Status s(code,
                 absl::StrCat(context, context.empty() ? "" : ": ", description, " (", name, ")"));
  std::string payload(name);
  if (flags.retriable) payload += ";retriable";
  if (flags.fatal) payload += ";fatal";
  if (flags.txn_requires_abort) payload += ";abort";
  if (flags.fenced) payload += ";fenced";
  s.SetPayload(kKafkaErrorPayload, absl::Cord(payload));
  return s;
}

std::string KafkaErrorName(const absl::Status& status) { return ReadPayload(status).name; }

bool IsFenced(const absl::Status& status) { return ReadPayload(status).fenced; }

bool IsFatal(const absl::Status& status) { return ReadPayload(status).fatal; }

bool RequiresAbort(const absl::Status& status) { return ReadPayload(status).abort; }

bool IsRetriable(const absl::Status& status) {
  Payload p = ReadPayload(status);
  if (!p.name.empty()) return p.retriable && !p.fatal;
  return status.code() == absl::StatusCode::kUnavailable;
}

}  // namespace kafka
}  // namespace polder
