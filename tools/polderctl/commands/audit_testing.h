// Test helper: audit chains and the audit-topic records of a node's trail, for polderctl's audit
// tests. Entries are batches of 50 records (21,850 bytes) of mobility.bike-counts at offsets
// 100*i .. 100*i+50, one a minute from `start`.
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_AUDIT_TESTING_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_AUDIT_TESTING_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "common/audit/audit_chain.h"
#include "common/audit/trail.h"

namespace polder {
namespace polderctl {

inline const absl::Time kAuditStart = absl::FromUnixSeconds(1795000000);

// The chain of `batches` entries of `stream` from `source` to `destination`, as the side that
// logs them in `direction` ("offered" or "received") has it.
std::vector<audit::AuditLink> TestChain(const std::string& stream, const std::string& direction,
                                        int batches, const std::string& source = "groningen",
                                        const std::string& destination = "amersfoort",
                                        const std::string& dataset = "mobility.bike-counts",
                                        absl::Time start = kAuditStart);

// The audit topic's (key, value) records of these chains (stream → links) and receipts.
std::vector<std::pair<std::string, std::string>> AuditRecords(
    const std::map<std::string, std::vector<audit::AuditLink>>& chains,
    const std::vector<audit::Receipt>& receipts = {});

// audit::ReadTrail of AuditRecords.
audit::Trail TestTrail(const std::map<std::string, std::vector<audit::AuditLink>>& chains,
                       const std::vector<audit::Receipt>& receipts = {});

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_AUDIT_TESTING_H_
