#include "tools/polderctl/commands/contract_commands.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/status/status_macros.h"
#include "common/trust/contract.h"
#include "common/trust/directory.h"
#include "common/trust/document.h"
#include "common/trust/keys.h"
#include "tools/polderctl/commands/flags.h"

namespace polder {
namespace polderctl {
namespace {

using cli::Args;

absl::Status ContractPropose(const Args& a, Output* out) {
  trust::SignedContract c;
  trust::Contract& k = c.contract;
  k.id = a.Get("id");
  k.federation = a.Get("federation");
  k.provider = a.Get("provider");
  k.consumer = a.Get("consumer");
  k.dataset = a.Get("dataset");
  for (absl::string_view v : absl::StrSplit(a.Get("schema-versions"), ',', absl::SkipEmpty())) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(v, &n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--schema-versions: '", v, "' is not a number"));
    }
    k.schema_versions.push_back(n);
  }
  k.purpose = a.Get("purpose");
  std::string access = a.Get("access");
  if (access == "raw") {
    k.access = trust::Access::kRaw;
  } else if (access == "aggregate-only") {
    k.access = trust::Access::kAggregateOnly;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--access: expected raw or aggregate-only, got '", access, "'"));
  }
  if (a.Has("view")) {
    trust::ViewGrant view;
    view.id = a.Get("view");
    for (absl::string_view h : absl::StrSplit(a.Get("definition-hashes"), ',', absl::SkipEmpty())) {
      view.definition_hashes.push_back(std::string(h));
    }
    k.view = std::move(view);
  } else if (a.Has("definition-hashes")) {
    return absl::InvalidArgumentError("--definition-hashes: only with --view");
  }
  k.start_position = a.Get("start");
  ASSIGN_OR_RETURN(k.mirror_retention, DurationFlag(a, "retention"));
  k.reshare = a.Bool("reshare");
  ASSIGN_OR_RETURN(absl::Duration valid_for, DurationFlag(a, "valid-for"));
  ASSIGN_OR_RETURN(absl::Time from, TimeFlag(a, "valid-from"));
  k.valid_from = absl::FromUnixSeconds(absl::ToUnixSeconds(from));
  k.valid_until = k.valid_from + valid_for;
  RETURN_IF_ERROR(trust::Contract::FromJson(k.ToJson()).status());
  if (std::filesystem::exists(a.Get("out")) && !a.Bool("force")) {
    return absl::AlreadyExistsError(absl::StrCat("'", a.Get("out"), "' exists (use --force)"));
  }
  RETURN_IF_ERROR(WritePublic(a.Get("out"), c.ToFileText()));
  ASSIGN_OR_RETURN(std::string hash, k.Hash());
  out->result = {{"file", a.Get("out")}, {"id", k.id}, {"hash", hash}};
  out->Line(absl::StrCat("proposed contract ", k.id, ": ", k.provider, " shares ", k.dataset,
                         " with ", k.consumer, " (", access, ") until ",
                         trust::FormatRfc3339(k.valid_until)));
  out->Line("  both parties sign it with: polderctl contract sign --file ... --peer ... --key ...");
  return absl::OkStatus();
}

absl::Status ContractSign(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedContract c, trust::SignedContract::ReadFile(a.Get("file")));
  ASSIGN_OR_RETURN(trust::PrivateKey key, trust::PrivateKey::ReadFile(a.Get("key")));
  RETURN_IF_ERROR(trust::SignContract(&c, a.Get("peer"), key, absl::Now()));
  RETURN_IF_ERROR(WritePublic(a.Get("file"), c.ToFileText()));
  std::vector<std::string> by;
  for (const auto& s : c.signatures) by.push_back(s.peer);
  out->result = {{"id", c.contract.id}, {"signed_by", by}};
  out->Line(absl::StrCat("'", a.Get("peer"), "' signed contract ", c.contract.id,
                         " (signatures: ", absl::StrJoin(by, ", "), ")"));
  return absl::OkStatus();
}

absl::Status ContractVerify(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedContract c, trust::SignedContract::ReadFile(a.Get("file")));
  ASSIGN_OR_RETURN(trust::SignedDirectory d, trust::SignedDirectory::ReadFile(a.Get("directory")));
  ASSIGN_OR_RETURN(std::vector<trust::PinnedKey> pins, OperatorKeys(a));
  ASSIGN_OR_RETURN(absl::Time at, TimeFlag(a, "at"));
  RETURN_IF_ERROR(trust::VerifyDirectory(d, pins, at, absl::Minutes(5)));
  RETURN_IF_ERROR(trust::VerifyContract(c, d.directory, at, absl::Minutes(5)));
  for (const std::string& path : a.GetAll("revocation")) {
    ASSIGN_OR_RETURN(trust::SignedRevocation r, trust::SignedRevocation::ReadFile(path));
    absl::Status rs = trust::VerifyRevocation(r, c.contract, d.directory, absl::Minutes(5));
    if (rs.ok()) {
      return absl::PermissionDeniedError(
          absl::StrCat("contract ", c.contract.id, " was revoked by '", r.revocation.revoked_by,
                       "' at ", trust::FormatRfc3339(r.revocation.revoked_at),
                       r.revocation.reason.empty() ? "" : absl::StrCat(": ", r.revocation.reason)));
    }
    return Prepend(rs, absl::StrCat(path, ": "));
  }
  ASSIGN_OR_RETURN(std::string hash, c.contract.Hash());
  out->result = {{"valid", true},
                 {"id", c.contract.id},
                 {"hash", hash},
                 {"valid_until", trust::FormatRfc3339(c.contract.valid_until)}};
  out->Line(absl::StrCat("contract ", c.contract.id, " is valid: signed by ", c.contract.provider,
                         " and ", c.contract.consumer, ", until ",
                         trust::FormatRfc3339(c.contract.valid_until)));
  return absl::OkStatus();
}

