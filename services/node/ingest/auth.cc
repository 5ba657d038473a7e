#include "services/node/ingest/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"

namespace polder {
namespace node {
namespace {

std::string Sha256(absl::string_view s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return std::string(reinterpret_cast<const char*>(d), sizeof(d));
}

std::string Stamp(const std::string& path) {
  std::error_code ec;
  auto t = std::filesystem::last_write_time(path, ec);
  auto size = std::filesystem::file_size(path, ec);
  return ec ? "" : absl::StrCat(t.time_since_epoch().count(), "/", size);
}

}  // namespace

absl::StatusOr<std::unique_ptr<IngestAuthenticator>> IngestAuthenticator::Create(
    const std::vector<IngestIdentity>& identities, bool development) {
  std::unique_ptr<IngestAuthenticator> a(new IngestAuthenticator());
  a->development_ = development;
  absl::MutexLock lock(&a->mu_);
  for (const IngestIdentity& id : identities) {
    Identity& i = a->identities_[id.id];
    i.datasets.insert(id.datasets.begin(), id.datasets.end());
    i.token_file = id.token_file;
  }
  absl::Status s = a->ReloadTokens();
  if (!s.ok()) return s;
  return a;
}

absl::Status IngestAuthenticator::ReloadTokens() {
  for (auto& [name, id] : identities_) {
    if (id.token_file.empty()) continue;
    const std::string stamp = Stamp(id.token_file);
    if (!stamp.empty() && stamp == id.token_stamp) continue;
    std::ifstream in(id.token_file);
    std::string token;
    if (!in || !std::getline(in, token)) {
      if (id.token_sha256.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat("ingest identity '", name, "': token file ", id.token_file, " cannot be read"));
      }
      log::Warning("ingest token file unreadable; keeping the previous token",
                   {{"identity", name}, {"file", id.token_file}});
      continue;
    }
    token = std::string(absl::StripAsciiWhitespace(token));
    if (token.size() < 16) {
      return absl::FailedPreconditionError(absl::StrCat("ingest identity '", name, "': the token in ", id.token_file,
                                                        " is shorter than 16 characters"));
    }
    id.token_sha256 = Sha256(token);
    id.token_stamp = stamp;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> IngestAuthenticator::Authenticate(const std::string& certificate_peer_id,
                                                              const std::string& authorization) {
  if (development_) return std::string("development");
  absl::MutexLock lock(&mu_);
  if (!certificate_peer_id.empty()) {
    if (identities_.count(certificate_peer_id) == 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("'", certificate_peer_id, "' is not an ingest identity of this node"));
    }
    return certificate_peer_id;
  }
  if (authorization.empty()) {
    return absl::UnauthenticatedError("present a client certificate or an Authorization: Bearer token");
  }
  if (!absl::StartsWithIgnoreCase(authorization, "Bearer ")) {
    return absl::UnauthenticatedError("the Authorization header must be 'Bearer <token>'");
  }
  absl::Status reload = ReloadTokens();
  if (!reload.ok()) log::Warning("ingest tokens not reloaded", {{"error", std::string(reload.message())}});
  const std::string presented = Sha256(absl::StripAsciiWhitespace(authorization.substr(7)));
  std::string match;
  for (const auto& [name, id] : identities_) {
    // Compare every token (constant time each), so timing does not tell which matched.
    if (!id.token_sha256.empty() && CRYPTO_memcmp(id.token_sha256.data(), presented.data(), presented.size()) == 0) {
      match = name;
    }
  }
  if (match.empty()) return absl::UnauthenticatedError("the bearer token is not valid");
  return match;
}

absl::Status IngestAuthenticator::Authorize(const std::string& identity, const std::string& dataset) const {
  if (development_) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  auto it = identities_.find(identity);
  if (it == identities_.end()) {
    return absl::PermissionDeniedError(absl::StrCat("'", identity, "' is not an ingest identity of this node"));
  }
  if (it->second.datasets.count("*") || it->second.datasets.count(dataset)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("'", identity, "' may not publish '", dataset, "' (granted: ",
                                                  absl::StrJoin(it->second.datasets, ", "), ")"));
}

}  // namespace node
}  // namespace polder
