#include "tests/kafka/checker.h"

#include "absl/strings/str_cat.h"

namespace polder {
namespace checker {

std::string CheckerReport::Summary() const {
  std::string s = absl::StrCat("acknowledged ", acknowledged, ", read ", read, ", lost ", lost,
                               ", duplicated ", duplicated, ", reordered ", reordered, ", phantom ",
                               phantom, ", unacknowledged ", unacknowledged, " (",
                               unacknowledged_present, " of them present)");
  for (const std::string& e : examples) absl::StrAppend(&s, "\n  ", e);
  return s;
}

void Checker::Acknowledged(const std::string& id, const std::string& key) {
  acked_.emplace(id, static_cast<int64_t>(acked_.size()));
  unacked_.erase(id);
  (void)key;
}

void Checker::Unacknowledged(const std::string& id) {
  if (acked_.count(id) == 0) unacked_.insert(id);
}

void Checker::Read(int32_t partition, const std::string& id, const std::string& key) {
  read_.push_back({id, absl::StrCat(partition, "/", key)});
}

CheckerReport Checker::Report() const {
  CheckerReport r;
  r.acknowledged = static_cast<int64_t>(acked_.size());
  r.unacknowledged = static_cast<int64_t>(unacked_.size());
  r.read = static_cast<int64_t>(read_.size());
  auto example = [&r](std::string e) {
    if (r.examples.size() < 10) r.examples.push_back(std::move(e));
  };
  std::map<std::string, int> seen;
  // Per (partition, key): the acknowledgement index of the last acknowledged record read.
  std::map<std::string, int64_t> last_index;
  for (const auto& [id, key] : read_) {
    if (++seen[id] == 2) {
      ++r.duplicated;
      example(absl::StrCat("duplicated: ", id));
    }
    auto a = acked_.find(id);
    if (a == acked_.end()) {
      if (unacked_.count(id) == 0) {
        ++r.phantom;
        example(absl::StrCat("phantom: ", id));
      }
      continue;
    }
    auto [it, fresh] = last_index.emplace(key, a->second);
    if (!fresh) {
      if (a->second < it->second) {
        ++r.reordered;
        example(
            absl::StrCat("reordered: ", id, " read after a later acknowledged record of ", key));
      }
      it->second = std::max(it->second, a->second);
    }
  }
  for (const auto& [id, index] : acked_) {
    if (seen.count(id) == 0) {
      ++r.lost;
      example(absl::StrCat("lost: ", id));
    }
  }
  for (const std::string& id : unacked_) {
    if (seen.count(id) > 0) ++r.unacknowledged_present;
  }
  return r;
}

}  // namespace checker
}  // namespace polder
