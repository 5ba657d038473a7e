#include "services/registry/rest_api.h"

#include <csignal>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/http/https_server.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "services/registry/errors.h"
#include "services/registry/memory_record_log.h"
#include "services/registry/registry.h"

namespace polder {
namespace registry {
namespace {

using ::nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kV1[] =
    "syntax = \"proto3\"; package p; message Bike { string id = 1; int64 count = 2; }";
constexpr char kV2[] =
    "syntax = \"proto3\"; package p; message Bike { string id = 1; int64 count = 2; string note = "
    "3; }";
constexpr char kBadChange[] =
    "syntax = \"proto3\"; package p; message Bike { string id = 1; string count = 2; }";

// A registration body as Confluent's Protobuf serializer sends it.
std::string Body(const std::string& schema) {
  return json{{"schema", schema}, {"schemaType", "PROTOBUF"}}.dump();
}

struct Answer {
  int status = -1;
  std::string content_type;
  std::string text;
  json body;  // discarded unless the answer is JSON

  int error_code() const {
    return body.is_object() && body.contains("error_code") && body["error_code"].is_number()
               ? body["error_code"].get<int>()
               : 0;
  }
  std::string message() const {
    return body.is_object() && body.contains("message") && body["message"].is_string()
               ? body["message"].get<std::string>()
               : "";
  }
};

std::ostream& operator<<(std::ostream& os, const Answer& a) {
  return os << a.status << " " << a.content_type << " " << a.text;
}

// The registry's REST routes on an HttpsServer in plaintext development mode on 127.0.0.1
// (every request comes from the peer "development"), over an in-memory log.
class RestApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }

  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
  }

  void Start(AccessPolicy policy, size_t max_body_bytes = 64 << 10) {
    http::HttpsOptions options;
    options.bind_address = "127.0.0.1";
    options.port = 0;
    options.plaintext_development = true;
    options.max_body_bytes = max_body_bytes;
    options.workers = 2;
    options.refusal_formatter = &ConfluentRefusal;
    absl::StatusOr<std::unique_ptr<http::HttpsServer>> server =
        http::HttpsServer::Create(options, nullptr);
    ASSERT_OK(server.status());
    server_ = *std::move(server);
    RegisterRestRoutes(server_.get(), &registry_, policy);
    ASSERT_OK(server_->Start());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_connection_timeout(std::chrono::seconds(10));
    client_->set_read_timeout(std::chrono::seconds(10));
  }

  void StartDevelopment() {
    AccessPolicy policy;
    policy.development = true;
    Start(policy);
  }

  Answer Send(const std::string& method, const std::string& path, const std::string& body = "") {
    httplib::Result r = method == "POST"  ? client_->Post(path.c_str(), body, kConfluentMediaType)
                        : method == "PUT" ? client_->Put(path.c_str(), body, kConfluentMediaType)
                        : method == "DELETE" ? client_->Delete(path.c_str())
                                             : client_->Get(path.c_str());
    Answer a;
    if (!r) {
      ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(r.error());
      return a;
    }
    a.status = r->status;
    a.content_type = r->get_header_value("Content-Type");
    a.text = r->body;
    a.body = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    return a;
  }
  Answer Get(const std::string& path) { return Send("GET", path); }
  Answer Post(const std::string& path, const std::string& body) { return Send("POST", path, body); }
  Answer Put(const std::string& path, const std::string& body) { return Send("PUT", path, body); }
  Answer Delete(const std::string& path) { return Send("DELETE", path); }

  // Expects Confluent's error answer: HTTP `http_status`, {"error_code", "message"}.
  static void ExpectError(const Answer& a, int http_status, int error_code,
                          const std::string& message) {
    EXPECT_EQ(a.status, http_status) << a;
    EXPECT_EQ(a.content_type, kConfluentMediaType) << a;
    EXPECT_EQ(a.error_code(), error_code) << a;
    EXPECT_THAT(a.message(), HasSubstr(message)) << a;
  }

