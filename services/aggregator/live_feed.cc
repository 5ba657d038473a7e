#include "services/aggregator/live_feed.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log/log.h"

namespace polder {
namespace aggregator {
namespace {

namespace nv1 = ::polder::national::v1;
using json = nlohmann::json;

constexpr char kRetry[] = "retry: 5000\n\n";
constexpr char kHeartbeat[] = ": heartbeat\n\n";
// The route's groups are the read API's (dataset, view).
constexpr char kEventsRoute[] = "/api/v1/views/([a-z0-9][a-z0-9.-]*)/([a-z0-9][a-z0-9-]*)/events";

}  // namespace

LiveFeed::LiveFeed(const ReadApi* read_api, Options options)
    : read_api_(read_api), options_(options) {
  absl::MutexLock lock(&mu_);
  views_.resize(read_api_->views().size());
  last_heartbeat_ = absl::Now();
}

LiveFeed::~LiveFeed() { Stop(); }

void LiveFeed::Register(http::HttpsServer* server) {
  server->HandleStream(
      "GET", kEventsRoute,
      [this](const http::HttpRequest& r, const tls::PeerIdentity&,
             const std::shared_ptr<http::HttpStream>& stream) { return Open(r, stream); });
}

void LiveFeed::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void LiveFeed::Stop() {
  if (!stop_.exchange(true)) stopped_.Notify();
  if (thread_.joinable()) thread_.join();
}

void LiveFeed::Run() {
  while (!stopped_.WaitForNotificationWithTimeout(options_.push_interval)) Push();
}

LiveFeed::EventKey LiveFeed::KeyOf(const nv1::NationalFigure& f) {
  return EventKey{f.decided_at().seconds() * 1000000 + f.decided_at().nanos() / 1000,
                  f.window_start().seconds(), f.revision()};
}

std::string LiveFeed::EventId(const nv1::NationalFigure& f) { return FigureEventId(f); }

absl::StatusOr<LiveFeed::EventKey> LiveFeed::ParseEventId(const std::string& id) {
  std::vector<std::string> parts = absl::StrSplit(id, '.');
  EventKey key;
  if (parts.size() != 3 || id.size() > 64 || !absl::SimpleAtoi(parts[0], &std::get<0>(key)) ||
      !absl::SimpleAtoi(parts[1], &std::get<1>(key)) ||
      !absl::SimpleAtoi(parts[2], &std::get<2>(key))) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", id.substr(0, 64),
                     "' is no event id of this stream (<decided µs>.<window start s>.<revision>)"));
  }
  return key;
}

std::vector<const nv1::NationalFigure*> LiveFeed::After(const AggregatorJob::Figures& all,
                                                        const NationalViewSpec& view,
                                                        const EventKey& after) const {
  std::vector<const nv1::NationalFigure*> out;
  auto it = all.find(absl::StrCat(view.dataset, "/", view.view));
  if (it == all.end()) return out;
  for (const auto& [start, revisions] : it->second) {
    for (const nv1::NationalFigure& f : revisions) {
      if (KeyOf(f) > after) out.push_back(&f);
    }
  }
  std::sort(out.begin(), out.end(), [](const nv1::NationalFigure* a, const nv1::NationalFigure* b) {
    return KeyOf(*a) < KeyOf(*b);
  });
  return out;
}

std::string LiveFeed::FigureEvent(const nv1::NationalFigure& f) const {
  return absl::StrCat("id: ", EventId(f), "\nevent: figure\ndata: ",
                      ReadApi::FigureJson(f).dump(-1, ' ', false, json::error_handler_t::replace),
                      "\n\n");
}

std::string LiveFeed::FeedQualityEvent(const NationalViewSpec& view) const {
  json data = {{"cities", read_api_->FeedQualityOf(view, read_api_->feed_quality())}};
  return absl::StrCat("event: feed-quality\ndata: ",
                      data.dump(-1, ' ', false, json::error_handler_t::replace), "\n\n");
}

