#include "tools/polderctl/commands/schema_source.h"

#include <chrono>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json/bounded.h"
#include "common/status/status_macros.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace polderctl {

using nlohmann::json;

namespace {

// References nest (a dataset imports common types that import options); deeper is a loop.
constexpr int kMaxReferenceDepth = 16;
// The name the schema asked for by id is parsed under; references keep their import paths.
constexpr char kRootFileName[] = "polderctl-root.proto";

class HttplibGetter : public HttpGetter {
 public:
  explicit HttplibGetter(std::unique_ptr<httplib::Client> client) : client_(std::move(client)) {}

  absl::StatusOr<HttpReply> Get(const std::string& path_and_query) override {
    httplib::Result res = client_->Get(path_and_query.c_str(),
                                       {{"Accept", "application/vnd.schemaregistry.v1+json"}});
    if (!res) {
      return absl::UnavailableError(
          absl::StrCat("GET ", path_and_query, ": ", httplib::to_string(res.error())));
    }
    return HttpReply{res->status, res->body};
  }

 private:
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace

std::string EncodePathSegment(const std::string& segment) {
  std::string out;
  for (unsigned char c : segment) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%",
                      absl::AsciiStrToUpper(absl::StrCat(absl::Hex(c, absl::kZeroPad2))));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<HttpGetter>> NewHttpsGetter(const HttpsOptions& options) {
  if (!absl::StartsWith(options.url, "https://") && !absl::StartsWith(options.url, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("schema URL '", options.url,
                     "' is not https://host:port (or http:// in development mode)"));
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs its key and the other way round (--cert, --key)");
  }
  std::string url = options.url;
  while (absl::EndsWith(url, "/")) url.pop_back();
  auto client = options.cert_file.empty()
                    ? std::make_unique<httplib::Client>(url)
                    : std::make_unique<httplib::Client>(url, options.cert_file, options.key_file);
  if (!client->is_valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot make an HTTP client for '", options.url,
                     "' (a bad URL, or an unreadable certificate or key)"));
  }
  if (!options.ca_file.empty()) client->set_ca_cert_path(options.ca_file.c_str());
  client->enable_server_certificate_verification(true);
  client->set_connection_timeout(std::chrono::seconds(10));
  client->set_read_timeout(std::chrono::seconds(30));
  return std::unique_ptr<HttpGetter>(new HttplibGetter(std::move(client)));
}

absl::StatusOr<std::string> ConfluentSchemaSource::Fetch(const std::string& what,
                                                         const std::string& path) {
  ASSIGN_OR_RETURN(HttpReply reply, http_->Get(path), _.Prepend(absl::StrCat(what, ": ")));
  if (reply.status == 200) return reply.body;
  // Confluent's error body: {"error_code": 40403, "message": "Schema not found"}.
  json err = json_input::ParseOrDiscarded(reply.body);
  std::string message = err.is_object() && err.contains("message") && err["message"].is_string()
                            ? err["message"].get<std::string>()
                            : reply.body.substr(0, 200);
  std::string text =
      absl::StrCat(what, ": HTTP ", reply.status, " from the schema endpoint: ", message);
  if (reply.status == 404) return absl::NotFoundError(text);
  if (reply.status == 401 || reply.status == 403) return absl::PermissionDeniedError(text);
  return absl::UnavailableError(text);
}

absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> ConfluentSchemaSource::Build(
    const std::string& what, const std::string& body, const std::string& file_name, int depth) {
  json doc = json_input::ParseOrDiscarded(body);
  if (!doc.is_object() || !doc.contains("schema") || !doc["schema"].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": the answer has no \"schema\" string"));
  }
  if (doc.contains("schemaType") && doc["schemaType"] != "PROTOBUF") {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": schemaType ", doc["schemaType"].dump(), ", not PROTOBUF"));
  }
  std::vector<schema::ResolvedReference> refs;
  const json references = doc.value("references", json::array());
  if (!references.is_array())
    return absl::InvalidArgumentError(absl::StrCat(what, ": \"references\" is not an array"));
  for (const json& r : references) {
    if (!r.is_object() || !r.contains("name") || !r["name"].is_string() || !r.contains("subject") ||
        !r["subject"].is_string() || !r.contains("version") || !r["version"].is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": a reference is not {\"name\", \"subject\", \"version\"}: ", r.dump()));
    }
    schema::ResolvedReference ref;
    ref.name = r["name"].get<std::string>();
    ref.subject = r["subject"].get<std::string>();
    ref.version = r["version"].get<int32_t>();
    ASSIGN_OR_RETURN(ref.schema, ByVersion(ref.subject, ref.version, ref.name, depth + 1),
                     _.Prepend(absl::StrCat(what, ": reference '", ref.name, "': ")));
    refs.push_back(std::move(ref));
  }
  schema::ParseOptions o;
  o.format = schema::InputFormat::kSerialized;
  o.file_name = file_name;
  o.max_bytes = 16 << 20;
  ASSIGN_OR_RETURN(std::shared_ptr<const schema::ParsedSchema> parsed,
                   schema::ParsedSchema::Parse(doc["schema"].get<std::string>(), refs, o),
                   _.Prepend(absl::StrCat(what, ": ")));
  return parsed;
}

absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> ConfluentSchemaSource::ByVersion(
    const std::string& subject, int32_t version, const std::string& file_name, int depth) {
  if (depth > kMaxReferenceDepth) {
    return absl::FailedPreconditionError(
        absl::StrCat("schema references nest deeper than ", kMaxReferenceDepth));
  }
  auto key = std::make_tuple(subject, version, file_name);
  auto it = refs_.find(key);
  if (it != refs_.end()) return it->second;
  const std::string what = absl::StrCat("schema ", subject, " version ", version);
  ASSIGN_OR_RETURN(std::string body,
                   Fetch(what, absl::StrCat("/subjects/", EncodePathSegment(subject), "/versions/",
                                            version, "?format=serialized")));
  ASSIGN_OR_RETURN(std::shared_ptr<const schema::ParsedSchema> parsed,
                   Build(what, body, file_name, depth));
  refs_.emplace(key, parsed);
  return parsed;
}

absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> ConfluentSchemaSource::ById(
    int32_t id) {
  auto it = by_id_.find(id);
  if (it != by_id_.end()) return it->second;
  const std::string what = absl::StrCat("schema id ", id);
  ASSIGN_OR_RETURN(std::string body,
                   Fetch(what, absl::StrCat("/schemas/ids/", id, "?format=serialized")));
  ASSIGN_OR_RETURN(std::shared_ptr<const schema::ParsedSchema> parsed,
                   Build(what, body, kRootFileName, 0));
  by_id_.emplace(id, parsed);
  return parsed;
}

}  // namespace polderctl
}  // namespace polder