  MemoryRecordLog log_;
  Registry registry_{&log_, RegistryOptions{}};
  std::unique_ptr<http::HttpsServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(RestApiTest, RegistersAndReadsBackInConfluentsFormat) {
  StartDevelopment();
  Answer types = Get("/schemas/types");
  EXPECT_EQ(types.status, 200);
  EXPECT_EQ(types.content_type, kConfluentMediaType);
  EXPECT_EQ(types.body, json::array({"PROTOBUF"}));
  EXPECT_EQ(Get("/contexts").body, json::array({"."}));

  Answer first = Post("/subjects/p.Bike/versions", Body(kV1));
  EXPECT_EQ(first.status, 200) << first;
  EXPECT_EQ(first.content_type, kConfluentMediaType);
  EXPECT_EQ(first.body, json({{"id", 1}}));
  EXPECT_EQ(Post("/subjects/p.Bike/versions", Body(kV1)).body, json({{"id", 1}}))
      << "registering the same schema again answers its id";
  EXPECT_EQ(Post("/subjects/p.Bike/versions", Body(kV2)).body, json({{"id", 2}}));
  EXPECT_EQ(Get("/subjects").body, json::array({"p.Bike"}));
  EXPECT_EQ(Get("/subjects?subjectPrefix=p.").body, json::array({"p.Bike"}));
  EXPECT_EQ(Get("/subjects?subjectPrefix=q").body, json::array());
  EXPECT_EQ(Get("/subjects/p.Bike/versions").body, json::array({1, 2}));

  Answer latest = Get("/subjects/p.Bike/versions/latest");
  EXPECT_EQ(latest.status, 200);
  EXPECT_EQ(latest.body["id"], 2);
  EXPECT_EQ(latest.body["subject"], "p.Bike");
  EXPECT_EQ(latest.body["version"], 2);
  EXPECT_EQ(latest.body["schemaType"], "PROTOBUF");
  EXPECT_THAT(latest.body["schema"].get<std::string>(), HasSubstr("note = 3"));
  EXPECT_FALSE(latest.body.contains("references")) << "no references, no field";
  EXPECT_EQ(Get("/subjects/p.Bike/versions/-1").body, latest.body);
  Answer raw = Get("/subjects/p.Bike/versions/1/schema");
  EXPECT_EQ(raw.status, 200);
  EXPECT_EQ(raw.content_type, kConfluentMediaType);
  EXPECT_THAT(raw.text, HasSubstr("message Bike"));
  EXPECT_THAT(raw.text, ::testing::Not(HasSubstr("note")));

  Answer by_id = Get("/schemas/ids/1");
  EXPECT_EQ(by_id.status, 200);
  EXPECT_EQ(by_id.body["id"], 1);
  EXPECT_THAT(by_id.body["schema"].get<std::string>(), HasSubstr("message Bike"));
  EXPECT_FALSE(by_id.body.contains("subject"));
  EXPECT_FALSE(by_id.body.contains("version"));
  EXPECT_THAT(Get("/schemas/ids/1/schema").text, HasSubstr("message Bike"));
  Answer serialized = Get("/schemas/ids/1?format=serialized");
  ASSERT_TRUE(serialized.body["schema"].is_string());
  EXPECT_EQ(
      Post("/subjects/other/versions", Body(serialized.body["schema"].get<std::string>())).body,
      json({{"id", 1}}))
      << "the serialized descriptor is the same schema";
  EXPECT_EQ(Get("/schemas/ids/1/subjects").body, json::array({"other", "p.Bike"}));
  EXPECT_EQ(Get("/schemas/ids/1/versions").body,
            json::parse(R"([{"subject": "other", "version": 1}, {"subject": "p.Bike",
                           "version": 1}])"));

  Answer lookup = Post("/subjects/p.Bike", Body(kV1));
  EXPECT_EQ(lookup.status, 200);
  EXPECT_EQ(lookup.body["id"], 1);
  EXPECT_EQ(lookup.body["version"], 1);
  EXPECT_EQ(lookup.body["subject"], "p.Bike");
}

