#include "common/trust/trust_config.h"

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "common/trust/document.h"

namespace polder {
namespace trust {

void ReadTrustConfig(config::ObjectReader& section, TrustConfig* out) {
  section.Required("federation", &out->federation)
      .Optional("directory_file", &out->directory_file)
      .Optional("directory_state", &out->directory_state)
      .Optional("expiry_warning", &out->expiry_warning)
      .Optional("clock_skew", &out->clock_skew);
  section.Check(out->federation.empty() || IsValidPeerId(out->federation), "federation",
                "must be a lowercase name such as nl-smartcity");
  section.ObjectList<PinnedKeyConfig>(
      "operator_keys", &out->operator_keys,
      [](config::ObjectReader& r, PinnedKeyConfig* k) {
        r.Required("public_key_file", &k->public_key_file)
            .Optional("valid_from", &k->valid_from)
            .Optional("valid_until", &k->valid_until);
        r.Check(k->valid_from.empty() || ParseRfc3339(k->valid_from).ok(), "valid_from",
                "must be an RFC 3339 time");
        r.Check(k->valid_until.empty() || ParseRfc3339(k->valid_until).ok(), "valid_until",
                "must be an RFC 3339 time");
      },
      config::kRequired);
  section.Check(!out->operator_keys.empty() || !section.Has("operator_keys"), "operator_keys",
                "at least one pinned operator key is needed");
}

absl::StatusOr<std::vector<PinnedKey>> LoadPinnedKeys(const TrustConfig& config) {
  std::vector<PinnedKey> pins;
  for (size_t i = 0; i < config.operator_keys.size(); ++i) {
    const PinnedKeyConfig& k = config.operator_keys[i];
    const std::string where = absl::StrCat("trust.operator_keys[", i, "]");
    ASSIGN_OR_RETURN(PublicKey key, PublicKey::ReadFile(k.public_key_file),
                     _.Prepend(where + ": "));
    PinnedKey pin{key};
    if (!k.valid_from.empty()) {
      ASSIGN_OR_RETURN(pin.valid_from, ParseRfc3339(k.valid_from),
                       _.Prepend(where + ".valid_from: "));
    }
    if (!k.valid_until.empty()) {
      ASSIGN_OR_RETURN(pin.valid_until, ParseRfc3339(k.valid_until),
                       _.Prepend(where + ".valid_until: "));
    }
    if (pin.valid_until <= pin.valid_from) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": valid_until must be after valid_from"));
    }
    pins.push_back(std::move(pin));
  }
  if (pins.empty())
    return absl::InvalidArgumentError("trust.operator_keys: no pinned operator key");
  return pins;
}

absl::StatusOr<std::unique_ptr<DirectoryStore>> OpenDirectoryStore(const TrustConfig& config) {
  DirectoryStore::Options o;
  ASSIGN_OR_RETURN(o.pins, LoadPinnedKeys(config));
  o.state_path = config.directory_state;
  o.skew = config.clock_skew;
  o.expiry_warning = config.expiry_warning;
  ASSIGN_OR_RETURN(std::unique_ptr<DirectoryStore> store, DirectoryStore::Open(o));
  if (!config.directory_file.empty()) {
    absl::Status s = store->UpdateFromFile(config.directory_file);
    if (!s.ok()) {
      if (store->current() == nullptr) return Prepend(s, "trust.directory_file: ");
      // A stale file next to a newer last-good copy is normal after an update; say so.
      log::Warning("directory file not installed; keeping the last good directory",
                   {{"file", config.directory_file},
                    {"reason", std::string(s.message())},
                    {"serial_in_force", store->current()->serial}});
    }
  }
  absl::Status expiry = store->CheckExpiry();
  if (!expiry.ok())
    log::Warning("federation directory", {{"problem", std::string(expiry.message())}});
  return store;
}

void RefreshDirectory(DirectoryStore& store, const TrustConfig& config) {
  if (!config.directory_file.empty()) {
    absl::Status s = store.UpdateFromFile(config.directory_file);
    if (!s.ok() && !absl::IsFailedPrecondition(s)) {
      log::Warning("directory file not installed", {{"reason", std::string(s.message())}});
    }
  }
  absl::Status e = store.CheckExpiry();
  if (!e.ok()) log::Warning("federation directory", {{"problem", std::string(e.message())}});
}

}  // namespace trust
}  // namespace polder
