#include "tools/polderctl/commands/audit_exchanges.h"

#include <algorithm>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/audit/audit_chain.h"
#include "common/trust/document.h"

namespace polder {
namespace polderctl {

std::vector<ExchangeSummary> SummarizeExchanges(const audit::Trail& trail,
                                                const ExchangeFilter& filter) {
  std::vector<ExchangeSummary> out;
  for (const auto& [stream, links] : trail.chains) {
    auto head = trail.entries_head.find(stream);
    if (head == trail.entries_head.end()) continue;
    const audit::AuditEntry& h = head->second;
    if (filter.peer && h.source != *filter.peer && h.destination != *filter.peer) continue;
    if (filter.dataset && h.dataset != *filter.dataset) continue;
    ExchangeSummary e;
    e.stream = stream;
    e.head = h;
    e.batches = static_cast<int64_t>(links.size());
    for (const audit::AuditLink& l : links) {
      absl::StatusOr<audit::AuditEntry> entry = audit::ParseEntry(l.canonical_json);
      if (!entry.ok()) continue;
      e.records += entry->records;
      e.bytes += entry->bytes;
      e.first = std::min(e.first, entry->at);
      e.last = std::max(e.last, entry->at);
    }
    if (filter.since && e.last < *filter.since) continue;
    if (filter.until && e.first > *filter.until) continue;
    out.push_back(std::move(e));
  }
  return out;
}

std::string ExchangeLine(const ExchangeSummary& e) {
  const audit::AuditEntry& h = e.head;
  return absl::StrCat(e.stream, "  ", h.direction, "  ", h.source, " -> ", h.destination, "  ",
                      h.dataset, "  ", e.batches, " batches, ", e.records, " records, ", e.bytes,
                      " bytes, ", trust::FormatRfc3339(e.first), " .. ",
                      trust::FormatRfc3339(e.last),
                      h.direction == "gap" ? absl::StrCat("  ", h.detail) : "");
}

nlohmann::json ExchangeJson(const ExchangeSummary& e) {
  const audit::AuditEntry& h = e.head;
  nlohmann::json j = {{"stream", e.stream},
                      {"direction", h.direction},
                      {"source", h.source},
                      {"destination", h.destination},
                      {"dataset", h.dataset},
                      {"batches", e.batches},
                      {"records", e.records},
                      {"bytes", e.bytes},
                      {"first", trust::FormatRfc3339(e.first)},
                      {"last", trust::FormatRfc3339(e.last)},
                      {"contract_hash", h.contract_hash},
                      {"purpose", h.purpose}};
  // The stream this one resumed (a reconnect, possibly to another replica; ADR 0021 §4).
  if (!h.resumes.empty()) j["resumes"] = h.resumes;
  return j;
}

}  // namespace polderctl
}  // namespace polder
