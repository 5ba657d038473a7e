// Checking a node's audit trail against the peer's side of the same streams, for
// `polderctl audit verify`: either the peer's whole trail (read from its Kafka), or the peer's
// entries of the streams this node received from it, fetched page by page from the peer's
// federation service (GetAuditEntries, which answers only a stream's destination).
//
//   PeerAuditClient client(channel, {"groningen", "groningen:8443", absl::Seconds(60)});
//   ASSIGN_OR_RETURN(audit::Trail theirs, client.FetchOffered(mine));
//   PeerComparison c = CompareWithPeerEntries(mine, theirs, "groningen", keys);
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_PEER_AUDIT_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_PEER_AUDIT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/audit/trail.h"
#include "grpcpp/channel.h"
#include "proto/polder/federation/v1/federation.grpc.pb.h"

namespace polder {
namespace polderctl {

struct PeerAuditOptions {
  std::string peer;                            // the provider serving its entries
  std::string endpoint;                        // its federation service host:port (named in errors)
  absl::Duration timeout = absl::Seconds(60);  // each call
};

class PeerAuditClient {
 public:
  PeerAuditClient(std::shared_ptr<grpc::ChannelInterface> channel, PeerAuditOptions options);

  // The peer's entries of `stream`, in the order served. Pages go by sequence: each asks from
  // one past the highest sequence seen so far (the peer answers up to 1,000 entries a call);
  // the paging ends at NOT_FOUND (no more entries) or at a page that brings no higher sequence,
  // so a peer repeating itself cannot keep it going. Another error is returned with its code,
  // prefixed "GetAuditEntries of stream <stream> from <peer> at <endpoint>: ".
  absl::StatusOr<std::vector<audit::AuditLink>> FetchStream(const std::string& stream);

  // The peer's entries of the streams `mine` received from it. A stream the peer has no entries
  // of is left out (CompareStreams reports it dropped); one whose first entry does not parse is
  // listed in Trail::unreadable.
  absl::StatusOr<audit::Trail> FetchOffered(const audit::Trail& mine);

 private:
  std::unique_ptr<federation::v1::FederationService::Stub> stub_;
  const PeerAuditOptions options_;
};

// Findings of comparing this node's trail with the peer's, and what was compared (a clause for
// the summary line, starting "; compared with ...").
struct PeerComparison {
  std::vector<audit::Finding> findings;
  std::string summary;
};

// With the peer's whole trail `theirs` (whose owner is `peer`; this node is `self`): the peer's
// trail on its own (its findings' details prefixed "(<peer>'s trail) "), the receipts each side
// keeps of the other's chains, and the streams between the two entry by entry, in both
// directions.
PeerComparison CompareWithPeerTrail(const audit::Trail& mine, const audit::Trail& theirs,
                                    const std::string& self, const std::string& peer,
                                    const audit::KeyLookup& keys);

// With only the provider's entries of the streams this node received from it (FetchOffered):
// those entries on their own (details prefixed "(<peer>'s entries) ") and
// audit::CheckAgainstProvider.
PeerComparison CompareWithPeerEntries(const audit::Trail& mine, const audit::Trail& theirs,
                                      const std::string& peer, const audit::KeyLookup& keys);

// The links of all chains of `trail`.
int64_t CountLinks(const audit::Trail& trail);

// OK without findings; otherwise DATA_LOSS "<n> finding(s) in the audit trail:" with one
// finding per indented line.
absl::Status FindingsStatus(const std::vector<audit::Finding>& findings);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_PEER_AUDIT_H_
