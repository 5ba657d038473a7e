#include "tools/polderctl/commands/tail.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "tools/polderctl/commands/record_json.h"

namespace polder {
namespace polderctl {

absl::StatusOr<TailStats> RunTail(TailConsumer* consumer, SchemaSource* schemas,
                                  const TailOptions& options, std::ostream& out, std::ostream& err,
                                  const std::atomic<bool>* stop) {
  TailStats stats;
  const std::string& topic = options.topic;
  ASSIGN_OR_RETURN(std::vector<int32_t> partitions,
                   consumer->Partitions(topic, options.request_timeout));
  if (partitions.empty())
    return absl::NotFoundError(absl::StrCat("topic '", topic, "' has no partitions"));
  // Per partition, the end observed now: where reading stops without --follow.
  std::map<int32_t, int64_t> end;
  std::vector<kafka::TopicPartitionOffset> assignment;
  for (int32_t p : partitions) {
    ASSIGN_OR_RETURN(auto marks, consumer->QueryWatermarks(topic, p, options.request_timeout));
    const int64_t start = options.from_end ? marks.second : kafka::kOffsetBeginning;
    if (!options.follow && (options.from_end || marks.first >= marks.second))
      continue;  // nothing to read
    end[p] = marks.second;
    assignment.push_back({topic, p, start});
  }
  if (assignment.empty()) return stats;
  RETURN_IF_ERROR(consumer->Assign(assignment));
  auto limit_reached = [&] {
    return options.max_records > 0 && stats.printed >= options.max_records;
  };
  while (!(stop != nullptr && stop->load()) && !limit_reached() &&
         (options.follow || !end.empty())) {
    ASSIGN_OR_RETURN(std::vector<kafka::ConsumedRecord> records,
                     consumer->Poll(options.poll_timeout, 500));
    for (const kafka::ConsumedRecord& r : records) {
      if (limit_reached()) break;
      if (!options.follow) {
        auto it = end.find(r.partition);
        // Written after start (or a partition already finished): not part of this read.
        if (it == end.end() || r.offset >= it->second) continue;
        if (r.offset + 1 >= it->second) end.erase(it);
      }
      absl::StatusOr<std::string> line = RecordToJsonLine(r, schemas, options.federation);
      if (line.ok()) {
        out << *line << "\n";
        ++stats.printed;
        continue;
      }
      if (!IsRecordError(line.status())) {
        out.flush();
        return Prepend(line.status(), absl::StrCat("topic ", r.topic, " partition ", r.partition,
                                                   " offset ", r.offset, ": "));
      }
      err << "polderctl tail: skipped record: topic " << r.topic << " partition " << r.partition
          << " offset " << r.offset << ": " << line.status().message() << "\n";
      ++stats.skipped;
    }
    out.flush();
    if (options.follow) continue;
    // Partitions whose position passed the end (past commit markers, which are never delivered).
    for (auto it = end.begin(); it != end.end();) {
      absl::StatusOr<int64_t> pos = consumer->Position(topic, it->first);
      if (pos.ok() && *pos >= it->second) {
        it = end.erase(it);
      } else {
        ++it;
      }
    }
  }
  return stats;
}

}  // namespace polderctl
}  // namespace polder
