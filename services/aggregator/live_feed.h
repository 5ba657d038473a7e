// Live updates of the national figures (ADR 0019 §4): Server-Sent Events on the aggregator's API
// listener, one stream per national view.
//
//   GET /api/v1/views/{dataset}/{view}/events[?after=<event id>]
//
//   retry: 5000
//
//   id: <decided_at µs>.<window start s>.<revision>
//   event: figure
//   data: <the figure as the read API shows it>
//
//   event: feed-quality
//   data: {"cities": {<city>: <feed quality or null>}}
//
//   : heartbeat
//
// Figures are sent in the order the aggregator decided them (the event id's order, which
// survives a restart: decided_at is part of the committed figure). A stream opened with an id
// (`Last-Event-ID`, which a browser's EventSource sends when it reconnects, or `after`, for the
// page's first connection after it loaded the figures) first gets every figure the aggregator
// keeps that was decided after it — or, when those would pass max_backlog_bytes, an `event:
// reset` telling the page to reload its range. Without an id the stream starts at the newest
// figure. Feed quality is sent when a stream opens and when it changes; a heartbeat comment
// keeps proxies from closing idle streams and lets a client notice a dead connection.
//
// A push round every push_interval sends what the aggregator committed since the last round to
// every open stream of its view; streams are the HTTP server's (no thread each; a reader that
// falls behind is closed there). Thread-safe.
#ifndef POLDER_SERVICES_AGGREGATOR_LIVE_FEED_H_
#define POLDER_SERVICES_AGGREGATOR_LIVE_FEED_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/http/https_server.h"
#include "services/aggregator/read_api.h"

namespace polder {
namespace aggregator {

class LiveFeed {
 public:
  struct Options {
    absl::Duration push_interval = absl::Seconds(1);
    absl::Duration heartbeat_interval = absl::Seconds(15);
    // A resumed stream's backlog beyond this is replaced by a reset event.
    size_t max_backlog_bytes = 128 << 10;
  };
  // (decided_at µs, window start s, revision): the order figures are sent in.
  using EventKey = std::tuple<int64_t, int64_t, int32_t>;

  // `read_api` (the figures, feed quality and the JSON they are shown in) must outlive the feed.
  LiveFeed(const ReadApi* read_api, Options options);
  ~LiveFeed();
  LiveFeed(const LiveFeed&) = delete;
  LiveFeed& operator=(const LiveFeed&) = delete;

  // Routes the events endpoint on `server` (before it starts).
  void Register(http::HttpsServer* server);
  // Starts and stops the push rounds.
  void Start();
  void Stop();

  // The endpoint's handler: 200 and the stream kept, or 400 (a malformed id or query) / 404.
  http::HttpResponse Open(const http::HttpRequest& request,
                          const std::shared_ptr<http::HttpStream>& stream);
  // One push round now (the rounds' body; tests call it directly).
  void Push();
  // Streams open now.
  int64_t streams() const;

  static std::string EventId(const national::v1::NationalFigure& figure);
  static EventKey KeyOf(const national::v1::NationalFigure& figure);
  // INVALID_ARGUMENT for anything but "<int>.<int>.<int>".
  static absl::StatusOr<EventKey> ParseEventId(const std::string& id);

 private:
  struct Subscriber {
    std::shared_ptr<http::HttpStream> stream;
    EventKey last;  // the newest figure it was sent (or started after)
  };
  struct ViewState {
    std::vector<Subscriber> subscribers;
    std::string feed_quality;  // the last feed-quality event sent
  };

  // The view's figures decided after `after`, in event order.
  std::vector<const national::v1::NationalFigure*> After(const AggregatorJob::Figures& all,
                                                         const NationalViewSpec& view,
                                                         const EventKey& after) const;
  std::string FigureEvent(const national::v1::NationalFigure& figure) const;
  std::string FeedQualityEvent(const NationalViewSpec& view) const;
  void Run();

  const ReadApi* read_api_;
  const Options options_;
  mutable absl::Mutex mu_;
  std::vector<ViewState> views_ ABSL_GUARDED_BY(mu_);  // as read_api_->views()
  std::shared_ptr<const AggregatorJob::Figures> pushed_ ABSL_GUARDED_BY(mu_);
  absl::Time last_heartbeat_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  absl::Notification stopped_;
  std::thread thread_;
};

}  // namespace aggregator
}  // namespace polder

#endif  // POLDER_SERVICES_AGGREGATOR_LIVE_FEED_H_
