#include "common/trust/contract.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json/bounded.h"
#include "common/status/status_macros.h"
#include "common/trust/document.h"
#include "common/trust/jcs.h"
#include "common/trust/jws.h"

namespace polder {
namespace trust {
namespace {

bool IsDatasetId(absl::string_view id) {
  std::vector<absl::string_view> parts = absl::StrSplit(id, absl::MaxSplits('.', 1));
  if (parts.size() != 2) return false;
  for (absl::string_view p : parts) {
    if (p.empty() || p[0] < 'a' || p[0] > 'z') return false;
    for (char c : p) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
    }
  }
  return true;
}

absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text, absl::string_view what) {
  nlohmann::json j = json_input::ParseOrDiscarded(text);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, ": not valid JSON"));
  return j;
}

}  // namespace

nlohmann::json Contract::ToJson() const {
  nlohmann::json j = {{"type", kContractType},
                      {"id", id},
                      {"federation", federation},
                      {"provider", provider},
                      {"consumer", consumer},
                      {"dataset", dataset},
                      {"schema_versions", schema_versions},
                      {"purpose", purpose},
                      {"access", access == Access::kRaw ? "raw" : "aggregate-only"},
                      {"start_position", start_position},
                      {"mirror_retention", absl::FormatDuration(mirror_retention)},
                      {"reshare", reshare},
                      {"valid_from", FormatRfc3339(valid_from)},
                      {"valid_until", FormatRfc3339(valid_until)}};
  // Only when set, so contracts without a view hash as they always did.
  if (view.has_value()) {
    j["view"] = {{"id", view->id}, {"definition_hashes", view->definition_hashes}};
  }
  return j;
}

absl::StatusOr<Contract> Contract::FromJson(const nlohmann::json& json) {
  Contract c;
  std::string type, access;
  FieldReader r(json, "contract");
  r.String("type", &type);
  r.String("id", &c.id);
  r.String("federation", &c.federation);
  r.String("provider", &c.provider);
  r.String("consumer", &c.consumer);
  r.String("dataset", &c.dataset);
  r.IntList("schema_versions", &c.schema_versions);
  r.String("purpose", &c.purpose);
  r.String("access", &access);
  r.String("start_position", &c.start_position);
  r.Duration("mirror_retention", &c.mirror_retention);
  r.Bool("reshare", &c.reshare);
  r.Time("valid_from", &c.valid_from);
  r.Time("valid_until", &c.valid_until);
  if (const nlohmann::json* view = r.Object("view", /*required=*/false); view != nullptr) {
    ViewGrant g;
    FieldReader v(*view, r.PathOf("view"));
    v.String("id", &g.id);
    v.StringList("definition_hashes", &g.definition_hashes);
    v.RejectUnknownKeys();
    RETURN_IF_ERROR(v.status());
    c.view = std::move(g);
  }
  r.RejectUnknownKeys();
  RETURN_IF_ERROR(r.status());
  if (type != kContractType) {
    return absl::InvalidArgumentError(
        absl::StrCat("contract.type: expected '", kContractType, "', got '", type, "'"));
  }
  for (const auto& [field, value] :
       {std::pair<const char*, std::string*>{"provider", &c.provider}, {"consumer", &c.consumer}}) {
    if (!IsValidPeerId(*value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("contract.", field, ": '", *value, "' is not a peer id"));
    }
  }
  if (c.provider == c.consumer) {
    return absl::InvalidArgumentError("contract.consumer: must differ from the provider");
  }
  if (!IsDatasetId(c.dataset)) {
    return absl::InvalidArgumentError(
        absl::StrCat("contract.dataset: '", c.dataset, "' is not a dataset id (<domain>.<name>)"));
  }
  if (c.schema_versions.empty()) {
    return absl::InvalidArgumentError("contract.schema_versions: at least one version is needed");
  }
  for (int64_t v : c.schema_versions) {
    if (v < 1) return absl::InvalidArgumentError("contract.schema_versions: versions start at 1");
  }
  if (access == "raw") {
    c.access = Access::kRaw;
  } else if (access == "aggregate-only") {
    c.access = Access::kAggregateOnly;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("contract.access: expected 'raw' or 'aggregate-only', got '", access, "'"));
  }
  if (c.view.has_value()) {
    if (c.access != Access::kAggregateOnly) {
      return absl::InvalidArgumentError(
          "contract.view: only an aggregate-only contract grants a view");
    }
    if (c.view->id.empty() || c.view->id.size() > 64) {
      return absl::InvalidArgumentError("contract.view.id: 1 to 64 characters");
    }
    for (char ch : c.view->id) {
      if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) {
        return absl::InvalidArgumentError(
            absl::StrCat("contract.view.id: '", c.view->id, "' is not a view id"));
      }
    }
    if (c.view->definition_hashes.empty()) {
      return absl::InvalidArgumentError(
          "contract.view.definition_hashes: at least one definition hash is needed");
    }
    for (const std::string& h : c.view->definition_hashes) {
      bool hex = h.size() == 64;
      for (char ch : h) hex = hex && ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'));
      if (!hex) {
        return absl::InvalidArgumentError(
            absl::StrCat("contract.view.definition_hashes: '", h, "' is not a hex SHA-256"));
      }
    }
  }
  if (c.start_position != "earliest" && c.start_position != "latest" &&
      !ParseRfc3339(c.start_position).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "contract.start_position: expected 'earliest', 'latest' or an RFC 3339 time, got '",
        c.start_position, "'"));
  }
  if (c.valid_until <= c.valid_from) {
    return absl::InvalidArgumentError("contract.valid_until: must be after valid_from");
  }
  return c;
}

