// Long-lived responses on the event-loop server (ADR 0019 §4), over real sockets: what the
// application sends from its own thread arrives as HTTP/1.1 chunks; an error answer never opens
// a stream; the stream caps refuse with 503 and Retry-After, apart from the connection caps (open
// streams never keep a request out); a reader that stops reading is closed at the buffer bound
// and its Send fails; a client that leaves closes its stream; Close ends the response.
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/http/https_server.h"
#include "common/http/test_sockets.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace polder {
namespace http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kStreamRequest[] = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";

// Reads from `fd` until `want` appears in what arrived, or `timeout`; returns what arrived.
std::string ReadUntil(int fd, const std::string& want, absl::Duration timeout = absl::Seconds(5)) {
  std::string out;
  char buf[4096];
  for (absl::Time until = absl::Now() + timeout;
       absl::Now() < until && !absl::StrContains(out, want);) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

class HttpsServerStreamTest : public ::testing::Test {
 protected:
  void Start(HttpsOptions o) {
    o.plaintext = true;
    o.client_auth = ClientAuth::kNone;
    o.response_headers = {{"X-Frame-Options", "DENY"}};
    auto server = HttpsServer::Create(o, nullptr);
    ASSERT_OK(server.status());
    server_ = std::move(*server);
    server_->Handle("GET", "/ping", [](const HttpRequest&, const tls::PeerIdentity&) {
      return HttpResponse::Json(200, "{\"pong\":true}");
    });
    server_->HandleStream("GET", "/events",
                          [this](const HttpRequest&, const tls::PeerIdentity&,
                                 const std::shared_ptr<HttpStream>& stream) {
                            EXPECT_TRUE(stream->Send("data: sent by the handler\n\n"));
                            {
                              absl::MutexLock lock(&mu_);
                              streams_.push_back(stream);
                            }
                            HttpResponse r;
                            r.content_type = "text/event-stream";
                            r.body = "retry: 1000\n\n";
                            return r;
                          });
    server_->HandleStream("GET", "/missing",
                          [this](const HttpRequest&, const tls::PeerIdentity&,
                                 const std::shared_ptr<HttpStream>& stream) {
                            absl::MutexLock lock(&mu_);
                            streams_.push_back(stream);
                            return HttpResponse::Error(absl::NotFoundError("no such stream"));
                          });
    ASSERT_OK(server_->Start());
  }

  // Waits until the handler kept `n` streams.
  std::vector<std::shared_ptr<HttpStream>> Streams(size_t n) {
    for (absl::Time until = absl::Now() + absl::Seconds(10); absl::Now() < until;) {
      {
        absl::MutexLock lock(&mu_);
        if (streams_.size() >= n) return streams_;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    absl::MutexLock lock(&mu_);
    return streams_;
  }

  // A connection whose stream request the handler answered; its socket.
  int OpenStream() {
    int fd = Connect(server_->port());
    EXPECT_EQ(write(fd, kStreamRequest, sizeof kStreamRequest - 1),
              static_cast<ssize_t>(sizeof kStreamRequest - 1));
    EXPECT_EQ(Streams(1).size(), 1u);
    return fd;
  }
  // Sends 1,000-byte events to a client that reads nothing until Send refuses (at most 30 s,
  // pausing 1 ms every 16); how many went.
  static int SendUntilRefused(HttpStream& stream) {
    const std::string event(1000, 'x');
    int sent = 0;
    for (absl::Time until = absl::Now() + absl::Seconds(30);
         absl::Now() < until && stream.Send(event);) {
      if (++sent % 16 == 0) absl::SleepFor(absl::Milliseconds(1));
    }
    return sent;
  }

  int Ping() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_connection_timeout(std::chrono::seconds(10));
    c.set_read_timeout(std::chrono::seconds(10));
    auto r = c.Get("/ping");
    return r ? r->status : -1;
  }

  std::unique_ptr<HttpsServer> server_;
  absl::Mutex mu_;
  std::vector<std::shared_ptr<HttpStream>> streams_ ABSL_GUARDED_BY(mu_);
};

TEST_F(HttpsServerStreamTest, SentBytesArriveAsChunksFromAnotherThreadAndCloseEndsTheResponse) {
  Start(HttpsOptions());
  int fd = Connect(server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, kStreamRequest, sizeof kStreamRequest - 1),
            static_cast<ssize_t>(sizeof kStreamRequest - 1));
  std::string got = ReadUntil(fd, "sent by the handler\n\n\r\n");
  EXPECT_THAT(got, HasSubstr("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(got, HasSubstr("Content-Type: text/event-stream\r\n"));
  EXPECT_THAT(got, HasSubstr("Transfer-Encoding: chunked\r\n"));
  EXPECT_THAT(got, HasSubstr("X-Frame-Options: DENY\r\n")) << "the listener's headers";
  EXPECT_THAT(got, Not(HasSubstr("Content-Length")));
  // The body first, then what the handler sent while answering, each a chunk.
  EXPECT_THAT(got,
              HasSubstr("\r\n\r\nd\r\nretry: 1000\n\n\r\n1b\r\ndata: sent by the handler\n\n\r\n"));
  auto streams = Streams(1);
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(server_->stats().open_streams, 1);
  std::thread sender([&] {
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(streams[0]->Send(absl::StrCat("data: ", i, "\n\n")));
  });
  sender.join();
  got = ReadUntil(fd, "data: 2\n\n\r\n");
  EXPECT_THAT(got, HasSubstr("data: 0\n\n"));
  EXPECT_THAT(got, HasSubstr("data: 2\n\n"));
  streams[0]->Close();
  got = ReadUntil(fd, "0\r\n\r\n");
  EXPECT_THAT(got, HasSubstr("0\r\n\r\n")) << "the last chunk";
  EXPECT_TRUE(ClosedWithin(fd, absl::Seconds(5)));
  EXPECT_FALSE(streams[0]->open());
  EXPECT_FALSE(streams[0]->Send("data: late\n\n"));
  EXPECT_EQ(server_->stats().open_streams, 0);
  close(fd);
}

TEST_F(HttpsServerStreamTest, AnErrorAnswerNeverOpensTheStream) {
  Start(HttpsOptions());
  int fd = Connect(server_->port());
  const std::string got = Exchange(fd, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(got, HasSubstr("HTTP/1.1 404 Not Found"));
  EXPECT_THAT(got, HasSubstr("no such stream"));
  auto streams = Streams(1);
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_FALSE(streams[0]->Send("data: x\n\n"));
  EXPECT_EQ(server_->stats().open_streams, 0);
  close(fd);
}

TEST_F(HttpsServerStreamTest, StreamCapsRefuseWithRetryAfterAndLeaveRequestsAlone) {
  HttpsOptions o;
  o.max_streams = 6;
  o.max_streams_per_source = 3;
  o.max_connections_per_source = 2;  // streams are not connections under this cap
  Start(o);
  std::vector<int> fds;
  auto open_from = [&](const std::string& source) {
    int fd = Connect(server_->port(), source);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, kStreamRequest, sizeof kStreamRequest - 1),
              static_cast<ssize_t>(sizeof kStreamRequest - 1));
    fds.push_back(fd);
    return ReadUntil(fd, "\r\n\r\n");
  };
  for (int i = 0; i < 3; ++i) EXPECT_THAT(open_from("127.0.0.2"), HasSubstr("200 OK"));
  std::string refused = open_from("127.0.0.2");
  close(fds.back());  // read its answer: the refused connection goes
  fds.back() = -1;
  EXPECT_THAT(refused, HasSubstr("503 Service Unavailable"));
  EXPECT_THAT(refused, HasSubstr("Retry-After: 5\r\n"));
  EXPECT_THAT(refused, HasSubstr("this address holds its limit of 3 live streams"));
  for (int i = 0; i < 3; ++i) EXPECT_THAT(open_from("127.0.0.3"), HasSubstr("200 OK"));
  refused = open_from("127.0.0.4");
  EXPECT_THAT(refused, HasSubstr("503 Service Unavailable"));
  EXPECT_THAT(refused, HasSubstr("the server holds its limit of 6 live streams"));
  close(fds.back());
  fds.back() = -1;
  EXPECT_EQ(server_->stats().open_streams, 6);
  EXPECT_EQ(server_->stats().refused_streams, 2);
  for (absl::Time until = absl::Now() + absl::Seconds(10);
       server_->stats().open_connections > 6 && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(server_->stats().open_connections, 6) << "the streams alone";
  // Three open streams from 127.0.0.2 do not use its two request connections.
  int a = Connect(server_->port(), "127.0.0.2");
  int b = Connect(server_->port(), "127.0.0.2");
  EXPECT_THAT(Exchange(a, "GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
              HasSubstr("200 OK"));
  EXPECT_THAT(Exchange(b, "GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
              HasSubstr("200 OK"));
  EXPECT_EQ(Ping(), 200);
  // A stream that ends gives its slot back.
  close(fds[0]);
  for (absl::Time until = absl::Now() + absl::Seconds(10);
       server_->stats().open_streams > 5 && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_THAT(open_from("127.0.0.4"), HasSubstr("200 OK"));
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  close(a);
  close(b);
}

TEST_F(HttpsServerStreamTest, AReaderThatStopsReadingIsClosedAtTheBufferBound) {
  HttpsOptions o;
  o.max_stream_buffer_bytes = 64 << 10;
  o.write_timeout = absl::Seconds(60);  // the bound, not the deadline, closes it here
  Start(o);
  int fd = OpenStream();
  auto streams = Streams(1);
  // The client reads nothing: the kernels' socket buffers fill, then the stream's bound is
  // passed.
  const int sent = SendUntilRefused(*streams[0]);
  EXPECT_FALSE(streams[0]->open()) << "still open after " << sent << " KB unread";
  for (absl::Time until = absl::Now() + absl::Seconds(10);
       server_->stats().slow_streams_closed == 0 && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(server_->stats().slow_streams_closed, 1);
  EXPECT_EQ(server_->stats().open_streams, 0);
  EXPECT_TRUE(ClosedWithin(fd, absl::Seconds(30)));
  close(fd);
}

TEST_F(HttpsServerStreamTest, AReaderThatTakesNothingWithinTheWriteDeadlineIsClosed) {
  HttpsOptions o;
  o.write_timeout = absl::Milliseconds(500);
  o.max_stream_buffer_bytes = 64 << 20;  // the deadline, not the bound, closes it here
  Start(o);
  int fd = OpenStream();
  auto streams = Streams(1);
  // The client reads nothing: once the kernels' buffers are full the queue stays non-empty.
  SendUntilRefused(*streams[0]);
  EXPECT_EQ(server_->stats().slow_streams_closed, 1);
  EXPECT_FALSE(streams[0]->open());
  close(fd);
}

TEST_F(HttpsServerStreamTest, AClientThatLeavesClosesItsStream) {
  Start(HttpsOptions());
  int fd = Connect(server_->port());
  ASSERT_EQ(write(fd, kStreamRequest, sizeof kStreamRequest - 1),
            static_cast<ssize_t>(sizeof kStreamRequest - 1));
  EXPECT_THAT(ReadUntil(fd, "\r\n\r\n"), HasSubstr("200 OK"));
  auto streams = Streams(1);
  ASSERT_EQ(streams.size(), 1u);
  close(fd);
  for (absl::Time until = absl::Now() + absl::Seconds(10);
       streams[0]->open() && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(streams[0]->open());
  EXPECT_EQ(server_->stats().open_streams, 0);
  EXPECT_EQ(server_->stats().slow_streams_closed, 0);
}

}  // namespace
}  // namespace http
}  // namespace polder
