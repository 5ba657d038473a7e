// The read API's answers over a fixed set of committed figures: newest revision by default,
// every revision on request, time ranges, one city's part, CSV, withheld values as null, and a
// clear 400 or 404 for each kind of bad request.
#include "services/aggregator/read_api.h"

#include <memory>
#include <string>

#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/views/times.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/aggregator/test_figures.h"

namespace polder {
namespace aggregator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;
namespace nv1 = ::polder::national::v1;
using namespace test_figures;  // NOLINT: kDataset, kView, At, Measure, Figure

class ReadApiTest : public ::testing::Test {
 protected:
  ReadApiTest() {
    NationalViewSpec v = TwoCityView();
    std::shared_ptr<AggregatorJob::Figures> figures = TwoWindows();
    auto& windows = (*figures)[absl::StrCat(kDataset, "/", kView)];
    windows[At(10, 30)] = {Figure(At(10, 30), 0, {"groningen", "amersfoort"}, 72)};
    api_ = std::make_unique<ReadApi>(
        std::vector<NationalViewSpec>{v}, [figures] { return figures; },
        [] {
          return std::map<std::string, json>{
              {"groningen/mobility.bike-counts", json::object({{"records_accepted", 18}})},
              {"utrecht/mobility.bike-counts", json::object({{"records_accepted", 5}})},
              {"groningen/parking.occupancy", json::object({{"records_accepted", 7}})}};
        });
  }

  static http::HttpRequest Request(std::multimap<std::string, std::string> query = {},
                                   std::vector<std::string> params = {kDataset, kView}) {
    http::HttpRequest r;
    r.method = "GET";
    r.path_params = std::move(params);
    r.query = std::move(query);
    return r;
  }

  static json Body(const http::HttpResponse& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  }