TEST_F(RestApiTest, SubjectsThatArePathsAreUrlEncodedAndReferencesAreKept) {
  StartDevelopment();
  const std::string loc = "polder%2Fcommon%2Fv1%2Flocation.proto";
  ASSERT_EQ(Post(absl::StrCat("/subjects/", loc, "/versions"),
                 Body("syntax = \"proto3\"; package polder.common.v1; message Location { "
                      "double lat = 1; }"))
                .status,
            200);
  Answer v1 = Get(absl::StrCat("/subjects/", loc, "/versions/1"));
  EXPECT_EQ(v1.status, 200) << v1;
  EXPECT_EQ(v1.body["subject"], "polder/common/v1/location.proto");
  json garage = {
      {"schema",
       "syntax = \"proto3\"; package parking; import \"polder/common/v1/location.proto\"; message "
       "Garage { polder.common.v1.Location at = 1; }"},
      {"schemaType", "PROTOBUF"},
      {"references", json::array({{{"name", "polder/common/v1/location.proto"},
                                   {"subject", "polder/common/v1/location.proto"},
                                   {"version", -1}}})}};
  Answer registered = Post("/subjects/parking.Garage/versions", garage.dump());
  ASSERT_EQ(registered.status, 200) << registered;
  Answer read = Get("/subjects/parking.Garage/versions/latest");
  EXPECT_EQ(read.body["references"], json::parse(R"([{"name": "polder/common/v1/location.proto",
                             "subject": "polder/common/v1/location.proto", "version": 1}])"));
  EXPECT_EQ(Get(absl::StrCat("/subjects/", loc, "/versions/1/referencedby")).body,
            json::array({registered.body["id"]}));
  ExpectError(Delete(absl::StrCat("/subjects/", loc, "/versions/1")), 422, kReferenceExists,
              "One or more references exist");
}

TEST_F(RestApiTest, MissingSubjectsVersionsAndIdsAnswerConfluentErrors) {
  StartDevelopment();
  ASSERT_EQ(Post("/subjects/p.Bike/versions", Body(kV1)).status, 200);
  ExpectError(Get("/subjects/nope/versions"), 404, kSubjectNotFound, "Subject 'nope' not found");
  ExpectError(Get("/subjects/nope/versions/1"), 404, kSubjectNotFound, "Subject 'nope' not found");
  ExpectError(Get("/subjects/p.Bike/versions/9"), 404, kVersionNotFound, "Version 9 not found");
  ExpectError(Get("/subjects/p.Bike/versions/9/schema"), 404, kVersionNotFound, "Version 9");
  ExpectError(Get("/schemas/ids/99"), 404, kSchemaNotFound, "Schema 99 not found");
  ExpectError(Get("/schemas/ids/99/schema"), 404, kSchemaNotFound, "Schema 99 not found");
  ExpectError(Get("/schemas/ids/abc"), 404, kSchemaNotFound, "Schema abc not found");
  ExpectError(Get("/schemas/ids/0"), 404, kSchemaNotFound, "Schema 0 not found");
  ExpectError(Get("/schemas/ids/99999999999/schema"), 404, kSchemaNotFound, "not found");
  ExpectError(Get("/schemas/ids/99/versions"), 404, kSchemaNotFound, "Schema 99 not found");
  ExpectError(Get("/schemas/ids/-1/subjects"), 404, kSchemaNotFound, "Schema -1 not found");
  ExpectError(Post("/subjects/p.Bike", Body(kV2)), 404, kSchemaNotFound, "Schema not found");
  ExpectError(Post("/subjects/nope", Body(kV1)), 404, kSubjectNotFound, "'nope'");
  ExpectError(Get("/config/p.Bike"), 404, kSubjectCompatibilityNotConfigured,
              "does not have subject-level compatibility configured");
  ExpectError(Get("/mode/p.Bike"), 404, kSubjectModeNotConfigured,
              "does not have subject-level mode configured");
  ExpectError(Delete("/config/p.Bike"), 404, kSubjectCompatibilityNotConfigured, "'p.Bike'");
  ExpectError(Delete("/subjects/nope"), 404, kSubjectNotFound, "'nope'");
  // Routes the registry does not have: Confluent's plain HTTP errors.
  ExpectError(Get("/nothing/here"), 404, 404, "HTTP 404 Not Found: no resource at /nothing/here");
  ExpectError(Delete("/schemas/types"), 405, 405, "HTTP 405 Method Not Allowed");
  ExpectError(Get("/subjects/p.Bike/metadata"), 404, 404, "data contracts");
}

