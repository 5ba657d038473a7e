#include "common/kafka/client_factory.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace polder {
namespace kafka {

absl::StatusOr<int64_t> ReadToEnd(ClientFactory& factory, const ConsumerOptions& options,
                                  const std::string& topic, int32_t partition, int64_t start,
                                  absl::Duration timeout,
                                  const std::function<absl::Status(const ConsumedRecord&)>& each) {
  const absl::Time deadline = absl::Now() + timeout;
  ConsumerOptions uncommitted = options;
  uncommitted.read_committed = false;
  absl::StatusOr<std::unique_ptr<Consumer>> marks_reader = factory.NewConsumer(uncommitted);
  if (!marks_reader.ok()) return marks_reader.status();
  absl::StatusOr<std::pair<int64_t, int64_t>> marks =
      (*marks_reader)->QueryWatermarks(topic, partition, timeout);
  if (!marks.ok()) return marks.status();
  const int64_t end = marks->second;
  int64_t position = std::max(start, marks->first);
  if (position >= end) return position;
  ConsumerOptions committed = options;
  committed.read_committed = true;
  absl::StatusOr<std::unique_ptr<Consumer>> reader = factory.NewConsumer(committed);
  if (!reader.ok()) return reader.status();
  if (absl::Status s = (*reader)->Assign({{topic, partition, position}}); !s.ok()) return s;
  while (position < end) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "reading ", topic, " [", partition, "] to offset ", end, " took longer than ",
          absl::FormatDuration(timeout), " (at ", position, ")"));
    }
    absl::StatusOr<std::vector<ConsumedRecord>> records =
        (*reader)->Poll(absl::Milliseconds(200), 10000);
    if (!records.ok()) return records.status();
    for (const ConsumedRecord& r : *records) {
      if (absl::Status s = each(r); !s.ok()) return s;
    }
    absl::StatusOr<int64_t> pos = (*reader)->Position(topic, partition);
    if (pos.ok() && *pos >= 0) position = *pos;
  }
  return position;
}

}  // namespace kafka
}  // namespace polder