  std::unique_ptr<ReadApi> api_;
};

TEST_F(ReadApiTest, TheViewListShowsEachViewWithItsNewestFigure) {
  json body = Body(api_->ListViews(Request({}, {})));
  ASSERT_EQ(body["views"].size(), 1u);
  const json& v = body["views"][0];
  EXPECT_EQ(v["dataset"], kDataset);
  EXPECT_EQ(v["windows"], 3);
  EXPECT_EQ(v["revised_windows"], 1);
  EXPECT_EQ(v["topic"], "national.mobility.bike-counts.view.quarter-municipality");
  EXPECT_EQ(v["latest"]["window_start"], "2026-12-03T10:30:00Z");
  EXPECT_EQ(Body(api_->GetView(Request()))["latest"]["totals"][0]["value"], 72);
}

TEST_F(ReadApiTest, FiguresAreTheNewestRevisionByDefaultAndEveryRevisionOnRequest) {
  json latest = Body(api_->ListFigures(Request()));
  ASSERT_EQ(latest["figures"].size(), 3u);
  const json& first = latest["figures"][0];
  EXPECT_EQ(first["revision"], 1);
  EXPECT_EQ(first["revisions"], 2);
  EXPECT_EQ(first["reason"], "late_city");
  EXPECT_EQ(first["totals"][0]["value"], 70);
  EXPECT_TRUE(first["totals"][1]["value"].is_null()) << "withheld is null, never 0";
  EXPECT_EQ(first["totals"][1]["withheld_cells"], 4);
  EXPECT_THAT(first["cities_added"], ::testing::IsEmpty());

  json all = Body(api_->ListFigures(Request({{"revisions", "all"}})));
  ASSERT_EQ(all["figures"].size(), 4u);
  EXPECT_EQ(all["figures"][0]["revision"], 0);
  EXPECT_FALSE(all["figures"][0]["complete"]);
  EXPECT_EQ(all["figures"][0]["cities_missing"], json::array({"amersfoort"}));
  EXPECT_EQ(all["figures"][1]["revision"], 1);
}

TEST_F(ReadApiTest, ATimeRangeALimitAndACityNarrowTheAnswer) {
  json range = Body(api_->ListFigures(
      Request({{"from", "2026-12-03T10:15:00Z"}, {"to", "2026-12-03T10:30:00Z"}})));
  ASSERT_EQ(range["figures"].size(), 1u);
  EXPECT_EQ(range["figures"][0]["window_start"], "2026-12-03T10:15:00Z");

  json limited = Body(api_->ListFigures(Request({{"limit", "2"}})));
  ASSERT_EQ(limited["figures"].size(), 2u);
  EXPECT_TRUE(limited["truncated"]);
  EXPECT_EQ(limited["figures"][0]["window_start"], "2026-12-03T10:15:00Z") << "the newest two";

  json city = Body(api_->ListFigures(Request({{"city", "amersfoort"}})));
  for (const json& f : city["figures"]) {
    for (const json& c : f["cities"]) EXPECT_EQ(c["city"], "amersfoort");
    EXPECT_EQ(f["totals"].size(), 2u) << "the national total stays";
  }
}

TEST_F(ReadApiTest, CsvHasOneRowPerMeasureAndPartWithWithheldValuesEmpty) {
  http::HttpResponse r = api_->ListFigures(Request({{"format", "csv"}, {"limit", "1"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "text/csv; charset=utf-8");
  EXPECT_THAT(r.headers, ::testing::Contains(::testing::Pair(
                             "Content-Disposition",
                             HasSubstr("national-mobility.bike-counts-quarter-municipality.csv"))));
  std::vector<std::string> lines = absl::StrSplit(r.body, "\r\n", absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u + 2 + 2 * 2);  // header, national total, two cities
  EXPECT_THAT(lines[0], HasSubstr("window_start,window_end,revision"));
  EXPECT_EQ(lines[1],
            "2026-12-03T10:30:00Z,2026-12-03T10:45:00Z,0,deadline,true,2,2,,count,72,false,0,"
            "false");
  EXPECT_EQ(lines[2],
            "2026-12-03T10:30:00Z,2026-12-03T10:45:00Z,0,deadline,true,2,2,,max:speed,,true,4,"
            "false");
}

TEST_F(ReadApiTest, OneWindowHasItsNewestFigureAndEveryRevision) {
  json w = Body(api_->GetWindow(Request({}, {kDataset, kView, "2026-12-03T10:00:00Z"})));
  EXPECT_EQ(w["latest"]["revision"], 1);
  ASSERT_EQ(w["revisions"].size(), 2u);
  EXPECT_EQ(w["revisions"][1]["cities_reported"], json::array({"amersfoort", "groningen"}));
  http::HttpResponse missing =
      api_->GetWindow(Request({}, {kDataset, kView, "2026-12-03T11:00:00Z"}));
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr("not closed yet"));
}

TEST_F(ReadApiTest, BadRequestsAreRefusedNamingWhatIsWrong) {
  struct Case {
    std::multimap<std::string, std::string> query;
    int status;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {{{"form", "x"}}, 400, "unknown query parameter 'form'"},
           {{{"from", "yesterday"}}, 400, "from 'yesterday' is no RFC 3339 instant"},
           {{{"from", "2026-12-03T10:00:00Z"}, {"to", "2026-12-03T09:00:00Z"}},
            400,
            "'to' is before 'from'"},
           {{{"limit", "0"}}, 400, "limit must be a whole number from 1 to 10000"},
           {{{"limit", "10001"}}, 400, "limit must be"},
           {{{"limit", "1"}, {"limit", "2"}}, 400, "'limit' given twice"},
           {{{"revisions", "some"}}, 400, "revisions must be latest or all"},
           {{{"format", "xml"}}, 400, "format must be json or csv"},
           {{{"city", "utrecht"}}, 404, "the view expects no city 'utrecht'"},
       }) {
    http::HttpResponse r = api_->ListFigures(Request(c.query));
    EXPECT_EQ(r.status, c.status) << c.says;
    EXPECT_THAT(r.body, HasSubstr(c.says));
  }
  EXPECT_EQ(api_->ListFigures(Request({}, {kDataset, "hour-municipality"})).status, 404);
  EXPECT_EQ(api_->GetView(Request({}, {"parking.occupancy", kView})).status, 404);
  EXPECT_EQ(api_->GetWindow(Request({}, {kDataset, kView, "10:00"})).status, 400);
  EXPECT_EQ(api_->ListViews(Request({{"x", "1"}}, {})).status, 400);
}

TEST_F(ReadApiTest, FeedQualityIsListedPerExpectedCityOfEachViewsDataset) {
  json body = Body(api_->ListFeedQuality(Request({}, {})));
  ASSERT_EQ(body["feed_quality"].size(), 2u) << body.dump();
  EXPECT_EQ(body["feed_quality"][0]["city"], "amersfoort");
  EXPECT_TRUE(body["feed_quality"][0]["feed_quality"].is_null()) << "nothing reported yet";
  EXPECT_EQ(body["feed_quality"][1]["city"], "groningen");
  EXPECT_EQ(body["feed_quality"][1]["feed_quality"]["records_accepted"], 18);
  json view = Body(api_->GetView(Request()));
  EXPECT_EQ(view["feed_quality"]["groningen"]["records_accepted"], 18);
  EXPECT_FALSE(view["feed_quality"].contains("utrecht"));
  EXPECT_EQ(api_->ListFeedQuality(Request({{"city", "x"}}, {})).status, 400);
}

}  // namespace
}  // namespace aggregator
}  // namespace polder
