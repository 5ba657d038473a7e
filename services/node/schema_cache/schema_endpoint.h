// The node's read-only Confluent schema endpoint: the subset deserializers call, so city
// applications decode Polder topics without a federation certificate. It serves only the schemas
// of this node's own datasets and of the records it mirrors, with their references, from the
// node's cache (SchemaCache::Served); anything else is 404 without the registry being asked, so
// the endpoint is no proxy to the registry and nothing is cached on a client's behalf.
//
//   GET /schemas/ids/{id}[?format=serialized][&subject=...]
//       {"schema", "schemaType", "references"}
//   GET /schemas/ids/{id}/schema
//       the schema text
//   GET /subjects/{subject}/versions/{version|latest}[?deleted=true][&format=serialized]
//   GET /subjects/{subject}/versions/{version|latest}/schema
//
// Errors in Confluent's form: {"error_code": 40403, "message": "..."}; a route it does not serve
// answers Confluent's JSON 404 ({"error_code": 404, ...}), which Confluent's clients read as "not
// supported here" (e.g. the associations lookup of confluent-kafka-python's deserializer).
#ifndef POLDER_SERVICES_NODE_SCHEMA_CACHE_SCHEMA_ENDPOINT_H_
#define POLDER_SERVICES_NODE_SCHEMA_CACHE_SCHEMA_ENDPOINT_H_

#include "common/http/https_server.h"
#include "services/node/schema_cache/schema_cache.h"

namespace polder {
namespace node {

void RegisterSchemaRoutes(http::HttpsServer* server, SchemaCache* cache);

// Confluent's error JSON for `status` (also for refused requests on this listener).
http::HttpResponse ConfluentError(const absl::Status& status, int error_code);

// The listener's refusal formatter (HttpsServerOptions::refusal_formatter): unmatched routes,
// methods it does not serve and refused requests, in Confluent's error JSON.
http::HttpResponse SchemaEndpointRefusal(const absl::Status& status);

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_SCHEMA_CACHE_SCHEMA_ENDPOINT_H_
