// Verifying federation audit trails (ARCHITECTURE §8, `polderctl audit verify`): one node's
// `_polder.audit` read back as chains and kept receipts, checked on its own and against the
// peer's side of the same streams.
//
//   Trail mine = ReadTrail(records_of_my_audit_topic);
//   Trail theirs = ReadTrail(records_of_their_audit_topic);   // or GetAuditEntries
//   std::vector<Finding> f = VerifyTrail(mine, "amersfoort", signing_key_of);
//   Append(f, CompareStreams(mine, theirs, "groningen"));   // the streams received from Groningen
//   Append(f, CheckReceiptsHeldBy(theirs, mine, "amersfoort", signing_key_of));
//
// Findings name the stream, the kind (changed, dropped, inserted, reordered, truncated,
// rewritten, unsigned, gap) and the first link where it shows.
#ifndef POLDER_COMMON_AUDIT_TRAIL_H_
#define POLDER_COMMON_AUDIT_TRAIL_H_

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/audit/audit_chain.h"
#include "common/trust/keys.h"

namespace polder {
namespace audit {

struct Trail {
  std::map<std::string, std::vector<AuditLink>> chains;  // by stream id, in log order
  std::map<std::string, AuditEntry> entries_head;        // stream → its first entry (who, what)
  std::vector<Receipt> receipts;                         // receipts of other peers kept here
  std::vector<std::string> unreadable;                   // records that did not decode
};

// Builds a trail from an audit topic's records (key, value) in log order.
Trail ReadTrail(const std::vector<std::pair<std::string, std::string>>& records);

struct Finding {
  std::string stream;
  std::string
      kind;  // changed, dropped, inserted, reordered, truncated, rewritten, unsigned, unreadable
  uint64_t link = 0;  // the first link where it shows (0: the stream as a whole)
  std::string detail;

  std::string ToString() const;
};

// The signing key `kid` of `peer` (e.g. from the directory); an error if it is not listed.
using KeyLookup = std::function<absl::StatusOr<trust::PublicKey>(const std::string& peer,
                                                                 const std::string& kid)>;

// Each chain of `trail` on its own: sequences, hashes, stream ids. The first bad link of a chain
// is classified: a changed entry (same sequence, other content), dropped links (a sequence
// skipped for good), a reordered link (the missing sequence comes later), an inserted link (a
// sequence repeated). Also checks the signatures of the receipts `trail` keeps (unsigned).
std::vector<Finding> VerifyTrail(const Trail& trail, const KeyLookup& keys);

// The streams of `trail` that resume another (their first entry's `resumes` and `cursor`, ADR
// 0021 §4), each against the stream it resumes: on the subscriber's side it must start exactly
// where its committed entries of that stream ended, on the provider's side at or before what it
// offered there. A cursor beyond that end is a gap; one before it (subscriber) a batch received
// twice; a resumed stream missing from the trail, dropped. Part of VerifyTrail.
std::vector<Finding> CheckResumes(const Trail& trail);

// The receipts `holder` keeps for `owner`'s chains, checked against `owner`'s chains: a chain
// shorter than what was receipted is truncated, a receipted link with another hash rewritten.
std::vector<Finding> CheckReceiptsHeldBy(const Trail& holder, const Trail& owner,
                                         const std::string& owner_peer, const KeyLookup& keys);

// The same streams on both sides: what the subscriber received must be, entry by entry
// (partition, offsets, records, bytes), a prefix of what the provider offered (the provider may
// have offered more: batches in flight when a stream broke are offered again in a later stream).
// The first difference is classified as changed, dropped, inserted or reordered (relative to
// the offered side). This catches a side that rewrote its chain consistently (rehashed), which
// VerifyTrail alone cannot. Only the streams `received` got from `provider` are compared: a
// trail also holds streams with third parties, which the provider's trail cannot have.
std::vector<Finding> CompareStreams(const Trail& received, const Trail& offered,
                                    const std::string& provider);

// The subscriber's check against its provider when only the provider's entries of the streams
// received from it are at hand (fetched with GetAuditEntries): the receipts `received` keeps of
// those streams against the provider's chains in `offered` (CheckReceiptsHeldBy) and the streams
// entry by entry (CompareStreams). Receipts of streams this side provided to the peer are not
// checked here: the peer's chains of them are not served.
std::vector<Finding> CheckAgainstProvider(const Trail& received, const Trail& offered,
                                          const std::string& provider, const KeyLookup& keys);

}  // namespace audit
}  // namespace polder

#endif  // POLDER_COMMON_AUDIT_TRAIL_H_
