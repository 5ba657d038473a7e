// StaticSite over a real listener: the bytes and content type, an alias, the ETag and 304, an
// unknown path, and the listener's own headers on every answer.
#include "common/http/static_files.h"

#include <string>

#include "common/http/test_sockets.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<StaticFile>& Files() {
  static const auto* const kFiles = new std::vector<StaticFile>{
      {"/site/index.html", "text/html; charset=utf-8", "<!doctype html><title>t</title>"},
      {"/site/app.js", "text/javascript; charset=utf-8", absl::string_view("a\0b", 3)},
  };
  return *kFiles;
}

class StaticSiteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpsOptions o;
    o.plaintext = true;
    o.client_auth = ClientAuth::kNone;
    o.response_headers = {{"Content-Security-Policy", "default-src 'none'"}};
    auto server = HttpsServer::Create(o, nullptr);
    ASSERT_OK(server.status());
    server_ = std::move(*server);
    site_.Register(server_.get());
    ASSERT_OK(server_->Start());
  }
  std::string Get(const std::string& path, const std::string& extra = "") {
    int fd = Connect(server_->port());
    std::string out = Exchange(
        fd, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra + "\r\n");
    close(fd);
    return out;
  }

  StaticSite site_{Files(), {{"/", "/site/index.html"}}};
  std::unique_ptr<HttpsServer> server_;
};

TEST_F(StaticSiteTest, ServesTheBytesWithTypeETagAndTheListenersHeaders) {
  const std::string etag = site_.ETag("/site/index.html");
  EXPECT_THAT(etag, ::testing::MatchesRegex("\"sha256-[0-9a-f]{64}\""));
  for (const std::string path : {"/", "/site/index.html"}) {
    const std::string got = Get(path);
    EXPECT_THAT(got, HasSubstr("200 OK"));
    EXPECT_THAT(got, HasSubstr("Content-Type: text/html; charset=utf-8\r\n"));
    EXPECT_THAT(got, HasSubstr("ETag: " + etag + "\r\n"));
    EXPECT_THAT(got, HasSubstr("Cache-Control: no-cache\r\n"));
    EXPECT_THAT(got, HasSubstr("Content-Security-Policy: default-src 'none'\r\n"));
    EXPECT_THAT(got, HasSubstr("\r\n\r\n<!doctype html><title>t</title>"));
  }
  const std::string js = Get("/site/app.js");
  EXPECT_THAT(js, HasSubstr("Content-Type: text/javascript; charset=utf-8\r\n"));
  EXPECT_THAT(js, HasSubstr(std::string("\r\n\r\na\0b", 7))) << "bytes exactly";
  EXPECT_NE(site_.ETag("/site/app.js"), etag);
}

TEST_F(StaticSiteTest, AMatchingIfNoneMatchGets304WithoutTheBody) {
  const std::string etag = site_.ETag("/site/index.html");
  std::string got = Get("/site/index.html", "If-None-Match: \"other\", W/" + etag + "\r\n");
  EXPECT_THAT(got, HasSubstr("HTTP/1.1 304 Not Modified\r\n"));
  EXPECT_THAT(got, Not(HasSubstr("<title>")));
  EXPECT_THAT(got, Not(HasSubstr("Content-Length")));
  got = Get("/site/index.html", "If-None-Match: \"sha256-stale\"\r\n");
  EXPECT_THAT(got, HasSubstr("200 OK"));
}

TEST_F(StaticSiteTest, AnUnknownPathIs404) {
  EXPECT_THAT(Get("/site/missing.js"), HasSubstr("404 Not Found"));
  EXPECT_THAT(Get("/site/app.js/../index.html"), HasSubstr("404 Not Found"));
  EXPECT_EQ(site_.ETag("/nope"), "");
}

}  // namespace
}  // namespace http
}  // namespace polder