absl::StatusOr<std::string> Contract::Hash() const { return DocumentHash(ToJson()); }

std::string SignedContract::ToFileText() const {
  nlohmann::ordered_json out;
  out["contract"] = contract.ToJson();
  nlohmann::json sigs = nlohmann::json::array();
  for (const auto& s : signatures) sigs.push_back({{"peer", s.peer}, {"jws", s.jws}});
  out["signatures"] = sigs;
  return out.dump(2) + "\n";
}

absl::StatusOr<SignedContract> SignedContract::Parse(absl::string_view text) {
  ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(text, "signed contract"));
  FieldReader r(j, "$");
  const nlohmann::json* contract = r.Object("contract");
  const nlohmann::json* sigs = r.Array("signatures");
  r.RejectUnknownKeys();
  RETURN_IF_ERROR(r.status());
  SignedContract out;
  ASSIGN_OR_RETURN(out.contract, Contract::FromJson(*contract));
  for (size_t i = 0; i < sigs->size(); ++i) {
    FieldReader sr((*sigs)[i], absl::StrCat("$.signatures[", i, "]"));
    ContractSignature s;
    sr.String("peer", &s.peer);
    sr.String("jws", &s.jws);
    sr.RejectUnknownKeys();
    RETURN_IF_ERROR(sr.status());
    out.signatures.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<SignedContract> SignedContract::ReadFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  ASSIGN_OR_RETURN(SignedContract c, Parse(text), _.Prepend(absl::StrCat(path, ": ")));
  return c;
}

absl::Status SignContract(SignedContract* contract, absl::string_view peer, const PrivateKey& key,
                          absl::Time now) {
  const Contract& c = contract->contract;
  if (peer != c.provider && peer != c.consumer) {
    return absl::InvalidArgumentError(absl::StrCat("'", peer, "' is not a party to contract ", c.id,
                                                   " (", c.provider, " → ", c.consumer, ")"));
  }
  for (const auto& s : contract->signatures) {
    if (s.peer == peer) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", peer, "' has already signed contract ", c.id));
    }
  }
  ASSIGN_OR_RETURN(std::string canonical, Canonicalize(c.ToJson()));
  ASSIGN_OR_RETURN(std::string jws, SignDetached(key, canonical, kContractJwsType, now));
  contract->signatures.push_back({std::string(peer), std::move(jws)});
  return absl::OkStatus();
}

absl::Status VerifyContract(const SignedContract& signed_contract, const Directory& directory,
                            absl::Time now, absl::Duration skew) {
  const Contract& c = signed_contract.contract;
  const std::string name = absl::StrCat("contract ", c.id);
  if (c.federation != directory.federation) {
    return absl::PermissionDeniedError(absl::StrCat(name, " is for federation '", c.federation,
                                                    "', not '", directory.federation, "'"));
  }
  ASSIGN_OR_RETURN(std::string canonical, Canonicalize(c.ToJson()));
  std::set<std::string> signed_by;
  for (const ContractSignature& s : signed_contract.signatures) {
    if (s.peer != c.provider && s.peer != c.consumer) {
      return absl::PermissionDeniedError(
          absl::StrCat(name, " carries a signature by '", s.peer, "', who is not a party to it"));
    }
    if (!signed_by.insert(s.peer).second) {
      return absl::PermissionDeniedError(
          absl::StrCat(name, " carries two signatures by '", s.peer, "'"));
    }
    absl::StatusOr<JwsHeader> header = ParseDetachedHeader(s.jws);
    if (!header.ok())
      return Prepend(header.status(), absl::StrCat(name, ", signature of ", s.peer, ": "));
    // The key must be one the directory lists for the peer the signature claims, valid now.
    absl::StatusOr<PublicKey> key = directory.SigningKey(s.peer, header->kid, now, skew);
    if (!key.ok()) {
      return absl::PermissionDeniedError(
          absl::StrCat(name, ", signature of ", s.peer, ": ", key.status().message()));
    }
    absl::StatusOr<JwsHeader> verified = VerifyDetached(s.jws, canonical, *key, kContractJwsType);
    if (!verified.ok()) {
      return absl::UnauthenticatedError(
          absl::StrCat(name, ", signature of ", s.peer, ": ", verified.status().message()));
    }
  }
  for (const std::string& party : {c.provider, c.consumer}) {
    if (signed_by.count(party) == 0) {
      return absl::PermissionDeniedError(
          absl::StrCat(name, " is not signed by ",
                       party == c.provider ? "the provider '" : "the consumer '", party, "'",
                       signed_by.empty() ? " (no signatures at all)"
                                         : absl::StrCat(" (only by '", *signed_by.begin(), "')")));
    }
  }
  if (now + skew < c.valid_from) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, " is not valid before ", FormatRfc3339(c.valid_from)));
  }
  if (now - skew > c.valid_until) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, " expired at ", FormatRfc3339(c.valid_until)));
  }
  return absl::OkStatus();
}

