// The exchanges (streams) of a node's audit trail, summed up and filtered for
// `polderctl audit query`.
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_AUDIT_EXCHANGES_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_AUDIT_EXCHANGES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/audit/trail.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace polderctl {

// Which exchanges to list; an absent member does not filter.
struct ExchangeFilter {
  std::optional<std::string> peer;     // the source or the destination
  std::optional<std::string> dataset;  // exactly
  std::optional<absl::Time> since;     // active at or after: its last entry is not earlier
  std::optional<absl::Time> until;     // active at or before: its first entry is not later
};

// One stream: who, what, and the totals of its entries.
struct ExchangeSummary {
  std::string stream;
  audit::AuditEntry head;  // its first entry
  int64_t batches = 0;     // links in the chain
  // Over the entries that parse; first and last are InfiniteFuture and InfinitePast when none
  // does.
  int64_t records = 0;
  int64_t bytes = 0;
  absl::Time first = absl::InfiniteFuture();
  absl::Time last = absl::InfinitePast();
};

// The streams of `trail` that pass `filter`, ordered by stream id.
std::vector<ExchangeSummary> SummarizeExchanges(const audit::Trail& trail,
                                                const ExchangeFilter& filter);

// "<stream>  <direction>  <source> -> <destination>  <dataset>  <n> batches, <n> records,
// <n> bytes, <first> .. <last>" (and a gap's detail).
std::string ExchangeLine(const ExchangeSummary& e);

// {"bytes", "batches", "contract_hash", "dataset", "destination", "direction", "first", "last",
// "purpose", "records", "source", "stream"}.
nlohmann::json ExchangeJson(const ExchangeSummary& e);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_AUDIT_EXCHANGES_H_
