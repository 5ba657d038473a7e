// polder-registry end to end: real processes, real Kafka, real mTLS.
#include <signal.h>

#include <atomic>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "tests/registry/registry_fixture.h"

namespace polder {
namespace {

using namespace registry_testing;  // NOLINT: the fixture and its helpers
using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr char kBikes[] =
    "syntax = \"proto3\"; package polder.datasets.mobility.v1; message BikeCount { string "
    "counter_id = 1; int64 count = 2; }";

TEST_F(RegistryE2eTest, RestAndGrpcWithPermissionsAndBadInput) {
  auto reg = Start("reg-a");
  auto national = Rest(*reg, "national");
  auto groningen = Rest(*reg, "groningen");
  int st = 0;
  json r = Post(*national, "/subjects/polder.datasets.mobility.v1.BikeCount/versions",
                Proto(kBikes), &st);
  EXPECT_EQ(st, 200) << r;
  EXPECT_EQ(r["id"], 1);
  // A city may not register a standard dataset, but may register under its own prefix.
  r = Post(*groningen, "/subjects/polder.datasets.mobility.v1.BikeCount/versions", Proto(kBikes),
           &st);
  EXPECT_EQ(st, 403);
  EXPECT_EQ(r["error_code"], 40301);
  EXPECT_THAT(Msg(r), HasSubstr("polder.cities.groningen."));
  r = Post(*groningen, "/subjects/polder.cities.groningen.trees.v1.Tree/versions",
           Proto("syntax = \"proto3\"; package polder.cities.groningen.trees.v1; message Tree { "
                 "string id = 1; }"),
           &st);
  EXPECT_EQ(st, 200) << r;
  EXPECT_EQ(r["id"], 2);
  // Reads by any listed peer; a peer outside the directory is refused.
  r = Get(*groningen, "/subjects/polder.datasets.mobility.v1.BikeCount/versions/latest", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(r["id"], 1);
  EXPECT_THAT(r.value("schema", std::string()), HasSubstr("message BikeCount"));
  r = Get(*Rest(*reg, "enschede"), "/subjects", &st);
  EXPECT_EQ(st, 403);
  EXPECT_EQ(r["error_code"], 40301) << r;
  EXPECT_THAT(Msg(r), HasSubstr("'enschede' is not in the federation directory"));

  // Bad input: the right status and code, and nothing stored.
  struct Bad {
    const char* name;
    std::string path;
    json body;
    int status;
    int code;
  } bad[] = {
      {"malformed proto", "/subjects/polder.datasets.x.v1.X/versions",
       Proto("syntax = \"proto3\"; message {"), 422, 42201},
      {"unresolvable import", "/subjects/polder.datasets.x.v1.X/versions",
       Proto("syntax = \"proto3\"; import \"polder/common.proto\"; message X { Loc l = 1; }"), 422,
       42201},
      {"unresolved reference", "/subjects/polder.datasets.x.v1.X/versions",
       json{{"schemaType", "PROTOBUF"},
            {"schema", "syntax = \"proto3\"; import \"a.proto\"; message X {}"},
            {"references",
             json::array({{{"name", "a.proto"}, {"subject", "nope"}, {"version", 1}}})}},
       422, 42201},
      {"unknown schema type", "/subjects/polder.datasets.x.v1.X/versions",
       json{{"schemaType", "AVRO"}, {"schema", "{}"}}, 422, 42201},
      {"no schema type (Avro default)", "/subjects/polder.datasets.x.v1.X/versions",
       json{{"schema", "syntax = \"proto3\"; message X {}"}}, 422, 42201},
      {"base64 that is no descriptor", "/subjects/polder.datasets.x.v1.X/versions",
       Proto("AAAAAAAA"), 422, 42201},
      {"over the size limit", "/subjects/polder.datasets.x.v1.X/versions",
       Proto(absl::StrCat("syntax = \"proto3\"; message X { string a = 1; }",
                          std::string(20000, ' '))),
       422, 42201},
      {"not JSON", "/subjects/polder.datasets.x.v1.X/versions", json("nope"), 422, 42201},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.name);
    r = Post(*national, b.path, b.body, &st);
    EXPECT_EQ(st, b.status) << r;
    EXPECT_EQ(r["error_code"], b.code) << r;
  }
  r = Get(*national, "/schemas/ids/99", &st);
  EXPECT_EQ(st, 404);
  EXPECT_EQ(r["error_code"], 40403);
  r = Get(*national, "/subjects/nope/versions", &st);
  EXPECT_EQ(r["error_code"], 40401);
  r = Get(*national, "/subjects/polder.datasets.mobility.v1.BikeCount/versions/7", &st);
  EXPECT_EQ(r["error_code"], 40402);
  r = Get(*national, "/subjects/polder.datasets.mobility.v1.BikeCount/versions/zero", &st);
  EXPECT_EQ(st, 422);
  EXPECT_EQ(r["error_code"], 42202);
  r = Get(*national, "/subjects", &st);
  EXPECT_EQ(r, json::array({"polder.cities.groningen.trees.v1.Tree",
                            "polder.datasets.mobility.v1.BikeCount"}))
      << "no bad request stored anything";
  // Reads Confluent's clients make: subjectPrefix filters; which subjects and
  // versions use an id; every unmatched route answers Confluent's JSON 404.
  r = Get(*national, "/subjects?subjectPrefix=polder.datasets.", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(r, json::array({"polder.datasets.mobility.v1.BikeCount"}));
  r = Get(*national, "/subjects?subjectPrefix=nothing.like.this", &st);
  EXPECT_EQ(r, json::array());
  r = Get(*national, "/schemas/ids/1/subjects", &st);
  EXPECT_EQ(st, 200) << r;
  EXPECT_EQ(r, json::array({"polder.datasets.mobility.v1.BikeCount"}));
  r = Get(*national, "/schemas/ids/2/versions", &st);
  EXPECT_EQ(st, 200) << r;
  EXPECT_EQ(r, json::parse(R"([{"subject":"polder.cities.groningen.trees.v1.Tree","version":1}])"));
  for (const char* missing :
       {"/schemas/ids/99/subjects", "/schemas/ids/99/versions", "/schemas/ids/x/versions"}) {
    r = Get(*national, missing, &st);
    EXPECT_EQ(st, 404) << missing;
    EXPECT_EQ(r["error_code"], 40403) << missing << " " << r;
  }
  for (const char* unmatched :
       {"/no/such/route", "/associations/resources/-/groningen.mobility.bike-counts"}) {
    r = Get(*national, unmatched, &st);
    EXPECT_EQ(st, 404) << unmatched;
    EXPECT_EQ(r["error_code"], 404) << unmatched << " " << r;
    EXPECT_TRUE(r["message"].is_string()) << r;
  }

  // gRPC: the same registry; operator-only calls refused to a city.
  auto stub = Grpc(*reg, "groningen");
  grpc::ClientContext ctx;
  v1::GetSchemaRequest get;
  get.set_id(1);
  v1::Schema schema;
  ASSERT_TRUE(stub->GetSchema(&ctx, get, &schema).ok());
  EXPECT_THAT(schema.schema(), HasSubstr("BikeCount"));
  grpc::ClientContext ctx2;
  v1::SetModeRequest mode;
  mode.set_mode("READONLY");
  v1::ModeResponse mode_resp;
  grpc::Status denied = stub->SetMode(&ctx2, mode, &mode_resp);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED) << denied.error_message();
}

// The ops listener (common/server): liveness, readiness, the replica's role, epoch and how far
// it has read the registry topic, gRPC health behind the registry's mTLS, and metrics that pass
// promtool and count requests by route and code, latency and registrations.
TEST_F(RegistryE2eTest, OpsListenerReportsRoleCatchUpHealthAndPromtoolCleanMetrics) {
  auto primary = Start("reg-a");
  auto replica = Start("reg-b");
  auto national = Rest(*primary, "national");
  int st = 0;
  json r = Post(*national, "/subjects/polder.datasets.mobility.v1.BikeCount/versions",
                Proto(kBikes), &st);
  ASSERT_EQ(st, 200) << r;
  r = Post(*national, "/subjects/polder.datasets.mobility.v1.BikeCount/versions", Proto(kBikes),
           &st);
  ASSERT_EQ(st, 200) << r;  // the same schema again: "existing"
  r = Post(*national, "/subjects/polder.datasets.x.v1.X/versions",
           Proto("syntax = \"proto3\"; message {"), &st);
  ASSERT_EQ(st, 422) << r;  // refused
  Get(*national, "/no/such/route", &st);
  ASSERT_EQ(st, 404);

  auto ops = [](const RegistryProcess& p, const std::string& path, std::string* body) {
    return testing::RunCommand(
        absl::StrCat("curl -sS -o /dev/stdout -w '\\n%{http_code}' http://127.0.0.1:",
                     p.port("ops_port"), path),
        body);
  };
  auto code_and_json = [&](const RegistryProcess& p, const std::string& path) {
    std::string out;
    EXPECT_EQ(ops(p, path, &out), 0) << out;
    size_t nl = out.rfind('\n');
    return std::make_pair(std::atoi(out.substr(nl + 1).c_str()),
                          json::parse(out.substr(0, nl), nullptr, false));
  };
  auto [live, live_body] = code_and_json(*primary, "/livez");
  EXPECT_EQ(live, 200);
  auto [ready, ready_body] = code_and_json(*primary, "/readyz");
  EXPECT_EQ(ready, 200) << ready_body;
  EXPECT_EQ(ready_body["ready"], true);

  json status = code_and_json(*primary, "/statusz").second;
  EXPECT_EQ(status["service"], "polder-registry");
  EXPECT_EQ(status["role"], "primary") << status;
  EXPECT_EQ(status["primary"], "reg-a");
  EXPECT_GE(status["epoch"].get<int64_t>(), 1) << status;
  EXPECT_EQ(status["registrations"]["created"], 1) << status;
  EXPECT_EQ(status["registrations"]["existing"], 1) << status;
  EXPECT_EQ(status["registrations"]["refused"], 1) << status;
  EXPECT_EQ(status["checks"]["kafka"]["ok"], true) << status;
  EXPECT_EQ(status["checks"]["certificate"]["ok"], true) << status;
  // The replica names the primary and catches up with the topic.
  json rs;
  for (int i = 0; i < 100; ++i) {
    rs = code_and_json(*replica, "/statusz").second;
    if (rs["log"]["caught_up"] == true && rs["schemas"] == 1) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(rs["role"], "replica") << rs;
  EXPECT_EQ(rs["primary"], "reg-a") << rs;
  EXPECT_EQ(rs["log"]["caught_up"], true) << rs;
  EXPECT_EQ(rs["log"]["lag"], 0) << rs;
  EXPECT_EQ(rs["log"]["end_offset"], rs["log"]["position"]) << rs;
  EXPECT_EQ(rs["schemas"], 1) << rs;

  // gRPC health: SERVING for a federation peer over mTLS; nothing without a certificate.
  auto health = [&](std::shared_ptr<grpc::ChannelCredentials> creds) {
    grpc::GenericStub stub(
        grpc::CreateChannel(absl::StrCat("localhost:", primary->grpc_port()), creds));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::Slice empty("", 0);
    grpc::ByteBuffer request(&empty, 1), response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                   [&done](grpc::Status s) { done.set_value(s); });
    grpc::Status s = done.get_future().get();
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (s.ok() && response.Dump(&slices).ok()) {
      for (const grpc::Slice& sl : slices)
        bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    }
    return std::make_pair(s, bytes);
  };
  auto creds = tls::MakeChannelCredentials(files_["groningen"], fed_->Checker(), "registry");
  ASSERT_OK(creds.status());
  std::string out;
  auto [ok, serving] = health(*creds);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(serving, std::string("\x08\x01", 2)) << "HealthCheckResponse{status: SERVING}";
  grpc::SslCredentialsOptions anonymous;
  anonymous.pem_root_certs = Slurp(fed_->bundle_path());
  EXPECT_FALSE(health(grpc::SslCredentials(anonymous)).first.ok())
      << "health sits behind the registry's mTLS";

  // A standard client (buf curl) finds the services by reflection and checks health with it,
  // over the registry's mTLS; without a client certificate it gets nothing.
  const std::string buf =
      absl::StrCat(testing::NpmHome(), "/node_modules/.bin/buf curl --protocol grpc --cacert ",
                   fed_->bundle_path(), " ");
  const tls::TlsFiles& g = files_["groningen"];
  const std::string as_groningen = absl::StrCat("--cert ", g.cert_path, " --key ", g.key_path, " ");
  const std::string url = absl::StrCat("https://localhost:", primary->grpc_port());
  ASSERT_EQ(
      testing::RunCommand(absl::StrCat(buf, as_groningen, "--list-services ", url, " 2>&1"), &out),
      0)
      << out;
  EXPECT_THAT(out, HasSubstr("polder.registry.v1.SchemaRegistryService"));
  EXPECT_THAT(out, HasSubstr("grpc.health.v1.Health"));
  ASSERT_EQ(testing::RunCommand(
                absl::StrCat(buf, as_groningen, url, "/grpc.health.v1.Health/Check 2>&1"), &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("\"SERVING\""));
  EXPECT_NE(testing::RunCommand(absl::StrCat(buf, "--list-services ", url, " 2>&1"), &out), 0)
      << out;

  // Metrics: promtool-clean, counting what happened above.
  // The store's status is refreshed at most once a second: wait for the tail to pass its writes.
  const std::string metrics_file = absl::StrCat(dir_, "/registry-metrics.txt");
  std::string text;
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(testing::RunCommand(
                  absl::StrCat("curl -sS --fail http://127.0.0.1:", primary->port("ops_port"),
                               "/metrics > ", metrics_file, " && promtool check metrics < ",
                               metrics_file),
                  &out),
              0)
        << out;
    text = Slurp(metrics_file);
    if (absl::StrContains(text, "polder_registry_log_lag_records 0")) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  for (const char* line : {
           "polder_registry_registrations_total{outcome=\"created\"} 1",
           "polder_registry_registrations_total{outcome=\"existing\"} 1",
           "polder_registry_registrations_total{outcome=\"refused\"} 1",
           "polder_registry_primary 1",
           "polder_registry_log_lag_records 0",
           "polder_registry_kafka_up 1",
           "polder_registry_schemas 1",
           "polder_registry_http_requests_total{code=\"422\",method=\"POST\",route=\"/subjects/"
           "(.+)/versions\"} 1",
           "polder_registry_http_requests_total{code=\"404\",method=\"GET\",route=\"unmatched\"} 1",
           "polder_registry_grpc_requests_total{code=\"0\",method=\"/grpc.health.v1.Health/"
           "Check\"} 2",
           "polder_registry_http_request_seconds_count{route=\"/subjects/(.+)/versions\"} 3",
       }) {
    EXPECT_THAT(text, HasSubstr(line)) << text;
  }
}

TEST_F(RegistryE2eTest, KilledPrimaryDuringConcurrentRegistrationsLosesAndDuplicatesNoId) {
  auto a = Start("reg-a");
  auto b = Start("reg-b");
  std::mutex mu;
  std::map<int, int> acked;  // schema number -> id the registry acknowledged
  std::atomic<int> next{0};
  std::atomic<bool> stop{false};
  auto worker = [&](RegistryProcess* target) {
    auto client = Rest(*target, "national");
    while (!stop) {
      int n = next++;
      int st = 0;
      json r =
          Post(*client, absl::StrCat("/subjects/polder.datasets.load.v1.S", n, "/versions"),
               Proto(absl::StrCat("syntax = \"proto3\"; package polder.datasets.load.v1; message S",
                                  n, " { int32 v = 1; }")),
               &st);
      if (st == 200) {
        std::lock_guard<std::mutex> lock(mu);
        acked[n] = r["id"].get<int>();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back(worker, a.get());
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (acked.size() >= 30) break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  a->Kill();  // kill -9 in the middle of registrations
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_GE(acked.size(), 30u);

  // The operator moves the primary role to reg-b with polderctl (gRPC over mTLS).
  const tls::TlsFiles& op = files_["national"];
  std::string polderctl = absl::StrCat(std::getenv("TEST_SRCDIR"), "/",
                                       std::getenv("TEST_WORKSPACE"), "/tools/polderctl/polderctl");
  std::string cmd =
      absl::StrCat(polderctl, " registry set-primary --address localhost:", b->grpc_port(),
                   " --replica reg-b --cert ", op.cert_path, " --key ", op.key_path, " --bundle ",
                   op.trust_bundle_path, " --directory ", dir_, "/directory.json --operator-key ",
                   dir_, "/operator.pub -o json");
  std::string output;
  ASSERT_EQ(testing::RunCommand(cmd, &output), 0) << cmd << "\n" << output << "\n" << b->Log();
  EXPECT_THAT(output, HasSubstr("\"primary\": \"reg-b\""));

  // Every acknowledged registration is there with its id; no id is used twice.
  auto client = Rest(*b, "national");
  std::set<int> ids;
  int max_id = 0;
  for (const auto& [n, id] : acked) {
    int st = 0;
    json v = Get(*client,
                 absl::StrCat("/subjects/polder.datasets.load.v1.S", n, "/versions/latest"), &st);
    ASSERT_EQ(st, 200) << "acknowledged registration S" << n << " lost: " << v;
    EXPECT_EQ(v["id"], id);
    EXPECT_TRUE(ids.insert(id).second) << "id " << id << " acknowledged twice";
    max_id = std::max(max_id, id);
  }
  // The new primary continues the sequence above every id ever assigned.
  int st = 0;
  json r = Post(
      *client, "/subjects/polder.datasets.after.v1.A/versions",
      Proto("syntax = \"proto3\"; package polder.datasets.after.v1; message A { bool b = 1; }"),
      &st);
  ASSERT_EQ(st, 200) << r;
  EXPECT_GT(r["id"].get<int>(), max_id);
  json subjects = Get(*client, "/subjects", &st);
  std::set<int> all_ids;
  for (const auto& subject : subjects) {
    json v = Get(*client,
                 absl::StrCat("/subjects/", subject.get<std::string>(), "/versions/latest"), &st);
    EXPECT_TRUE(all_ids.insert(v["id"].get<int>()).second) << "id " << v["id"] << " duplicated";
  }
}

TEST_F(RegistryE2eTest, ExportAndImportRestoreIntoAFreshKafkaCluster) {
  auto a = Start("reg-a");
  auto rest = Rest(*a, "national");
  int st = 0;
  Post(*rest, "/subjects/polder.datasets.mobility.v1.BikeCount/versions", Proto(kBikes), &st);
  ASSERT_EQ(st, 200);
  Post(*rest, "/subjects/polder.datasets.parking.v1.Garage/versions",
       Proto("syntax = \"proto3\"; package polder.datasets.parking.v1; message Garage { string id "
             "= 1; }"),
       &st);
  ASSERT_EQ(st, 200);
  httplib::Headers h;
  auto put = rest->Put("/config/polder.datasets.parking.v1.Garage",
                       json{{"compatibility", "FULL_TRANSITIVE"}}.dump(),
                       "application/vnd.schemaregistry.v1+json");
  ASSERT_TRUE(put && put->status == 200);
  auto del = rest->Delete("/subjects/polder.datasets.mobility.v1.BikeCount/versions/1");
  ASSERT_TRUE(del && del->status == 200);

  auto stub = Grpc(*a, "national");
  grpc::ClientContext ctx;
  v1::RegistryExport backup;
  ASSERT_TRUE(stub->Export(&ctx, v1::ExportRequest(), &backup).ok());
  ASSERT_EQ(backup.versions_size(), 2);

  // A fresh Kafka cluster and an empty registry on it.
  kafka_testing::KafkaBrokerOptions bo;
  bo.name = "restore";
  auto fresh_broker = kafka_testing::KafkaBroker::Start(bo);
  ASSERT_OK(fresh_broker.status());
  auto b = Start("reg-b", "reg-b", (*fresh_broker)->bootstrap_servers(), "_polder.schemas");
  auto b_stub = Grpc(*b, "national");
  grpc::ClientContext c1, c2, c3, c4;
  v1::SetModeRequest import_mode;
  import_mode.set_mode("IMPORT");
  v1::ModeResponse mr;
  ASSERT_TRUE(b_stub->SetMode(&c1, import_mode, &mr).ok());
  v1::ImportResponse ir;
  grpc::Status imported = b_stub->Import(&c2, backup, &ir);
  ASSERT_TRUE(imported.ok()) << imported.error_message();
  v1::SetModeRequest rw;
  rw.set_mode("READWRITE");
  ASSERT_TRUE(b_stub->SetMode(&c3, rw, &mr).ok());
  v1::RegistryExport restored;
  ASSERT_TRUE(b_stub->Export(&c4, v1::ExportRequest(), &restored).ok());
  ASSERT_EQ(restored.versions_size(), backup.versions_size());
  for (int i = 0; i < backup.versions_size(); ++i) {
    EXPECT_EQ(restored.versions(i).subject(), backup.versions(i).subject());
    EXPECT_EQ(restored.versions(i).version(), backup.versions(i).version());
    EXPECT_EQ(restored.versions(i).id(), backup.versions(i).id());
    EXPECT_EQ(restored.versions(i).deleted(), backup.versions(i).deleted());
  }
  EXPECT_EQ(restored.subject_compatibility().at("polder.datasets.parking.v1.Garage"),
            "FULL_TRANSITIVE");
  EXPECT_EQ(restored.next_id(), backup.next_id());
  b.reset();
}

// ---- Interop with third-party clients ------------------------------------------------------

std::string Runfile(const std::string& path) {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"), "/", path);
}

using testing::NpmHome;
using testing::PipHome;
using testing::RunCommand;

class InteropTest : public RegistryE2eTest {
 protected:
  // node interop.js <mode> ... as the national operator; returns the JSON it wrote.
  json Node(const RegistryProcess& reg, const std::string& mode, const std::string& arg,
            bool plaintext = false) {
    std::string npm = NpmHome();
    EXPECT_FALSE(npm.empty())
        << "npm test tools not found: run tools/setup/setup.sh (./test.sh does)";
    if (npm.empty()) return json();
    const tls::TlsFiles& f = files_["national"];
    std::string out_path = absl::StrCat(dir_, "/node-", mode, ".json");
    std::string cmd = absl::StrCat(
        "NODE_PATH=", npm, "/node_modules node ", Runfile("tests/registry/interop/interop.js"), " ",
        mode, plaintext ? " http://localhost:" : " https://localhost:", reg.http_port(), " ",
        f.cert_path, " ", f.key_path, " ", f.trust_bundle_path, " ", arg, " ", out_path);
    std::string output;
    int rc = RunCommand(cmd, &output);
    EXPECT_EQ(rc, 0) << cmd << "\n"
                     << output << "\nregistry log:\n"
                     << reg.Log().substr(reg.Log().size() > 3000 ? reg.Log().size() - 3000 : 0);
    if (rc != 0) return json();
    return json::parse(std::ifstream(out_path));
  }

  // Resolves schema `id` and its references through the REST API, as a consumer would.
  absl::StatusOr<std::shared_ptr<const schema::ParsedSchema>> Fetch(httplib::SSLClient& c,
                                                                    const std::string& path) {
    int st = 0;
    json s = Get(c, path, &st);
    if (st != 200) return absl::NotFoundError(absl::StrCat(path, ": ", s.dump()));
    std::vector<schema::ResolvedReference> refs;
    for (const json& r : s.value("references", json::array())) {
      ASSIGN_OR_RETURN(
          auto dep,
          Fetch(c, absl::StrCat("/subjects/", r["subject"].get<std::string>(), "/versions/",
                                r["version"].get<int>(), "?format=serialized")));
      refs.push_back({r["name"], r["subject"], r["version"], dep});
    }
    schema::ParseOptions o;
    o.format = schema::InputFormat::kSerialized;
    o.file_name = "fetched.proto";
    return schema::ParsedSchema::Parse(s["schema"].get<std::string>(), refs, o);
  }

  // Decodes a Confluent frame with the schema it names; returns the message as text format.
  absl::StatusOr<std::pair<std::string, std::string>> Decode(httplib::SSLClient& c,
                                                             const std::string& hex) {
    std::string bytes = absl::HexStringToBytes(hex);
    ASSIGN_OR_RETURN(wire::Frame frame, wire::Decode(bytes));
    ASSIGN_OR_RETURN(auto parsed, Fetch(c, absl::StrCat("/schemas/ids/", frame.schema_id,
                                                        "?format=serialized")));
    ASSIGN_OR_RETURN(const auto* type, parsed->MessageByIndexes(frame.message_indexes));
    auto msg = parsed->NewMessage(type);
    if (!msg->ParseFromArray(frame.payload.data(), static_cast<int>(frame.payload.size()))) {
      return absl::InvalidArgumentError("payload does not parse as " + type->full_name());
    }
    return std::make_pair(type->full_name(), msg->ShortDebugString());
  }
};

TEST_F(InteropTest, ConfluentJsClientAndPolderCppReadEachOthersFrames) {
  auto reg = Start("reg-a");
  json produced = Node(*reg, "produce", Runfile("tests/registry/interop/bikes_descriptor_set.pb"));
  ASSERT_TRUE(produced.is_object());
  // The JS client's record-name strategy names the subject after the file's first top-level
  // message (BikeCount), whatever message is serialized; the import is registered under its
  // file name and referenced.
  EXPECT_THAT(produced["subjects"].get<std::vector<std::string>>(),
              ::testing::UnorderedElementsAre("polder.interop.bikes.v1.BikeCount",
                                              "tests/registry/interop/common.proto"));
  auto c = Rest(*reg, "national");
  ASSERT_OK_AND_ASSIGN(auto counter, Decode(*c, produced["counter"]));
  EXPECT_EQ(counter.first, "polder.interop.bikes.v1.CounterInfo");
  EXPECT_THAT(counter.second, HasSubstr("counter_id: \"c-7\""));
  EXPECT_THAT(counter.second, HasSubstr("lat: 53.2"));
  ASSERT_OK_AND_ASSIGN(auto reading, Decode(*c, produced["reading"]));
  EXPECT_EQ(reading.first, "polder.interop.bikes.v1.BikeCount.Reading");
  EXPECT_THAT(reading.second, HasSubstr("seq: 42"));

  // Golden frame headers: [1] is count 1 + index 1; [0, 1] is count 2 + 0 + 1.
  std::string counter_bytes = absl::HexStringToBytes(produced["counter"].get<std::string>());
  std::string reading_bytes = absl::HexStringToBytes(produced["reading"].get<std::string>());
  ASSERT_OK_AND_ASSIGN(wire::Frame cf, wire::Decode(counter_bytes));
  EXPECT_EQ(counter_bytes.substr(0, 7), wire::EncodeHeader(cf.schema_id, {1}));
  EXPECT_EQ(counter_bytes.substr(5, 2), std::string("\x02\x02", 2));
  EXPECT_EQ(reading_bytes.substr(5, 3), std::string("\x04\x00\x02", 3));

  // Polder encodes, the JS client decodes.
  ASSERT_OK_AND_ASSIGN(
      auto parsed, Fetch(*c, absl::StrCat("/schemas/ids/", cf.schema_id, "?format=serialized")));
  ASSERT_OK_AND_ASSIGN(const auto* type, parsed->MessageByIndexes({0, 1}));
  auto msg = parsed->NewMessage(type);
  msg->GetReflection()->SetInt64(msg.get(), type->FindFieldByName("seq"), 7);
  msg->GetReflection()->SetString(msg.get(), type->FindFieldByName("note"), "from c++");
  std::string frame = wire::Encode(cf.schema_id, {0, 1}, msg->SerializeAsString());
  json consumed = Node(*reg, "consume", absl::BytesToHexString(frame));
  EXPECT_EQ(consumed["typeName"], "polder.interop.bikes.v1.BikeCount.Reading");
  EXPECT_EQ(consumed["seq"], "7");
  EXPECT_EQ(consumed["note"], "from c++");

  // .proto text, as Java clients and people send it (curl): the same schema gets the same id.
  std::string body_path = dir_ + "/bikes-text.json";
  std::ifstream proto_in(Runfile("tests/registry/interop/bikes.proto"));
  std::stringstream proto_text;
  proto_text << proto_in.rdbuf();
  std::ofstream(body_path) << json{
      {"schemaType", "PROTOBUF"},
      {"schema", proto_text.str()},
      {"references",
       json::array(
           {{{"name", "tests/registry/interop/common.proto"},
             {"subject", "tests/registry/interop/common.proto"},
             {"version", 1}}})}}.dump();
  const tls::TlsFiles& f = files_["national"];
  std::string out;
  ASSERT_EQ(RunCommand(absl::StrCat("curl -sS --fail-with-body --cert ", f.cert_path, " --key ",
                                    f.key_path, " --cacert ", f.trust_bundle_path,
                                    " -H 'Content-Type: application/vnd.schemaregistry.v1+json'",
                                    " --data @", body_path, " https://localhost:", reg->http_port(),
                                    "/subjects/curl.bikes/versions"),
                       &out),
            0)
      << out;
  EXPECT_EQ(json::parse(out)["id"], cf.schema_id)
      << "same canonical schema, same id, text or descriptor";
}

// Every read call of @confluentinc/schemaregistry 1.10.1 (services/registry/README.md lists
// them): served, or refused with Confluent's JSON error, which the client turns into its
// RestError with the status and error code (never "Unknown error").
TEST_F(InteropTest, EveryReadCallOfTheConfluentJsClientIsServedOrRefusedInConfluentJson) {
  auto reg = Start("reg-a");
  ASSERT_TRUE(
      Node(*reg, "produce", Runfile("tests/registry/interop/bikes_descriptor_set.pb")).is_object());
  json reads = Node(*reg, "reads", "polder.interop.bikes.v1.BikeCount");
  ASSERT_TRUE(reads.is_object());
  std::cout << "JS client read calls: " << reads.dump() << std::endl;
  for (const char* served :
       {"getBySubjectAndId", "getId", "getLatestSchemaMetadata", "getSchemaMetadata",
        "getAllVersions", "getVersion", "getAllSubjects", "testSubjectCompatibility",
        "testCompatibility", "getDefaultCompatibility", "getDefaultConfig"}) {
    SCOPED_TRACE(served);
    ASSERT_TRUE(reads.contains(served));
    EXPECT_TRUE(reads[served]["ok"].get<bool>()) << reads[served].dump();
  }
  EXPECT_EQ(reads["getId"]["value"], reads["getLatestSchemaMetadata"]["value"]["id"]);
  EXPECT_EQ(reads["getAllVersions"]["value"], json::array({1}));
  EXPECT_EQ(reads["getVersion"]["value"], 1);
  EXPECT_EQ(reads["testCompatibility"]["value"], true);
  for (const char* refused :
       {"getByGuid", "getLatestWithMetadata", "getAssociationsByResourceName"}) {
    SCOPED_TRACE(refused);
    ASSERT_TRUE(reads.contains(refused));
    EXPECT_FALSE(reads[refused]["ok"].get<bool>()) << reads[refused].dump();
    EXPECT_EQ(reads[refused]["status"], 404) << reads[refused].dump();
    EXPECT_EQ(reads[refused]["errorCode"], 404)
        << "Confluent's JSON for a route it lacks: " << reads[refused].dump();
    EXPECT_THAT(reads[refused]["message"].get<std::string>(),
                ::testing::Not(HasSubstr("Unknown error")));
  }
  // A subject without its own level: Confluent's error 40408 or the effective value.
  for (const char* level : {"getCompatibility", "getConfig"}) {
    SCOPED_TRACE(level);
    if (!reads[level]["ok"].get<bool>()) {
      EXPECT_EQ(reads[level]["status"], 404) << reads[level].dump();
      EXPECT_THAT(Msg(json{{"message", reads[level]["message"]}}),
                  ::testing::Not(HasSubstr("Unknown error")));
    }
  }
}

// Every read call of confluent-kafka-python 2.16.1's SchemaRegistryClient, and its
// ProtobufDeserializer (whose first call is the associations lookup) on a frame the JS client
// wrote: served, or Confluent's JSON error, which the client turns into SchemaRegistryError.
TEST_F(InteropTest, EveryReadCallOfConfluentsPythonClientIsServedOrRefusedInConfluentJson) {
  auto reg = Start("reg-a");
  json produced = Node(*reg, "produce", Runfile("tests/registry/interop/bikes_descriptor_set.pb"));
  ASSERT_TRUE(produced.is_object());
  const std::string pip = PipHome();
  ASSERT_FALSE(pip.empty())
      << "Python test clients not found: run tools/setup/setup.sh (./test.sh does)";
  const tls::TlsFiles& f = files_["national"];
  const std::string out_path = absl::StrCat(dir_, "/python-reads.json");
  const std::string cmd =
      absl::StrCat(pip, "/bin/python ", Runfile("tests/registry/interop/interop.py"),
                   " reads https://localhost:", reg->http_port(), " ", f.cert_path, " ", f.key_path,
                   " ", f.trust_bundle_path, " polder.interop.bikes.v1.BikeCount ",
                   Runfile("tests/registry/interop/bikes_descriptor_set.pb"), " ",
                   produced["reading"].get<std::string>(), " ", out_path);
  std::string output;
  ASSERT_EQ(RunCommand(cmd, &output), 0) << cmd << "\n" << output;
  json reads = json::parse(std::ifstream(out_path));
  std::cout << "Python client read calls: " << reads.dump() << std::endl;
  for (const char* served :
       {"get_schema", "get_schema_types", "get_subjects_by_schema_id", "get_schema_versions",
        "lookup_schema", "get_subjects", "get_subjects_prefix", "get_latest_version", "get_version",
        "get_referenced_by", "get_versions", "get_compatibility", "test_compatibility",
        "test_compatibility_all_versions", "get_config", "get_global_mode", "get_contexts",
        "ProtobufDeserializer"}) {
    SCOPED_TRACE(served);
    ASSERT_TRUE(reads.contains(served));
    EXPECT_TRUE(reads[served]["ok"].get<bool>()) << reads[served].dump();
  }
  EXPECT_EQ(reads["get_subjects_prefix"]["value"],
            json::array({"polder.interop.bikes.v1.BikeCount"}));
  EXPECT_EQ(reads["get_subjects_by_schema_id"]["value"],
            json::array({"polder.interop.bikes.v1.BikeCount"}));
  EXPECT_EQ(reads["get_referenced_by"]["value"],
            json::array({reads["get_latest_version"]["value"]["id"]}))
      << "BikeCount references common.proto";
  EXPECT_EQ(reads["get_contexts"]["value"], json::array({"."}));
  // The deserializer's associations lookup got Confluent's 404, which it reads as "none".
  EXPECT_EQ(reads["ProtobufDeserializer"]["value"],
            json::parse(R"({"seq":"42","note":"from js"})"));
  for (const char* refused :
       {"get_schema_by_guid", "get_latest_with_metadata", "get_associations_by_resource_name"}) {
    SCOPED_TRACE(refused);
    EXPECT_FALSE(reads[refused]["ok"].get<bool>()) << reads[refused].dump();
    EXPECT_EQ(reads[refused]["status"], 404) << reads[refused].dump();
    EXPECT_EQ(reads[refused]["errorCode"], 404) << reads[refused].dump();
  }
  // A subject without a mode of its own: Confluent's 40409 (or the effective mode).
  if (!reads["get_mode"]["ok"].get<bool>()) {
    EXPECT_EQ(reads["get_mode"]["status"], 404) << reads["get_mode"].dump();
  }
}

TEST_F(InteropTest, ClientThatOmitsMessageIndexesIsDetectedNotMisdecoded) {
  // @kafkajs/confluent-schema-registry's HTTP stack fails the registry's mTLS handshake
  // (see the registry README), so it talks to a development-mode (plaintext) replica; the
  // framing is the point here. Polder's own TLS replica of the same topic decodes.
  auto dev = Start("reg-a", "reg-a", "", "", /*development=*/true);
  json legacy =
      Node(*dev, "legacy", Runfile("tests/registry/interop/legacy.proto"), /*plaintext=*/true);
  ASSERT_TRUE(legacy.contains("frame")) << legacy;
  dev->Kill();
  auto reg = Start("reg-b", "reg-a");
  auto c = Rest(*reg, "national");
  int st = 0;
  Get(*c, absl::StrCat("/schemas/ids/", legacy["id"].get<int>()), &st);
  ASSERT_EQ(st, 200) << "the legacy client's schema is in the shared topic";
  absl::StatusOr<std::pair<std::string, std::string>> decoded = Decode(*c, legacy["frame"]);
  ASSERT_FALSE(decoded.ok()) << "decoded as " << decoded->first << ": " << decoded->second;
  EXPECT_THAT(std::string(decoded.status().message()), HasSubstr("omitted the message indexes"));
}

}  // namespace
}  // namespace polder
