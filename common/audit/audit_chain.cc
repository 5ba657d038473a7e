#include "common/audit/audit_chain.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json/bounded.h"
#include "common/trust/document.h"
#include "common/trust/jcs.h"
#include "common/trust/jws.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace audit {

using nlohmann::json;

namespace {

constexpr char kReceiptType[] = "polder-audit-receipt+jws";

std::string Sha256Hex(absl::string_view s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(d), sizeof(d)));
}

std::string Link(const std::string& previous, const std::string& canonical) {
  return Sha256Hex(absl::StrCat(previous, "\n", canonical));
}

absl::StatusOr<std::string> ReceiptPayload(const Receipt& r) {
  return trust::Canonicalize(json{{"stream_id", r.stream_id},
                                  {"peer", r.peer},
                                  {"sequence", r.sequence},
                                  {"hash", r.hash},
                                  {"at", trust::FormatRfc3339(r.at)}});
}

}  // namespace

absl::StatusOr<std::string> CanonicalJson(const AuditEntry& e) {
  if (e.transaction_id.empty())
    return absl::InvalidArgumentError("audit entry without transaction id");
  if (e.direction != "offered" && e.direction != "received" && e.direction != "gap") {
    return absl::InvalidArgumentError(
        absl::StrCat("audit direction must be offered, received or gap, got '", e.direction, "'"));
  }
  json j{{"transaction_id", e.transaction_id},
         {"direction", e.direction},
         {"contract_hash", e.contract_hash},
         {"source", e.source},
         {"destination", e.destination},
         {"dataset", e.dataset},
         {"partition", e.partition},
         {"first_offset", e.first_offset},
         {"next_offset", e.next_offset},
         {"records", e.records},
         {"bytes", e.bytes},
         {"at", trust::FormatRfc3339(e.at)},
         {"traceparent", e.traceparent},
         {"purpose", e.purpose}};
  // Only present when set, so entries without it hash as they always did.
  if (!e.detail.empty()) j["detail"] = e.detail;
  if (!e.view.empty()) j["view"] = e.view;
  if (!e.resumes.empty()) j["resumes"] = e.resumes;
  if (!e.cursor.empty()) {
    json c = json::object();
    for (const auto& [p, o] : e.cursor) c[std::to_string(p)] = o;
    j["cursor"] = std::move(c);
  }
  return trust::Canonicalize(j);
}

absl::StatusOr<AuditEntry> ParseEntry(const std::string& canonical_json) {
  json j = json_input::ParseOrDiscarded(canonical_json);
  if (!j.is_object()) return absl::InvalidArgumentError("audit entry is not a JSON object");
  AuditEntry e;
  try {
    e.transaction_id = j.at("transaction_id");
    e.direction = j.at("direction");
    e.contract_hash = j.at("contract_hash");
    e.source = j.at("source");
    e.destination = j.at("destination");
    e.dataset = j.at("dataset");
    e.partition = j.at("partition");
    e.first_offset = j.at("first_offset");
    e.next_offset = j.at("next_offset");
    e.records = j.at("records");
    e.bytes = j.at("bytes");
    e.traceparent = j.at("traceparent");
    e.purpose = j.at("purpose");
    if (j.contains("detail")) e.detail = j.at("detail");
    if (j.contains("view")) e.view = j.at("view");
    if (j.contains("resumes")) e.resumes = j.at("resumes");
    if (j.contains("cursor")) {
      const json& c = j.at("cursor");
      if (!c.is_object()) return absl::InvalidArgumentError("audit entry: cursor is no object");
      for (auto it = c.begin(); it != c.end(); ++it) {
        int32_t p = 0;
        if (!absl::SimpleAtoi(it.key(), &p) || p < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("audit entry: cursor partition '", it.key(), "' is no partition"));
        }
        e.cursor[p] = it.value().get<int64_t>();
      }
    }
    absl::StatusOr<absl::Time> at = trust::ParseRfc3339(j.at("at").get<std::string>());
    if (!at.ok()) return at.status();
    e.at = *at;
  } catch (const json::exception& ex) {
    return absl::InvalidArgumentError(absl::StrCat("audit entry: ", ex.what()));
  }
  return e;
}

AuditChain::AuditChain(std::string stream_id)
    : stream_id_(std::move(stream_id)), head_(Genesis(stream_id_)) {}

AuditChain AuditChain::Resume(std::string stream_id, const AuditLink& last) {
  AuditChain c(std::move(stream_id));
  c.sequence_ = last.sequence;
  c.head_ = last.hash;
  return c;
}

std::string AuditChain::Genesis(const std::string& stream_id) {
  return Sha256Hex(absl::StrCat("polder-audit-v1:", stream_id));
}

absl::StatusOr<AuditLink> AuditChain::Append(const AuditEntry& entry) {
  if (entry.transaction_id != stream_id_) {
    return absl::InvalidArgumentError(absl::StrCat("audit entry of stream '", entry.transaction_id,
                                                   "' appended to the chain of '", stream_id_,
                                                   "'"));
  }
  absl::StatusOr<std::string> canonical = CanonicalJson(entry);
  if (!canonical.ok()) return canonical.status();
  AuditLink link{sequence_ + 1, Link(head_, *canonical), *canonical};
  sequence_ = link.sequence;
  head_ = link.hash;
  return link;
}

