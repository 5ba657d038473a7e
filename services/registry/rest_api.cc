#include "services/registry/rest_api.h"

#include <cstdint>
#include <limits>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json/bounded.h"
#include "nlohmann/json.hpp"
#include "services/registry/errors.h"

namespace polder {
namespace registry {
namespace {

using http::HttpRequest;
using http::HttpResponse;
using nlohmann::json;

HttpResponse Json(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = kConfluentMediaType;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse Error(const absl::Status& s) {
  int code = ConfluentErrorCode(s);
  return Json(HttpStatusForErrorCode(code),
              json{{"error_code", code}, {"message", std::string(s.message())}});
}

std::string Query(const HttpRequest& r, const std::string& name) {
  auto it = r.query.find(name);
  return it == r.query.end() ? "" : it->second;
}

bool Flag(const HttpRequest& r, const std::string& name) { return Query(r, name) == "true"; }

SchemaFormat Format(const HttpRequest& r) {
  return Query(r, "format") == "serialized" ? SchemaFormat::kSerialized : SchemaFormat::kDefault;
}

absl::StatusOr<int32_t> VersionParam(const std::string& text) {
  if (text == "latest" || text == "-1") return -1;
  int32_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < 1) {
    return RegistryError(kInvalidVersion,
                         absl::StrCat("The specified version '", text,
                                      "' is not a valid version id. Allowed values are between [1, "
                                      "2^31-1] and the string \"latest\""));
  }
  return v;
}

json RefsJson(const std::vector<SchemaReference>& refs) {
  json out = json::array();
  for (const auto& r : refs)
    out.push_back({{"name", r.name}, {"subject", r.subject}, {"version", r.version}});
  return out;
}

json ViewJson(const SchemaView& v, bool with_subject) {
  json out = {{"id", v.id}, {"schemaType", v.schema_type}, {"schema", v.schema}};
  if (!v.references.empty()) out["references"] = RefsJson(v.references);
  if (with_subject) {
    out["subject"] = v.subject;
    out["version"] = v.version;
  }
  return out;
}

// An integer member that must fit in an int32 (ids, versions). Absent, null or not an integer:
// left unset; an integer outside int32 is refused, never truncated.
absl::Status Int32Member(const json& object, const char* name, absl::string_view what,
                         std::optional<int32_t>* out) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_number_integer()) return absl::OkStatus();
  constexpr int64_t kMin = std::numeric_limits<int32_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  const bool fits = it->is_number_unsigned()
                        ? it->get<uint64_t>() <= static_cast<uint64_t>(kMax)
                        : it->get<int64_t>() >= kMin && it->get<int64_t>() <= kMax;
  if (!fits) {
    return RegistryError(kInvalidSchema,
                         absl::StrCat(what, " must be an integer from ", kMin, " to ", kMax));
  }
  *out = static_cast<int32_t>(it->get<int64_t>());
  return absl::OkStatus();
}

// Parses a Confluent registration/lookup body.
}  // namespace

absl::StatusOr<RegisterRequest> ParseRegisterBody(absl::string_view text,
                                                  const std::string& subject) {
  json body = json_input::ParseOrDiscarded(text);
  if (!body.is_object()) return RegistryError(kInvalidSchema, "request body is not a JSON object");
  RegisterRequest req;
  req.subject = subject;
  if (!body.contains("schema") || !body["schema"].is_string()) {
    return RegistryError(kInvalidSchema, "request body needs \"schema\" (a string)");
  }
  req.schema = body["schema"].get<std::string>();
  if (body.contains("schemaType")) {
    if (!body["schemaType"].is_string())
      return RegistryError(kInvalidSchema, "\"schemaType\" must be a string");
    req.schema_type = body["schemaType"].get<std::string>();
  } else {
    // Confluent defaults to AVRO; Polder registers Protobuf only, so the type must be said.
    req.schema_type = "AVRO";
  }
  if (body.contains("references")) {
    if (!body["references"].is_array())
      return RegistryError(kInvalidSchema, "\"references\" must be a list");
    for (const json& ref : body["references"]) {
      if (!ref.is_object() || !ref.contains("name") || !ref.contains("subject") ||
          !ref.contains("version") || !ref["name"].is_string() || !ref["subject"].is_string() ||
          !ref["version"].is_number_integer()) {
        return RegistryError(kInvalidSchema,
                             "each reference needs \"name\", \"subject\" and \"version\"");
      }
      std::optional<int32_t> version;
      absl::Status in_range = Int32Member(ref, "version", "reference \"version\"", &version);
      if (!in_range.ok()) return in_range;
      req.references.push_back(
          {ref["name"].get<std::string>(), ref["subject"].get<std::string>(), *version});
    }
  }
  absl::Status id = Int32Member(body, "id", "\"id\"", &req.id);
  if (!id.ok()) return id;
  absl::Status version = Int32Member(body, "version", "\"version\"", &req.version);
  if (!version.ok()) return version;
  return req;
}

