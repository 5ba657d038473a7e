#include "services/node/schema_cache/schema_endpoint.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status/http_status.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace node {
namespace {

using nlohmann::json;
constexpr char kMediaType[] = "application/vnd.schemaregistry.v1+json";

std::string Query(const http::HttpRequest& r, const std::string& key) {
  auto it = r.query.find(key);
  return it == r.query.end() ? "" : it->second;
}

bool Serialized(const http::HttpRequest& r) { return Query(r, "format") == "serialized"; }

std::string SchemaText(const CachedSchema& s, bool serialized) {
  return serialized ? s.serialized : s.parsed->ToProtoText();
}

json RefsJson(const std::vector<SchemaRef>& refs) {
  json out = json::array();
  for (const SchemaRef& r : refs)
    out.push_back({{"name", r.name}, {"subject", r.subject}, {"version", r.version}});
  return out;
}

http::HttpResponse Json(const json& body) {
  http::HttpResponse r;
  r.content_type = kMediaType;
  r.body = body.dump();
  return r;
}

absl::StatusOr<int32_t> VersionParam(const std::string& v) {
  if (v == "latest" || v == "-1") return -1;
  int32_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("The specified version '", v,
                     "' is not a valid version id. Allowed values are between [1, ",
                     "2^31-1] and the string \"latest\""));
  }
  return n;
}

}  // namespace

http::HttpResponse ConfluentError(const absl::Status& status, int error_code) {
  http::HttpResponse r;
  r.status = HttpStatusCode(status.code());
  r.content_type = kMediaType;
  r.body = json{{"error_code", error_code}, {"message", std::string(status.message())}}.dump();
  return r;
}

http::HttpResponse SchemaEndpointRefusal(const absl::Status& status) {
  const int http =
      status.code() == absl::StatusCode::kUnimplemented ? 405 : HttpStatusCode(status.code());
  http::HttpResponse r;
  r.status = http;
  r.content_type = kMediaType;
  r.body = json{{"error_code", http}, {"message", std::string(status.message())}}.dump();
  return r;
}

void RegisterSchemaRoutes(http::HttpsServer* server, SchemaCache* cache) {
  using Peer = tls::PeerIdentity;
  auto by_id =
      [cache](const std::string& param) -> absl::StatusOr<std::shared_ptr<const CachedSchema>> {
    int32_t id = 0;
    if (!absl::SimpleAtoi(param, &id) || id < 1) {
      return absl::NotFoundError(absl::StrCat("Schema ", param, " not found"));
    }
    return cache->Served(id);  // the cache only: the registry is never asked on a client's behalf
  };
  server->Handle("GET", R"(/schemas/ids/([^/]+)/schema)",
                 [by_id](const http::HttpRequest& r, const Peer&) {
                   auto s = by_id(r.path_params[0]);
                   if (!s.ok()) return ConfluentError(s.status(), 40403);
                   http::HttpResponse out;
                   out.content_type = kMediaType;
                   out.body = SchemaText(**s, Serialized(r));
                   return out;
                 });
  server->Handle(
      "GET", R"(/schemas/ids/([^/]+))", [by_id](const http::HttpRequest& r, const Peer&) {
        auto s = by_id(r.path_params[0]);
        if (!s.ok()) return ConfluentError(s.status(), 40403);
        json body = {{"schemaType", "PROTOBUF"}, {"schema", SchemaText(**s, Serialized(r))}};
        if (!(*s)->references.empty()) body["references"] = RefsJson((*s)->references);
        return Json(body);
      });
  auto version = [cache](const http::HttpRequest& r, bool raw) {
    const std::string& subject = r.path_params[0];
    absl::StatusOr<int32_t> v = VersionParam(r.path_params[1]);
    if (!v.ok()) return ConfluentError(v.status(), 42202);
    absl::StatusOr<int32_t> id = cache->ServedIdOf(subject, *v);
    if (!id.ok()) {
      return ConfluentError(
          absl::NotFoundError(absl::StrCat("Subject '", subject, "' or its version ",
                                           r.path_params[1], " not found")),
          *v == -1 ? 40401 : 40402);
    }
    absl::StatusOr<std::shared_ptr<const CachedSchema>> s = cache->Served(*id);
    if (!s.ok()) return ConfluentError(s.status(), 40403);
    if (raw) {
      http::HttpResponse out;
      out.content_type = kMediaType;
      out.body = SchemaText(**s, Serialized(r));
      return out;
    }
    int32_t number = *v;
    if (number == -1) {
      for (const auto& [subj, n] : cache->VersionsOf(*id)) {
        if (subj == subject) number = std::max(number, n);
      }
    }
    json body = {{"subject", subject},
                 {"version", number},
                 {"id", *id},
                 {"schemaType", "PROTOBUF"},
                 {"schema", SchemaText(**s, Serialized(r))}};
    if (!(*s)->references.empty()) body["references"] = RefsJson((*s)->references);
    return Json(body);
  };
  server->Handle("GET", R"(/subjects/(.+)/versions/([^/]+)/schema)",
                 [version](const http::HttpRequest& r, const Peer&) { return version(r, true); });
  server->Handle("GET", R"(/subjects/(.+)/versions/([^/]+))",
                 [version](const http::HttpRequest& r, const Peer&) { return version(r, false); });
}

}  // namespace node
}  // namespace polder
