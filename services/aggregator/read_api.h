// The national figures' read API (ADR 0018 §7): GET only, on the aggregator's own HTTPS
// listener (public and read-only by default; federation client certificates with
// aggregator.api_client_auth: required). Figures are served from what the aggregator committed
// (AggregatorJob::figures()), for the windows it keeps (the revision horizon); the national
// topics keep every revision for good.
//
//   GET /api/v1/views                                  the national views and their state
//   GET /api/v1/views/{dataset}/{view}                 one view
//   GET /api/v1/views/{dataset}/{view}/figures         its windows' figures, oldest first:
//       ?from=<RFC 3339>&to=<RFC 3339>   windows starting in [from, to)
//       &revisions=latest|all            the newest revision of each window (default) or every
//       &city=<peer>                     only that city's part in "cities"
//       &limit=<1..10000>                the newest windows in range (default 1000)
//       &format=json|csv                 (default json; csv: one row per measure and part)
//   GET /api/v1/views/{dataset}/{view}/figures/{window start, RFC 3339}
//                                      the window's newest figure and every revision
//   GET /api/v1/views/{dataset}/{view}/events   live updates (Server-Sent Events, live_feed.h)
//   GET /api/v1/feed-quality           each expected city's feed quality per dataset of the
//                                      views (ADR 0018 §6), as its node reported it
//
// A withheld value is JSON null (never 0) with its withheld cell count; a figure says whether it
// is complete and which cities are missing. Errors: 400 naming the parameter, 404 for an unknown
// view or window, as {"error": {"code", "message"}}.
#ifndef POLDER_SERVICES_AGGREGATOR_READ_API_H_
#define POLDER_SERVICES_AGGREGATOR_READ_API_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/http/https_server.h"
#include "nlohmann/json.hpp"
#include "services/aggregator/aggregator_job.h"
#include "services/aggregator/national.h"

namespace polder {
namespace aggregator {

// A figure's place in decision order, the id of its live-update event (live_feed.h) and its
// "event_id" in the API: "<decided_at µs>.<window start s>.<revision>".
std::string FigureEventId(const national::v1::NationalFigure& figure);

class ReadApi {
 public:
  using FiguresFn = std::function<std::shared_ptr<const AggregatorJob::Figures>()>;
  // Feed quality by "<city>/<dataset>" (the `_polder.feed-quality` topic's latest values).
  using FeedQualityFn = std::function<std::map<std::string, nlohmann::json>()>;

  ReadApi(std::vector<NationalViewSpec> views, FiguresFn figures,
          FeedQualityFn feed_quality = nullptr);

  // Routes every endpoint on `server` (before it starts).
  void Register(http::HttpsServer* server) const;

  http::HttpResponse ListViews(const http::HttpRequest& request) const;
  http::HttpResponse GetView(const http::HttpRequest& request) const;      // {dataset, view}
  http::HttpResponse ListFigures(const http::HttpRequest& request) const;  // {dataset, view}
  http::HttpResponse GetWindow(const http::HttpRequest& request) const;    // {dataset, view, start}
  http::HttpResponse ListFeedQuality(const http::HttpRequest& request) const;

  // A figure as the API shows it.
  static nlohmann::json FigureJson(const national::v1::NationalFigure& figure,
                                   const std::string& only_city = "");

  // What the live updates (live_feed.h) send, read where the API reads it.
  const std::vector<NationalViewSpec>& views() const { return views_; }
  std::shared_ptr<const AggregatorJob::Figures> figures() const { return figures_(); }
  std::map<std::string, nlohmann::json> feed_quality() const;
  // The view named by the route's {dataset, view} groups; null when there is none.
  const NationalViewSpec* FindView(const http::HttpRequest& request) const;
  // The view's cities' feed quality of its dataset: {city: {...} or null}.
  nlohmann::json FeedQualityOf(const NationalViewSpec& view,
                               const std::map<std::string, nlohmann::json>& all) const;

 private:
  nlohmann::json ViewJson(const NationalViewSpec& view, const AggregatorJob::Figures& all) const;

  std::vector<NationalViewSpec> views_;
  FiguresFn figures_;
  FeedQualityFn feed_quality_;
};

}  // namespace aggregator
}  // namespace polder

#endif  // POLDER_SERVICES_AGGREGATOR_READ_API_H_