TEST_F(RestApiTest, InvalidVersionsSchemasAndSubjectsAre422) {
  StartDevelopment();
  ASSERT_EQ(Post("/subjects/p.Bike/versions", Body(kV1)).status, 200);
  for (const char* version : {"0", "-2", "abc", "1.5", "99999999999"}) {
    SCOPED_TRACE(version);
    ExpectError(Get(absl::StrCat("/subjects/p.Bike/versions/", version)), 422, kInvalidVersion,
                absl::StrCat("The specified version '", version, "' is not a valid version id"));
  }
  ExpectError(Delete("/subjects/p.Bike/versions/abc"), 422, kInvalidVersion, "'abc'");
  ExpectError(Post("/subjects/p.Bike/versions", Body("message {")), 422, kInvalidSchema, "");
  // Confluent's default type is AVRO: a Protobuf schema must say what it is.
  ExpectError(Post("/subjects/p.Bike/versions", json{{"schema", kV2}}.dump()), 422, kInvalidSchema,
              "schema type 'AVRO' is not supported");
  ExpectError(Post("/subjects/a%20b/versions", Body(kV1)), 422, kInvalidSubject,
              "subject name 'a b' contains ' '");
  ExpectError(Post(absl::StrCat("/subjects/", std::string(256, 'a'), "/versions"), Body(kV1)), 422,
              kInvalidSubject, "longer than 255 bytes");
  ExpectError(Post("/subjects/p.Bike/versions",
                   json{{"schema", kV2}, {"schemaType", "PROTOBUF"}, {"id", 7}}.dump()),
              422, kOperationNotPermitted, "only be given in IMPORT mode");
  EXPECT_EQ(log_.records().size(), 3u) << "nothing but the first registration was stored";
}

TEST_F(RestApiTest, IncompatibleSchemasAre409AndTheCheckEndpointExplains) {
  StartDevelopment();
  ASSERT_EQ(Post("/subjects/p.Bike/versions", Body(kV1)).status, 200);
  ExpectError(Post("/subjects/p.Bike/versions", Body(kBadChange)), 409, kIncompatibleSchema,
              "Schema being registered is incompatible with an earlier schema for subject "
              "\"p.Bike\"");

  Answer quiet = Post("/compatibility/subjects/p.Bike/versions/latest", Body(kBadChange));
  EXPECT_EQ(quiet.status, 200);
  EXPECT_EQ(quiet.body, json({{"is_compatible", false}}));
  Answer verbose =
      Post("/compatibility/subjects/p.Bike/versions/latest?verbose=true", Body(kBadChange));
  EXPECT_EQ(verbose.body["is_compatible"], false);
  ASSERT_TRUE(verbose.body["messages"].is_array());
  ASSERT_EQ(verbose.body["messages"].size(), 1u);
  EXPECT_THAT(verbose.body["messages"][0].get<std::string>(),
              HasSubstr("field p.Bike.count (2) changed type"));
  EXPECT_EQ(Post("/compatibility/subjects/p.Bike/versions/1", Body(kV2)).body,
            json({{"is_compatible", true}}));
  EXPECT_EQ(Post("/compatibility/subjects/p.Bike/versions", Body(kV2)).body,
            json({{"is_compatible", true}}));
  EXPECT_EQ(Post("/compatibility/subjects/new.Subject/versions", Body(kBadChange)).body,
            json({{"is_compatible", true}}))
      << "a subject without history accepts anything";
  ExpectError(Post("/compatibility/subjects/p.Bike/versions/7", Body(kV2)), 404, kVersionNotFound,
              "Version 7 not found");
  ExpectError(Post("/compatibility/subjects/p.Bike/versions/x", Body(kV2)), 422, kInvalidVersion,
              "'x'");
  ExpectError(Post("/compatibility/subjects/nope/versions/latest", Body(kV2)), 404,
              kSubjectNotFound, "'nope'");
  ExpectError(Post("/compatibility/subjects/p.Bike/versions/latest", "{"), 422, kInvalidSchema,
              "request body is not a JSON object");
}

