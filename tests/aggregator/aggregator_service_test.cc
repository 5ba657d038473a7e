// polder-aggregator as a process against a real broker and the registry, over real sockets and
// real TLS: three cities' mirrored view records (written by the test as the national node's
// mirror writes them) become national figures in the national topic, under the registered
// NationalFigure schema — a window every city closed at once (complete), a window whose deadline
// passed without one city (incomplete, the city named), that city's late result as a revision —
// exactly once across a restart, served by the read API (JSON, CSV, one window's revisions) and
// described on the ops listener. The API's client-certificate mode admits federation peers only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "tests/aggregator/aggregator_fixture.h"

namespace polder {
namespace {

using namespace aggregator_testing;  // NOLINT: the aggregator fixture and its helpers
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class AggregatorServiceTest : public AggregatorFixture {
 protected:
  json Statusz(const ServiceProcess& aggregator) {
    return json::parse(Ops(aggregator, "/statusz"), nullptr, false);
  }
  // Waits until the job has read every input to `offsets` (topic → records written).
  void WaitForPositions(const ServiceProcess& aggregator,
                        const std::map<std::string, int64_t>& offsets) {
    json s;
    for (absl::Time until = absl::Now() + absl::Seconds(60); absl::Now() < until;) {
      s = Statusz(aggregator);
      bool all = s.is_object() && s["job"]["state"] == "running";
      for (const auto& [topic, n] : offsets) {
        all = all && s["job"]["input_positions"].value(topic, int64_t{-1}) >= n;
      }
      if (all) return;
      absl::SleepFor(absl::Milliseconds(300));
    }
    ADD_FAILURE() << "the aggregator did not read every input: " << s.dump();
  }
  std::string Input(const std::string& city) const { return views::ViewTopic(city, kBikes, view_); }
};

TEST_F(AggregatorServiceTest, CitiesViewsBecomeNationalFiguresWithARevisionForALateCity) {
  // Window 0: every city closed it; Groningen's second cell was withheld by its guard.
  Cell("groningen", 0, "GM0014", 40);
  Cell("groningen", 0, "GM0034", std::nullopt);
  Close("groningen", 0, 2);
  Cell("amersfoort", 0, "GM0307", 30);
  Close("amersfoort", 0, 1);
  Cell("enschede", 0, "GM0153", 5);
  Close("enschede", 0, 1);
  // Window 1: Enschede's mirror lags past the deadline.
  Cell("groningen", 1, "GM0014", 41);
  Close("groningen", 1, 1);
  Cell("amersfoort", 1, "GM0307", 31);
  Close("amersfoort", 1, 1);
  Flush();
  auto aggregator = StartAggregator();

  std::vector<natv1::NationalFigure> figures = WaitForFigures(2);
  ASSERT_EQ(figures.size(), 2u) << aggregator->Log();
  std::set<int32_t> schema_ids;
  figures = ReadFigures(&schema_ids);
  {
    auto rest = Rest(*registry_, "amersfoort");
    int status = 0;
    json latest =
        Get(*rest, "/subjects/polder.national.v1.NationalFigure/versions/latest", &status);
    ASSERT_EQ(status, 200) << latest.dump();
    EXPECT_THAT(schema_ids, ElementsAre(latest["id"].get<int32_t>()))
        << "written under the registered NationalFigure schema";
  }
  const natv1::NationalFigure w0 = figures[0];
  EXPECT_EQ(w0.figure_key(), FigureKeyOf(0));
  EXPECT_EQ(w0.reason(), natv1::REVISION_REASON_ALL_CITIES);
  EXPECT_TRUE(w0.complete());
  ASSERT_EQ(w0.totals_size(), 1);
  EXPECT_EQ(w0.totals(0).value(), 75) << "40 + 30 + 5; the withheld cell is not a 0";
  EXPECT_EQ(w0.totals(0).withheld_cells(), 1);
  EXPECT_TRUE(w0.totals(0).perturbed());
  const natv1::NationalFigure w1 = figures[1];
  EXPECT_EQ(w1.reason(), natv1::REVISION_REASON_DEADLINE);
  EXPECT_FALSE(w1.complete());
  EXPECT_EQ(w1.totals(0).value(), 72);

  // The API: views, the incomplete window with the missing city named.
  json views = ApiJson(*aggregator, "/api/v1/views");
  ASSERT_EQ(views["views"].size(), 1u) << views.dump();
  EXPECT_EQ(views["views"][0]["windows"], 2);
  json listed = ApiJson(*aggregator, FiguresPath());
  ASSERT_EQ(listed["figures"].size(), 2u) << listed.dump();
  EXPECT_EQ(listed["figures"][1]["cities_missing"], json::array({"enschede"}));
  EXPECT_FALSE(listed["figures"][1]["complete"]);

  // Enschede's late result: a revision, not a silent merge.
  Cell("enschede", 1, "GM0153", 6);
  Close("enschede", 1, 1);
  Flush();
  figures = WaitForFigures(3);
  ASSERT_EQ(figures.size(), 3u) << aggregator->Log();
  const natv1::NationalFigure& revision = figures[2];
  EXPECT_EQ(revision.figure_key(), w1.figure_key());
  EXPECT_EQ(revision.revision(), 1);
  EXPECT_EQ(revision.reason(), natv1::REVISION_REASON_LATE_CITY);
  EXPECT_THAT(revision.cities_added(), ElementsAre("enschede"));
  EXPECT_TRUE(revision.complete());
  EXPECT_EQ(revision.totals(0).value(), 78);
  ASSERT_EQ(revision.changes_size(), 1) << "what changed";
  EXPECT_EQ(revision.changes(0).previous_value(), 72);
  EXPECT_EQ(revision.changes(0).value(), 78);

  const std::string window1 = absl::StrCat(FiguresPath(), "/", views::FormatInstant(Quarter(1)));
  json window = ApiJson(*aggregator, window1);
  ASSERT_EQ(window["revisions"].size(), 2u) << window.dump();
  EXPECT_EQ(window["latest"]["revision"], 1);
  EXPECT_EQ(window["latest"]["reason"], "late_city");
  EXPECT_EQ(window["latest"]["totals"][0]["value"], 78);
  EXPECT_EQ(window["latest"]["changes"][0]["previous_value"], 72);
  EXPECT_EQ(window["revisions"][0]["totals"][0]["value"], 72) << "every revision stays";
  std::printf("A revision as the API returns it (GET %s):\n%s\n", window1.c_str(),
              window["latest"].dump(2).c_str());
  json newest = ApiJson(*aggregator, FiguresPath());
  EXPECT_EQ(newest["figures"][1]["revision"], 1) << "the newest revision by default";
  EXPECT_EQ(ApiJson(*aggregator, FiguresPath() + "?revisions=all")["figures"].size(), 3u);
  auto [csv_status, csv] = Api(*aggregator, FiguresPath() + "?format=csv");
  EXPECT_EQ(csv_status, 200);
  EXPECT_TRUE(absl::StartsWith(csv, "window_start,window_end,revision")) << csv;
  EXPECT_THAT(csv, HasSubstr(",late_city,true,3,3,,count,78,false,0,true"));

  // Bad requests, over the wire.
  auto [bad_status, bad] = Api(*aggregator, FiguresPath() + "?from=yesterday");
  EXPECT_EQ(bad_status, 400);
  EXPECT_THAT(bad, HasSubstr("from 'yesterday' is no RFC 3339 instant"));
  EXPECT_EQ(Api(*aggregator, "/api/v1/views/parking.occupancy/hourly/figures").first, 404);
  EXPECT_EQ(Api(*aggregator, "/api/v2/views").first, 404);

  // Ops: ready, status, metrics.
  EXPECT_THAT(Ops(*aggregator, "/readyz"), HasSubstr("\"ready\":true"));
  json status = Statusz(*aggregator);
  EXPECT_EQ(status["service"], "polder-aggregator");
  EXPECT_EQ(status["job"]["revisions"], 1);
  EXPECT_EQ(status["job"]["records"]["cell"], 7);
  EXPECT_EQ(status["views"][0]["latest"]["revision"], 1) << "the newest window's newest";
  const std::string metrics_file = dir_ + "/aggregator-metrics.txt";
  std::ofstream(metrics_file) << Ops(*aggregator, "/metrics");
  std::string check;
  EXPECT_EQ(testing::RunCommand(absl::StrCat("promtool check metrics < ", metrics_file), &check), 0)
      << check;
  EXPECT_THAT(Ops(*aggregator, "/metrics"),
              HasSubstr("polder_aggregator_figures_total{kind=\"revision\"} 1"));

  // A restart decides nothing again: no figure twice, the same figures served.
  EXPECT_EQ(aggregator->Signal(SIGTERM), 0) << "a clean stop";
  aggregator = StartAggregator();
  WaitForPositions(*aggregator,
                   {{Input("groningen"), 5}, {Input("amersfoort"), 4}, {Input("enschede"), 4}});
  EXPECT_EQ(ReadFigures().size(), 3u) << aggregator->Log();
  EXPECT_EQ(ApiJson(*aggregator, window1)["revisions"].size(), 2u) << "restored from the changelog";
}

TEST_F(AggregatorServiceTest, TheApiInClientCertificateModeAdmitsFederationPeersOnly) {
  auto aggregator = StartAggregator("0s", "required");
  EXPECT_EQ(Api(*aggregator, "/api/v1/views", "amersfoort").first, 200);
  EXPECT_NE(Api(*aggregator, "/api/v1/views").first, 200) << "no certificate, no answer";
  auto [status, body] = Api(*aggregator, "/api/v1/views", "enschede");
  EXPECT_EQ(status, 403) << "a certificate the directory does not list: " << body;
}

// `n` idle connections from the address `from` to 127.0.0.1:`port` (fewer if one fails).
std::vector<int> ConnectFrom(const char* from_address, int port, int n) {
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in from{}, to{};
    from.sin_family = to.sin_family = AF_INET;
    inet_pton(AF_INET, from_address, &from.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons(static_cast<uint16_t>(port));
    if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
        connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      close(fd);
      break;
    }
    fds.push_back(fd);
  }
  return fds;
}

// What an unauthenticated client of the public API can cost: a body (the API reads none), a head
// over the limit, more connections from one address than aggregator.api_max_connections_per_source
// — each refused while a legitimate request is answered.
TEST_F(AggregatorServiceTest, ThePublicApiRefusesBodiesOversizedHeadsAndConnectionHoarders) {
  auto aggregator = StartAggregator();
  const std::string body = WriteBody("big.json", std::string(1 << 20, 'x'));
  std::string out;
  testing::RunCommand(
      absl::StrCat("curl -sS --cacert ", fed_->bundle_path(),
                   " -o /dev/null -w '%{http_code}' -X POST --data-binary @", body,
                   " https://localhost:", aggregator->port("api_port"), "/api/v1/views"),
      &out);
  EXPECT_EQ(out, "405") << "the read-only API refuses a POST on its head, reading no body";
  auto [long_status, long_body] =
      Api(*aggregator, absl::StrCat(FiguresPath(), "?city=", std::string(20000, 'a')));
  EXPECT_EQ(long_status, 431) << long_body;

  // 80 idle connections from one address: the 65th and later are closed at once.
  std::vector<int> fds = ConnectFrom("127.0.0.7", aggregator->port("api_port"), 80);
  ASSERT_EQ(fds.size(), 80u);
  EXPECT_EQ(Api(*aggregator, "/api/v1/views").first, 200) << "another address is served";
  double refused = 0;
  for (absl::Time until = absl::Now() + absl::Seconds(10); refused < 16 && absl::Now() < until;) {
    for (absl::string_view line : absl::StrSplit(Ops(*aggregator, "/metrics"), '\n')) {
      const std::string series =
          "polder_http_connections_total{listener=\"api\",outcome=\"refused_per_source\"} ";
      if (absl::StartsWith(line, series)) {
        refused = std::atof(std::string(line.substr(series.size())).c_str());
      }
    }
    if (refused < 16) absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(refused, 16) << "80 connections, 64 allowed per source";
  for (int fd : fds) close(fd);
}

// Behind a proxy (aggregator.api_per_source_limits: false, which the chart sets for a city that
// puts one in front): one address may hold more than api_max_connections_per_source, the
// listener's own cap still holds, and the start says so in the log.
TEST_F(AggregatorServiceTest, PerSourceLimitsTurnedOffForAProxyAreLoggedAndTheListenerCapHolds) {
  aggregator_extra_ =
      "  api_per_source_limits: false\n  api_max_connections: 100\n"
      "  api_max_connections_per_source: 8\n";
  auto aggregator = StartAggregator();
  EXPECT_THAT(aggregator->Log(), HasSubstr("per-source limits are off for this listener"));
  EXPECT_THAT(aggregator->Log(), HasSubstr("\"listener\":\"api\""));
  std::vector<int> fds = ConnectFrom("127.0.0.7", aggregator->port("api_port"), 40);
  ASSERT_EQ(fds.size(), 40u);
  EXPECT_EQ(Api(*aggregator, "/api/v1/views").first, 200);
  absl::SleepFor(absl::Milliseconds(500));
  double refused = -1, open = -1;
  for (absl::string_view line : absl::StrSplit(Ops(*aggregator, "/metrics"), '\n')) {
    const std::string refused_series =
        "polder_http_connections_total{listener=\"api\",outcome=\"refused_per_source\"} ";
    const std::string open_series = "polder_http_open_connections{listener=\"api\"} ";
    if (absl::StartsWith(line, refused_series)) {
      refused = std::atof(std::string(line.substr(refused_series.size())).c_str());
    }
    if (absl::StartsWith(line, open_series)) {
      open = std::atof(std::string(line.substr(open_series.size())).c_str());
    }
  }
  EXPECT_LE(refused, 0) << "no connection refused for its source";
  EXPECT_GE(open, 40) << "40 connections from one address, 8 per source configured";
  for (int fd : fds) close(fd);
}

}  // namespace
}  // namespace polder
