// An exactly-once checker in the spirit of Jepsen's Kafka checker, for the broker-failure tests
// (ADR 0020 §2): writers record every record they were told is acknowledged (in acknowledgement
// order) and every record they sent without an answer or with an error; after the run a reader
// reads the topic to its end (read_committed) and the checker reports
//   lost          acknowledged, never read
//   duplicated    read more than once (acknowledged or not)
//   reordered     per key, read in another order than acknowledged (inversions)
//   phantom       read, but never sent
//   unacknowledged_present  sent without an acknowledgement and read once: allowed (the answer
//                 was lost or ambiguous; a retry with the same idempotency key stores it once)
//
//   Checker checker;
//   checker.Acknowledged("w1-17", "counter-3");   checker.Unacknowledged("w1-18");
//   checker.Read(partition, "w1-17", "counter-3");  ...
//   CheckerReport r = checker.Report();   EXPECT_TRUE(r.ok()) << r.Summary();
#ifndef POLDER_TESTS_KAFKA_CHECKER_H_
#define POLDER_TESTS_KAFKA_CHECKER_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace polder {
namespace checker {

struct CheckerReport {
  int64_t acknowledged = 0, read = 0, lost = 0, duplicated = 0, reordered = 0, phantom = 0;
  int64_t unacknowledged = 0, unacknowledged_present = 0;
  std::vector<std::string> examples;  // the first few findings, for the failure message
  bool ok() const { return lost == 0 && duplicated == 0 && reordered == 0 && phantom == 0; }
  std::string Summary() const;
};

class Checker {
 public:
  // `id` was acknowledged; the order of calls is the acknowledgement order.
  void Acknowledged(const std::string& id, const std::string& key);
  // `id` was sent and not acknowledged (an error or no answer).
  void Unacknowledged(const std::string& id);
  // `id` was read from `partition`, in offset order.
  void Read(int32_t partition, const std::string& id, const std::string& key);
  CheckerReport Report() const;

 private:
  std::map<std::string, int64_t> acked_;  // id → acknowledgement index
  std::set<std::string> unacked_;
  std::vector<std::pair<std::string, std::string>> read_;  // (id, key) in read order per partition
  std::map<std::string, int32_t> key_partition_;
};

}  // namespace checker
}  // namespace polder

#endif  // POLDER_TESTS_KAFKA_CHECKER_H_
