// The HTTP server's limits, attacked over real sockets (ADR 0011): idle and trickling
// connections hold no thread, deadlines close them, a source is capped, a full server makes room
// for a new client, heads and bodies are bounded, and a refused request is answered without its
// body being read.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/https_server.h"
#include "common/http/test_sockets.h"
#include "common/status/status_matchers.h"
#include "common/tls/test_federation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace polder {
namespace http {
namespace {

using ::testing::HasSubstr;

int Threads() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "Threads:")) return std::atoi(line.substr(8).c_str());
  }
  return -1;
}

class HttpsServerLimitsTest : public ::testing::Test {
 protected:
  void Start(HttpsOptions o) {
    o.plaintext = true;
    o.client_auth = ClientAuth::kNone;
    auto server = HttpsServer::Create(o, nullptr);
    ASSERT_OK(server.status());
    server_ = std::move(*server);
    server_->Handle("GET", "/ping", [](const HttpRequest&, const tls::PeerIdentity&) {
      return HttpResponse::Json(200, "{\"pong\":true}");
    });
    server_->Handle("GET", "/items/([^/]+)", [](const HttpRequest& r, const tls::PeerIdentity&) {
      auto q = r.query.find("q");
      return HttpResponse::Json(200, nlohmann::json{{"item", r.path_params.at(0)},
                                                    {"q", q == r.query.end() ? "" : q->second}}
                                         .dump());
    });
    server_->Handle(
        "POST", "/upload",
        [this](const HttpRequest& r, const tls::PeerIdentity&) {
          ++handled_;
          return HttpResponse::Json(200, nlohmann::json{{"bytes", r.body.size()}}.dump());
        },
        [](const HttpRequest& head, const tls::PeerIdentity&) {
          return head.HeaderValue("Authorization") == "Bearer good-token-0123456789"
                     ? absl::OkStatus()
                     : absl::UnauthenticatedError("present a bearer token");
        });
    ASSERT_OK(server_->Start());
  }

  // A legitimate request through httplib's client; its latency.
  absl::Duration Ping(int* status) {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_connection_timeout(std::chrono::seconds(10));
    c.set_read_timeout(std::chrono::seconds(10));
    const absl::Time start = absl::Now();
    auto r = c.Get("/ping");
    *status = r ? r->status : -1;
    return absl::Now() - start;
  }

  std::unique_ptr<HttpsServer> server_;
  std::atomic<int> handled_{0};
};

