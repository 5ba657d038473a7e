// The live updates over a real listener (plain HTTP here; TLS in the dashboard's test): figures in
// decision order with resumable ids, a resume from `after` or Last-Event-ID (the header wins), a
// reset when the backlog is too long, new figures and feed-quality changes pushed, heartbeats,
// streams whose client left dropped, and 400/404 for a malformed id, an unknown parameter or view.
#include "services/aggregator/live_feed.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "common/http/test_sockets.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/aggregator/test_figures.h"

namespace polder {
namespace aggregator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;
using namespace test_figures;  // NOLINT: kDataset, kView, At, Figure

// Reads from `fd` until `want` appears, or `timeout`; what arrived.
std::string ReadUntil(int fd, const std::string& want, absl::Duration timeout = absl::Seconds(5)) {
  std::string out;
  char buf[8192];
  for (absl::Time until = absl::Now() + timeout;
       absl::Now() < until && !absl::StrContains(out, want);) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// The ids of the figure events in `text`, in order.
std::vector<std::string> Ids(const std::string& text) {
  std::vector<std::string> ids;
  for (size_t at = text.find("id: "); at != std::string::npos; at = text.find("id: ", at + 1)) {
    ids.push_back(text.substr(at + 4, text.find('\n', at) - at - 4));
  }
  return ids;
}

class LiveFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Set(TwoWindows());
    feed_quality_["groningen/" + std::string(kDataset)] = json{{"accepted", 10}};
    api_ = std::make_unique<ReadApi>(
        std::vector<NationalViewSpec>{TwoCityView()},
        [this] {
          absl::MutexLock lock(&mu_);
          return figures_;
        },
        [this] {
          absl::MutexLock lock(&mu_);
          return feed_quality_;
        });
    LiveFeed::Options o;
    o.heartbeat_interval = absl::Hours(1);
    o.max_backlog_bytes = 64 << 10;
    feed_ = std::make_unique<LiveFeed>(api_.get(), o);
    http::HttpsOptions ho;
    ho.plaintext = true;
    ho.client_auth = http::ClientAuth::kNone;
    auto server = http::HttpsServer::Create(ho, nullptr);
    ASSERT_OK(server.status());
    server_ = std::move(*server);
    feed_->Register(server_.get());
    ASSERT_OK(server_->Start());
  }
  void TearDown() override {
    server_->Stop();
    feed_->Stop();
  }

  void Set(std::shared_ptr<AggregatorJob::Figures> figures) {
    absl::MutexLock lock(&mu_);
    figures_ = std::move(figures);
  }
  // A copy of the current figures with `f` added.
  void Add(const nv1::NationalFigure& f) {
    absl::MutexLock lock(&mu_);
    auto next = std::make_shared<AggregatorJob::Figures>(*figures_);
    (*next)[absl::StrCat(kDataset, "/", kView)][views::TimeFromProto(f.window_start())].push_back(
        f);
    figures_ = std::move(next);
  }

  // Opens a stream (its socket) with `query` and `headers`; the answer's head and first events.
  int Open(const std::string& query = "", const std::string& headers = "",
           std::string* first = nullptr, const std::string& until = "event: feed-quality") {
    int fd = http::Connect(server_->port());
    const std::string request = absl::StrCat("GET /api/v1/views/", kDataset, "/", kView, "/events",
                                             query, " HTTP/1.1\r\nHost: x\r\n", headers, "\r\n");
    EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    std::string got = ReadUntil(fd, until);
    if (first != nullptr) *first = got;
    return fd;
  }
  std::string IdOf(int window_minute, int revision) {
    return LiveFeed::EventId(Figure(At(10, window_minute), revision, {"groningen"}, 0));
  }

  absl::Mutex mu_;
  std::shared_ptr<const AggregatorJob::Figures> figures_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, json> feed_quality_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<ReadApi> api_;
  std::unique_ptr<LiveFeed> feed_;
  std::unique_ptr<http::HttpsServer> server_;
};