TEST_F(RestApiTest, ConfigAndModeEndpoints) {
  StartDevelopment();
  ASSERT_EQ(Post("/subjects/p.Bike/versions", Body(kV1)).status, 200);
  EXPECT_EQ(Get("/config").body, json({{"compatibilityLevel", "BACKWARD"}}));
  Answer set = Put("/config", R"({"compatibility": "FULL"})");
  EXPECT_EQ(set.status, 200);
  EXPECT_EQ(set.content_type, kConfluentMediaType);
  EXPECT_EQ(set.body, json({{"compatibility", "FULL"}}));
  EXPECT_EQ(Get("/config").body, json({{"compatibilityLevel", "FULL"}}));
  EXPECT_EQ(Put("/config/p.Bike", R"({"compatibility": "NONE"})").body,
            json({{"compatibility", "NONE"}}));
  EXPECT_EQ(Get("/config/p.Bike").body, json({{"compatibilityLevel", "NONE"}}));
  EXPECT_EQ(Get("/config/other?defaultToGlobal=true").body, json({{"compatibilityLevel", "FULL"}}));
  EXPECT_EQ(Post("/subjects/p.Bike/versions", Body(kBadChange)).status, 200)
      << "NONE lets an incompatible change through";
  EXPECT_EQ(Delete("/config/p.Bike").body, json({{"compatibilityLevel", "NONE"}}));
  ExpectError(Get("/config/p.Bike"), 404, kSubjectCompatibilityNotConfigured, "'p.Bike'");

  EXPECT_EQ(Get("/mode").body, json({{"mode", "READWRITE"}}));
  EXPECT_EQ(Put("/mode/p.Bike", R"({"mode": "READONLY"})").body, json({{"mode", "READONLY"}}));
  EXPECT_EQ(Get("/mode/p.Bike").body, json({{"mode", "READONLY"}}));
  EXPECT_EQ(Get("/mode/other?defaultToGlobal=true").body, json({{"mode", "READWRITE"}}));
  ExpectError(Post("/subjects/p.Bike/versions", Body(kV2)), 422, kOperationNotPermitted,
              "Subject p.Bike is in read-only mode");
  ExpectError(Delete("/subjects/p.Bike"), 422, kOperationNotPermitted, "read-only mode");
  ExpectError(Put("/mode", R"({"mode": "IMPORT"})"), 422, kOperationNotPermitted,
              "Cannot import since found existing subjects");
  EXPECT_EQ(Put("/mode?force=true", R"({"mode": "IMPORT"})").body, json({{"mode", "IMPORT"}}));
  EXPECT_EQ(Get("/mode").body, json({{"mode", "IMPORT"}}));
}

