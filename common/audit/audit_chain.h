// The federation audit trail (ARCHITECTURE §8): per stream, a hash chain of entries with the
// fields of the FSC Logging standard, and receipts — signed chain heads the two organisations
// exchange and keep, so neither can rewrite or truncate its history alone.
//
//   AuditChain chain("stream-7f3a");                 // or AuditChain::Resume(...) after a restart
//   AuditLink link = chain.Append(entry);            // store link.canonical_json durably first
//   ASSIGN_OR_RETURN(Receipt r,
//                    MakeReceipt(chain.stream_id(), "groningen", chain.head(), key, now));
//   RETURN_IF_ERROR(VerifyChain(stored_links));
//   RETURN_IF_ERROR(CheckReceipt(stored_links, their_receipt, their_public_key));
//
// hash(n) = SHA-256 hex of (hash(n-1) + "\n" + canonical JSON of entry n), hash(0) of the
// genesis string "polder-audit-v1:<stream id>". Canonical JSON is RFC 8785 (common/trust/jcs).
#ifndef POLDER_COMMON_AUDIT_AUDIT_CHAIN_H_
#define POLDER_COMMON_AUDIT_AUDIT_CHAIN_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/trust/keys.h"

namespace polder {
namespace audit {

// One batch offered (provider) or received (subscriber), or a gap the subscriber was told of
// (records it will never receive): the FSC Logging fields.
struct AuditEntry {
  std::string transaction_id;  // the stream id
  std::string direction;       // "offered" or "received"
  std::string contract_hash;   // SHA-256 hex of the contract's canonical JSON
  std::string source;          // providing peer
  std::string destination;     // consuming peer
  std::string dataset;
  int32_t partition = 0;
  int64_t first_offset = 0;  // source offsets [first_offset, next_offset)
  int64_t next_offset = 0;
  int64_t records = 0;
  int64_t bytes = 0;
  absl::Time at;
  std::string traceparent;  // W3C trace context
  std::string purpose;      // from the contract
  std::string detail;       // optional: what happened (gap entries name the missing range)
  std::string view;         // optional: the aggregate view of `dataset` streamed (ADR 0016)
  // Optional, on a stream's first entry (ADR 0021 §4): the stream whose committed cursor this
  // one resumes (a subscriber's reconnect, possibly to another replica), and that cursor —
  // per partition, the next offset asked for. Together they chain a subscription's streams, so a
  // verifier sees any gap between them.
  std::string resumes;
  std::map<int32_t, int64_t> cursor;
};

struct AuditLink {
  uint64_t sequence = 0;  // 1, 2, ...
  std::string hash;
  std::string canonical_json;
};

// The entry's canonical JSON (what is hashed and stored). INVALID_ARGUMENT for a direction
// other than offered/received or an empty transaction id.
absl::StatusOr<std::string> CanonicalJson(const AuditEntry& entry);
absl::StatusOr<AuditEntry> ParseEntry(const std::string& canonical_json);

class AuditChain {
 public:
  explicit AuditChain(std::string stream_id);
  // Continues a chain whose last stored link is `last`.
  static AuditChain Resume(std::string stream_id, const AuditLink& last);

  // The next link for `entry` (its transaction id must be the stream id). The chain advances.
  absl::StatusOr<AuditLink> Append(const AuditEntry& entry);

  const std::string& stream_id() const { return stream_id_; }
  uint64_t sequence() const { return sequence_; }
  const std::string& head() const { return head_; }

  static std::string Genesis(const std::string& stream_id);

 private:
  std::string stream_id_;
  uint64_t sequence_ = 0;
  std::string head_;
};

// SHA-256 hex of (previous + "\n" + canonical): one step of the chain.
std::string ChainHash(const std::string& previous, const std::string& canonical_json);

// Checks that `links` (in order, from sequence 1) form the chain of `stream_id`: consecutive
// sequences, every hash recomputed, every entry of this stream. DATA_LOSS naming the first
// link that does not fit.
absl::Status VerifyChain(const std::string& stream_id, const std::vector<AuditLink>& links);

// A link as a Kafka record of `_polder.audit`: key "<stream id>/<sequence>", value
// {"sequence", "hash", "canonical"} — the canonical JSON byte for byte, as it was hashed.
std::string AuditRecordKey(const std::string& stream_id, uint64_t sequence);
std::string EncodeAuditRecord(const AuditLink& link);
absl::StatusOr<AuditLink> DecodeAuditRecord(const std::string& value);

// A signed chain head.
struct Receipt {
  std::string stream_id;
  std::string peer;  // whose chain
  uint64_t sequence = 0;
  std::string hash;
  absl::Time at;
  std::string jws;  // detached EdDSA over the canonical JSON of the fields above
};

absl::StatusOr<Receipt> MakeReceipt(const std::string& stream_id, const std::string& peer,
                                    uint64_t sequence, const std::string& hash,
                                    const trust::PrivateKey& key, absl::Time now);
// Verifies the signature with `signer` and that `links` (a verified chain) contain the receipted
// (sequence, hash): the chain was not rewritten or truncated below what was receipted.
absl::Status CheckReceipt(const std::vector<AuditLink>& links, const Receipt& receipt,
                          const trust::PublicKey& signer);
// Only the signature (PERMISSION_DENIED naming the receipt if it does not verify).
absl::Status VerifyReceiptSignature(const Receipt& receipt, const trust::PublicKey& signer);
// The kid of the key that signed `receipt` (from its JWS header), to look it up in the directory.
absl::StatusOr<std::string> ReceiptSigner(const Receipt& receipt);

// A receipt as a Kafka record of `_polder.audit`, kept beside the chain it vouches for: key
// "receipt/<stream id>/<peer>/<sequence>", value the receipt's fields as JSON.
std::string ReceiptRecordKey(const Receipt& receipt);
std::string EncodeReceipt(const Receipt& receipt);
absl::StatusOr<Receipt> DecodeReceipt(const std::string& value);

}  // namespace audit
}  // namespace polder

#endif  // POLDER_COMMON_AUDIT_AUDIT_CHAIN_H_
