// Schemas by id for `polderctl tail`: a SchemaSource answers "which parsed schema has id N",
// ConfluentSchemaSource asks a Confluent-compatible REST endpoint — the node's read-only schema
// endpoint or the registry's REST API — over an HttpGetter (HTTPS in the binary, a fake in tests).
//
//   GET /schemas/ids/{id}?format=serialized
//     {"schemaType":"PROTOBUF","schema":"<base64 FileDescriptorProto>",
//      "references":[{"name":"polder/datasets/common/v1/location.proto","subject":"...","version":1}]}
//   GET /subjects/{subject}/versions/{version}?format=serialized
//     {"subject":"...","version":1,"id":3,"schema":"...","references":[...]}
//
// References are fetched (recursively) before the schema that imports them; a referenced file is
// parsed under its reference's name, the import path the importing file uses. Parsed schemas are
// cached for the life of the source (an id never changes meaning).
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_SCHEMA_SOURCE_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_SCHEMA_SOURCE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "absl/status/statusor.h"
#include "common/schema/schema.h"

namespace polder {
namespace polderctl {

// id → parsed schema. NOT_FOUND when the endpoint has no schema of that id; other errors
// (UNAVAILABLE, ...) when it could not be asked.
class SchemaSource {
 public:
  virtual ~SchemaSource() = default;
  virtual absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> ById(int32_t id) = 0;
};

// An answer to a GET.
struct HttpReply {
  int status = 0;
  std::string body;
};

// GETs a path (with query) from one server. A transport failure (connection, TLS) is an error
// status; any HTTP answer, including 404, is a reply.
class HttpGetter {
 public:
  virtual ~HttpGetter() = default;
  virtual absl::StatusOr<HttpReply> Get(const std::string& path_and_query) = 0;
};

struct HttpsOptions {
  std::string url;        // https://host:port (http:// only for a development-mode endpoint)
  std::string ca_file;    // verifies the server's certificate; empty: the system's CAs
  std::string cert_file;  // client certificate for a registry with mutual TLS (optional)
  std::string key_file;
};

// cpp-httplib client. INVALID_ARGUMENT for a URL that is not http(s)://host[:port] or a
// certificate without its key.
absl::StatusOr<std::unique_ptr<HttpGetter>> NewHttpsGetter(const HttpsOptions& options);

class ConfluentSchemaSource : public SchemaSource {
 public:
  explicit ConfluentSchemaSource(std::unique_ptr<HttpGetter> http) : http_(std::move(http)) {}

  absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> ById(int32_t id) override;

 private:
  // A fetched schema document (by id or by subject/version), parsed under `file_name`.
  absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> Build(const std::string& what,
                                                                    const std::string& body,
                                                                    const std::string& file_name,
                                                                    int depth);
  absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> ByVersion(
      const std::string& subject, int32_t version, const std::string& file_name, int depth);
  // GET `path`; NOT_FOUND for 404, UNAVAILABLE for other failures, naming `what`.
  absl::StatusOr<std::string> Fetch(const std::string& what, const std::string& path);

  std::unique_ptr<HttpGetter> http_;
  std::map<int32_t, std::shared_ptr<const schema::ParsedSchema>> by_id_;
  // (subject, version, file name) → parsed reference.
  std::map<std::tuple<std::string, int32_t, std::string>,
           std::shared_ptr<const schema::ParsedSchema>>
      refs_;
};

// Percent-encodes a path segment (everything but RFC 3986's unreserved characters), so a subject
// such as "polder/datasets/common/v1/location.proto" stays one segment.
std::string EncodePathSegment(const std::string& segment);

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_SCHEMA_SOURCE_H_
