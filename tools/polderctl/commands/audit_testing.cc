#include "tools/polderctl/commands/audit_testing.h"

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace polder {
namespace polderctl {

std::vector<audit::AuditLink> TestChain(const std::string& stream, const std::string& direction,
                                        int batches, const std::string& source,
                                        const std::string& destination, const std::string& dataset,
                                        absl::Time start) {
  audit::AuditChain chain(stream);
  std::vector<audit::AuditLink> links;
  for (int i = 0; i < batches; ++i) {
    audit::AuditEntry e;
    e.transaction_id = stream;
    e.direction = direction;
    e.contract_hash = "sha256:abc";
    e.source = source;
    e.destination = destination;
    e.dataset = dataset;
    e.first_offset = 100 * i;
    e.next_offset = 100 * i + 50;
    e.records = 50;
    e.bytes = 50 * 437;
    e.at = start + absl::Minutes(i);
    e.purpose = "regional cycling dashboard";
    absl::StatusOr<audit::AuditLink> link = chain.Append(e);
    EXPECT_TRUE(link.ok()) << link.status();
    if (link.ok()) links.push_back(*link);
  }
  return links;
}

std::vector<std::pair<std::string, std::string>> AuditRecords(
    const std::map<std::string, std::vector<audit::AuditLink>>& chains,
    const std::vector<audit::Receipt>& receipts) {
  std::vector<std::pair<std::string, std::string>> records;
  for (const auto& [stream, links] : chains) {
    for (const audit::AuditLink& l : links) {
      records.push_back({audit::AuditRecordKey(stream, l.sequence), audit::EncodeAuditRecord(l)});
    }
  }
  for (const audit::Receipt& r : receipts) {
    records.push_back({audit::ReceiptRecordKey(r), audit::EncodeReceipt(r)});
  }
  return records;
}

audit::Trail TestTrail(const std::map<std::string, std::vector<audit::AuditLink>>& chains,
                       const std::vector<audit::Receipt>& receipts) {
  return audit::ReadTrail(AuditRecords(chains, receipts));
}

}  // namespace polderctl
}  // namespace polder
