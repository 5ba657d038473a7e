// The national dashboard in a real browser (ADR 0019 §7): Debian's Chromium, driven by
// playwright-core (driver.mjs), opens the page polder-aggregator serves over HTTPS from one broker
// and the registry, the aggregator fed with three cities' view records written by this test. The
// page must show exactly what the national topic holds (read here independently); a window
// closing appears on the open page without reload within 3 × the push interval; withheld values
// read as withheld (never 0), perturbed ones are marked, a revision is marked with its previous
// value; the page's security headers are set and Chromium reports no CSP violation or error;
// keyboard navigation reaches every control in order and works them; axe-core finds no violation
// in Dutch or English; with 500 idle live connections open from 100 loopback addresses (under the
// default per-source cap, which refuses a 17th from one address) an API request is answered
// within 3 s (the 1 s target, 3× slack). A screenshot is kept as a test output.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/http/test_sockets.h"
#include "tests/aggregator/aggregator_fixture.h"

namespace polder {
namespace {

using namespace aggregator_testing;  // NOLINT: the aggregator fixture and its helpers
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// driver.mjs as a child process: a JSON command per line in, a JSON answer per line out.
class BrowserDriver {
 public:
  BrowserDriver() {
    int in[2], out[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    const std::string script = RunfilesPath("tests/dashboard/driver.mjs");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      execlp("node", "node", script.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }
  ~BrowserDriver() {
    Call({{"cmd", "close"}}, absl::Seconds(20));
    close(to_);
    for (absl::Time until = absl::Now() + absl::Seconds(10); absl::Now() < until;) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        close(from_);
        return;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    close(from_);
  }

  // Sends `request`, returns the answer; a failed command or no answer within `timeout` is a
  // test failure (the answer then says why).
  json Call(const json& request, absl::Duration timeout = absl::Seconds(60)) {
    const std::string line = request.dump() + "\n";
    if (write(to_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      ADD_FAILURE() << "the browser driver is gone";
      return json::object();
    }
    const absl::Time until = absl::Now() + timeout;
    while (buffer_.find('\n') == std::string::npos && absl::Now() < until) {
      pollfd p{from_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[65536];
      ssize_t n = read(from_, buf, sizeof buf);
      if (n <= 0) break;
      buffer_.append(buf, static_cast<size_t>(n));
    }
    const size_t nl = buffer_.find('\n');
    if (nl == std::string::npos) {
      ADD_FAILURE() << "no answer from the browser driver to " << request.dump();
      return json::object();
    }
    json answer = json::parse(buffer_.substr(0, nl), nullptr, false);
    buffer_.erase(0, nl + 1);
    EXPECT_TRUE(answer.is_object() && answer.value("ok", false))
        << request.dump() << " -> " << answer.dump();
    return answer.is_object() ? answer : json::object();
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string buffer_;
};

// base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate: what Chromium's
// --ignore-certificate-errors-spki-list trusts.
std::string SpkiPin(const std::string& cert_path) {
  FILE* f = fopen(cert_path.c_str(), "r");
  if (f == nullptr) return "";
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  fclose(f);
  if (x == nullptr) return "";
  unsigned char* der = nullptr;
  const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(len), digest);
  OPENSSL_free(der);
  X509_free(x);
  return absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(digest), sizeof digest));
}

// An idle live connection: TCP from `source`, TLS (the server checked against the federation's
// bundle), the events request sent and the answer's head read.
struct LiveConnection {
  int fd = -1;
  SSL* ssl = nullptr;
  std::string head;
  void Close() {
    if (ssl != nullptr) SSL_free(ssl);
    if (fd >= 0) close(fd);
    ssl = nullptr;
    fd = -1;
  }
};

LiveConnection OpenLive(SSL_CTX* ctx, const std::string& source, int port,
                        const std::string& path) {
  LiveConnection c;
  c.fd = http::Connect(port, source);
  if (c.fd < 0) return c;
  timeval tv{10, 0};
  setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  c.ssl = SSL_new(ctx);
  SSL_set_fd(c.ssl, c.fd);
  SSL_set_tlsext_host_name(c.ssl, "localhost");
  SSL_set1_host(c.ssl, "localhost");
  if (SSL_connect(c.ssl) != 1) {
    ERR_clear_error();
    c.Close();
    return c;
  }
  const std::string request = absl::StrCat(
      "GET ", path, " HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n");
  SSL_write(c.ssl, request.data(), static_cast<int>(request.size()));
  char buf[4096];
  while (!absl::StrContains(c.head, "\r\n\r\n")) {
    const int n = SSL_read(c.ssl, buf, sizeof buf);
    if (n <= 0) break;
    c.head.append(buf, static_cast<size_t>(n));
  }
  return c;
}

class DashboardTest : public AggregatorFixture {
 protected:
  // The newest revision of each window in the national topic, by window start.
  std::map<std::string, natv1::NationalFigure> NewestInTopic() {
    std::map<std::string, natv1::NationalFigure> newest;
    for (natv1::NationalFigure& f : ReadFigures()) {
      const std::string start = views::FormatInstant(views::TimeFromProto(f.window_start()));
      if (newest.count(start) == 0 || newest[start].revision() < f.revision()) {
        newest[start] = std::move(f);
      }
    }
    return newest;
  }
  // Waits until the topic has window `window` at `revision`.
  void WaitInTopic(int window, int revision) {
    const std::string start = views::FormatInstant(Quarter(window));
    for (absl::Time until = absl::Now() + absl::Seconds(60); absl::Now() < until;) {
      auto newest = NewestInTopic();
      if (newest.count(start) && newest[start].revision() >= revision) return;
      absl::SleepFor(absl::Milliseconds(100));
    }
    ADD_FAILURE() << "the national topic never had " << start << " revision " << revision;
  }
  static const json* Row(const json& rows, const std::string& window) {
    for (const json& r : rows) {
      if (r.value("window", "") == window) return &r;
    }
    return nullptr;
  }
};

TEST_F(DashboardTest, TheBrowserShowsTheNationalFiguresLiveAccessiblyAndSafely) {
  constexpr int kPushSeconds = 1;
  aggregator_extra_ = absl::StrCat("  api_push_interval: ", kPushSeconds, "s\n");
  // Window 0: every city, perturbed values. Window 1: one of Groningen's cells withheld (the
  // national total is a lower bound). Window 2: every cell withheld (no national value at all).
  // Window 3: Enschede misses the deadline (incomplete), later revised. Window -1, the oldest:
  // every city closed it without a cell (no data: the national figure has no total at all).
  for (const std::string& city : Cities()) Close(city, -1, 0);
  Cell("groningen", 0, "GM0014", 40);
  Cell("amersfoort", 0, "GM0307", 30);
  Cell("enschede", 0, "GM0153", 5);
  Cell("groningen", 1, "GM0014", 41);
  Cell("groningen", 1, "GM0034", std::nullopt);
  Cell("amersfoort", 1, "GM0307", 31);
  Cell("enschede", 1, "GM0153", 6);
  Cell("groningen", 2, "GM0014", std::nullopt);
  Cell("amersfoort", 2, "GM0307", std::nullopt);
  Cell("enschede", 2, "GM0153", std::nullopt);
  Cell("groningen", 3, "GM0014", 43);
  Cell("amersfoort", 3, "GM0307", 33);
  for (int w = 0; w < 4; ++w) {
    Close("groningen", w, w == 1 ? 2 : 1);
    Close("amersfoort", w, 1);
    if (w != 3) Close("enschede", w, 1);
  }
  Flush();
  auto aggregator = StartAggregator();
  ASSERT_EQ(WaitForFigures(5).size(), 5u) << aggregator->Log();
  const int port = aggregator->port("api_port");
  const std::string base = absl::StrCat("https://localhost:", port);

  BrowserDriver browser;
  json launched =
      browser.Call({{"cmd", "launch"}, {"spki", SpkiPin(files_["national"].cert_path)}});
  ASSERT_TRUE(launched.contains("version")) << launched.dump();
  std::cout << "Chromium " << launched["version"].get<std::string>() << "\n";
  json page = browser.Call({{"cmd", "goto"}, {"url", base + "/"}});
  ASSERT_EQ(page.value("status", 0), 200) << page.dump();

  // The security headers of the page (every answer of the listener carries them).
  const json& headers = page["headers"];
  EXPECT_EQ(headers.value("content-security-policy", ""),
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'");
  EXPECT_EQ(headers.value("x-content-type-options", ""), "nosniff");
  EXPECT_EQ(headers.value("x-frame-options", ""), "DENY");
  EXPECT_EQ(headers.value("referrer-policy", ""), "no-referrer");
  EXPECT_EQ(headers.value("cross-origin-opener-policy", ""), "same-origin");
  EXPECT_THAT(headers.value("strict-transport-security", ""), HasSubstr("max-age="));
  EXPECT_THAT(headers.value("etag", ""), ::testing::StartsWith("\"sha256-"));
  EXPECT_EQ(browser.Call({{"cmd", "attribute"}, {"selector", "html"}, {"name", "lang"}})["value"],
            "nl");

  // The page shows what the national topic holds: every window, its newest revision, the
  // national count (or withheld) and each city's part.
  {
    json rows = browser.Call({{"cmd", "figures"}})["rows"];
    auto topic = NewestInTopic();
    ASSERT_EQ(rows.size(), topic.size()) << rows.dump();
    for (const auto& [start, figure] : topic) {
      const json* row = Row(rows, start);
      ASSERT_NE(row, nullptr) << start << " missing from the page";
      EXPECT_EQ((*row)["revision"], figure.revision()) << start;
      EXPECT_EQ((*row)["complete"], figure.complete()) << start;
      const json& national = (*row)["cells"]["national"];
      if (figure.totals_size() == 0) {
        EXPECT_EQ(national["kind"], "none") << start;
        continue;
      }
      ASSERT_EQ(figure.totals(0).name(), "count");
      if (figure.totals(0).has_value()) {
        EXPECT_EQ(national["value"], figure.totals(0).value()) << start;
        EXPECT_EQ(national["kind"], figure.totals(0).withheld_cells() > 0 ? "partial" : "value");
      } else {
        EXPECT_EQ(national["kind"], "withheld") << start;
        EXPECT_TRUE(national["value"].is_null()) << start << " withheld is never a number";
      }
      for (const natv1::CityPart& part : figure.cities()) {
        const json& cell = (*row)["cells"]["city:" + part.peer()];
        if (part.measures_size() == 0) {
          EXPECT_EQ(cell["kind"], "none") << start << " " << part.peer();
        } else if (part.measures(0).has_value()) {
          EXPECT_EQ(cell["value"], part.measures(0).value()) << start << " " << part.peer();
        } else {
          EXPECT_EQ(cell["kind"], "withheld") << start << " " << part.peer();
        }
      }
    }
    // Withheld reads as withheld (never 0), a lower bound as such, perturbed values are marked.
    const json& w2 = (*Row(rows, views::FormatInstant(Quarter(2))))["cells"]["national"];
    EXPECT_EQ(w2["text"], "afgeschermd");
    const json& w1 = (*Row(rows, views::FormatInstant(Quarter(1))))["cells"];
    EXPECT_THAT(w1["national"]["text"].get<std::string>(), HasSubstr("deels afgeschermd"));
    EXPECT_EQ(w1["city:groningen"]["kind"], "partial");
    EXPECT_THAT(w1["national"]["text"].get<std::string>(), HasSubstr("verstoord"));
    // No cell is no data, not withheld and not 0; the measures still come from the others.
    const json& empty = (*Row(rows, views::FormatInstant(Quarter(-1))))["cells"];
    EXPECT_EQ(empty["national"]["kind"], "none");
    EXPECT_EQ(empty["national"]["text"], "geen gegevens");
    EXPECT_EQ(empty["city:groningen"]["kind"], "none");
    EXPECT_EQ(
        browser.Call({{"cmd", "evaluate"},
                      {"expression", "document.getElementById('measure-select').value"}})["value"],
        "count");
    // The summary counts the withheld window (2), not the one without cells (-1).
    EXPECT_THAT(
        browser.Call({{"cmd", "text"}, {"selector", "#chart-summary"}})["text"].get<std::string>(),
        HasSubstr("Afgeschermd: 1."));
    const json& w3 = *Row(rows, views::FormatInstant(Quarter(3)));
    EXPECT_FALSE(w3["complete"]);
    EXPECT_EQ(w3["cells"]["city:enschede"]["kind"], "missing");
    EXPECT_THAT(w3["cells"]["status"]["text"].get<std::string>(), HasSubstr("ontbreekt: enschede"));
    // The map never draws a withheld value as 0 either, and names each city.
    json map = browser.Call({{"cmd", "map"}})["cities"];
    ASSERT_EQ(map.size(), 3u) << map.dump();
  }

  // Live: a new window and a revision appear without reload, each within 3 × the push interval
  // of reaching the national topic.
  browser.Call({{"cmd", "evaluate"}, {"expression", "window.loadedOnce = 'yes'"}});
  // Enschede's late window 3 first (a city's windows arrive in order), then window 4 from all.
  Cell("enschede", 3, "GM0153", 7);
  Close("enschede", 3, 1);
  Flush();
  WaitInTopic(3, 1);
  json revised = browser.Call({{"cmd", "wait_row"},
                               {"window", views::FormatInstant(Quarter(3))},
                               {"revision", 1},
                               {"timeout_ms", 3 * kPushSeconds * 1000}});
  EXPECT_TRUE(revised.contains("elapsed_ms")) << "the revision not on the page within 3 s";
  std::cout << "revision on the page " << revised.value("elapsed_ms", -1)
            << " ms after it was in the national topic\n";
  for (const std::string& city : Cities()) {
    Cell(city, 4, city == "groningen" ? "GM0014" : city == "amersfoort" ? "GM0307" : "GM0153", 50);
    Close(city, 4, 1);
  }
  Flush();
  WaitInTopic(4, 0);
  json appeared = browser.Call({{"cmd", "wait_row"},
                                {"window", views::FormatInstant(Quarter(4))},
                                {"revision", 0},
                                {"timeout_ms", 3 * kPushSeconds * 1000}});
  EXPECT_TRUE(appeared.contains("elapsed_ms")) << "window 4 not on the page within 3 s";
  std::cout << "new window on the page " << appeared.value("elapsed_ms", -1)
            << " ms after it was in the national topic\n";
  EXPECT_EQ(browser.Call({{"cmd", "evaluate"}, {"expression", "window.loadedOnce"}})["value"],
            "yes")
      << "the page was not reloaded";
  {
    json rows = browser.Call({{"cmd", "figures"}})["rows"];
    const json& w3 = *Row(rows, views::FormatInstant(Quarter(3)));
    EXPECT_TRUE(w3["revised"]);
    EXPECT_TRUE(w3["complete"]);
    EXPECT_EQ(w3["cells"]["national"]["value"], 83);
    const std::string status = w3["cells"]["status"]["text"];
    EXPECT_THAT(status, HasSubstr("herzien"));
    EXPECT_THAT(status, HasSubstr("revisie 1"));
    EXPECT_THAT(status, HasSubstr("was 76")) << "the previous value beside the revision";
    EXPECT_EQ((*Row(rows, views::FormatInstant(Quarter(4))))["cells"]["national"]["value"], 150);
    // The announcement for screen readers (polite, at most one per push).
    json announced = browser.Call({{"cmd", "wait_for"},
                                   {"expression",
                                    "(t => /^Nieuw venster .*: 150/.test(t) && t)"
                                    "(document.getElementById('announcer').textContent)"},
                                   {"timeout_ms", 5000}});
    EXPECT_THAT(announced.value("value", ""), HasSubstr("(verstoord)"));
  }
  std::cout << "cities: " << browser.Call({{"cmd", "cities"}})["rows"].dump() << "\n";

  // Keyboard only: Tab reaches every control, the skip link first; the controls work.
  {
    json keys = browser.Call({{"cmd", "keyboard"}});
    std::vector<std::string> order = keys["order"];
    ASSERT_FALSE(order.empty());
    EXPECT_EQ(order[0], "a.skip-link");
    for (const json& control : keys["controls"]) {
      EXPECT_NE(std::find(order.begin(), order.end(), control.get<std::string>()), order.end())
          << control << " is never reached by Tab; order: " << keys["order"].dump();
    }
    EXPECT_GE(keys["controls"].size(), 9u) << keys["controls"].dump();
    browser.Call({{"cmd", "tab_and_press"}, {"target", "6h"}, {"key", "Enter"}});
    EXPECT_EQ(browser.Call({{"cmd", "attribute"},
                            {"selector", "button[data-range='6h']"},
                            {"name", "aria-pressed"}})["value"],
              "true");
    EXPECT_THAT(browser.Call({{"cmd", "evaluate"}, {"expression", "location.search"}})["value"]
                    .get<std::string>(),
                HasSubstr("range=6h"));
    browser.Call({{"cmd", "tab_and_press"}, {"target", "24h"}, {"key", " "}});
    EXPECT_EQ(browser.Call({{"cmd", "attribute"},
                            {"selector", "button[data-range='24h']"},
                            {"name", "aria-pressed"}})["value"],
              "true");
    // Live updates can be paused and resumed (WCAG 2.2.2).
    browser.Call({{"cmd", "tab_and_press"}, {"target", "live-toggle"}, {"key", "Enter"}});
    EXPECT_EQ(
        browser.Call(
            {{"cmd", "attribute"}, {"selector", "#live-state"}, {"name", "data-state"}})["value"],
        "paused");
    browser.Call({{"cmd", "press"}, {"key", "Enter"}});
    EXPECT_EQ(
        browser.Call({{"cmd", "wait_for"},
                      {"expression",
                       "document.getElementById('live-state').dataset.state === 'live' && 'live'"},
                      {"timeout_ms", 10000}})["value"],
        "live");
  }

  // No CSP violation, script error or failed load so far.
  EXPECT_THAT(browser.Call({{"cmd", "console"}})["messages"], IsEmpty());

  // axe-core: no violation, in Dutch and in English.
  for (const std::string lang : {"nl", "en"}) {
    if (lang == "en") {
      browser.Call({{"cmd", "goto"}, {"url", base + "/?lang=en"}});
      EXPECT_EQ(
          browser.Call({{"cmd", "attribute"}, {"selector", "html"}, {"name", "lang"}})["value"],
          "en");
      EXPECT_EQ(browser.Call({{"cmd", "text"}, {"selector", "h1"}})["text"], "National figures");
      json rows = browser.Call({{"cmd", "figures"}})["rows"];
      const json* w2 = Row(rows, views::FormatInstant(Quarter(2)));
      ASSERT_NE(w2, nullptr);
      EXPECT_EQ((*w2)["cells"]["national"]["text"], "withheld");
    }
    json axe = browser.Call({{"cmd", "axe"}});
    std::cout << "axe-core " << axe.value("version", "?") << " (" << lang
              << "): " << axe.value("passes", 0) << " rules pass, incomplete "
              << axe["incomplete"].dump() << "\n";
    EXPECT_THAT(axe["violations"], IsEmpty()) << lang << ": " << axe["violations"].dump(2);
  }
  if (const char* out = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR"); out != nullptr) {
    browser.Call({{"cmd", "goto"}, {"url", base + "/"}});
    browser.Call({{"cmd", "screenshot"}, {"path", absl::StrCat(out, "/dashboard.png")}});
  }
  EXPECT_THAT(browser.Call({{"cmd", "console"}})["messages"], IsEmpty());

  // 500 idle live connections from 100 loopback addresses, 5 each (the default cap is 16 per
  // address: a 17th from one address is refused); an API request is still answered within 3 s.
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  ASSERT_EQ(SSL_CTX_load_verify_locations(ctx, fed_->bundle_path().c_str(), nullptr), 1);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  const std::string events = absl::StrCat("/api/v1/views/", kBikes, "/", view_, "/events");
  std::vector<LiveConnection> live;
  for (int i = 0; i < 500; ++i) {
    live.push_back(OpenLive(ctx, absl::StrCat("127.0.3.", 1 + i / 5), port, events));
    ASSERT_THAT(live.back().head, HasSubstr("HTTP/1.1 200 OK")) << "connection " << i;
  }
  std::vector<LiveConnection> one_source;
  for (int i = 0; i < 17; ++i) one_source.push_back(OpenLive(ctx, "127.0.4.1", port, events));
  for (int i = 0; i < 16; ++i) EXPECT_THAT(one_source[i].head, HasSubstr("200 OK")) << i;
  EXPECT_THAT(one_source[16].head, HasSubstr("503 Service Unavailable"));
  EXPECT_THAT(one_source[16].head, HasSubstr("Retry-After: 5"));
  for (LiveConnection& c : one_source) c.Close();
  const std::string metrics = Ops(*aggregator, "/metrics");
  EXPECT_THAT(metrics,
              ::testing::ContainsRegex("polder_http_open_streams\\{listener=\"api\"\\} 50[0-9]"));
  const absl::Time start = absl::Now();
  auto [status, body] = Api(*aggregator, FiguresPath());
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(status, 200) << body;
  EXPECT_LT(took, absl::Seconds(3)) << "the 1 s target, 3× slack, with 500 live connections open";
  std::cout << "API request with 500 live connections open: " << absl::FormatDuration(took) << "\n";
  // The open page is still live among them: the next window reaches it too.
  for (const std::string& city : Cities()) {
    Cell(city, 5, city == "groningen" ? "GM0014" : city == "amersfoort" ? "GM0307" : "GM0153", 60);
    Close(city, 5, 1);
  }
  Flush();
  WaitInTopic(5, 0);
  EXPECT_TRUE(browser
                  .Call({{"cmd", "wait_row"},
                         {"window", views::FormatInstant(Quarter(5))},
                         {"revision", 0},
                         {"timeout_ms", 3 * kPushSeconds * 1000}})
                  .contains("elapsed_ms"));
  for (LiveConnection& c : live) c.Close();
  SSL_CTX_free(ctx);
}

}  // namespace
}  // namespace polder
