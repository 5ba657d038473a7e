#include "common/audit/trail.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace polder {
namespace audit {

namespace {

using Batch =
    std::tuple<int32_t, int64_t, int64_t, int64_t, int64_t>;  // partition, offsets, records, bytes

Batch BatchOf(const AuditLink& l) {
  absl::StatusOr<AuditEntry> e = ParseEntry(l.canonical_json);
  if (!e.ok()) return {-1, -1, -1, -1, -1};
  return {e->partition, e->first_offset, e->next_offset, e->records, e->bytes};
}

std::string Describe(const AuditLink& l) {
  absl::StatusOr<AuditEntry> e = ParseEntry(l.canonical_json);
  if (!e.ok()) return "(unreadable entry)";
  return absl::StrCat("partition ", e->partition, " offsets [", e->first_offset, ", ",
                      e->next_offset, ") ", e->records, " records ", e->bytes, " bytes");
}

}  // namespace

std::string Finding::ToString() const {
  return absl::StrCat(stream, ": ", kind, link > 0 ? absl::StrCat(" at link ", link) : "", ": ",
                      detail);
}

Trail ReadTrail(const std::vector<std::pair<std::string, std::string>>& records) {
  Trail t;
  for (const auto& [key, value] : records) {
    if (absl::StartsWith(key, "receipt/")) {
      absl::StatusOr<Receipt> r = DecodeReceipt(value);
      if (r.ok()) {
        t.receipts.push_back(*r);
      } else {
        t.unreadable.push_back(absl::StrCat(key, ": ", r.status().message()));
      }
      continue;
    }
    absl::StatusOr<AuditLink> link = DecodeAuditRecord(value);
    absl::StatusOr<AuditEntry> e = link.ok() ? ParseEntry(link->canonical_json) : link.status();
    if (!e.ok()) {
      t.unreadable.push_back(absl::StrCat(key, ": ", e.status().message()));
      continue;
    }
    std::vector<AuditLink>& chain = t.chains[e->transaction_id];
    if (chain.empty()) t.entries_head[e->transaction_id] = *e;
    chain.push_back(*std::move(link));
  }
  return t;
}

std::vector<Finding> CheckResumes(const Trail& trail) {
  std::vector<Finding> out;
  for (const auto& [stream, links] : trail.chains) {
    auto head = trail.entries_head.find(stream);
    if (head == trail.entries_head.end() || head->second.resumes.empty()) continue;
    const AuditEntry& first = head->second;
    const bool received = first.direction == "received";
    if (!received && first.direction != "offered") continue;
    auto prev = trail.chains.find(first.resumes);
    if (prev == trail.chains.end()) {
      out.push_back({stream, "dropped", 1,
                     absl::StrCat("resumes stream ", first.resumes,
                                  ", which this trail does not hold (its entries are gone)")});
      continue;
    }
    // Where the resumed stream ended, per partition.
    std::map<int32_t, int64_t> ended;
    for (const AuditLink& l : prev->second) {
      absl::StatusOr<AuditEntry> e = ParseEntry(l.canonical_json);
      if (!e.ok()) continue;
      int64_t& end = ended.emplace(e->partition, e->next_offset).first->second;
      end = std::max(end, e->next_offset);
    }
    for (const auto& [partition, end] : ended) {
      auto c = first.cursor.find(partition);
      const int64_t at = c == first.cursor.end() ? 0 : c->second;
      // The subscriber resumes exactly where its committed entries of that stream ended; the
      // provider at or before what it offered there (an offered batch never committed is offered
      // again).
      if (at > end) {
        out.push_back({stream, "gap", 1,
                       absl::StrCat("resumes ", first.resumes, " at offset ", at, " of partition ",
                                    partition, "; that stream ended at ", end, ": offsets [", end,
                                    ", ", at, ") were never ", received ? "received" : "offered")});
      } else if (received && at < end) {
        out.push_back(
            {stream, "inserted", 1,
             absl::StrCat("resumes ", first.resumes, " at offset ", at, " of partition ", partition,
                          ", before where that stream's committed entries "
                          "ended (",
                          end, "): offsets [", at, ", ", end, ") received twice")});
      }
    }
  }
  return out;
}

std::vector<Finding> VerifyTrail(const Trail& trail, const KeyLookup& keys) {
  std::vector<Finding> out;
  for (const std::string& u : trail.unreadable) out.push_back({"", "unreadable", 0, u});
  for (const auto& [stream, links] : trail.chains) {
    std::string head = AuditChain::Genesis(stream);
    for (size_t i = 0; i < links.size(); ++i) {
      const uint64_t expected = i + 1;
      const AuditLink& l = links[i];
      if (l.sequence < expected) {
        out.push_back({stream, "inserted", expected,
                       absl::StrCat("link ", l.sequence, " appears again where link ", expected,
                                    " belongs")});
        break;
      }
      if (l.sequence > expected) {
        bool later = false;
        for (size_t j = i + 1; j < links.size(); ++j)
          later = later || links[j].sequence == expected;
        out.push_back(
            {stream, later ? "reordered" : "dropped", expected,
             later ? absl::StrCat("link ", l.sequence, " stands where link ", expected, " belongs")
                   : absl::StrCat("links ", expected, "..", l.sequence - 1, " are missing (link ",
                                  l.sequence, " follows link ", expected - 1, ")")});
        break;
      }
      if (ChainHash(head, l.canonical_json) != l.hash) {
        out.push_back(
            {stream, "changed", expected,
             "the entry does not hash to its recorded hash (changed after it was written)"});
        break;
      }
      head = l.hash;
    }
  }
  for (const Receipt& r : trail.receipts) {
    absl::StatusOr<std::string> kid = ReceiptSigner(r);
    absl::StatusOr<trust::PublicKey> key = kid.ok() ? keys(r.peer, *kid) : kid.status();
    absl::Status s = key.ok() ? VerifyReceiptSignature(r, *key) : key.status();
    if (!s.ok()) out.push_back({r.stream_id, "unsigned", r.sequence, std::string(s.message())});
  }
  for (Finding& f : CheckResumes(trail)) out.push_back(std::move(f));
  return out;
}

std::vector<Finding> CheckReceiptsHeldBy(const Trail& holder, const Trail& owner,
                                         const std::string& owner_peer, const KeyLookup& keys) {
  std::vector<Finding> out;
  for (const Receipt& r : holder.receipts) {
    if (r.peer != owner_peer) continue;
    // A gap chain ("gap-<subscriber>-<provider>-…") is the subscriber's alone; the provider
    // countersigns its head. A countersignature the subscriber holds is checked against the
    // subscriber's own chain: deleting a countersigned gap entry shows.
    const bool countersigned_gap =
        absl::StartsWith(r.stream_id, "gap-") &&
        !absl::StartsWith(r.stream_id, absl::StrCat("gap-", owner_peer, "-"));
    const Trail& chains = countersigned_gap ? holder : owner;
    auto chain = chains.chains.find(r.stream_id);
    if (chain == chains.chains.end()) {
      out.push_back(
          {r.stream_id, "truncated", 0,
           countersigned_gap
               ? absl::StrCat(owner_peer,
                              " countersigned this gap entry; the trail that recorded it has none")
               : absl::StrCat(owner_peer, " receipted ", r.sequence,
                              " links of this stream; its trail has none")});
      continue;
    }
    absl::StatusOr<std::string> kid = ReceiptSigner(r);
    absl::StatusOr<trust::PublicKey> key = kid.ok() ? keys(r.peer, *kid) : kid.status();
    if (!key.ok()) {
      out.push_back({r.stream_id, "unsigned", r.sequence, std::string(key.status().message())});
      continue;
    }
    absl::Status s = CheckReceipt(chain->second, r, *key);
    if (s.ok()) continue;
    const bool truncated = absl::StrContains(s.message(), "truncated");
    out.push_back({r.stream_id,
                   truncated ? "truncated"
                             : (s.code() == absl::StatusCode::kDataLoss ? "rewritten" : "unsigned"),
                   r.sequence, std::string(s.message())});
  }
  return out;
}

std::vector<Finding> CompareStreams(const Trail& received, const Trail& offered,
                                    const std::string& provider) {
  std::vector<Finding> out;
  for (const auto& [stream, r] : received.chains) {
    auto head = received.entries_head.find(stream);
    if (head == received.entries_head.end() || head->second.direction != "received" ||
        head->second.source != provider) {
      continue;
    }
    auto o_it = offered.chains.find(stream);
    if (o_it == offered.chains.end()) {
      out.push_back({stream, "dropped", 0, "the provider's trail has no entries of this stream"});
      continue;
    }
    const std::vector<AuditLink>& o = o_it->second;
    for (size_t i = 0; i < r.size(); ++i) {
      if (i >= o.size()) {
        out.push_back({stream, "inserted", i + 1,
                       absl::StrCat("received link ", i + 1, " (", Describe(r[i]),
                                    ") was never offered (", o.size(),
                                    " offered): inserted on the subscriber's side, or the "
                                    "provider's trail truncated")});
        break;
      }
      if (BatchOf(r[i]) == BatchOf(o[i])) continue;
      const bool next_r = i + 1 < r.size(), next_o = i + 1 < o.size();
      std::string kind = "changed";
      if (next_r && next_o && BatchOf(r[i]) == BatchOf(o[i + 1]) &&
          BatchOf(r[i + 1]) == BatchOf(o[i])) {
        kind = "reordered";
      } else if (next_o && BatchOf(r[i]) == BatchOf(o[i + 1])) {
        kind = "dropped";
      } else if (next_r && BatchOf(r[i + 1]) == BatchOf(o[i])) {
        kind = "inserted";
      }
      out.push_back({stream, kind, i + 1,
                     absl::StrCat("received: ", Describe(r[i]), "; offered: ", Describe(o[i]))});
      break;
    }
  }
  return out;
}

std::vector<Finding> CheckAgainstProvider(const Trail& received, const Trail& offered,
                                          const std::string& provider, const KeyLookup& keys) {
  Trail kept;  // the receipts of the streams received from `provider`
  for (const Receipt& r : received.receipts) {
    auto head = received.entries_head.find(r.stream_id);
    if (head != received.entries_head.end() && head->second.source == provider &&
        (head->second.direction == "received" || head->second.direction == "gap")) {
      kept.receipts.push_back(r);
      // A gap chain is this side's own: the provider's countersignature is checked against it.
      auto own = received.chains.find(r.stream_id);
      if (head->second.direction == "gap" && own != received.chains.end())
        kept.chains[r.stream_id] = own->second;
    }
  }
  std::vector<Finding> out = CheckReceiptsHeldBy(kept, offered, provider, keys);
  for (Finding& f : CompareStreams(received, offered, provider)) out.push_back(std::move(f));
  return out;
}

}  // namespace audit
}  // namespace polder
