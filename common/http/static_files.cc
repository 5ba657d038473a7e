#include "common/http/static_files.h"

#include <openssl/sha.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace polder {
namespace http {
namespace {

std::string Sha256Hex(absl::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

// A path as a regex matching exactly it.
std::string Exactly(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
          c == '-' || c == '_')) {
      out += '\\';
    }
    out += c;
  }
  return out;
}

// Whether an If-None-Match value names `etag` (a list, weak forms, or "*").
bool Matches(const std::string& if_none_match, const std::string& etag) {
  for (absl::string_view tag : absl::StrSplit(if_none_match, ',')) {
    tag = absl::StripAsciiWhitespace(tag);
    absl::ConsumePrefix(&tag, "W/");
    if (tag == "*" || tag == etag) return true;
  }
  return false;
}

}  // namespace

StaticSite::StaticSite(const std::vector<StaticFile>& files,
                       std::map<std::string, std::string> aliases)
    : aliases_(std::move(aliases)) {
  for (const StaticFile& f : files) {
    files_[f.path] = Entry{&f, absl::StrCat("\"sha256-", Sha256Hex(f.bytes), "\"")};
  }
}

const StaticSite::Entry* StaticSite::Find(const std::string& path) const {
  auto alias = aliases_.find(path);
  auto it = files_.find(alias == aliases_.end() ? path : alias->second);
  return it == files_.end() ? nullptr : &it->second;
}

std::string StaticSite::ETag(const std::string& path) const {
  const Entry* e = Find(path);
  return e == nullptr ? "" : e->etag;
}

HttpResponse StaticSite::Serve(const std::string& path, const HttpRequest& request) const {
  const Entry* e = Find(path);
  if (e == nullptr) return HttpResponse::Error(absl::NotFoundError("no such file"));
  HttpResponse r;
  r.content_type = e->file->content_type;
  r.headers = {{"ETag", e->etag}, {"Cache-Control", "no-cache"}};
  if (Matches(request.HeaderValue("If-None-Match"), e->etag)) {
    r.status = 304;
    return r;
  }
  r.body = std::string(e->file->bytes);
  return r;
}

void StaticSite::Register(HttpsServer* server) const {
  auto route = [this, server](const std::string& path) {
    server->Handle(
        "GET", Exactly(path),
        [this, path](const HttpRequest& r, const tls::PeerIdentity&) { return Serve(path, r); });
  };
  for (const auto& [path, entry] : files_) route(path);
  for (const auto& [path, target] : aliases_) route(path);
}

}  // namespace http
}  // namespace polder