nlohmann::json Revocation::ToJson() const {
  return {{"type", kRevocationType},
          {"contract_id", contract_id},
          {"contract_hash", contract_hash},
          {"revoked_by", revoked_by},
          {"revoked_at", FormatRfc3339(revoked_at)},
          {"reason", reason}};
}

absl::StatusOr<Revocation> Revocation::FromJson(const nlohmann::json& json) {
  Revocation r;
  std::string type;
  FieldReader f(json, "revocation");
  f.String("type", &type);
  f.String("contract_id", &r.contract_id);
  f.String("contract_hash", &r.contract_hash);
  f.String("revoked_by", &r.revoked_by);
  f.Time("revoked_at", &r.revoked_at);
  f.String("reason", &r.reason, /*required=*/false);
  f.RejectUnknownKeys();
  RETURN_IF_ERROR(f.status());
  if (type != kRevocationType) {
    return absl::InvalidArgumentError(
        absl::StrCat("revocation.type: expected '", kRevocationType, "', got '", type, "'"));
  }
  return r;
}

std::string SignedRevocation::ToFileText() const {
  nlohmann::ordered_json out;
  out["revocation"] = revocation.ToJson();
  out["jws"] = jws;
  return out.dump(2) + "\n";
}

absl::StatusOr<SignedRevocation> SignedRevocation::Parse(absl::string_view text) {
  ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(text, "signed revocation"));
  FieldReader r(j, "$");
  const nlohmann::json* rev = r.Object("revocation");
  SignedRevocation out;
  r.String("jws", &out.jws);
  r.RejectUnknownKeys();
  RETURN_IF_ERROR(r.status());
  ASSIGN_OR_RETURN(out.revocation, Revocation::FromJson(*rev));
  return out;
}

absl::StatusOr<SignedRevocation> SignedRevocation::ReadFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  ASSIGN_OR_RETURN(SignedRevocation r, Parse(text), _.Prepend(absl::StrCat(path, ": ")));
  return r;
}

absl::StatusOr<SignedRevocation> RevokeContract(const Contract& contract, absl::string_view peer,
                                                const PrivateKey& key, absl::string_view reason,
                                                absl::Time now) {
  if (peer != contract.provider && peer != contract.consumer) {
    return absl::InvalidArgumentError(absl::StrCat("'", peer, "' is not a party to contract ",
                                                   contract.id, " and cannot revoke it"));
  }
  SignedRevocation out;
  out.revocation.contract_id = contract.id;
  ASSIGN_OR_RETURN(out.revocation.contract_hash, contract.Hash());
  out.revocation.revoked_by = std::string(peer);
  out.revocation.revoked_at = absl::FromUnixSeconds(absl::ToUnixSeconds(now));
  out.revocation.reason = std::string(reason);
  ASSIGN_OR_RETURN(std::string canonical, Canonicalize(out.revocation.ToJson()));
  ASSIGN_OR_RETURN(out.jws, SignDetached(key, canonical, kRevocationJwsType, now));
  return out;
}

absl::Status VerifyRevocation(const SignedRevocation& signed_revocation, const Contract& contract,
                              const Directory& directory, absl::Duration skew) {
  const Revocation& r = signed_revocation.revocation;
  ASSIGN_OR_RETURN(std::string hash, contract.Hash());
  if (r.contract_id != contract.id || r.contract_hash != hash) {
    return absl::InvalidArgumentError(absl::StrCat("revocation names contract ", r.contract_id,
                                                   " (", r.contract_hash, "), not ", contract.id,
                                                   " (", hash, ")"));
  }
  if (r.revoked_by != contract.provider && r.revoked_by != contract.consumer) {
    return absl::PermissionDeniedError(absl::StrCat(
        "revocation by '", r.revoked_by, "', who is not a party to contract ", contract.id));
  }
  ASSIGN_OR_RETURN(JwsHeader header, ParseDetachedHeader(signed_revocation.jws));
  absl::StatusOr<PublicKey> key =
      directory.SigningKey(r.revoked_by, header.kid, r.revoked_at, skew);
  if (!key.ok()) return Prepend(key.status(), "revocation: ");
  ASSIGN_OR_RETURN(std::string canonical, Canonicalize(r.ToJson()));
  absl::StatusOr<JwsHeader> ok =
      VerifyDetached(signed_revocation.jws, canonical, *key, kRevocationJwsType);
  if (!ok.ok())
    return absl::UnauthenticatedError(absl::StrCat("revocation: ", ok.status().message()));
  return absl::OkStatus();
}

}  // namespace trust
}  // namespace polder
