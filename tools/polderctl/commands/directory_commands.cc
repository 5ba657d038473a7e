#include "tools/polderctl/commands/directory_commands.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/status/status_macros.h"
#include "common/tls/certificate.h"
#include "common/trust/directory.h"
#include "common/trust/document.h"
#include "common/trust/keys.h"
#include "tools/polderctl/commands/flags.h"

namespace polder {
namespace polderctl {
namespace {

using cli::Args;

absl::Status DirectoryCreate(const Args& a, Output* out) {
  trust::SignedDirectory d;
  d.directory.federation = a.Get("federation");
  int64_t serial = 0;
  if (!absl::SimpleAtoi(a.Get("serial"), &serial) || serial < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--serial: '", a.Get("serial"), "' must be a number >= 1"));
  }
  d.directory.serial = serial;
  ASSIGN_OR_RETURN(absl::Duration valid_for, DurationFlag(a, "valid-for"));
  ASSIGN_OR_RETURN(absl::Time from, TimeFlag(a, "valid-from"));
  d.directory.issued_at = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  d.directory.valid_from = absl::FromUnixSeconds(absl::ToUnixSeconds(from));
  d.directory.valid_until = d.directory.valid_from + valid_for;
  // Round trip through the strict parser so a bad federation name is caught now.
  RETURN_IF_ERROR(trust::Directory::FromJson(d.directory.ToJson()).status());
  if (std::filesystem::exists(a.Get("out")) && !a.Bool("force")) {
    return absl::AlreadyExistsError(absl::StrCat("'", a.Get("out"), "' exists (use --force)"));
  }
  RETURN_IF_ERROR(WritePublic(a.Get("out"), d.ToFileText()));
  out->result = {{"file", a.Get("out")},
                 {"serial", serial},
                 {"valid_until", trust::FormatRfc3339(d.directory.valid_until)}};
  out->Line(absl::StrCat("created directory serial ", serial, " (unsigned) in ", a.Get("out")));
  return absl::OkStatus();
}

absl::Status DirectoryAddPeer(const Args& a, Output* out) {
  // The file may be unsigned or signed: signatures are dropped, as the content changes.
  ASSIGN_OR_RETURN(trust::SignedDirectory d, trust::SignedDirectory::ReadFile(a.Get("file")));
  trust::PeerEntry p;
  p.id = a.Get("peer");
  p.endpoint = a.Get("endpoint");
  p.tls_key_thumbprints = a.GetAll("tls-thumbprint");
  for (const std::string& cert : a.GetAll("tls-cert")) {
    ASSIGN_OR_RETURN(std::string pem, trust::ReadFileToString(cert));
    ASSIGN_OR_RETURN(std::string t, tls::KeyThumbprint(pem), _.Prepend(absl::StrCat(cert, ": ")));
    p.tls_key_thumbprints.push_back(t);
  }
  if (p.tls_key_thumbprints.empty()) {
    return absl::InvalidArgumentError(
        "give the peer's TLS keys with --tls-cert or --tls-thumbprint");
  }
  ASSIGN_OR_RETURN(absl::Duration key_valid_for, DurationFlag(a, "key-valid-for"));
  absl::Time from = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now())) - absl::Minutes(5);
  for (const std::string& pub : a.GetAll("signing-key")) {
    ASSIGN_OR_RETURN(trust::PublicKey key, trust::PublicKey::ReadFile(pub));
    p.signing_keys.push_back({key.kid(), key.RawBase64Url(), from, from + key_valid_for});
  }
  if (p.signing_keys.empty()) {
    return absl::InvalidArgumentError("give at least one --signing-key (a .pub file)");
  }
  bool replaced = false;
  for (auto& existing : d.directory.peers) {
    if (existing.id == p.id) {
      existing = p;
      replaced = true;
    }
  }
  if (!replaced) d.directory.peers.push_back(p);
  // Validate the result as a node would, before writing.
  RETURN_IF_ERROR(trust::Directory::FromJson(d.directory.ToJson()).status());
  size_t dropped = d.signatures.size();
  d.signatures.clear();  // The content changed: old signatures no longer apply.
  RETURN_IF_ERROR(WritePublic(a.Get("file"), d.ToFileText()));
  out->result = {{"peer", p.id},
                 {"replaced", replaced},
                 {"tls_key_thumbprints", p.tls_key_thumbprints},
                 {"signatures_dropped", dropped}};
  out->Line(absl::StrCat(replaced ? "replaced" : "added", " peer '", p.id, "' (",
                         p.tls_key_thumbprints.size(), " TLS key(s), ", p.signing_keys.size(),
                         " signing key(s))",
                         dropped > 0 ? "; the directory must be signed again" : ""));
  return absl::OkStatus();
}

absl::Status DirectorySign(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedDirectory d, trust::SignedDirectory::ReadFile(a.Get("file")));
  ASSIGN_OR_RETURN(trust::PrivateKey key, trust::PrivateKey::ReadFile(a.Get("key")));
  RETURN_IF_ERROR(trust::SignDirectory(&d, key, absl::Now()));
  RETURN_IF_ERROR(WritePublic(a.Get("file"), d.ToFileText()));
  out->result = {{"file", a.Get("file")},
                 {"serial", d.directory.serial},
                 {"signed_by", key.public_key().kid()},
                 {"signatures", d.signatures.size()}};
  out->Line(absl::StrCat("signed directory serial ", d.directory.serial, " with operator key ",
                         key.public_key().kid()));
  return absl::OkStatus();
}