TEST_F(RestApiTest, MalformedBodiesAre422WithWhatIsWrong) {
  StartDevelopment();
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  struct Case {
    std::string body;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"", "request body is not a JSON object"},
           {"not json", "request body is not a JSON object"},
           {"{\"schema\": ", "request body is not a JSON object"},
           {"[1, 2]", "request body is not a JSON object"},
           {"\"schema\"", "request body is not a JSON object"},
           {deep, "request body is not a JSON object"},
           {"{}", "request body needs \"schema\" (a string)"},
           {R"({"schema": 5})", "request body needs \"schema\" (a string)"},
           {R"({"schema": null})", "request body needs \"schema\" (a string)"},
           {R"({"schema": "x", "schemaType": 1})", "\"schemaType\" must be a string"},
           {R"({"schema": "x", "schemaType": "PROTOBUF", "references": {}})",
            "\"references\" must be a list"},
           {R"({"schema": "x", "schemaType": "PROTOBUF", "references": [{"name": "a"}]})",
            "each reference needs \"name\", \"subject\" and \"version\""},
           {R"({"schema": "x", "schemaType": "PROTOBUF",
                "references": [{"name": "a", "subject": "a", "version": "1"}]})",
            "each reference needs"},
           {R"({"schema": "x", "schemaType": "PROTOBUF", "references": [7]})",
            "each reference needs"},
       }) {
    SCOPED_TRACE(c.body.substr(0, 60));
    ExpectError(Post("/subjects/p.Bike/versions", c.body), 422, kInvalidSchema, c.message);
    ExpectError(Post("/subjects/p.Bike", c.body), 422, kInvalidSchema, c.message);
  }
  for (const char* body : {"", "nope", "{}", R"({"compatibility": 1})", "[\"FULL\"]"}) {
    SCOPED_TRACE(body);
    ExpectError(Put("/config", body), 422, kInvalidCompatibilityLevel,
                "request body needs \"compatibility\"");
  }
  ExpectError(Put("/config/p.Bike", R"({"compatibility": "SOMETIMES"})"), 422,
              kInvalidCompatibilityLevel, "Invalid compatibility level");
  ExpectError(Put("/config", R"({"compatibility": "full"})"), 422, kInvalidCompatibilityLevel,
              "got 'full'");
  for (const char* body : {"", R"({"mode": true})", R"({"level": "READONLY"})"}) {
    SCOPED_TRACE(body);
    ExpectError(Put("/mode", body), 422, kInvalidMode, "request body needs \"mode\"");
  }
  ExpectError(Put("/mode/p.Bike", R"({"mode": "SLEEP"})"), 422, kInvalidMode,
              "Invalid mode. Valid values are READWRITE, READONLY and IMPORT; got 'SLEEP'");
  EXPECT_THAT(log_.records(), IsEmpty());
}

TEST_F(RestApiTest, ImportedIdsAndVersionsOutOfRangeAreRefusedNotTruncated) {
  StartDevelopment();
  ASSERT_EQ(Put("/mode", R"({"mode": "IMPORT"})").status, 200);
  ExpectError(
      Post("/subjects/p.Bike/versions",
           json{{"schema", kV1}, {"schemaType", "PROTOBUF"}, {"id", 4294967297LL}, {"version", 1}}
               .dump()),
      422, kInvalidSchema, "\"id\" must be an integer from -2147483648 to 2147483647");
  ExpectError(
      Post("/subjects/p.Bike/versions",
           json{{"schema", kV1}, {"schemaType", "PROTOBUF"}, {"id", 1}, {"version", -4294967295LL}}
               .dump()),
      422, kInvalidSchema, "\"version\" must be an integer");
  json ref = {
      {"schema", kV1},
      {"schemaType", "PROTOBUF"},
      {"references",
       json::array(
           {{{"name", "a.proto"}, {"subject", "a.proto"}, {"version", 18446744073709551615ULL}}})}};
  ExpectError(Post("/subjects/p.Bike", ref.dump()), 422, kInvalidSchema,
              "reference \"version\" must be an integer");
  for (int version : {0, -3}) {
    ExpectError(
        Post("/subjects/p.Bike/versions",
             json{{"schema", kV1}, {"schemaType", "PROTOBUF"}, {"id", 7}, {"version", version}}
                 .dump()),
        422, kInvalidVersion,
        absl::StrCat("version ", version, " is not valid; versions start at 1"));
  }
  EXPECT_THAT(registry_.ListSubjects(true), IsEmpty());
  Answer imported =
      Post("/subjects/p.Bike/versions",
           json{{"schema", kV1}, {"schemaType", "PROTOBUF"}, {"id", 7}, {"version", 3}}.dump());
  EXPECT_EQ(imported.body, json({{"id", 7}})) << imported;
  EXPECT_EQ(Get("/subjects/p.Bike/versions").body, json::array({3}));
}

