// Feed quality per dataset (ADR 0018 §6), measured by the node since it started: the newest
// event time accepted at ingest (freshness), records accepted and refused by validation, and
// records that arrived after their view window closed, and entities reporting — what the
// dataset's entities views published for the newest closed hour and day. Offered to contract
// holders (ListDatasets, stream heartbeats) and written to `_polder.feed-quality`. Thread-safe.
#ifndef POLDER_SERVICES_NODE_FEED_QUALITY_H_
#define POLDER_SERVICES_NODE_FEED_QUALITY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/views/changelog.h"
#include "nlohmann/json.hpp"
#include "proto/polder/federation/v1/federation.pb.h"

namespace polder {
namespace node {

class FeedQualityTracker {
 public:
  // `datasets`: the node's own; others are ignored. `since`: when counting began.
  FeedQualityTracker(const std::vector<std::string>& datasets, absl::Time since);

  // A batch acknowledged at ingest: `records`, the newest event time among them.
  void Accepted(const std::string& dataset, int64_t records, absl::Time newest_event);
  // A batch refused by validation.
  void Rejected(const std::string& dataset, int64_t records);
  // The dataset's views' late records so far (absolute; the views subsystem's count).
  void SetLate(const std::string& dataset, int64_t late);
  // What a feed-quality view (views::kEntitiesHourView or kEntitiesDayView) of the dataset
  // published for its newest closed window; other view ids are ignored.
  void SetEntities(const std::string& dataset, const std::string& view,
                   const views::FeedFigure& figure);

  // The dataset's feed quality at `now`; nullopt for a dataset that is not the node's.
  std::optional<federation::v1::FeedQuality> Snapshot(const std::string& dataset,
                                                      absl::Time now) const;

  // A feed quality as JSON (the `_polder.feed-quality` topic's values, /statusz).
  static nlohmann::json ToJson(const federation::v1::FeedQuality& q);

 private:
  struct Counts {
    absl::Time newest_event = absl::InfinitePast();
    int64_t accepted = 0;
    int64_t rejected = 0;
    std::optional<int64_t> late;
    std::optional<views::FeedFigure> entities_hour, entities_day;
  };
  const absl::Time since_;
  mutable absl::Mutex mu_;
  std::map<std::string, Counts> counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEED_QUALITY_H_
