#include "common/trust/directory.h"

#include <unistd.h>

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json/bounded.h"
#include "common/status/status_macros.h"
#include "common/trust/document.h"
#include "common/trust/jcs.h"
#include "common/trust/jws.h"

namespace polder {
namespace trust {
namespace {

bool IsThumbprint(absl::string_view t) {
  if (!absl::StartsWith(t, "sha256:")) return false;
  absl::StatusOr<std::string> raw = Base64UrlDecode(t.substr(7));
  return raw.ok() && raw->size() == 32;
}

absl::Status ReadSigningKey(const nlohmann::json& j, const std::string& path,
                            SigningKeyEntry* out) {
  FieldReader r(j, path);
  r.String("kid", &out->kid);
  r.String("x", &out->x);
  r.Time("valid_from", &out->valid_from);
  r.Time("valid_until", &out->valid_until);
  r.RejectUnknownKeys();
  RETURN_IF_ERROR(r.status());
  absl::StatusOr<PublicKey> key = PublicKey::FromRaw(out->x);
  if (!key.ok()) return Prepend(key.status(), absl::StrCat(r.PathOf("x"), ": "));
  if (key->kid() != out->kid) {
    return absl::InvalidArgumentError(absl::StrCat(
        r.PathOf("kid"), ": '", out->kid, "' is not the thumbprint of the key (", key->kid(), ")"));
  }
  if (out->valid_until <= out->valid_from) {
    return absl::InvalidArgumentError(
        absl::StrCat(r.PathOf("valid_until"), ": must be after valid_from"));
  }
  return absl::OkStatus();
}

absl::Status ReadPeer(const nlohmann::json& j, const std::string& path, PeerEntry* out) {
  FieldReader r(j, path);
  r.String("id", &out->id);
  r.String("endpoint", &out->endpoint);
  r.StringList("tls_key_thumbprints", &out->tls_key_thumbprints);
  const nlohmann::json* keys = r.Array("signing_keys");
  r.RejectUnknownKeys();
  RETURN_IF_ERROR(r.status());
  if (!IsValidPeerId(out->id)) {
    return absl::InvalidArgumentError(
        absl::StrCat(r.PathOf("id"), ": '", out->id, "' is not a peer id ([a-z][a-z0-9-]{1,62})"));
  }
  if (out->endpoint.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(r.PathOf("endpoint"), ": expected host:port, got '", out->endpoint, "'"));
  }
  for (size_t i = 0; i < out->tls_key_thumbprints.size(); ++i) {
    if (!IsThumbprint(out->tls_key_thumbprints[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ".tls_key_thumbprints[", i, "]: expected sha256:<base64url of 32 bytes>, got '",
          out->tls_key_thumbprints[i], "'"));
    }
  }
  for (size_t i = 0; i < keys->size(); ++i) {
    SigningKeyEntry k;
    RETURN_IF_ERROR(ReadSigningKey((*keys)[i], absl::StrCat(path, ".signing_keys[", i, "]"), &k));
    out->signing_keys.push_back(std::move(k));
  }
  return absl::OkStatus();
}

}  // namespace

const PeerEntry* Directory::FindPeer(absl::string_view id) const {
  for (const PeerEntry& p : peers) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

absl::Status Directory::CheckTlsKey(absl::string_view peer_id, absl::string_view thumbprint) const {
  const PeerEntry* peer = FindPeer(peer_id);
  if (peer == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat(
        "peer '", peer_id, "' is not in the federation directory (serial ", serial, ")"));
  }
  for (const std::string& t : peer->tls_key_thumbprints) {
    if (t == thumbprint) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat("the TLS key ", thumbprint,
                                                  " is not one the directory (serial ", serial,
                                                  ") lists for peer '", peer_id, "'"));
}

absl::StatusOr<PublicKey> Directory::SigningKey(absl::string_view peer_id, absl::string_view kid,
                                                absl::Time at, absl::Duration skew) const {
  const PeerEntry* peer = FindPeer(peer_id);
  if (peer == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("peer '", peer_id, "' is not in the federation directory"));
  }
  for (const SigningKeyEntry& k : peer->signing_keys) {
    if (k.kid != kid) continue;
    if (at + skew < k.valid_from) {
      return absl::PermissionDeniedError(absl::StrCat("signing key ", kid, " of '", peer_id,
                                                      "' is not valid before ",
                                                      FormatRfc3339(k.valid_from)));
    }
    if (at - skew > k.valid_until) {
      return absl::PermissionDeniedError(absl::StrCat(
          "signing key ", kid, " of '", peer_id, "' expired at ", FormatRfc3339(k.valid_until)));
    }
    return PublicKey::FromRaw(k.x);
  }
  return absl::PermissionDeniedError(
      absl::StrCat("key ", kid, " is not a signing key the directory lists for '", peer_id, "'"));
}