absl::Status VerifyChain(const std::string& stream_id, const std::vector<AuditLink>& links) {
  std::string head = AuditChain::Genesis(stream_id);
  for (size_t i = 0; i < links.size(); ++i) {
    const AuditLink& l = links[i];
    if (l.sequence != i + 1) {
      return absl::DataLossError(absl::StrCat("audit chain of ", stream_id, ": link ", i + 1,
                                              " has sequence ", l.sequence,
                                              " (a link is missing or out of order)"));
    }
    if (Link(head, l.canonical_json) != l.hash) {
      return absl::DataLossError(
          absl::StrCat("audit chain of ", stream_id, ": link ", l.sequence,
                       " does not hash to its recorded hash (changed after it was written?)"));
    }
    absl::StatusOr<AuditEntry> e = ParseEntry(l.canonical_json);
    if (!e.ok() || e->transaction_id != stream_id) {
      return absl::DataLossError(absl::StrCat("audit chain of ", stream_id, ": link ", l.sequence,
                                              " is not an entry of this stream"));
    }
    head = l.hash;
  }
  return absl::OkStatus();
}

std::string ReceiptRecordKey(const Receipt& r) {
  return absl::StrCat("receipt/", r.stream_id, "/", r.peer, "/", r.sequence);
}

std::string EncodeReceipt(const Receipt& r) {
  return json{{"stream_id", r.stream_id},         {"peer", r.peer},
              {"sequence", r.sequence},           {"hash", r.hash},
              {"at", trust::FormatRfc3339(r.at)}, {"jws", r.jws}}
      .dump();
}

absl::StatusOr<Receipt> DecodeReceipt(const std::string& value) {
  json j = json_input::ParseOrDiscarded(value);
  if (!j.is_object() || !j["stream_id"].is_string() || !j["peer"].is_string() ||
      !j["sequence"].is_number_unsigned() || !j["hash"].is_string() || !j["at"].is_string() ||
      !j["jws"].is_string()) {
    return absl::DataLossError(
        "a receipt record is not {stream_id, peer, sequence, hash, at, jws}");
  }
  absl::StatusOr<absl::Time> at = trust::ParseRfc3339(j["at"].get<std::string>());
  if (!at.ok())
    return absl::DataLossError(absl::StrCat("a receipt record's time: ", at.status().message()));
  return Receipt{j["stream_id"], j["peer"], j["sequence"].get<uint64_t>(),
                 j["hash"],      *at,       j["jws"]};
}

absl::StatusOr<std::string> ReceiptSigner(const Receipt& receipt) {
  absl::StatusOr<trust::JwsHeader> h = trust::ParseDetachedHeader(receipt.jws);
  if (!h.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("receipt of ", receipt.peer, ": ", h.status().message()));
  }
  return h->kid;
}

std::string ChainHash(const std::string& previous, const std::string& canonical_json) {
  return Link(previous, canonical_json);
}

std::string AuditRecordKey(const std::string& stream_id, uint64_t sequence) {
  return absl::StrCat(stream_id, "/", sequence);
}

std::string EncodeAuditRecord(const AuditLink& link) {
  return json{{"sequence", link.sequence}, {"hash", link.hash}, {"canonical", link.canonical_json}}
      .dump();
}

absl::StatusOr<AuditLink> DecodeAuditRecord(const std::string& value) {
  json j = json_input::ParseOrDiscarded(value);
  if (!j.is_object() || !j["sequence"].is_number_unsigned() || !j["hash"].is_string() ||
      !j["canonical"].is_string()) {
    return absl::DataLossError("an audit record is not {sequence, hash, canonical}");
  }
  return AuditLink{j["sequence"].get<uint64_t>(), j["hash"].get<std::string>(),
                   j["canonical"].get<std::string>()};
}

absl::StatusOr<Receipt> MakeReceipt(const std::string& stream_id, const std::string& peer,
                                    uint64_t sequence, const std::string& hash,
                                    const trust::PrivateKey& key, absl::Time now) {
  Receipt r{stream_id, peer, sequence, hash, absl::FromUnixSeconds(absl::ToUnixSeconds(now)), ""};
  absl::StatusOr<std::string> payload = ReceiptPayload(r);
  if (!payload.ok()) return payload.status();
  absl::StatusOr<std::string> jws = trust::SignDetached(key, *payload, kReceiptType, now);
  if (!jws.ok()) return jws.status();
  r.jws = *jws;
  return r;
}

absl::Status VerifyReceiptSignature(const Receipt& receipt, const trust::PublicKey& signer) {
  absl::StatusOr<std::string> payload = ReceiptPayload(receipt);
  if (!payload.ok()) return payload.status();
  absl::StatusOr<trust::JwsHeader> header =
      trust::VerifyDetached(receipt.jws, *payload, signer, kReceiptType);
  if (!header.ok()) {
    return absl::PermissionDeniedError(absl::StrCat("receipt of ", receipt.peer, " for stream ",
                                                    receipt.stream_id, " at ", receipt.sequence,
                                                    ": ", header.status().message()));
  }
  return absl::OkStatus();
}

absl::Status CheckReceipt(const std::vector<AuditLink>& links, const Receipt& receipt,
                          const trust::PublicKey& signer) {
  absl::Status signature = VerifyReceiptSignature(receipt, signer);
  if (!signature.ok()) return signature;
  if (receipt.sequence == 0) return absl::OkStatus();
  if (receipt.sequence > links.size()) {
    return absl::DataLossError(
        absl::StrCat("stream ", receipt.stream_id, ": ", receipt.peer, " receipted link ",
                     receipt.sequence, " but the chain has only ", links.size(), " (truncated?)"));
  }
  if (links[receipt.sequence - 1].hash != receipt.hash) {
    return absl::DataLossError(absl::StrCat("stream ", receipt.stream_id, ": link ",
                                            receipt.sequence, " differs from what ", receipt.peer,
                                            " receipted (rewritten?)"));
  }
  return absl::OkStatus();
}

}  // namespace audit
}  // namespace polder