TEST_F(HttpsServerLimitsTest, AThousandIdleConnectionsHoldNoThreadAndDoNotDelayOthers) {
  HttpsOptions o;
  o.idle_timeout = absl::Seconds(60);
  o.head_timeout = absl::Seconds(60);
  Start(o);
  const int threads = Threads();
  std::vector<int> fds;
  for (int i = 0; i < 1000; ++i) {
    int fd = Connect(server_->port(), absl::StrCat("127.0.1.", 1 + i % 250));
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  // Half of them trickle a request head, one byte now.
  for (size_t i = 0; i < fds.size(); i += 2) ASSERT_EQ(write(fds[i], "G", 1), 1);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(server_->stats().open_connections, 1000);
  EXPECT_LE(Threads(), threads) << "no thread per connection";
  int status = 0;
  const absl::Duration took = Ping(&status);
  EXPECT_EQ(status, 200);
  EXPECT_LT(took, absl::Seconds(3)) << "1 s target, 3x slack";
  for (int fd : fds) close(fd);
}

TEST_F(HttpsServerLimitsTest, DeadlinesCloseSlowHeadsAndIdleConnections) {
  HttpsOptions o;
  o.head_timeout = absl::Milliseconds(500);
  o.idle_timeout = absl::Milliseconds(500);
  Start(o);
  int silent = Connect(server_->port());
  int trickle = Connect(server_->port());
  ASSERT_EQ(write(trickle, "GET /pi", 7), 7);
  // A kept-alive connection that answered one request and then idles.
  int idle = Connect(server_->port());
  EXPECT_THAT(Exchange(idle, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n", absl::Milliseconds(300)),
              HasSubstr("200 OK"));
  EXPECT_TRUE(ClosedWithin(silent, absl::Seconds(3 * 0.5 * 3)));
  EXPECT_TRUE(ClosedWithin(trickle, absl::Seconds(3)));
  EXPECT_TRUE(ClosedWithin(idle, absl::Seconds(3)));
  EXPECT_GE(server_->stats().timed_out, 2);
  close(silent);
  close(trickle);
  close(idle);
}

TEST_F(HttpsServerLimitsTest, ASourceIsCappedAndAFullServerMakesRoomForANewClient) {
  HttpsOptions o;
  o.max_connections_per_source = 5;
  o.max_connections = 20;
  o.head_timeout = absl::Seconds(60);
  Start(o);
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) fds.push_back(Connect(server_->port(), "127.0.0.2"));
  int sixth = Connect(server_->port(), "127.0.0.2");
  EXPECT_TRUE(ClosedWithin(sixth, absl::Seconds(3))) << "over the per-source cap";
  close(sixth);
  EXPECT_GE(server_->stats().refused_per_source, 1);
  // Fill the server from other sources; a new client still gets in and is answered.
  for (int i = 0; i < 15; ++i)
    fds.push_back(Connect(server_->port(), absl::StrCat("127.0.0.", 10 + i)));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(server_->stats().open_connections, 20);
  int status = 0;
  Ping(&status);
  EXPECT_EQ(status, 200);
  EXPECT_GE(server_->stats().evicted, 1);
  EXPECT_TRUE(ClosedWithin(fds[0], absl::Seconds(3))) << "the oldest idle connection made room";
  for (int fd : fds) close(fd);
}

// Behind a proxy every client has the proxy's address: with per_source_limits off one address
// may hold more than max_connections_per_source; max_connections still holds.
TEST_F(HttpsServerLimitsTest, PerSourceLimitsOffLeaveTheListenerCapInForce) {
  HttpsOptions o;
  o.max_connections_per_source = 5;
  o.max_connections = 12;
  o.per_source_limits = false;
  o.head_timeout = absl::Seconds(60);
  Start(o);
  std::vector<int> fds;
  for (int i = 0; i < 10; ++i) fds.push_back(Connect(server_->port(), "127.0.0.2"));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(server_->stats().refused_per_source, 0);
  EXPECT_EQ(server_->stats().open_connections, 10) << "one source past its per-source cap";
  for (int i = 0; i < 5; ++i) fds.push_back(Connect(server_->port(), "127.0.0.2"));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(server_->stats().open_connections, 12) << "the listener's cap holds";
  EXPECT_GE(server_->stats().evicted, 3);
  for (int fd : fds) close(fd);
}

TEST_F(HttpsServerLimitsTest, HeadsAreBoundedAndMalformedRequestsRefused) {
  HttpsOptions o;
  o.max_headers = 20;
  o.max_head_bytes = 4096;
  Start(o);
  std::string many = "GET /ping HTTP/1.1\r\n";
  for (int i = 0; i < 21; ++i) absl::StrAppend(&many, "X-H", i, ": v\r\n");
  int fd = Connect(server_->port());
  EXPECT_THAT(Exchange(fd, many + "\r\n"), HasSubstr("431"));
  close(fd);
  fd = Connect(server_->port());
  EXPECT_THAT(Exchange(fd, "GET /ping HTTP/1.1\r\nX-Big: " + std::string(5000, 'a') + "\r\n\r\n"),
              HasSubstr("431"));
  close(fd);
  fd = Connect(server_->port());
  EXPECT_THAT(Exchange(fd, "GET /ping HTTP/2.0\r\n\r\n"), HasSubstr("505"));
  close(fd);
  fd = Connect(server_->port());
  EXPECT_THAT(Exchange(fd, "GET /items/%zz HTTP/1.1\r\n\r\n"), HasSubstr("400"));
  close(fd);
  fd = Connect(server_->port());
  EXPECT_THAT(Exchange(fd, "GET /nowhere HTTP/1.1\r\n\r\n"), HasSubstr("404"));
  close(fd);
  fd = Connect(server_->port());
  EXPECT_THAT(Exchange(fd, "DELETE /ping HTTP/1.1\r\n\r\n"), HasSubstr("405"));
  close(fd);
  // Percent-decoded path parameters and query values; two requests on one connection.
  fd = Connect(server_->port());
  std::string two =
      Exchange(fd, "GET /items/a%20b?q=x+y%21 HTTP/1.1\r\n\r\nGET /ping HTTP/1.1\r\n\r\n");
  EXPECT_THAT(two, HasSubstr(R"({"item":"a b","q":"x y!"})"));
  EXPECT_THAT(two, HasSubstr(R"({"pong":true})"));
  close(fd);
}

TEST_F(HttpsServerLimitsTest, RefusedBodiesAreNeverReadAndAdmittedOnesAreFramedEitherWay) {
  HttpsOptions o;
  o.max_body_bytes = 1 << 20;
  Start(o);
  // Refused on the headers: the client reads the 401 although it sent a body.
  int fd = Connect(server_->port());
  const std::string body(200 << 10, 'x');
  std::string out = Exchange(
      fd, absl::StrCat("POST /upload HTTP/1.1\r\nContent-Length: ", body.size(), "\r\n\r\n", body));
  EXPECT_THAT(out, HasSubstr("401 Unauthorized"));
  EXPECT_THAT(out, HasSubstr("present a bearer token"));
  EXPECT_EQ(handled_, 0);
  close(fd);
  // Over the limit: 413 before the body.
  fd = Connect(server_->port());
  out = Exchange(
      fd, absl::StrCat("POST /upload HTTP/1.1\r\nAuthorization: Bearer good-token-0123456789\r\n"
                       "Content-Length: ",
                       (2 << 20), "\r\n\r\n"));
  EXPECT_THAT(out, HasSubstr("413"));
  close(fd);
  // Admitted: Content-Length and chunked bodies reach the handler whole.
  fd = Connect(server_->port());
  out = Exchange(
      fd, absl::StrCat("POST /upload HTTP/1.1\r\nAuthorization: Bearer good-token-0123456789\r\n"
                       "Content-Length: 5\r\n\r\nhello"));
  EXPECT_THAT(out, HasSubstr(R"({"bytes":5})"));
  out = Exchange(
      fd,
      "POST /upload HTTP/1.1\r\nAuthorization: Bearer good-token-0123456789\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nA;ext=1\r\n0123456789\r\n0\r\n\r\n");
  EXPECT_THAT(out, HasSubstr(R"({"bytes":15})"));
  close(fd);
  EXPECT_EQ(handled_, 2);
}

// The TLS listener under the same flood: idle TCP connections that never start a handshake, and
// handshakes that stop half-way, do not keep an authenticated client out.
TEST(HttpsServerTlsLimitsTest, IdleAndStalledHandshakesDoNotBlockAClient) {
  tls::TestFederation fed(std::string(std::getenv("TEST_TMPDIR")) + "/tls-limits");
  tls::TlsFiles files = fed.WriteIdentity("groningen", fed.Issue("groningen"));
  HttpsOptions o;
  o.files = files;
  o.client_auth = ClientAuth::kNone;
  o.head_timeout = absl::Seconds(60);
  auto server = HttpsServer::Create(o, nullptr);
  ASSERT_OK(server.status());
  (*server)->Handle("GET", "/ping", [](const HttpRequest&, const tls::PeerIdentity&) {
    return HttpResponse::Json(200, "{}");
  });
  ASSERT_OK((*server)->Start());
  std::vector<int> fds;
  for (int i = 0; i < 500; ++i) {
    int fd = Connect((*server)->port(), absl::StrCat("127.0.2.", 1 + i % 200));
    ASSERT_GE(fd, 0);
    // Every other one sends the first bytes of a ClientHello and stops.
    if (i % 2 == 0) {
      ASSERT_EQ(write(fd, "\x16\x03\x01\x02\x00\x01", 6), 6);
    }
    fds.push_back(fd);
  }
  httplib::SSLClient c("127.0.0.1", (*server)->port());
  c.set_ca_cert_path(fed.bundle_path().c_str());
  c.enable_server_certificate_verification(true);
  c.set_connection_timeout(std::chrono::seconds(10));
  const absl::Time start = absl::Now();
  auto r = c.Get("/ping");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  for (int fd : fds) close(fd);
}

}  // namespace
}  // namespace http
}  // namespace polder
