#include "services/node/ingest/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "common/trust/keys.h"

namespace polder {
namespace node {
namespace {

std::string Sha256(absl::string_view s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return std::string(reinterpret_cast<const char*>(d), sizeof(d));
}

// Changes whenever the file's content, mode or identity (a replaced file) may have changed.
std::string Stamp(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, "/", st.st_size, "/", st.st_mode,
                      "/", st.st_ino);
}

// The token in `path`, or why there is none. The file must be the owner's alone: a token
// readable by others is as good as published.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return absl::NotFoundError(absl::StrCat("token file ", path, " is missing"));
  if (absl::Status s = trust::CheckPrivateFile(path, "token file"); !s.ok()) return s;
  std::ifstream in(path);
  if (!in)
    return absl::FailedPreconditionError(absl::StrCat("token file ", path, " cannot be read"));
  std::string token;
  std::getline(in, token);
  token = std::string(absl::StripAsciiWhitespace(token));
  if (token.empty())
    return absl::FailedPreconditionError(absl::StrCat("token file ", path, " is empty"));
  if (token.size() < 16) {
    return absl::FailedPreconditionError(
        absl::StrCat("the token in ", path, " is shorter than 16 characters"));
  }
  return token;
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
  absl::Status first;
  for (auto& [name, id] : identities_) {
    if (id.token_file.empty()) continue;
    const std::string stamp = Stamp(id.token_file);
    if (!stamp.empty() && stamp == id.token_stamp) {
      if (!id.problem.empty() && first.ok()) first = absl::FailedPreconditionError(id.problem);
      continue;
    }
    absl::StatusOr<std::string> token = ReadTokenFile(id.token_file);
    id.token_stamp = stamp;
    if (!token.ok()) {
      const std::string problem =
          absl::StrCat("ingest identity '", name, "': ", token.status().message());
      if (problem != id.problem) {
        log::Error(id.token_sha256.empty()
                       ? "ingest token invalid"
                       : "ingest token revoked: its file no longer holds a valid token",
                   {{"identity", name}, {"problem", std::string(token.status().message())}});
      }
      id.token_sha256.clear();
      id.problem = problem;
      if (first.ok()) first = absl::FailedPreconditionError(problem);
      continue;
    }
    if (!id.problem.empty()) log::Info("ingest token valid again", {{"identity", name}});
    id.token_sha256 = Sha256(*token);
    id.problem.clear();
  }
  return first;
}

void IngestAuthenticator::Refresh() {
  if (development_) return;
  absl::MutexLock lock(&mu_);
  (void)ReloadTokens();  // problems are recorded and logged per identity
}

std::vector<IngestAuthenticator::TokenState> IngestAuthenticator::tokens() const {
  absl::MutexLock lock(&mu_);
  std::vector<TokenState> out;
  for (const auto& [name, id] : identities_) {
    if (!id.token_file.empty()) out.push_back({name, !id.token_sha256.empty(), id.problem});
  }
  return out;
}

absl::StatusOr<std::string> IngestAuthenticator::Authenticate(
    const std::string& certificate_peer_id, const std::string& authorization) {
  if (development_) return std::string("development");
  absl::MutexLock lock(&mu_);
  if (!certificate_peer_id.empty()) {
    auto it = identities_.find(certificate_peer_id);
    if (it == identities_.end()) {
      return absl::PermissionDeniedError(
          absl::StrCat("'", certificate_peer_id, "' is not an ingest identity of this node"));
    }
    if (!it->second.token_file.empty()) {
      // A token identity's grants go only to its token, never to a certificate of that name.
      return absl::PermissionDeniedError(
          absl::StrCat("ingest identity '", certificate_peer_id,
                       "' authenticates by bearer token, not by certificate"));
    }
    return certificate_peer_id;
  }
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "present a client certificate or an Authorization: Bearer token");
  }
  if (!absl::StartsWithIgnoreCase(authorization, "Bearer ")) {
    return absl::UnauthenticatedError("the Authorization header must be 'Bearer <token>'");
  }
  (void)ReloadTokens();  // a changed file takes effect now; problems are logged per identity
  const std::string presented = Sha256(absl::StripAsciiWhitespace(authorization.substr(7)));
  std::string match;
  for (const auto& [name, id] : identities_) {
    // Compare every token (constant time each), so timing does not tell which matched.
    if (!id.token_sha256.empty() &&
        CRYPTO_memcmp(id.token_sha256.data(), presented.data(), presented.size()) == 0) {
      match = name;
    }
  }
  if (match.empty()) return absl::UnauthenticatedError("the bearer token is not valid");
  return match;
}

absl::Status IngestAuthenticator::Authorize(const std::string& identity,
                                            const std::string& dataset) const {
  if (development_) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  auto it = identities_.find(identity);
  if (it == identities_.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("'", identity, "' is not an ingest identity of this node"));
  }
  if (it->second.datasets.count("*") || it->second.datasets.count(dataset)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("'", identity, "' may not publish '", dataset,
                   "' (granted: ", absl::StrJoin(it->second.datasets, ", "), ")"));
}

}  // namespace node
}  // namespace polder
