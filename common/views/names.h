// Names of aggregate views and of what belongs to them (ADR 0016 §1, §4, §5), in one place so
// provider and subscriber, node and aggregator derive the same topic from (dataset, view).
//
//   ViewTopic("groningen", "mobility.bike-counts", "quarter-municipality")
//     == "groningen.mobility.bike-counts.view.quarter-municipality"
//
// A dataset topic has three dot-separated parts (<peer>.<domain>.<name>) and a view topic five,
// so no view topic can be taken for a dataset's.
#ifndef POLDER_COMMON_VIEWS_NAMES_H_
#define POLDER_COMMON_VIEWS_NAMES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace polder {
namespace views {

// The subject of views' output records (polder.views.v1.AggregateCell).
inline constexpr char kAggregateCellSubject[] = "polder.views.v1.AggregateCell";
// The CloudEvents extension header naming the definition hash of the view that computed a cell:
// a provider checks it against the contract before serving the cell.
inline constexpr char kViewDefinitionHeader[] = "ce_polderviewdefinition";

// Kafka's limit on topic names.
inline constexpr size_t kMaxTopicLength = 249;

// Whether `id` is a dataset id: <domain>.<name> of lowercase letters, digits and dashes, one
// dot, at most 100 characters.
bool IsValidDatasetId(absl::string_view id);

// OK for [a-z0-9-]+ of at most 64 characters, starting with a letter; INVALID_ARGUMENT naming
// the id and its first offending character otherwise.
absl::Status ValidateViewId(absl::string_view id);

// `<peer>.<dataset>.view.<view>`: where a node publishes its view, and where a subscriber
// mirrors it (the same name in both clusters, as datasets are mirrored).
std::string ViewTopic(absl::string_view peer, absl::string_view dataset, absl::string_view view);

// `_polder.views.<dataset>.changelog`: the compacted state of a dataset's view set in the
// city's own cluster.
std::string ViewChangelogTopic(absl::string_view dataset);

// `polder-views-<peer>-<dataset>`: one transactional id per view set, so a second instance
// fences the first.
std::string ViewTransactionalId(absl::string_view peer, absl::string_view dataset);

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_NAMES_H_