TEST_F(LiveFeedTest, EventIdsOrderByDecisionAndRoundTrip) {
  const std::string id = IdOf(0, 1);
  auto key = LiveFeed::ParseEventId(id);
  ASSERT_OK(key.status());
  EXPECT_EQ(*key, LiveFeed::KeyOf(Figure(At(10, 0), 1, {}, 0)));
  EXPECT_LT(LiveFeed::KeyOf(Figure(At(10, 0), 1, {}, 0)),
            LiveFeed::KeyOf(Figure(At(10, 15), 0, {}, 0)))
      << "decided 10:31 before 10:45";
  for (const std::string& bad :
       std::vector<std::string>{"", "1.2", "1.2.3.4", "a.b.c", "1.2.x", std::string(70, '1')}) {
    EXPECT_FALSE(LiveFeed::ParseEventId(bad).ok()) << bad;
  }
}

TEST_F(LiveFeedTest, ANewStreamStartsAtTheNewestFigureAndGetsWhatIsDecidedNext) {
  std::string first;
  int fd = Open("", "", &first);
  EXPECT_THAT(first, HasSubstr("200 OK"));
  EXPECT_THAT(first, HasSubstr("Content-Type: text/event-stream; charset=utf-8"));
  EXPECT_THAT(first, HasSubstr("Cache-Control: no-store"));
  EXPECT_THAT(first, HasSubstr("retry: 5000\n\n"));
  EXPECT_THAT(first, HasSubstr("event: feed-quality\ndata: {\"cities\":{\"amersfoort\":null,"
                               "\"groningen\":{\"accepted\":10}}}\n\n"));
  EXPECT_THAT(Ids(first), ::testing::IsEmpty()) << "no backlog without an id";
  EXPECT_EQ(feed_->streams(), 1);
  // A window closes and an older one is revised: pushed in decision order.
  Add(Figure(At(10, 30), 0, {"groningen", "amersfoort"}, 72));
  Add(Figure(At(10, 15), 1, {"groningen", "amersfoort"}, 73));
  feed_->Push();
  std::string got = ReadUntil(fd, "\"window_start\":\"2026-12-03T10:30:00Z\"");
  // The revision of 10:15 was decided (10:46) before 10:30 closed (11:00).
  EXPECT_THAT(Ids(got), ::testing::ElementsAre(IdOf(15, 1), IdOf(30, 0)));
  EXPECT_THAT(got, HasSubstr("event: figure\ndata: {"));
  // The data is the figure as the read API shows it.
  const size_t at = got.rfind("data: {");
  json figure = json::parse(got.substr(at + 6, got.find('\n', at) - at - 6), nullptr, false);
  EXPECT_EQ(figure["window_start"], "2026-12-03T10:30:00Z");
  EXPECT_EQ(figure["event_id"], IdOf(30, 0)) << "the API's event_id is the event's id";
  EXPECT_EQ(figure["totals"][0]["value"], 72);
  // Nothing new: nothing sent again.
  feed_->Push();
  EXPECT_THAT(Ids(ReadUntil(fd, "id: ", absl::Milliseconds(300))), ::testing::IsEmpty());
  close(fd);
}

TEST_F(LiveFeedTest, AResumedStreamGetsEveryFigureDecidedAfterItsIdAndTheHeaderWins) {
  std::string first;
  int fd = Open(absl::StrCat("?after=", IdOf(0, 0)), "", &first);
  EXPECT_THAT(Ids(first), ::testing::ElementsAre(IdOf(0, 1), IdOf(15, 0)));
  close(fd);
  // A reconnecting EventSource's Last-Event-ID beats the page's first position.
  fd = Open(absl::StrCat("?after=", IdOf(0, 0)),
            absl::StrCat("Last-Event-ID: ", IdOf(0, 1), "\r\n"), &first);
  EXPECT_THAT(Ids(first), ::testing::ElementsAre(IdOf(15, 0)));
  close(fd);
}