absl::Status ContractRevoke(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedContract c, trust::SignedContract::ReadFile(a.Get("file")));
  ASSIGN_OR_RETURN(trust::PrivateKey key, trust::PrivateKey::ReadFile(a.Get("key")));
  ASSIGN_OR_RETURN(trust::SignedRevocation r, trust::RevokeContract(c.contract, a.Get("peer"), key,
                                                                    a.Get("reason"), absl::Now()));
  RETURN_IF_ERROR(WritePublic(a.Get("out"), r.ToFileText()));
  out->result = {
      {"id", c.contract.id}, {"revocation", a.Get("out")}, {"revoked_by", a.Get("peer")}};
  out->Line(absl::StrCat("'", a.Get("peer"), "' revoked contract ", c.contract.id, "; send ",
                         a.Get("out"), " to the other party"));
  return absl::OkStatus();
}

}  // namespace

std::vector<Command> ContractCommands() {
  return {
      {"contract",
       "propose",
       "write a sharing contract for both parties to sign",
       {{"id", "contract id", true},
        {"federation", "federation name", true},
        {"provider", "providing peer", true},
        {"consumer", "consuming peer", true},
        {"dataset", "dataset id <domain>.<name>", true},
        {"schema-versions", "allowed schema versions, comma separated", true},
        {"purpose", "purpose of the exchange", true},
        {"access", "raw or aggregate-only", false, false, false, "raw"},
        {"view", "aggregate-only: the view of the dataset granted (ADR 0016)"},
        {"definition-hashes",
         "with --view: the view definition hashes allowed, comma separated (the provider's "
         "ListDatasets or /statusz shows them)"},
        {"start", "earliest, latest or an RFC 3339 time", false, false, false, "earliest"},
        {"retention", "mirror retention", false, false, false, "720h"},
        {"reshare", "the consumer may share what it mirrors", false, false, true},
        {"valid-for", "validity", false, false, false, "2160h"},
        {"valid-from", "RFC 3339 start (default now)"},
        {"out", "contract file", true},
        {"force", "overwrite an existing file", false, false, true}},
       ContractPropose},
      {"contract",
       "sign",
       "sign a contract as one of its parties",
       {{"file", "contract file", true},
        {"peer", "the signing party", true},
        {"key", "the party's signing key (private)", true}},
       ContractSign},
      {"contract",
       "verify",
       "verify both signatures against a verified directory",
       {{"file", "contract file", true},
        {"directory", "signed directory file", true},
        {"operator-key", "pinned operator public key (.pub)", true, true},
        {"revocation", "a revocation to take into account", false, true},
        {"at", "RFC 3339 time to verify at (default now)"}},
       ContractVerify},
  };
}

std::vector<Command> ContractRevocationCommands() {
  return {
      {"contract",
       "revoke",
       "revoke a contract as one of its parties",
       {{"file", "contract file", true},
        {"peer", "the revoking party", true},
        {"key", "the party's signing key (private)", true},
        {"reason", "why", false},
        {"out", "revocation file", true}},
       ContractRevoke},
  };
}

}  // namespace polderctl
}  // namespace polder