nlohmann::json Directory::ToJson() const {
  nlohmann::json peers_json = nlohmann::json::array();
  for (const PeerEntry& p : peers) {
    nlohmann::json keys = nlohmann::json::array();
    for (const SigningKeyEntry& k : p.signing_keys) {
      keys.push_back({{"kid", k.kid},
                      {"x", k.x},
                      {"valid_from", FormatRfc3339(k.valid_from)},
                      {"valid_until", FormatRfc3339(k.valid_until)}});
    }
    peers_json.push_back({{"id", p.id},
                          {"endpoint", p.endpoint},
                          {"tls_key_thumbprints", p.tls_key_thumbprints},
                          {"signing_keys", keys}});
  }
  return {{"type", kDirectoryType},
          {"federation", federation},
          {"serial", serial},
          {"issued_at", FormatRfc3339(issued_at)},
          {"valid_from", FormatRfc3339(valid_from)},
          {"valid_until", FormatRfc3339(valid_until)},
          {"peers", peers_json}};
}

absl::StatusOr<Directory> Directory::FromJson(const nlohmann::json& json) {
  Directory d;
  std::string type;
  FieldReader r(json, "directory");
  r.String("type", &type);
  r.String("federation", &d.federation);
  r.Int("serial", &d.serial);
  r.Time("issued_at", &d.issued_at);
  r.Time("valid_from", &d.valid_from);
  r.Time("valid_until", &d.valid_until);
  const nlohmann::json* peers = r.Array("peers");
  r.RejectUnknownKeys();
  RETURN_IF_ERROR(r.status());
  if (type != kDirectoryType) {
    return absl::InvalidArgumentError(
        absl::StrCat("directory.type: expected '", kDirectoryType, "', got '", type, "'"));
  }
  if (!IsValidPeerId(d.federation)) {
    return absl::InvalidArgumentError(
        absl::StrCat("directory.federation: '", d.federation, "' is not a valid name"));
  }
  if (d.serial < 1) return absl::InvalidArgumentError("directory.serial: must be at least 1");
  if (d.valid_until <= d.valid_from) {
    return absl::InvalidArgumentError("directory.valid_until: must be after valid_from");
  }
  std::set<std::string> ids;
  for (size_t i = 0; i < peers->size(); ++i) {
    PeerEntry p;
    RETURN_IF_ERROR(ReadPeer((*peers)[i], absl::StrCat("directory.peers[", i, "]"), &p));
    if (!ids.insert(p.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("directory.peers[", i, "].id: peer '", p.id, "' is listed twice"));
    }
    d.peers.push_back(std::move(p));
  }
  return d;
}

std::string SignedDirectory::ToFileText() const {
  nlohmann::ordered_json out;
  out["directory"] = directory.ToJson();
  out["signatures"] = signatures;
  return out.dump(2) + "\n";
}