namespace {

absl::StatusOr<RegisterRequest> Body(const HttpRequest& r, const std::string& subject) {
  return ParseRegisterBody(r.body, subject);
}

}  // namespace

http::HttpResponse ConfluentRefusal(const absl::Status& status) {
  // A route the registry does not have: Confluent's own JSON for it ({"error_code":404,...}),
  // which its clients read as "not supported here" (e.g. the associations API).
  if (!HasRegistryErrorCode(status)) {
    if (status.code() == absl::StatusCode::kNotFound) {
      return Json(404, json{{"error_code", 404},
                            {"message", absl::StrCat("HTTP 404 Not Found: ", status.message())}});
    }
    if (status.code() == absl::StatusCode::kUnimplemented) {
      return Json(
          405, json{{"error_code", 405},
                    {"message", absl::StrCat("HTTP 405 Method Not Allowed: ", status.message())}});
    }
  }
  return Error(status);
}

void RegisterRestRoutes(http::HttpsServer* server, Registry* registry, const AccessPolicy& policy) {
  using Peer = tls::PeerIdentity;
  // More specific routes first: subjects may contain '/'.
  server->Handle("GET", R"(/subjects/(.+)/versions/([^/]+)/referencedby)",
                 [registry](const HttpRequest& r, const Peer&) {
                   absl::StatusOr<int32_t> version = VersionParam(r.path_params[1]);
                   if (!version.ok()) return Error(version.status());
                   absl::StatusOr<std::vector<int32_t>> ids =
                       registry->ReferencingIds(r.path_params[0], *version);
                   if (!ids.ok()) return Error(ids.status());
                   return Json(200, *ids);
                 });
  // Schema contexts are not kept: every subject lies in the default context.
  server->Handle("GET", R"(/contexts)",
                 [](const HttpRequest&, const Peer&) { return Json(200, json::array({"."})); });
  server->Handle("GET", R"(/subjects/(.+)/versions/([^/]+)/schema)",
                 [registry](const HttpRequest& r, const Peer&) {
                   absl::StatusOr<int32_t> v = VersionParam(r.path_params[1]);
                   if (!v.ok()) return Error(v.status());
                   absl::StatusOr<SchemaView> view =
                       registry->GetVersion(r.path_params[0], *v, Flag(r, "deleted"), Format(r));
                   if (!view.ok()) return Error(view.status());
                   HttpResponse out;
                   out.content_type = kConfluentMediaType;
                   out.body = view->schema;
                   return out;
                 });
  server->Handle("GET", R"(/subjects/(.+)/versions/([^/]+))",
                 [registry](const HttpRequest& r, const Peer&) {
                   absl::StatusOr<int32_t> v = VersionParam(r.path_params[1]);
                   if (!v.ok()) return Error(v.status());
                   absl::StatusOr<SchemaView> view =
                       registry->GetVersion(r.path_params[0], *v, Flag(r, "deleted"), Format(r));
                   if (!view.ok()) return Error(view.status());
                   return Json(200, ViewJson(*view, true));
                 });
  server->Handle("DELETE", R"(/subjects/(.+)/versions/([^/]+))",
                 [registry, policy](const HttpRequest& r, const Peer& p) {
                   absl::Status allowed = policy.CheckSubjectWrite(p.peer_id, r.path_params[0]);
                   if (!allowed.ok()) return Error(allowed);
                   absl::StatusOr<int32_t> v = VersionParam(r.path_params[1]);
                   if (!v.ok()) return Error(v.status());
                   absl::StatusOr<int32_t> deleted =
                       registry->DeleteVersion(r.path_params[0], *v, Flag(r, "permanent"));
                   if (!deleted.ok()) return Error(deleted.status());
                   return Json(200, *deleted);
                 });
  // Metadata lookups (Confluent data contracts) are not kept here: Confluent's JSON 404, as for a
  // route it lacks (without this, the path would match POST /subjects/{subject} and answer 405).
  server->Handle("GET", R"(/subjects/(.+)/metadata)", [](const HttpRequest& r, const Peer&) {
    return ConfluentRefusal(absl::NotFoundError(
        absl::StrCat("schema metadata (data contracts) is not kept by this registry: ", r.path)));
  });
  server->Handle("GET", R"(/subjects/(.+)/versions)",
                 [registry](const HttpRequest& r, const Peer&) {
                   absl::StatusOr<std::vector<int32_t>> v =
                       registry->ListVersions(r.path_params[0], Flag(r, "deleted"));
                   if (!v.ok()) return Error(v.status());
                   return Json(200, *v);
                 });
  server->Handle("POST", R"(/subjects/(.+)/versions)",
                 [registry, policy](const HttpRequest& r, const Peer& p) {
                   absl::Status allowed = policy.CheckSubjectWrite(p.peer_id, r.path_params[0]);
                   if (!allowed.ok()) return Error(allowed);
                   absl::StatusOr<RegisterRequest> req = Body(r, r.path_params[0]);
                   if (!req.ok()) return Error(req.status());
                   req->writer_namespace = policy.Namespace(p.peer_id);
                   absl::StatusOr<RegisterResult> res = registry->Register(*req);
                   if (!res.ok()) return Error(res.status());
                   return Json(200, json{{"id", res->id}});
                 });
  server->Handle("POST", R"(/subjects/(.+))", [registry](const HttpRequest& r, const Peer&) {
    absl::StatusOr<RegisterRequest> req = Body(r, r.path_params[0]);
    if (!req.ok()) return Error(req.status());
    absl::StatusOr<SchemaView> view = registry->Lookup(*req, Flag(r, "deleted"));
    if (!view.ok()) return Error(view.status());
    return Json(200, ViewJson(*view, true));
  });
  server->Handle("DELETE", R"(/subjects/(.+))",
                 [registry, policy](const HttpRequest& r, const Peer& p) {
                   absl::Status allowed = policy.CheckSubjectWrite(p.peer_id, r.path_params[0]);
                   if (!allowed.ok()) return Error(allowed);
                   absl::StatusOr<std::vector<int32_t>> v =
                       registry->DeleteSubject(r.path_params[0], Flag(r, "permanent"));
                   if (!v.ok()) return Error(v.status());
                   return Json(200, *v);
                 });
  server->Handle("GET", R"(/subjects)", [registry](const HttpRequest& r, const Peer&) {
    return Json(200, registry->ListSubjects(Flag(r, "deleted"), Query(r, "subjectPrefix")));
  });
  // The subject-versions (or subjects) that use a schema id.
  auto uses_of = [registry](const HttpRequest& r, bool subjects_only) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(r.path_params[0], &id) || id < 1) {
      return Error(
          RegistryError(kSchemaNotFound, absl::StrCat("Schema ", r.path_params[0], " not found")));
    }
    absl::StatusOr<std::vector<std::pair<std::string, int32_t>>> uses =
        registry->VersionsOfId(id, Flag(r, "deleted"));
    if (!uses.ok()) return Error(uses.status());
    json out = json::array();
    std::string last;
    for (const auto& [subject, version] : *uses) {
      if (subjects_only) {
        if (subject != last) out.push_back(subject);
        last = subject;
      } else {
        out.push_back({{"subject", subject}, {"version", version}});
      }
    }
    return Json(200, out);
  };
  server->Handle("GET", R"(/schemas/ids/([^/]+)/subjects)",
                 [uses_of](const HttpRequest& r, const Peer&) { return uses_of(r, true); });
  server->Handle("GET", R"(/schemas/ids/([^/]+)/versions)",
                 [uses_of](const HttpRequest& r, const Peer&) { return uses_of(r, false); });
  server->Handle(
      "GET", R"(/schemas/ids/([0-9]+)/schema)", [registry](const HttpRequest& r, const Peer&) {
        int32_t id = 0;
        // The route admits digits only; beyond int32 no schema has that id.
        if (!absl::SimpleAtoi(r.path_params[0], &id)) id = 0;
        absl::StatusOr<SchemaView> view = registry->GetById(id, Query(r, "subject"), Format(r));
        if (!view.ok()) return Error(view.status());
        HttpResponse out;
        out.content_type = kConfluentMediaType;
        out.body = view->schema;
        return out;
      });
  server->Handle("GET", R"(/schemas/ids/([^/]+))", [registry](const HttpRequest& r, const Peer&) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(r.path_params[0], &id) || id < 1) {
      return Error(
          RegistryError(kSchemaNotFound, absl::StrCat("Schema ", r.path_params[0], " not found")));
    }
    absl::StatusOr<SchemaView> view = registry->GetById(id, Query(r, "subject"), Format(r));
    if (!view.ok()) return Error(view.status());
    return Json(200, ViewJson(*view, false));
  });
  server->Handle("GET", R"(/schemas/types)", [](const HttpRequest&, const Peer&) {
    return Json(200, json::array({"PROTOBUF"}));
  });
  auto compatibility = [registry](const HttpRequest& r, const std::string& subject,
                                  int32_t version) {
    absl::StatusOr<RegisterRequest> req = Body(r, subject);
    if (!req.ok()) return Error(req.status());
    absl::StatusOr<std::vector<std::string>> reasons = registry->TestCompatibility(*req, version);
    if (!reasons.ok()) return Error(reasons.status());
    json out = {{"is_compatible", reasons->empty()}};
    if (Flag(r, "verbose")) out["messages"] = *reasons;
    return Json(200, out);
  };
  server->Handle("POST", R"(/compatibility/subjects/(.+)/versions/([^/]+))",
                 [compatibility](const HttpRequest& r, const Peer&) {
                   absl::StatusOr<int32_t> v = VersionParam(r.path_params[1]);
                   if (!v.ok()) return Error(v.status());
                   return compatibility(r, r.path_params[0], *v);
                 });
  server->Handle("POST", R"(/compatibility/subjects/(.+)/versions)",
                 [compatibility](const HttpRequest& r, const Peer&) {
                   return compatibility(r, r.path_params[0], 0);
                 });
  auto get_config = [registry](const HttpRequest& r, const std::string& subject) {
    absl::StatusOr<std::string> level =
        registry->GetCompatibility(subject, subject.empty() || Flag(r, "defaultToGlobal"));
    if (!level.ok()) return Error(level.status());
    return Json(200, json{{"compatibilityLevel", *level}});
  };
  auto put_config = [registry, policy](const HttpRequest& r, const Peer& p,
                                       const std::string& subject) {
    absl::Status allowed = subject.empty()
                               ? policy.CheckOperator(p.peer_id, "change the global compatibility")
                               : policy.CheckSubjectWrite(p.peer_id, subject);
    if (!allowed.ok()) return Error(allowed);
    json body = json_input::ParseOrDiscarded(r.body);
    if (!body.is_object() || !body.contains("compatibility") ||
        !body["compatibility"].is_string()) {
      return Error(
          RegistryError(kInvalidCompatibilityLevel, "request body needs \"compatibility\""));
    }
    absl::StatusOr<std::string> level =
        registry->SetCompatibility(subject, body["compatibility"].get<std::string>());
    if (!level.ok()) return Error(level.status());
    return Json(200, json{{"compatibility", *level}});
  };
  server->Handle("GET", R"(/config)",
                 [get_config](const HttpRequest& r, const Peer&) { return get_config(r, ""); });
  server->Handle("PUT", R"(/config)", [put_config](const HttpRequest& r, const Peer& p) {
    return put_config(r, p, "");
  });
  server->Handle("GET", R"(/config/(.+))", [get_config](const HttpRequest& r, const Peer&) {
    return get_config(r, r.path_params[0]);
  });
  server->Handle("PUT", R"(/config/(.+))", [put_config](const HttpRequest& r, const Peer& p) {
    return put_config(r, p, r.path_params[0]);
  });
  server->Handle(
      "DELETE", R"(/config/(.+))", [registry, policy](const HttpRequest& r, const Peer& p) {
        absl::Status allowed = policy.CheckSubjectWrite(p.peer_id, r.path_params[0]);
        if (!allowed.ok()) return Error(allowed);
        absl::StatusOr<std::string> previous = registry->DeleteCompatibility(r.path_params[0]);
        if (!previous.ok()) return Error(previous.status());
        return Json(200, json{{"compatibilityLevel", *previous}});
      });
  auto get_mode = [registry](const HttpRequest& r, const std::string& subject) {
    absl::StatusOr<std::string> mode =
        registry->GetMode(subject, subject.empty() || Flag(r, "defaultToGlobal"));
    if (!mode.ok()) return Error(mode.status());
    return Json(200, json{{"mode", *mode}});
  };
  auto put_mode = [registry, policy](const HttpRequest& r, const Peer& p,
                                     const std::string& subject) {
    absl::Status allowed = policy.CheckOperator(p.peer_id, "change modes");
    if (!allowed.ok()) return Error(allowed);
    json body = json_input::ParseOrDiscarded(r.body);
    if (!body.is_object() || !body.contains("mode") || !body["mode"].is_string()) {
      return Error(RegistryError(kInvalidMode, "request body needs \"mode\""));
    }
    absl::StatusOr<std::string> mode =
        registry->SetMode(subject, body["mode"].get<std::string>(), Flag(r, "force"));
    if (!mode.ok()) return Error(mode.status());
    return Json(200, json{{"mode", *mode}});
  };
  server->Handle("GET", R"(/mode)",
                 [get_mode](const HttpRequest& r, const Peer&) { return get_mode(r, ""); });
  server->Handle("PUT", R"(/mode)",
                 [put_mode](const HttpRequest& r, const Peer& p) { return put_mode(r, p, ""); });
  server->Handle("GET", R"(/mode/(.+))", [get_mode](const HttpRequest& r, const Peer&) {
    return get_mode(r, r.path_params[0]);
  });
  server->Handle("PUT", R"(/mode/(.+))", [put_mode](const HttpRequest& r, const Peer& p) {
    return put_mode(r, p, r.path_params[0]);
  });
}

}  // namespace registry
}  // namespace polder