http::HttpResponse LiveFeed::Open(const http::HttpRequest& request,
                                  const std::shared_ptr<http::HttpStream>& stream) {
  const NationalViewSpec* view = read_api_->FindView(request);
  if (view == nullptr)
    return http::HttpResponse::Error(absl::NotFoundError("no such national view"));
  std::string after;
  for (const auto& [key, value] : request.query) {
    if (key != "after") {
      return http::HttpResponse::Error(absl::InvalidArgumentError(
          absl::StrCat("unknown query parameter '", key, "' (known: after)")));
    }
    if (!after.empty()) {
      return http::HttpResponse::Error(
          absl::InvalidArgumentError("query parameter 'after' given twice"));
    }
    after = value;
  }
  // A reconnecting EventSource names the last event it received; that wins over the page's
  // first position.
  if (const std::string last = request.HeaderValue("Last-Event-ID"); !last.empty()) after = last;
  std::optional<EventKey> from;
  if (!after.empty()) {
    absl::StatusOr<EventKey> key = ParseEventId(after);
    if (!key.ok()) {
      return http::HttpResponse::Error(absl::InvalidArgumentError(
          absl::StrCat("Last-Event-ID or after: ", key.status().message())));
    }
    from = *key;
  }
  const size_t index = static_cast<size_t>(view - read_api_->views().data());
  absl::MutexLock lock(&mu_);
  // Under the lock a push round cannot slip between the backlog and the registration.
  std::shared_ptr<const AggregatorJob::Figures> all = read_api_->figures();
  std::vector<const nv1::NationalFigure*> figures =
      all == nullptr ? std::vector<const nv1::NationalFigure*>()
                     : After(*all, *view, from.value_or(EventKey{-1, 0, 0}));
  Subscriber sub{stream, from.value_or(EventKey{-1, 0, 0})};
  if (!figures.empty()) sub.last = std::max(sub.last, KeyOf(*figures.back()));
  if (from.has_value()) {
    std::string backlog;
    for (const nv1::NationalFigure* f : figures) {
      absl::StrAppend(&backlog, FigureEvent(*f));
      if (backlog.size() > options_.max_backlog_bytes) break;
    }
    if (backlog.size() > options_.max_backlog_bytes) {
      backlog = absl::StrCat(
          "event: reset\ndata: {\"reason\": \"more figures were decided since that event than a "
          "stream resends; reload the range\"}\n\n");
    }
    stream->Send(backlog);
  }
  std::string quality = FeedQualityEvent(*view);
  stream->Send(quality);
  ViewState& state = views_[index];
  if (state.feed_quality.empty()) state.feed_quality = std::move(quality);
  state.subscribers.push_back(std::move(sub));
  http::HttpResponse r;
  r.content_type = "text/event-stream; charset=utf-8";
  r.headers = {{"Cache-Control", "no-store"}};
  r.body = kRetry;
  return r;
}

void LiveFeed::Push() {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<const AggregatorJob::Figures> all = read_api_->figures();
  const bool new_figures = all != nullptr && all != pushed_;
  pushed_ = all;
  const absl::Time now = absl::Now();
  const bool heartbeat = now - last_heartbeat_ >= options_.heartbeat_interval;
  if (heartbeat) last_heartbeat_ = now;
  const std::vector<NationalViewSpec>& specs = read_api_->views();
  for (size_t i = 0; i < views_.size(); ++i) {
    ViewState& state = views_[i];
    if (state.subscribers.empty()) continue;
    std::vector<std::pair<EventKey, std::string>> events;
    if (new_figures) {
      EventKey oldest = state.subscribers.front().last;
      for (const Subscriber& s : state.subscribers) oldest = std::min(oldest, s.last);
      for (const nv1::NationalFigure* f : After(*all, specs[i], oldest)) {
        events.emplace_back(KeyOf(*f), FigureEvent(*f));
      }
    }
    std::string quality = FeedQualityEvent(specs[i]);
    const bool quality_changed = quality != state.feed_quality;
    state.feed_quality = std::move(quality);
    std::vector<Subscriber> kept;
    for (Subscriber& s : state.subscribers) {
      std::string out;
      for (const auto& [key, event] : events) {
        if (key <= s.last) continue;
        out += event;
        s.last = key;
      }
      if (quality_changed) out += state.feed_quality;
      if (out.empty() && heartbeat) out = kHeartbeat;
      // A stream that is gone (its client left, it fell behind, the server stopped) is dropped.
      if (out.empty() ? s.stream->open() : s.stream->Send(out)) kept.push_back(std::move(s));
    }
    state.subscribers = std::move(kept);
  }
}

int64_t LiveFeed::streams() const {
  absl::MutexLock lock(&mu_);
  int64_t n = 0;
  for (const ViewState& v : views_) n += static_cast<int64_t>(v.subscribers.size());
  return n;
}

}  // namespace aggregator
}  // namespace polder
