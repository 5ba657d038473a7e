// polder-generate: synthetic city data for the standard datasets (tools/generator), printed as
// NDJSON or posted to a node's HTTP ingest.
//
//   # NDJSON on stdout:
//   polder-generate --city groningen --dataset mobility.bike-counts --from -2h
//   # Posted to a node, then following the clock:
//   polder-generate --city groningen --from -6h --follow --post https://localhost:8443
//       --cacert bundle.pem --token_file gateway.token
//
// Each interval of each dataset is one batch with the idempotency key
// "<city>/<dataset>/<interval end>", so running it again over the same hours writes nothing
// twice (within the node's idempotency window). Progress goes to stderr.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "httplib.h"
#include "tools/generator/generator.h"

ABSL_FLAG(std::string, city, "", "groningen, amersfoort, enschede or ede-wageningen (required)");
ABSL_FLAG(std::string, dataset, "all", "a dataset id, or 'all' (comma-separated list allowed)");
ABSL_FLAG(std::string, from, "-1h", "start: RFC 3339 time, or a duration before now such as -6h");
ABSL_FLAG(std::string, until, "now", "end (RFC 3339 or now); ignored with --follow");
ABSL_FLAG(bool, follow, false, "after catching up, keep generating as time passes");
ABSL_FLAG(double, speedup, 0,
          "while catching up, simulated seconds per real second (0: as fast as possible)");
ABSL_FLAG(uint64_t, seed, 7, "seed of the synthetic values");
ABSL_FLAG(std::string, post, "",
          "base URL of a node's HTTP ingest (http://host:port in development mode)");
ABSL_FLAG(std::string, cacert, "", "CA bundle to verify the node's certificate");
ABSL_FLAG(std::string, cert, "", "client certificate (gateway identity)");
ABSL_FLAG(std::string, key, "", "client key");
ABSL_FLAG(std::string, token_file, "", "file holding a bearer token (gateway identity)");