TEST_F(RestApiTest, BodiesOverTheLimitAre413BeforeTheyAreRead) {
  AccessPolicy policy;
  policy.development = true;
  Start(policy, /*max_body_bytes=*/4096);
  const std::string large = Body(absl::StrCat(kV1, "\n// ", std::string(6000, 'x')));
  Answer refused = Post("/subjects/p.Bike/versions", large);
  EXPECT_EQ(refused.status, 413) << refused;
  EXPECT_EQ(refused.content_type, kConfluentMediaType);
  EXPECT_THAT(refused.message(),
              HasSubstr(absl::StrCat("the body (", large.size(),
                                     " bytes) is over the limit of 4096 bytes")));
  EXPECT_THAT(log_.records(), IsEmpty());
  EXPECT_EQ(Post("/subjects/p.Bike/versions", Body(kV1)).status, 200);
}

TEST_F(RestApiTest, DeletionIsSoftThenPermanent) {
  StartDevelopment();
  ASSERT_EQ(Post("/subjects/p.Bike/versions", Body(kV1)).status, 200);
  ASSERT_EQ(Post("/subjects/p.Bike/versions", Body(kV2)).status, 200);
  ExpectError(Delete("/subjects/p.Bike/versions/1?permanent=true"), 404, kVersionNotSoftDeleted,
              "was not deleted first before being permanently deleted");
  EXPECT_EQ(Delete("/subjects/p.Bike/versions/1").body, json(1));
  ExpectError(Delete("/subjects/p.Bike/versions/1"), 404, kVersionSoftDeleted,
              "Set permanent=true to delete permanently");
  EXPECT_EQ(Get("/subjects/p.Bike/versions").body, json::array({2}));
  EXPECT_EQ(Get("/subjects/p.Bike/versions?deleted=true").body, json::array({1, 2}));
  EXPECT_EQ(Get("/subjects/p.Bike/versions/1?deleted=true").status, 200);
  ExpectError(Get("/subjects/p.Bike/versions/1"), 404, kVersionNotFound, "Version 1 not found");
  EXPECT_EQ(Delete("/subjects/p.Bike/versions/1?permanent=true").body, json(1));
  ExpectError(Delete("/subjects/p.Bike?permanent=true"), 404, kSubjectNotSoftDeleted,
              "was not deleted first");
  EXPECT_EQ(Delete("/subjects/p.Bike").body, json::array({2}));
  EXPECT_EQ(Get("/subjects").body, json::array());
  EXPECT_EQ(Get("/subjects?deleted=true").body, json::array({"p.Bike"}));
  ExpectError(Delete("/subjects/p.Bike"), 404, kSubjectSoftDeleted, "was soft deleted");
  EXPECT_EQ(Delete("/subjects/p.Bike?permanent=true").body, json::array({2}));
  EXPECT_EQ(Get("/subjects?deleted=true").body, json::array());
  EXPECT_EQ(Get("/schemas/ids/2").status, 200) << "a schema stays readable by id";
}

TEST_F(RestApiTest, WritesOnAReplicaThatIsNotThePrimaryAnswer50003) {
  StartDevelopment();
  ASSERT_EQ(Post("/subjects/p.Bike/versions", Body(kV1)).status, 200);
  log_.FailCommits(RegistryError(
      kNotPrimary, "this registry replica ('reg-b') is not the primary; send writes to 'reg-a'"));
  ExpectError(Post("/subjects/p.Bike/versions", Body(kV2)), 500, kNotPrimary,
              "send writes to 'reg-a'");
  ExpectError(Put("/config", R"({"compatibility": "FULL"})"), 500, kNotPrimary,
              "is not the primary");
  EXPECT_EQ(Get("/subjects/p.Bike/versions").body, json::array({1})) << "reads still answer";
  EXPECT_EQ(Get("/config").body, json({{"compatibilityLevel", "BACKWARD"}}));
}

