// The ops listener every Polder service runs (node, registry; the aggregator next): plain HTTP
// on an internal address, nothing secret, on the event-loop HTTP server (ADR 0011: idle or slow
// connections hold no thread).
//
//   GET /livez    200 "ok" while the process serves HTTP at all (a wedged loop answers nothing)
//   GET /readyz   200 {"ready":true,"problems":[]} or 503 with the problems: what Readiness says
//   GET /statusz  JSON: the service's own status document, plus "ready", "problems", "checks"
//   GET /metrics  the service's Prometheus text exposition (0.0.4)
//
// Readiness is a registry each subsystem reports to, pushed (Report) or pulled at each query
// (AddCheck). The rule (ADR 0011): ready means *this process* can give correct answers — its
// Kafka, its producers, its schemas, its certificate; a peer's or a subscription's trouble is
// status, never unreadiness (an unready pod leaves every Service).
#ifndef POLDER_COMMON_SERVER_OPS_SERVER_H_
#define POLDER_COMMON_SERVER_OPS_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http/https_server.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace server {

class Readiness {
 public:
  // A pulled check, evaluated at every /readyz, /statusz and Problems() call: OK or the reason
  // this process cannot serve correctly. Registered before the listener starts.
  void AddCheck(const std::string& name, std::function<absl::Status()> check);
  // A pushed state: the subsystem's latest word (OK, or why it is not ready). A subsystem that
  // never reported is not ready ("<name>: not reported yet") once Expect(name) was called.
  void Report(const std::string& name, const absl::Status& status);
  void Expect(const std::string& name);

  // "<name>: <message>" for every check or report that is not OK, in name order.
  std::vector<std::string> Problems() const;
  bool Ready() const { return Problems().empty(); }
  // {"<name>": {"ok": bool, "message": "...", "since": RFC 3339 of the last change}}.
  nlohmann::json Checks() const;

 private:
  struct Entry {
    std::function<absl::Status()> check;  // pulled; empty for pushed entries
    absl::Status status = absl::UnavailableError("not reported yet");
    absl::Time since = absl::Now();
  };
  // The current statuses, evaluating the pulled checks.
  std::map<std::string, std::pair<absl::Status, absl::Time>> Evaluate() const;
  mutable absl::Mutex mu_;
  mutable std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

struct OpsOptions {
  std::string bind_address = "127.0.0.1";
  int port = 0;  // 0: any free port
  int workers = 4;
  absl::Duration head_timeout = absl::Seconds(5);
  // As every Polder listener (ADR 0011): the oldest connection is evicted for a new one at the
  // cap, so a flood of idle connections cannot lock out a probe.
  int max_connections = 4096;
  int max_connections_per_source = 256;
};

class OpsServer {
 public:
  // The service's own /statusz fields (merged under the ops fields) and its /metrics text.
  using StatusFn = std::function<nlohmann::json()>;
  using MetricsFn = std::function<std::string()>;

  static absl::StatusOr<std::unique_ptr<OpsServer>> Create(const OpsOptions& options,
                                                           const Readiness* readiness,
                                                           StatusFn status, MetricsFn metrics);
  // Create with the default options on `address` (host:port; `field` names the setting in
  // the error for a malformed one), then Start.
  static absl::StatusOr<std::unique_ptr<OpsServer>> Listen(absl::string_view address,
                                                           absl::string_view field,
                                                           const Readiness* readiness,
                                                           StatusFn status, MetricsFn metrics);
  absl::Status Start();
  void Stop();
  int port() const { return http_->port(); }
  http::HttpsServerStats stats() const { return http_->stats(); }

 private:
  OpsServer() = default;
  std::unique_ptr<http::HttpsServer> http_;
};

}  // namespace server
}  // namespace polder

#endif  // POLDER_COMMON_SERVER_OPS_SERVER_H_
