#include "tools/polderctl/commands/peer_audit.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/audit/audit_chain.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "grpcpp/client_context.h"
#include "tools/polderctl/commands/service_channel.h"

namespace polder {
namespace polderctl {

PeerAuditClient::PeerAuditClient(std::shared_ptr<grpc::ChannelInterface> channel,
                                 PeerAuditOptions options)
    : stub_(federation::v1::FederationService::NewStub(std::move(channel))),
      options_(std::move(options)) {}

absl::StatusOr<std::vector<audit::AuditLink>> PeerAuditClient::FetchStream(
    const std::string& stream) {
  std::vector<audit::AuditLink> links;
  uint64_t highest = 0;
  while (true) {
    federation::v1::GetAuditEntriesRequest req;
    req.set_stream_id(stream);
    req.set_from_sequence(highest + 1);
    grpc::ClientContext ctx;
    federation::v1::GetAuditEntriesResponse resp;
    grpc::Status s = stub_->GetAuditEntries(WithDeadline(&ctx, options_.timeout), req, &resp);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) break;  // no (more) entries
    if (!s.ok()) {
      return Prepend(FromGrpcStatus(s),
                     absl::StrCat("GetAuditEntries of stream ", stream, " from ", options_.peer,
                                  " at ", options_.endpoint, ": "));
    }
    const uint64_t before = highest;
    for (const federation::v1::AuditEntryView& v : resp.entries()) {
      links.push_back({v.sequence(), v.hash(), v.canonical_json()});
      highest = std::max<uint64_t>(highest, v.sequence());
    }
    if (highest == before) break;
  }
  return links;
}

absl::StatusOr<audit::Trail> PeerAuditClient::FetchOffered(const audit::Trail& mine) {
  audit::Trail theirs;
  for (const auto& [stream, head] : mine.entries_head) {
    if (head.direction != "received" || head.source != options_.peer) continue;
    ASSIGN_OR_RETURN(std::vector<audit::AuditLink> links, FetchStream(stream));
    if (links.empty()) continue;
    absl::StatusOr<audit::AuditEntry> first = audit::ParseEntry(links.front().canonical_json);
    if (!first.ok()) {
      theirs.unreadable.push_back(
          absl::StrCat(stream, " link 1 from ", options_.peer, ": ", first.status().message()));
      continue;
    }
    theirs.entries_head[stream] = *first;
    theirs.chains[stream] = std::move(links);
  }
  return theirs;
}

PeerComparison CompareWithPeerTrail(const audit::Trail& mine, const audit::Trail& theirs,
                                    const std::string& self, const std::string& peer,
                                    const audit::KeyLookup& keys) {
  PeerComparison c;
  auto add = [&c](std::vector<audit::Finding> findings) {
    for (audit::Finding& f : findings) c.findings.push_back(std::move(f));
  };
  for (audit::Finding& f : audit::VerifyTrail(theirs, keys)) {
    f.detail = absl::StrCat("(", peer, "'s trail) ", f.detail);
    c.findings.push_back(std::move(f));
  }
  // What each side receipted of the other's chains, and the streams entry by entry (each side
  // may be the provider of some streams and the subscriber of others).
  add(audit::CheckReceiptsHeldBy(theirs, mine, self, keys));
  add(audit::CheckReceiptsHeldBy(mine, theirs, peer, keys));
  // Only the streams between the two: each trail also holds streams with third parties.
  add(audit::CompareStreams(mine, theirs, peer));
  add(audit::CompareStreams(theirs, mine, self));
  c.summary = absl::StrCat("; compared with ", peer, "'s trail (", theirs.chains.size(),
                           " streams, ", theirs.receipts.size(), " receipts)");
  return c;
}

PeerComparison CompareWithPeerEntries(const audit::Trail& mine, const audit::Trail& theirs,
                                      const std::string& peer, const audit::KeyLookup& keys) {
  PeerComparison c;
  for (audit::Finding& f : audit::VerifyTrail(theirs, keys)) {
    f.detail = absl::StrCat("(", peer, "'s entries) ", f.detail);
    c.findings.push_back(std::move(f));
  }
  for (audit::Finding& f : audit::CheckAgainstProvider(mine, theirs, peer, keys)) {
    c.findings.push_back(std::move(f));
  }
  c.summary = absl::StrCat("; compared with ", peer, "'s entries of the streams received from it (",
                           theirs.chains.size(), " streams, ", CountLinks(theirs),
                           " links, via GetAuditEntries)");
  return c;
}

int64_t CountLinks(const audit::Trail& trail) {
  int64_t links = 0;
  for (const auto& [stream, l] : trail.chains) links += static_cast<int64_t>(l.size());
  return links;
}

absl::Status FindingsStatus(const std::vector<audit::Finding>& findings) {
  if (findings.empty()) return absl::OkStatus();
  std::vector<std::string> lines;
  for (const audit::Finding& f : findings) lines.push_back(f.ToString());
  return absl::DataLossError(absl::StrCat(findings.size(), " finding(s) in the audit trail:\n  ",
                                          absl::StrJoin(lines, "\n  ")));
}

}  // namespace polderctl
}  // namespace polder
