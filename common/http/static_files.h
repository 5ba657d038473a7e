// Files a binary serves from its own bytes (the dashboard, ADR 0019 §1), built in with
// //bazel:embed.bzl so the page served is the page tested.
//
//   StaticSite site(DashboardFiles(), {{"/", "/dashboard/index.html"}});
//   site.Register(server.get());   // GET routes for every file and alias
//
// Each answer carries its content type, a strong ETag (the SHA-256 of the bytes) and
// `Cache-Control: no-cache` (a browser revalidates, so a new binary's files are used at once);
// a request whose If-None-Match names the current ETag gets 304 without the body.
#ifndef POLDER_COMMON_HTTP_STATIC_FILES_H_
#define POLDER_COMMON_HTTP_STATIC_FILES_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/http/https_server.h"

namespace polder {
namespace http {

struct StaticFile {
  const char* path;          // URL path, e.g. "/dashboard/app.js"
  const char* content_type;  // by extension
  absl::string_view bytes;
};

class StaticSite {
 public:
  // `aliases`: further URL paths answered with a file's bytes ("/" → "/dashboard/index.html").
  StaticSite(const std::vector<StaticFile>& files, std::map<std::string, std::string> aliases = {});

  // GET routes for every file and alias (before the server starts). The site must outlive it.
  void Register(HttpsServer* server) const;

  // The answer for `path`: 200 with the bytes, 304 when If-None-Match names the ETag, 404 when
  // no file has that path.
  HttpResponse Serve(const std::string& path, const HttpRequest& request) const;

  // The ETag of a file ("" when there is none).
  std::string ETag(const std::string& path) const;

 private:
  struct Entry {
    const StaticFile* file;
    std::string etag;  // "\"sha256-<hex>\""
  };
  const Entry* Find(const std::string& path) const;

  std::map<std::string, Entry> files_;
  std::map<std::string, std::string> aliases_;
};

}  // namespace http
}  // namespace polder

#endif  // POLDER_COMMON_HTTP_STATIC_FILES_H_
