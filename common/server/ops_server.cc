#include "common/server/ops_server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/server/host_port.h"
#include "common/status/status_macros.h"

namespace polder {
namespace server {

void Readiness::AddCheck(const std::string& name, std::function<absl::Status()> check) {
  absl::MutexLock lock(&mu_);
  Entry& e = entries_[name];
  e.check = std::move(check);
}

void Readiness::Report(const std::string& name, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  Entry& e = entries_[name];
  if (e.status != status) {
    e.status = status;
    e.since = absl::Now();
  }
}

void Readiness::Expect(const std::string& name) {
  absl::MutexLock lock(&mu_);
  entries_.try_emplace(name);
}

std::map<std::string, std::pair<absl::Status, absl::Time>> Readiness::Evaluate() const {
  // Checks run outside the lock: they read other subsystems, which may report meanwhile.
  std::vector<std::pair<std::string, std::function<absl::Status()>>> pulled;
  std::map<std::string, std::pair<absl::Status, absl::Time>> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, e] : entries_) {
      if (e.check) {
        pulled.emplace_back(name, e.check);
      } else {
        out[name] = {e.status, e.since};
      }
    }
  }
  for (const auto& [name, check] : pulled) {
    absl::Status s = check();
    absl::MutexLock lock(&mu_);
    Entry& e = entries_[name];
    if (e.status != s) {  // remembered, so "since" says when a pulled check last changed
      e.status = s;
      e.since = absl::Now();
    }
    out[name] = {e.status, e.since};
  }
  return out;
}

std::vector<std::string> Readiness::Problems() const {
  std::vector<std::string> problems;
  for (const auto& [name, st] : Evaluate()) {
    if (!st.first.ok()) problems.push_back(absl::StrCat(name, ": ", st.first.message()));
  }
  return problems;
}

nlohmann::json Readiness::Checks() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, st] : Evaluate()) {
    out[name] = {{"ok", st.first.ok()},
                 {"message", std::string(st.first.message())},
                 {"since", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", st.second, absl::UTCTimeZone())}};
  }
  return out;
}

namespace {

http::HttpResponse Text(int status, std::string body, const char* type) {
  http::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = type;
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<OpsServer>> OpsServer::Listen(absl::string_view address,
                                                             absl::string_view field,
                                                             const Readiness* readiness,
                                                             StatusFn status, MetricsFn metrics) {
  ASSIGN_OR_RETURN(HostPort where, ParseHostPort(address, field));
  OpsOptions options;
  options.bind_address = where.host;
  options.port = where.port;
  ASSIGN_OR_RETURN(std::unique_ptr<OpsServer> ops,
                   Create(options, readiness, std::move(status), std::move(metrics)));
  RETURN_IF_ERROR(ops->Start());
  return ops;
}

absl::StatusOr<std::unique_ptr<OpsServer>> OpsServer::Create(const OpsOptions& options,
                                                             const Readiness* readiness,
                                                             StatusFn status, MetricsFn metrics) {
  if (readiness == nullptr)
    return absl::InvalidArgumentError("the ops listener needs a readiness registry");
  http::HttpsOptions o;
  o.bind_address = options.bind_address;
  o.port = options.port;
  o.plaintext = true;
  o.client_auth = http::ClientAuth::kNone;
  o.workers = options.workers;
  o.max_body_bytes = 0;  // GET only
  o.head_timeout = options.head_timeout;
  o.max_connections = options.max_connections;
  o.max_connections_per_source = options.max_connections_per_source;
  auto http = http::HttpsServer::Create(o, nullptr);
  if (!http.ok()) return http.status();
  std::unique_ptr<OpsServer> ops(new OpsServer());
  ops->http_ = *std::move(http);
  using Peer = tls::PeerIdentity;
  ops->http_->Handle("GET", "/livez", [](const http::HttpRequest&, const Peer&) {
    return Text(200, "ok\n", "text/plain");
  });
  ops->http_->Handle("GET", "/readyz", [readiness](const http::HttpRequest&, const Peer&) {
    std::vector<std::string> problems = readiness->Problems();
    return Text(problems.empty() ? 200 : 503,
                nlohmann::json{{"ready", problems.empty()}, {"problems", problems}}.dump() + "\n",
                "application/json");
  });
  ops->http_->Handle("GET", "/statusz", [readiness, status](const http::HttpRequest&, const Peer&) {
    nlohmann::json doc = status ? status() : nlohmann::json::object();
    if (!doc.is_object()) doc = nlohmann::json{{"status", doc}};
    std::vector<std::string> problems = readiness->Problems();
    doc["ready"] = problems.empty();
    doc["problems"] = problems;
    doc["checks"] = readiness->Checks();
    return Text(200, doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                "application/json");
  });
  ops->http_->Handle("GET", "/metrics", [metrics](const http::HttpRequest&, const Peer&) {
    return Text(200, metrics ? metrics() : "", "text/plain; version=0.0.4");
  });
  return ops;
}

absl::Status OpsServer::Start() { return http_->Start(); }

void OpsServer::Stop() { http_->Stop(); }

}  // namespace server
}  // namespace polder