TEST_F(LiveFeedTest, ABacklogOverTheBoundIsAReset) {
  auto many = std::make_shared<AggregatorJob::Figures>();
  for (int i = 0; i < 200; ++i) {
    const absl::Time start = At(0, 0) + absl::Minutes(15 * i);
    nv1::NationalFigure f = Figure(At(0, 0), 0, {"groningen", "amersfoort"}, i);
    views::SetProtoTime(start, f.mutable_window_start());
    views::SetProtoTime(start + absl::Minutes(30), f.mutable_decided_at());
    (*many)[absl::StrCat(kDataset, "/", kView)][start] = {f};
  }
  Set(many);
  std::string first;
  int fd = Open("?after=0.0.0", "", &first);
  EXPECT_THAT(first, HasSubstr("event: reset\ndata: {\"reason\""));
  EXPECT_THAT(Ids(first), ::testing::IsEmpty());
  close(fd);
}

TEST_F(LiveFeedTest, FeedQualityChangesAndHeartbeatsArePushedAndLeftStreamsDropped) {
  LiveFeed::Options o;
  o.heartbeat_interval = absl::Milliseconds(1);
  LiveFeed beating(api_.get(), o);
  auto server = http::HttpsServer::Create(
      [] {
        http::HttpsOptions ho;
        ho.plaintext = true;
        ho.client_auth = http::ClientAuth::kNone;
        return ho;
      }(),
      nullptr);
  ASSERT_OK(server.status());
  beating.Register(server->get());
  ASSERT_OK((*server)->Start());
  int fd = http::Connect((*server)->port());
  const std::string request = absl::StrCat("GET /api/v1/views/", kDataset, "/", kView,
                                           "/events HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  ReadUntil(fd, "event: feed-quality");
  absl::SleepFor(absl::Milliseconds(5));
  beating.Push();
  EXPECT_THAT(ReadUntil(fd, ": heartbeat\n\n"), HasSubstr(": heartbeat\n\n"));
  {
    absl::MutexLock lock(&mu_);
    feed_quality_["amersfoort/" + std::string(kDataset)] = json{{"accepted", 3}};
  }
  beating.Push();
  EXPECT_THAT(ReadUntil(fd, "\"amersfoort\":{\"accepted\":3}"),
              HasSubstr("event: feed-quality\ndata: {\"cities\":{\"amersfoort\":{\"accepted\":3}"));
  EXPECT_EQ(beating.streams(), 1);
  close(fd);
  for (absl::Time until = absl::Now() + absl::Seconds(10);
       beating.streams() > 0 && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(20));
    beating.Push();
  }
  EXPECT_EQ(beating.streams(), 0) << "the stream of a client that left is dropped";
  (*server)->Stop();
}

TEST_F(LiveFeedTest, BadRequestsAreRefusedWithTheReason) {
  struct Case {
    std::string path, status, says;
  };
  const std::string base = absl::StrCat("/api/v1/views/", kDataset, "/", kView, "/events");
  for (const Case& c : std::vector<Case>{
           {base + "?after=yesterday", "400", "no event id of this stream"},
           {base + "?from=2026-12-03T10:00:00Z", "400", "unknown query parameter 'from'"},
           {base + "?after=1.2.3&after=1.2.4", "400", "given twice"},
           {absl::StrCat("/api/v1/views/", kDataset, "/no-such-view/events"), "404",
            "no such national view"},
       }) {
    int fd = http::Connect(server_->port());
    const std::string got = http::Exchange(
        fd, absl::StrCat("GET ", c.path, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    EXPECT_THAT(got, HasSubstr("HTTP/1.1 " + c.status)) << c.path;
    EXPECT_THAT(got, HasSubstr(c.says)) << c.path;
    EXPECT_THAT(got, Not(HasSubstr("event-stream"))) << c.path;
    close(fd);
  }
  int fd = http::Connect(server_->port());
  EXPECT_THAT(http::Exchange(fd, absl::StrCat("GET ", base,
                                              " HTTP/1.1\r\nHost: x\r\nLast-Event-ID: "
                                              "x.y\r\nConnection: close\r\n\r\n")),
              HasSubstr("400 Bad Request"));
  close(fd);
  EXPECT_EQ(feed_->streams(), 0);
}

}  // namespace
}  // namespace aggregator
}  // namespace polder