namespace polder {
namespace generator {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

absl::StatusOr<absl::Time> ParseWhen(const std::string& text, absl::Time now) {
  if (text == "now") return now;
  absl::Duration d;
  if (!text.empty() && text[0] == '-' && absl::ParseDuration(text.substr(1), &d)) return now - d;
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return t;
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is neither an RFC 3339 time nor -<duration>"));
}

int Run() {
  const std::string city = absl::GetFlag(FLAGS_city);
  bool known = false;
  for (const City& c : Cities()) known |= c.peer_id == city;
  if (!known) {
    std::cerr << "polder-generate: --city must be one of groningen, amersfoort, enschede, "
                 "ede-wageningen\n";
    return 2;
  }
  std::vector<std::string> datasets;
  if (absl::GetFlag(FLAGS_dataset) == "all") {
    datasets = DatasetIds();
  } else {
    datasets = absl::StrSplit(absl::GetFlag(FLAGS_dataset), ',');
    for (const std::string& d : datasets) {
      if (!EntityIds(city, d).ok()) {
        std::cerr << "polder-generate: unknown dataset '" << d << "'\n";
        return 2;
      }
    }
  }
  const absl::Time start_wall = absl::Now();
  absl::StatusOr<absl::Time> from = ParseWhen(absl::GetFlag(FLAGS_from), start_wall);
  absl::StatusOr<absl::Time> until = ParseWhen(absl::GetFlag(FLAGS_until), start_wall);
  if (!from.ok() || !until.ok()) {
    std::cerr << "polder-generate: " << (from.ok() ? until.status() : from.status()).message()
              << "\n";
    return 2;
  }
  std::unique_ptr<httplib::Client> client;
  std::string token;
  if (!absl::GetFlag(FLAGS_post).empty()) {
    const std::string url = absl::GetFlag(FLAGS_post);
    client = absl::GetFlag(FLAGS_cert).empty()
                 ? std::make_unique<httplib::Client>(url)
                 : std::make_unique<httplib::Client>(url, absl::GetFlag(FLAGS_cert),
                                                     absl::GetFlag(FLAGS_key));
    if (!absl::GetFlag(FLAGS_cacert).empty())
      client->set_ca_cert_path(absl::GetFlag(FLAGS_cacert).c_str());
    client->set_connection_timeout(std::chrono::seconds(10));
    client->set_read_timeout(std::chrono::seconds(60));
    if (!absl::GetFlag(FLAGS_token_file).empty()) {
      std::ifstream in(absl::GetFlag(FLAGS_token_file));
      std::getline(in, token);
      token = std::string(absl::StripAsciiWhitespace(token));
      if (token.empty()) {
        std::cerr << "polder-generate: no token in " << absl::GetFlag(FLAGS_token_file) << "\n";
        return 2;
      }
    }
  }
  // The next interval end to emit, per dataset.
  std::map<std::string, absl::Time> next;
  for (const std::string& d : datasets) {
    const absl::Duration iv = Interval(d);
    next[d] = absl::UnixEpoch() + absl::Ceil(*from - absl::UnixEpoch(), iv);
  }
  const double speedup = absl::GetFlag(FLAGS_speedup);
  const absl::Time sim_start = *from;
  int64_t records = 0, batches = 0, failures = 0;
  absl::Time last_report = absl::Now();
  const bool follow = absl::GetFlag(FLAGS_follow);
  while (!g_stop) {
    const absl::Time now = absl::Now();
    // The simulated clock: catching up at `speedup`, never ahead of real time.
    absl::Time clock = now;
    if (speedup > 0) clock = std::min(now, sim_start + (now - start_wall) * speedup);
    const absl::Time limit = follow ? clock : std::min(clock, *until);
    bool emitted = false;
    for (const std::string& d : datasets) {
      while (next[d] <= limit && !g_stop) {
        absl::StatusOr<std::vector<GeneratedRecord>> batch =
            Generate(city, d, next[d], absl::GetFlag(FLAGS_seed));
        if (!batch.ok()) {
          std::cerr << "polder-generate: " << batch.status().message() << "\n";
          return 1;
        }
        if (client == nullptr) {
          for (const GeneratedRecord& r : *batch) std::cout << r.json << "\n";
        } else {
          std::string body;
          for (const GeneratedRecord& r : *batch) absl::StrAppend(&body, r.json, "\n");
          httplib::Headers headers = {
              {"Idempotency-Key", absl::StrCat(city, "/", d, "/", absl::ToUnixSeconds(next[d]))}};
          if (!token.empty()) headers.emplace("Authorization", absl::StrCat("Bearer ", token));
          bool ok = false;
          for (int attempt = 0; attempt < 5 && !ok && !g_stop; ++attempt) {
            auto res = client->Post(absl::StrCat("/v1/datasets/", d, "/records").c_str(), headers,
                                    body, "application/x-ndjson");
            ok = res && res->status == 200;
            if (!ok) {
              ++failures;
              std::cerr << "polder-generate: " << d << ": "
                        << (res ? absl::StrCat("HTTP ", res->status, " ", res->body)
                                : httplib::to_string(res.error()))
                        << (res && res->status >= 400 && res->status < 500 && res->status != 429
                                ? ""
                                : " (retrying)")
                        << "\n";
              if (res && res->status >= 400 && res->status < 500 && res->status != 429) return 1;
              std::this_thread::sleep_for(std::chrono::seconds(1 << attempt));
            }
          }
          if (!ok) return 1;
        }
        records += static_cast<int64_t>(batch->size());
        ++batches;
        next[d] += Interval(d);
        emitted = true;
      }
    }
    if (absl::Now() - last_report > absl::Seconds(5) && client != nullptr) {
      std::cerr << "polder-generate: " << city << ": " << records << " records in " << batches
                << " batches, simulated time "
                << absl::FormatTime("%Y-%m-%d %H:%M", clock, absl::LocalTimeZone())
                << (failures ? absl::StrCat(", ", failures, " retried posts") : "") << "\n";
      last_report = absl::Now();
    }
    if (!follow && limit >= *until) break;
    if (!emitted) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (client != nullptr)
    std::cerr << "polder-generate: " << city << ": done, " << records << " records\n";
  return 0;
}

}  // namespace
}  // namespace generator
}  // namespace polder

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, polder::generator::OnSignal);
  signal(SIGTERM, polder::generator::OnSignal);
  absl::SetProgramUsageMessage(
      "polder-generate --city <city> [--dataset d] [--from -6h] [--follow] [--post URL]");
  absl::ParseCommandLine(argc, argv);
  return polder::generator::Run();
}
