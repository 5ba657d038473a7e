// The Confluent Schema Registry REST subset that serializer clients call, on HttpsServer:
//   POST|GET /subjects/{s}/versions      GET /subjects/{s}/versions/{v|latest}[/schema]
//   POST /subjects/{s}                   DELETE /subjects/{s}[/versions/{v}]  (?permanent=true)
//   GET /schemas/ids/{id}[/schema]       GET /schemas/types        GET /subjects
//   POST /compatibility/subjects/{s}/versions[/{v|latest}]  (?verbose=true)
//   GET|PUT /config[/{s}]  DELETE /config/{s}   GET|PUT /mode[/{s}]
// with Confluent's media type, its error JSON {"error_code", "message"} and codes. Subjects may
// contain '/' (import paths), URL-encoded by clients.
#ifndef POLDER_SERVICES_REGISTRY_REST_API_H_
#define POLDER_SERVICES_REGISTRY_REST_API_H_

#include "common/http/https_server.h"
#include "services/registry/access.h"
#include "services/registry/registry.h"

namespace polder {
namespace registry {

inline constexpr char kConfluentMediaType[] = "application/vnd.schemaregistry.v1+json";

void RegisterRestRoutes(http::HttpsServer* server, Registry* registry, const AccessPolicy& policy);

// A refused request in Confluent's format (401 → 40101, 403 → 40301).
http::HttpResponse ConfluentRefusal(const absl::Status& status);

// A registration body ({"schema", "schemaType", "references", "id", "version"}) for `subject`;
// INVALID_ARGUMENT (Confluent 42201) naming what is wrong. Exposed for the fuzz target.
absl::StatusOr<RegisterRequest> ParseRegisterBody(absl::string_view text,
                                                  const std::string& subject);

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_REST_API_H_