absl::StatusOr<SignedDirectory> SignedDirectory::Parse(absl::string_view text) {
  nlohmann::json j = json_input::ParseOrDiscarded(text);
  if (j.is_discarded()) return absl::InvalidArgumentError("signed directory: not valid JSON");
  SignedDirectory out;
  FieldReader r(j, "$");
  r.StringList("signatures", &out.signatures);
  const nlohmann::json* dir = r.Object("directory");
  r.RejectUnknownKeys();
  RETURN_IF_ERROR(r.status());
  ASSIGN_OR_RETURN(out.directory, Directory::FromJson(*dir));
  return out;
}

absl::StatusOr<SignedDirectory> SignedDirectory::ReadFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  ASSIGN_OR_RETURN(SignedDirectory d, Parse(text), _.Prepend(absl::StrCat(path, ": ")));
  return d;
}

absl::Status SignDirectory(SignedDirectory* signed_directory, const PrivateKey& operator_key,
                           absl::Time now) {
  ASSIGN_OR_RETURN(std::string canonical, Canonicalize(signed_directory->directory.ToJson()));
  ASSIGN_OR_RETURN(std::string jws, SignDetached(operator_key, canonical, kDirectoryJwsType, now));
  signed_directory->signatures.push_back(std::move(jws));
  return absl::OkStatus();
}

absl::Status VerifyDirectory(const SignedDirectory& signed_directory,
                             const std::vector<PinnedKey>& pins, absl::Time now,
                             absl::Duration skew) {
  const Directory& d = signed_directory.directory;
  ASSIGN_OR_RETURN(std::string canonical, Canonicalize(d.ToJson()));
  if (signed_directory.signatures.empty()) {
    return absl::UnauthenticatedError("directory is not signed");
  }
  std::vector<std::string> reasons;
  bool verified = false;
  for (const std::string& jws : signed_directory.signatures) {
    absl::StatusOr<JwsHeader> header = ParseDetachedHeader(jws);
    if (!header.ok()) {
      reasons.push_back(std::string(header.status().message()));
      continue;
    }
    const PinnedKey* pin = nullptr;
    for (const PinnedKey& p : pins) {
      if (p.key.kid() == header->kid) pin = &p;
    }
    if (pin == nullptr) {
      reasons.push_back(
          absl::StrCat("signed by key ", header->kid, ", which is not a pinned operator key"));
      continue;
    }
    absl::StatusOr<JwsHeader> ok = VerifyDetached(jws, canonical, pin->key, kDirectoryJwsType);
    if (!ok.ok()) {
      reasons.push_back(std::string(ok.status().message()));
      continue;
    }
    if (now + skew < pin->valid_from) {
      reasons.push_back(absl::StrCat("operator key ", header->kid, " is not valid before ",
                                     FormatRfc3339(pin->valid_from)));
      continue;
    }
    if (now - skew > pin->valid_until) {
      reasons.push_back(absl::StrCat("operator key ", header->kid, " expired at ",
                                     FormatRfc3339(pin->valid_until)));
      continue;
    }
    verified = true;
    break;
  }
  if (!verified) {
    std::string why = absl::StrJoin(reasons, "; ");
    bool only_expired = true;
    for (const std::string& r : reasons) {
      if (!absl::StrContains(r, "expired at") && !absl::StrContains(r, "not valid before")) {
        only_expired = false;
      }
    }
    std::string msg = absl::StrCat("directory serial ", d.serial, " rejected: ", why);
    return only_expired ? absl::FailedPreconditionError(msg) : absl::UnauthenticatedError(msg);
  }
  if (now + skew < d.valid_from) {
    return absl::FailedPreconditionError(absl::StrCat(
        "directory serial ", d.serial, " is not valid before ", FormatRfc3339(d.valid_from)));
  }
  if (now - skew > d.valid_until) {
    return absl::FailedPreconditionError(
        absl::StrCat("directory serial ", d.serial, " expired at ", FormatRfc3339(d.valid_until)));
  }
  return absl::OkStatus();
}