TEST_F(RestApiTest, ACityWritesOnlyUnderItsPrefix) {
  // Without development access, the plaintext listener's peer "development" is a city.
  Start(AccessPolicy{});
  const std::string own = "polder.cities.development.trees.v1.Tree";
  Answer mine = Post(absl::StrCat("/subjects/", own, "/versions"),
                     Body("syntax = \"proto3\"; package polder.cities.development.trees.v1; "
                          "message Tree { string id = 1; }"));
  EXPECT_EQ(mine.status, 200) << mine;
  ExpectError(Post("/subjects/p.Bike/versions", Body(kV1)), 403, kForbidden,
              "peer 'development' may not write subject 'p.Bike': a city writes only subjects "
              "under 'polder.cities.development.'");
  ExpectError(Post(absl::StrCat("/subjects/polder.cities.development.x/versions"),
                   Body("syntax = \"proto3\"; package p; message X { string id = 1; }")),
              403, kForbidden, "lies outside the writer's namespace 'polder.cities.development'");
  ExpectError(Put("/config", R"({"compatibility": "NONE"})"), 403, kForbidden,
              "may not change the global compatibility");
  ExpectError(Put("/config/p.Bike", R"({"compatibility": "NONE"})"), 403, kForbidden,
              "may not write subject 'p.Bike'");
  ExpectError(Delete("/config/p.Bike"), 403, kForbidden, "may not write subject 'p.Bike'");
  ExpectError(Put(absl::StrCat("/mode/", own), R"({"mode": "READONLY"})"), 403, kForbidden,
              "may not change modes");
  ExpectError(Delete("/subjects/p.Bike"), 403, kForbidden, "may not write subject 'p.Bike'");
  ExpectError(Delete("/subjects/p.Bike/versions/1"), 403, kForbidden, "may not write");
  EXPECT_EQ(Put(absl::StrCat("/config/", own), R"({"compatibility": "FULL"})").status, 200);
  EXPECT_EQ(Get("/subjects").body, json::array({own}));
  EXPECT_EQ(Get("/schemas/ids/1").status, 200);
}

TEST(ConfluentRefusalTest, RefusalsBeforeRoutingUseConfluentsFormat) {
  http::HttpResponse forbidden =
      ConfluentRefusal(absl::PermissionDeniedError("peer 'x' is not in the directory"));
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(forbidden.content_type, kConfluentMediaType);
  EXPECT_EQ(json::parse(forbidden.body),
            json({{"error_code", 40301}, {"message", "peer 'x' is not in the directory"}}));
  http::HttpResponse unauthenticated =
      ConfluentRefusal(absl::UnauthenticatedError("no client certificate"));
  EXPECT_EQ(unauthenticated.status, 401);
  EXPECT_EQ(json::parse(unauthenticated.body)["error_code"], 40101);
  http::HttpResponse registry = ConfluentRefusal(RegistryError(kSubjectNotFound, "gone"));
  EXPECT_EQ(registry.status, 404);
  EXPECT_EQ(json::parse(registry.body), json({{"error_code", 40401}, {"message", "gone"}}));
}

TEST(ParseRegisterBodyTest, ReadsEveryFieldConfluentSends) {
  absl::StatusOr<RegisterRequest> req = ParseRegisterBody(
      R"({"schema": "s", "schemaType": "PROTOBUF", "id": 4, "version": 2,
          "references": [{"name": "a.proto", "subject": "a", "version": -1}]})",
      "subj");
  ASSERT_OK(req.status());
  EXPECT_EQ(req->subject, "subj");
  EXPECT_EQ(req->schema, "s");
  EXPECT_EQ(req->schema_type, "PROTOBUF");
  EXPECT_EQ(req->id, 4);
  EXPECT_EQ(req->version, 2);
  EXPECT_THAT(req->references, ElementsAre(SchemaReference{"a.proto", "a", -1}));
  absl::StatusOr<RegisterRequest> plain = ParseRegisterBody(R"({"schema": "s"})", "subj");
  ASSERT_OK(plain.status());
  EXPECT_EQ(plain->schema_type, "AVRO");
  EXPECT_FALSE(plain->id.has_value());
  EXPECT_FALSE(plain->version.has_value());
  absl::StatusOr<RegisterRequest> nulls =
      ParseRegisterBody(R"({"schema": "s", "id": null, "version": null})", "subj");
  ASSERT_OK(nulls.status());
  EXPECT_FALSE(nulls->id.has_value());
  EXPECT_FALSE(nulls->version.has_value());
}

}  // namespace
}  // namespace registry
}  // namespace polder
