// The HTTP ingest path end to end, without Kafka: raw request bytes → the request head as the
// server parses it (common/http:request_head) → the ingest gate (bearer token, dataset grant;
// before the body, as the server runs it) → the body by Content-Type (ParseHttpBody) → every
// record validated against the standard BikeCount schema. Whatever the bytes, each step answers
// (admits, or refuses with a reason) without crashing.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/http/request_head.h"
#include "services/node/ingest/auth.h"
#include "services/node/ingest/transports.h"
#include "services/node/ingest/validator.h"
#include "tests/fuzz/bike_target.h"

namespace {

constexpr char kToken[] = "fuzz-gateway-token-0123456789";

polder::node::IngestAuthenticator& Auth() {
  static polder::node::IngestAuthenticator* auth = [] {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/http-ingest-fuzz-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) std::abort();
    const std::string file = dir + "/gateway.token";
    std::ofstream(file) << kToken << "\n";
    chmod(file.c_str(), 0600);
    auto a = polder::node::IngestAuthenticator::Create(
        {{"gateway", {"mobility.bike-counts"}, file}}, false);
    if (!a.ok()) std::abort();
    return a->release();
  }();
  return *auth;
}

const polder::node::IngestTarget& Target() { return polder::fuzzing::BikeCountTarget(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  std::vector<std::string> lines = absl::StrSplit(in.substr(0, end), "\r\n");
  if (lines.empty() || lines.size() > 101) return 0;  // the server's max_headers
  polder::http::HttpRequest req;
  std::string version;
  if (!polder::http::ParseRequestLine(lines[0], &req, &version).ok()) return 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (!polder::http::ParseHeaderLine(lines[i], &req).ok()) return 0;
  }
  static const std::regex route(R"(/v1/datasets/([^/]+)/records)");
  std::smatch m;
  if (req.method != "POST" || !std::regex_match(req.path, m, route)) return 0;
  const std::string dataset = m[1].str();
  // The gate, on the head alone.
  absl::StatusOr<std::string> identity = Auth().Authenticate("", req.HeaderValue("Authorization"));
  if (!identity.ok() || !Auth().Authorize(*identity, dataset).ok()) return 0;
  req.body = in.substr(end + 4);
  absl::StatusOr<polder::node::v1::PublishRequest> request =
      polder::node::ParseHttpBody(req, dataset);
  if (!request.ok()) return 0;
  if (request->dataset() != dataset) std::abort();
  std::vector<polder::node::IncomingRecord> records;
  for (const auto& r : request->records()) {
    records.push_back({r.has_binary() ? polder::node::IncomingRecord::Format::kBinary
                                      : polder::node::IncomingRecord::Format::kJson,
                       r.has_binary() ? r.binary() : r.json(), r.ce_id()});
    if (records.size() >= 100) break;
  }
  const polder::node::BatchValidator validator(polder::node::IngestLimits{});
  auto out = validator.Validate(Target(), records, absl::FromUnixSeconds(1795000000), "seed");
  if (out.ok() && out->size() != records.size()) std::abort();
  return 0;
}