// ---- DirectoryStore
// ------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<DirectoryStore>> DirectoryStore::Open(Options options) {
  if (options.pins.empty()) {
    return absl::InvalidArgumentError("directory store: no pinned operator key configured");
  }
  std::unique_ptr<DirectoryStore> store(new DirectoryStore(std::move(options)));
  const std::string& path = store->options_.state_path;
  if (!path.empty() && access(path.c_str(), F_OK) == 0) {
    ASSIGN_OR_RETURN(SignedDirectory last, SignedDirectory::ReadFile(path),
                     _.Prepend("last good directory: "));
    // Signatures are checked again; an expired directory is still loaded (and reported by
    // CheckExpiry), since it is the best knowledge there is until an update arrives.
    absl::Status s =
        VerifyDirectory(last, store->options_.pins, store->Now(), store->options_.skew);
    if (!s.ok() && s.code() != absl::StatusCode::kFailedPrecondition) {
      return Prepend(s, absl::StrCat("last good directory ", path, ": "));
    }
    ASSIGN_OR_RETURN(std::string canonical, Canonicalize(last.directory.ToJson()));
    absl::MutexLock lock(&store->mu_);
    store->current_ = std::make_shared<const Directory>(std::move(last.directory));
    store->current_canonical_ = std::move(canonical);
  }
  return store;
}

absl::Status DirectoryStore::Update(const SignedDirectory& update) {
  RETURN_IF_ERROR(VerifyDirectory(update, options_.pins, Now(), options_.skew));
  ASSIGN_OR_RETURN(std::string canonical, Canonicalize(update.directory.ToJson()));
  absl::MutexLock lock(&mu_);
  if (current_ != nullptr) {
    if (update.directory.federation != current_->federation) {
      return absl::FailedPreconditionError(absl::StrCat("directory is for federation '",
                                                        update.directory.federation, "', not '",
                                                        current_->federation, "'"));
    }
    if (update.directory.serial < current_->serial) {
      return absl::FailedPreconditionError(
          absl::StrCat("directory serial ", update.directory.serial, " is older than serial ",
                       current_->serial, " already in force (rollback refused)"));
    }
    if (update.directory.serial == current_->serial) {
      if (canonical == current_canonical_) return absl::OkStatus();
      return absl::FailedPreconditionError(
          absl::StrCat("directory serial ", update.directory.serial,
                       " differs from the directory in force with the same serial; a change needs "
                       "a new serial"));
    }
  }
  if (!options_.state_path.empty()) {
    // The node's own record of the last good directory (its rollback protection): its alone.
    RETURN_IF_ERROR(WriteFileAtomically(options_.state_path, update.ToFileText(), 0600));
  }
  current_ = std::make_shared<const Directory>(update.directory);
  current_canonical_ = std::move(canonical);
  return absl::OkStatus();
}

absl::Status DirectoryStore::UpdateFromFile(const std::string& path) {
  ASSIGN_OR_RETURN(SignedDirectory d, SignedDirectory::ReadFile(path));
  return Update(d);
}

std::shared_ptr<const Directory> DirectoryStore::current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

absl::Status DirectoryStore::CheckExpiry() const {
  std::shared_ptr<const Directory> d = current();
  if (d == nullptr) return absl::FailedPreconditionError("no federation directory installed");
  absl::Time now = Now();
  if (now - options_.skew > d->valid_until) {
    return absl::FailedPreconditionError(absl::StrCat(
        "directory serial ", d->serial, " expired at ", FormatRfc3339(d->valid_until)));
  }
  if (d->valid_until - now < options_.expiry_warning) {
    return absl::FailedPreconditionError(
        absl::StrCat("directory serial ", d->serial, " expires in ",
                     absl::FormatDuration(absl::Trunc(d->valid_until - now, absl::Minutes(1))),
                     " (at ", FormatRfc3339(d->valid_until), "); fetch a newer one"));
  }
  return absl::OkStatus();
}

}  // namespace trust
}  // namespace polder