absl::Status DirectoryVerify(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedDirectory d, trust::SignedDirectory::ReadFile(a.Get("file")));
  ASSIGN_OR_RETURN(std::vector<trust::PinnedKey> pins, OperatorKeys(a));
  ASSIGN_OR_RETURN(absl::Time at, TimeFlag(a, "at"));
  RETURN_IF_ERROR(trust::VerifyDirectory(d, pins, at, absl::Minutes(5)));
  std::vector<std::string> peers;
  for (const auto& p : d.directory.peers) peers.push_back(p.id);
  out->result = {{"valid", true},
                 {"federation", d.directory.federation},
                 {"serial", d.directory.serial},
                 {"valid_until", trust::FormatRfc3339(d.directory.valid_until)},
                 {"peers", peers}};
  out->Line(absl::StrCat("directory serial ", d.directory.serial, " of '", d.directory.federation,
                         "' is valid until ", trust::FormatRfc3339(d.directory.valid_until),
                         "; peers: ", absl::StrJoin(peers, ", ")));
  // Nodes warn a week ahead; so does the operator's tool.
  const absl::Duration left = d.directory.valid_until - at;
  out->result["expires_soon"] = left < absl::Hours(24 * 7);
  if (left < absl::Hours(24 * 7)) {
    out->Line(absl::StrCat("warning: the directory expires in ",
                           absl::FormatDuration(absl::Trunc(left, absl::Minutes(1))),
                           "; issue serial ", d.directory.serial + 1, " soon"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<Command> DirectoryCommands() {
  return {
      {"directory",
       "create",
       "start a new, unsigned peer directory",
       {{"federation", "federation name", true},
        {"serial", "serial number; must exceed the one peers hold", true},
        {"out", "directory file", true},
        {"valid-for", "validity", false, false, false, "720h"},
        {"valid-from", "RFC 3339 start (default now)"},
        {"force", "overwrite an existing file", false, false, true}},
       DirectoryCreate},
      {"directory",
       "add-peer",
       "add or replace a peer (drops signatures: sign again)",
       {{"file", "directory file", true},
        {"peer", "peer id", true},
        {"endpoint", "federation endpoint host:port", true},
        {"tls-cert", "a TLS certificate of the peer (its key thumbprint is listed)", false, true},
        {"tls-thumbprint", "a TLS key thumbprint sha256:...", false, true},
        {"signing-key", "a signing public key file (.pub)", false, true},
        {"key-valid-for", "validity of the listed signing keys", false, false, false, "8760h"}},
       DirectoryAddPeer},
      {"directory",
       "sign",
       "sign the directory with the operator's signing key",
       {{"file", "directory file", true}, {"key", "operator signing key (private)", true}},
       DirectorySign},
      {"directory",
       "verify",
       "verify the directory against pinned operator keys",
       {{"file", "directory file", true},
        {"operator-key", "pinned operator public key (.pub)", true, true},
        {"at", "RFC 3339 time to verify at (default now)"}},
       DirectoryVerify},
  };
}

}  // namespace polderctl
}  // namespace polder
