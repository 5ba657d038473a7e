// The reading loop of `polderctl tail`: every partition of a topic, from its beginning or its
// end, each record decoded into a JSON line (record_json.h) on `out`. A record that cannot be
// decoded is reported on `err` with its topic, partition and offset and skipped.
//
// Without `follow`, the loop stops at the end offsets observed at start (the last stable offsets,
// as the consumer reads read_committed), after `max_records`, or when `stop` is set. With
// `follow` it reads until `stop` is set (SIGINT) or `max_records` were printed.
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_TAIL_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_TAIL_H_

#include <atomic>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka/consumer.h"
#include "tools/polderctl/commands/schema_source.h"

namespace polder {
namespace polderctl {

// The existing consumer interface plus the two things tail needs that it lacks: the partitions
// of a topic, and the position reached in a partition (with read_committed a transaction's
// commit marker takes an offset but is never delivered, so the last record read is not enough
// to know the end was reached).
class TailConsumer : public kafka::Consumer {
 public:
  // NOT_FOUND if the topic does not exist.
  virtual absl::StatusOr<std::vector<int32_t>> Partitions(const std::string& topic,
                                                          absl::Duration timeout) = 0;
  // The next offset this consumer will read from the partition; negative if not known yet.
  virtual absl::StatusOr<int64_t> Position(const std::string& topic, int32_t partition) = 0;
};

struct TailOptions {
  std::string topic;
  bool from_end = false;    // --from end: only records written after start
  int64_t max_records = 0;  // 0: no limit
  bool follow = false;
  std::string federation;  // non-empty: refuse records whose ce_dataschema names another
  absl::Duration poll_timeout = absl::Milliseconds(500);
  absl::Duration request_timeout = absl::Seconds(10);
};

struct TailStats {
  int64_t printed = 0;
  int64_t skipped = 0;
};

// Reads as described above. An error of the consumer or of the schema endpoint (other than "no
// such schema id") ends the run; what was printed stays printed.
absl::StatusOr<TailStats> RunTail(TailConsumer* consumer, SchemaSource* schemas,
                                  const TailOptions& options, std::ostream& out, std::ostream& err,
                                  const std::atomic<bool>* stop);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_TAIL_H_
