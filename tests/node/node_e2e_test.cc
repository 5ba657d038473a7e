// polder-node end to end: the registry and the node as processes, a real Kafka broker, mutual
// TLS with certificates made at test time (the federation's CA for the node and the registry, a
// separate city ingest CA for gateways), clients over real sockets: gRPC, curl, kafkajs with
// Confluent's deserializer. Faults: kill -9 of the node and of the broker while a client streams
// with idempotency keys — every acknowledged record is in the topic exactly once, by ce_id.
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "tests/node/node_fixture.h"

namespace polder {
namespace {

using namespace node_testing;  // NOLINT: the fixture and its helpers
using ::testing::HasSubstr;

TEST_F(NodeE2eTest, PublishesOverGrpcAndHttpsWithCertificatesAndTokens) {
  auto node = StartNode();
  std::set<std::string> ce_ids;
  // gRPC with the gateway's certificate: JSON and binary records, one batch.
  auto stub = Ingest(node->grpc_port());
  nv1::PublishRequest req;
  req.set_dataset(kBikes);
  req.set_idempotency_key("grpc-1");
  for (int i = 0; i < 5; ++i)
    req.add_records()->set_json(BikeJson(absl::StrCat("gn-counter-", i), i));
  {
    grpc::ClientContext ctx;
    nv1::PublishResponse resp;
    grpc::Status s = stub->Publish(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << node->Log();
    EXPECT_EQ(resp.records(), 5);
    EXPECT_FALSE(resp.duplicate());
    EXPECT_EQ(resp.topic(), Topic());
    ce_ids.insert(resp.ce_ids().begin(), resp.ce_ids().end());
  }
  {
    // The retry of the same batch is answered from the keys: nothing is written twice.
    grpc::ClientContext ctx;
    nv1::PublishResponse resp;
    ASSERT_TRUE(stub->Publish(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.duplicate());
    EXPECT_EQ(std::set<std::string>(resp.ce_ids().begin(), resp.ce_ids().end()), ce_ids);
  }
  // Client streaming: three batches.
  {
    grpc::ClientContext ctx;
    nv1::PublishStreamResponse resp;
    auto writer = stub->PublishStream(&ctx, &resp);
    for (int b = 0; b < 3; ++b) {
      nv1::PublishRequest batch;
      batch.set_dataset(kBikes);
      batch.set_idempotency_key(absl::StrCat("stream-", b));
      for (int i = 0; i < 4; ++i) {
        auto* r = batch.add_records();
        r->set_json(BikeJson("gn-stream", i));
        r->set_ce_id(absl::StrCat("stream-", b, "-", i));
        ce_ids.insert(r->ce_id());
      }
      ASSERT_TRUE(writer->Write(batch));
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.batches(), 3);
    EXPECT_EQ(resp.records(), 12);
  }
  // gRPC with a bearer token and no client certificate.
  {
    auto token_stub = Ingest(node->grpc_port(), false);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
    nv1::PublishRequest p;
    p.set_dataset(kBikes);
    p.add_records()->set_json(BikeJson("gn-token", 1));
    nv1::PublishResponse resp;
    grpc::Status s = token_stub->Publish(&ctx, p, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ce_ids.insert(resp.ce_ids().begin(), resp.ce_ids().end());
    grpc::ClientContext anonymous;
    EXPECT_EQ(token_stub->Publish(&anonymous, p, &resp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  // curl: a JSON array with the gateway's certificate, NDJSON with the token, a binary batch.
  std::string array =
      absl::StrCat("[", BikeJson("gn-curl-1", 3), ",", BikeJson("gn-curl-2", 4), "]");
  auto [status, body] =
      Curl(*node, kBikes, "application/json", WriteBody("array.json", array), CertAuth(gateway_));
  ASSERT_EQ(status, 200) << body << node->Log();
  EXPECT_EQ(body["records"], 2);
  for (const auto& id : body["ce_ids"]) ce_ids.insert(id.get<std::string>());
  std::string ndjson = absl::StrCat(BikeJson("gn-nd-1", 1), "\n", BikeJson("gn-nd-2", 2), "\n");
  std::tie(status, body) =
      Curl(*node, kBikes, "application/x-ndjson", WriteBody("b.ndjson", ndjson), TokenAuth(kToken));
  ASSERT_EQ(status, 200) << body;
  for (const auto& id : body["ce_ids"]) ce_ids.insert(id.get<std::string>());
  nv1::PublishRequest binary;
  binary.add_records()->set_json(BikeJson("gn-bin", 9));
  binary.mutable_records(0)->set_ce_id("binary-batch-0");
  std::tie(status, body) = Curl(*node, kBikes, "application/x-protobuf",
                                WriteBody("b.bin", binary.SerializeAsString()), TokenAuth(kToken));
  ASSERT_EQ(status, 200) << body;
  ce_ids.insert("binary-batch-0");

  // An independent client reads the topic (read_committed) and decodes every value through the
  // node's schema endpoint.
  const std::string out = dir_ + "/read.json";
  std::string cmd =
      absl::StrCat("NODE_PATH=", testing::NpmHome(), "/node_modules node ",
                   RunfilesPath("tests/node/read_topic.js"), " ", broker().bootstrap_servers(), " ",
                   Topic(), " ", ce_ids.size(), " https://localhost:", node->port("schema_port"),
                   " ", fed_->bundle_path(), " ", out);
  std::string output;
  ASSERT_EQ(testing::RunCommand(cmd, &output), 0) << cmd << "\n" << output;
  json read = json::parse(std::ifstream(out));
  std::set<std::string> read_ids;
  for (const json& r : read) {
    read_ids.insert(r["ce_id"].get<std::string>());
    EXPECT_EQ(r["type"], "polder.datasets.mobility.v1.BikeCount");
    EXPECT_EQ(r["ce_type"], "polder.datasets.mobility.v1.BikeCount");
    EXPECT_EQ(r["key"], r["counterId"]) << "the Kafka key is the entity id";
  }
  EXPECT_EQ(read_ids, ce_ids);

  // A CloudEvents consumer that knows nothing of Polder (the CloudEvents Python SDK) decodes each
  // record by its own attributes (ADR 0012): datacontenttype picks the decoder, dataschema names
  // the schema id, type the message. Before ADR 0012 the records said application/x-protobuf, so
  // such a consumer parsed the Confluent frame as bare Protobuf and failed.
  const std::string pip = testing::PipHome();
  ASSERT_FALSE(pip.empty())
      << "Python test clients not found: run tools/setup/setup.sh (./test.sh does)";
  const std::string ce_out = dir_ + "/cloudevents.json";
  cmd = absl::StrCat(pip, "/bin/python ", RunfilesPath("tests/node/cloudevents_reader.py"), " ",
                     broker().bootstrap_servers(), " ", Topic(), " ", ce_ids.size(),
                     " https://localhost:", node->port("schema_port"), " ", fed_->bundle_path(),
                     " ", ce_out);
  ASSERT_EQ(testing::RunCommand(cmd, &output), 0) << cmd << "\n" << output;
  json events = json::parse(std::ifstream(ce_out));
  std::set<std::string> event_ids;
  for (const json& e : events) {
    event_ids.insert(e["ce_id"].get<std::string>());
    EXPECT_EQ(e["datacontenttype"], "application/vnd.polder.confluent-protobuf") << e.dump();
    EXPECT_EQ(e["dataschema"],
              absl::StrCat("urn:polder:nl-smartcity:schemas:", e["schema_id"].get<int>()))
        << e.dump();
    EXPECT_EQ(e["type"], "polder.datasets.mobility.v1.BikeCount");
    EXPECT_EQ(e["source"], absl::StrCat("/peers/", peer_, "/datasets/mobility.bike-counts"));
    EXPECT_EQ(e["key"], e["counterId"]) << "decoded: the entity id field equals the Kafka key";
  }
  EXPECT_EQ(event_ids, ce_ids);
}

// polderctl publish and tail against the real node and Kafka, and a city's own producer
// configured as docs/producers.md says: publish sends a CSV file in
// batches with content-derived idempotency keys (a re-run resumes after the acknowledged batches;
// without its state file every batch answers as a duplicate) and an NDJSON file with a token;
// a refused record stops the run naming file:line; the direct producer writes with Confluent's
// serializer and the CloudEvents headers; polderctl tail then reads the topic read_committed and
// decodes every record through the node's schema endpoint — each exactly once.
TEST_F(NodeE2eTest, PolderctlPublishesResumablyAndTailReadsItAndADocumentedDirectProducer) {
  auto node = StartNode();
  const std::string polderctl = RunfilesPath("tools/polderctl/polderctl");
  const std::string tls_flags =
      absl::StrCat(" --endpoint localhost:", node->grpc_port(), " --ca-file ", fed_->bundle_path());
  std::string csv = "counter_id,event_time,count,location.latitude,location.longitude,direction\n";
  for (int i = 0; i < 5; ++i) {
    absl::StrAppend(&csv, "gn-csv-", i, ",", Now(), ",", 10 + i,
                    ",53.2113,6.5641,DIRECTION_INBOUND\n");
  }
  const std::string csv_file = WriteBody("counts.csv", csv);
  const std::string publish_csv = absl::StrCat(
      polderctl, " publish", tls_flags, " --cert ", gateway_.cert_path, " --key ",
      gateway_.key_path, " --dataset ", kBikes, " --batch-records 2 --file ", csv_file, " -o json");
  auto publish = [&](const std::string& cmd) {
    std::string output;
    int rc = testing::RunCommand(absl::StrCat("{ ", cmd, " 2>", dir_, "/publish.err; }"), &output);
    std::ifstream err_in(dir_ + "/publish.err");
    std::string err((std::istreambuf_iterator<char>(err_in)), std::istreambuf_iterator<char>());
    json result = json::parse(output, nullptr, false);
    return std::make_tuple(rc, result, absl::StrCat(err, output));
  };
  auto [rc, result, err] = publish(publish_csv);
  ASSERT_EQ(rc, 0) << publish_csv << "\n" << err << node->Log();
  ASSERT_TRUE(result.is_object()) << err;
  json file = result["files"][0];
  EXPECT_EQ(file["records"], 5) << file.dump();
  EXPECT_EQ(file["batches"], 3);
  EXPECT_EQ(file["records_written"], 5);
  EXPECT_EQ(file["duplicate_batches"], 0);
  EXPECT_EQ(file["topic"], Topic());
  EXPECT_TRUE(file["complete"].get<bool>());
  const int schema_id = file["schema_id"].get<int>();
  EXPECT_GT(schema_id, 0);
  // The same command again: the state file says all three are acknowledged; nothing is sent.
  std::tie(rc, result, err) = publish(publish_csv);
  ASSERT_EQ(rc, 0) << err;
  EXPECT_EQ(result["files"][0]["batches_resumed"], 3) << result.dump();
  EXPECT_EQ(result["files"][0]["batches_sent"], 0);
  // Without the state file (lost with a crashed laptop): the keys come from the content, so the
  // node answers every batch as a duplicate and writes nothing twice.
  ASSERT_TRUE(std::filesystem::remove(csv_file + ".polder-publish.json"));
  std::tie(rc, result, err) = publish(publish_csv);
  ASSERT_EQ(rc, 0) << err;
  EXPECT_EQ(result["files"][0]["duplicate_batches"], 3) << result.dump();
  EXPECT_EQ(result["files"][0]["records_written"], 0);
  EXPECT_EQ(result["files"][0]["duplicate_records"], 5);

  // NDJSON with the vendor's token.
  const std::string ndjson_file =
      WriteBody("vendor.ndjson", absl::StrCat(BikeJson("gn-nd-1", 1), "\n", BikeJson("gn-nd-2", 2),
                                              "\n", BikeJson("gn-nd-3", 3), "\n"));
  std::tie(rc, result, err) =
      publish(absl::StrCat(polderctl, " publish", tls_flags, " --token-file ", token_file_,
                           " --dataset ", kBikes, " --file ", ndjson_file, " -o json"));
  ASSERT_EQ(rc, 0) << err << node->Log();
  EXPECT_EQ(result["files"][0]["records_written"], 3) << result.dump();
  // A refused record (an unknown field on line 2) stops the run and names file:line.
  const std::string bad_file = WriteBody(
      "bad.ndjson",
      absl::StrCat(BikeJson("gn-bad-1", 1), "\n", R"({"counterId":"gn-bad-2","bogus":1})", "\n"));
  std::tie(rc, result, err) =
      publish(absl::StrCat(polderctl, " publish", tls_flags, " --token-file ", token_file_,
                           " --dataset ", kBikes, " --file ", bad_file));
  EXPECT_EQ(rc, 1) << err;
  EXPECT_THAT(err, HasSubstr(absl::StrCat(bad_file, ":2:"))) << err;
  EXPECT_THAT(err, HasSubstr("bogus")) << err;
  // No certificate, no token: refused before anything is written.
  std::tie(rc, result, err) =
      publish(absl::StrCat(polderctl, " publish", tls_flags, " --dataset ", kBikes, " --file ",
                           ndjson_file, " --state-file ", dir_, "/anonymous.state"));
  EXPECT_EQ(rc, 1) << err;
  EXPECT_THAT(err, HasSubstr("present a client certificate or an Authorization: Bearer token"))
      << err;

  // A city application writing straight to Kafka, configured as docs/producers.md says.
  const std::string pip = testing::PipHome();
  ASSERT_FALSE(pip.empty())
      << "Python test clients not found: run tools/setup/setup.sh (./test.sh does)";
  const tls::TlsFiles& f = files_["groningen"];
  const std::string direct_out = dir_ + "/direct.json";
  std::string cmd = absl::StrCat(
      pip, "/bin/python ", RunfilesPath("tests/node/city_producer.py"), " ",
      broker().bootstrap_servers(), " ", Topic(), " https://localhost:", registry_->http_port(),
      " ", f.cert_path, " ", f.key_path, " ", fed_->bundle_path(), " ",
      RunfilesPath("proto/polder/datasets/mobility/v1/bike_count_descriptor_set.pb"), " ", peer_,
      " ", tls::kTestFederation, " 4 ", direct_out);
  std::string output;
  ASSERT_EQ(testing::RunCommand(cmd, &output), 0) << cmd << "\n" << output;
  json direct = json::parse(std::ifstream(direct_out));
  ASSERT_EQ(direct["ce_ids"].size(), 4u) << direct.dump();
  EXPECT_EQ(direct["schema_ids"], json::array({schema_id}))
      << "the direct producer framed with the registry's latest";

  // polderctl tail: everything, read_committed, decoded by the node's schema endpoint; it stops
  // at the end offsets it saw at start.
  const std::string tail_out = dir_ + "/tail.jsonl";
  cmd = absl::StrCat(
      "{ ", polderctl, " tail --bootstrap ", broker().bootstrap_servers(), " --topic ", Topic(),
      " --schema-url https://localhost:", node->port("schema_port"), " --ca-file ",
      fed_->bundle_path(), " --federation ", tls::kTestFederation, " >", tail_out, "; }");
  ASSERT_EQ(testing::RunCommand(cmd, &output), 0) << cmd << "\n" << output;
  EXPECT_THAT(output, HasSubstr("12 record(s) printed, 0 skipped")) << output;
  std::map<std::string, int> seen;
  std::set<std::string> direct_ids(direct["ce_ids"].begin(), direct["ce_ids"].end());
  int from_csv = 0;
  std::ifstream lines(tail_out);
  for (std::string line; std::getline(lines, line);) {
    json r = json::parse(line, nullptr, false);
    ASSERT_TRUE(r.is_object()) << line;
    ++seen[r["ce_id"].get<std::string>()];
    EXPECT_EQ(r["topic"], Topic());
    EXPECT_EQ(r["ce_type"], "polder.datasets.mobility.v1.BikeCount");
    EXPECT_EQ(r["schema_id"], schema_id);
    EXPECT_EQ(r["key"], r["value"]["counterId"]) << line;
    const std::string counter = r["value"]["counterId"].get<std::string>();
    if (absl::StartsWith(counter, "gn-csv-")) {
      ++from_csv;
      EXPECT_EQ(r["value"]["direction"], "DIRECTION_INBOUND") << line;
      EXPECT_DOUBLE_EQ(r["value"]["location"]["latitude"].get<double>(), 53.2113) << line;
    }
    if (direct_ids.count(r["ce_id"].get<std::string>())) {
      EXPECT_TRUE(absl::StartsWith(counter, "gn-direct-")) << line;
    }
  }
  EXPECT_EQ(seen.size(), 12u) << "5 from CSV, 3 from NDJSON, 4 direct";
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(from_csv, 5);
  for (const std::string& id : direct_ids) EXPECT_EQ(seen.count(id), 1u) << id;
}

TEST_F(NodeE2eTest, RefusesUnauthenticatedUnauthorisedAndBadInputWithTheRightStatus) {
  auto node = StartNode();
  const std::string one = WriteBody("one.json", absl::StrCat("[", BikeJson("gn-1", 1), "]"));
  struct Case {
    const char* name;
    std::string dataset, type, body, auth;
    int status;
    const char* message;
  } cases[] = {
      {"no identity", kBikes, "application/json", one, "", 401,
       "client certificate or an Authorization"},
      {"bad token", kBikes, "application/json", one, TokenAuth("not-the-token-000000"), 401,
       "not valid"},
      {"certificate of no ingest identity", kBikes, "application/json", one, CertAuth(stranger_),
       403, "'stranger' is not an ingest identity"},
      {"dataset not granted", "parking.occupancy", "application/json", one, CertAuth(gateway_), 403,
       "may not publish 'parking.occupancy'"},
      {"unknown dataset", "energy.streetlights", "application/json", one, TokenAuth(kToken), 404,
       "is not published by this node"},
      {"unsupported media type", kBikes, "text/csv", one, TokenAuth(kToken), 415,
       "unsupported Content-Type"},
      {"not JSON", kBikes, "application/json", WriteBody("bad.json", "[{\"counterId\": "),
       TokenAuth(kToken), 400, "not valid JSON"},
      {"unknown field", kBikes, "application/json",
       WriteBody("unknown.json",
                 absl::StrCat("[", BikeJson("a", 1), ",{\"counterId\":\"b\",\"speed\":3}]")),
       TokenAuth(kToken), 400, "record 1: speed: Cannot find field"},
      {"wrong type", kBikes, "application/json",
       WriteBody("type.json", absl::StrCat("[{\"counterId\":\"b\",\"eventTime\":\"", Now(),
                                           "\",\"count\":\"lots\"}]")),
       TokenAuth(kToken), 400, "record 0: count: invalid value"},
      {"missing entity id", kBikes, "application/json",
       WriteBody("noid.json", absl::StrCat("[{\"eventTime\":\"", Now(), "\"}]")), TokenAuth(kToken),
       400, "record 0: counter_id: the entity id is missing"},
      {"missing event time", kBikes, "application/json",
       WriteBody("notime.json", "[{\"counterId\":\"x\"}]"), TokenAuth(kToken), 400,
       "record 0: event_time: the event time is missing"},
      {"event time outside the window", kBikes, "application/json",
       WriteBody("old.json", "[{\"counterId\":\"x\",\"eventTime\":\"2020-01-01T00:00:00Z\"}]"),
       TokenAuth(kToken), 400, "outside the accepted window"},
      {"invalid UTF-8", kBikes, "application/x-ndjson",
       WriteBody("utf8.ndjson",
                 absl::StrCat("{\"counterId\":\"gn-\xc3\x28\",\"eventTime\":\"", Now(), "\"}\n")),
       TokenAuth(kToken), 400, "record 0: not valid UTF-8"},
      {"record over max_record_bytes (4KiB)", kBikes, "application/json",
       WriteBody("big.json", absl::StrCat("[{\"counterId\":\"", std::string(4200, 'x'),
                                          "\",\"eventTime\":\"", Now(), "\"}]")),
       TokenAuth(kToken), 400, "over the limit of 4096"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto [status, body] = Curl(*node, c.dataset, c.type, c.body, c.auth);
    EXPECT_EQ(status, c.status) << body;
    EXPECT_THAT(body.dump(), HasSubstr(c.message));
  }
  // A body over the HTTP limit (max_batch_bytes + 64KiB) is refused before it is read.
  std::string huge = WriteBody("huge.json", std::string(400 << 10, ' '));
  EXPECT_EQ(Curl(*node, kBikes, "application/json", huge, TokenAuth(kToken)).first, 413);
  // Nothing of the refused batches is in the topic; a valid batch after them is.
  auto [status, body] = Curl(*node, kBikes, "application/json", one, TokenAuth(kToken));
  ASSERT_EQ(status, 200) << body;
  auto ids = CeIdsInTopic(Topic(), 3, 5);
  EXPECT_EQ(ids.size(), 1u) << "only the valid batch was written";
  // Metrics pass promtool and count the refusals.
  std::string metrics;
  ASSERT_EQ(
      testing::RunCommand(
          absl::StrCat("curl -sS http://127.0.0.1:", node->port("ops_port"), "/metrics > ", dir_,
                       "/metrics.txt && promtool check metrics < ", dir_, "/metrics.txt"),
          &metrics),
      0)
      << metrics;
  std::string text;
  testing::RunCommand(absl::StrCat("cat ", dir_, "/metrics.txt"), &text);
  EXPECT_THAT(text, HasSubstr("polder_ingest_records_total{dataset=\"mobility.bike-counts\","
                              "outcome=\"rejected\",reason=\"invalid\"}"));
  EXPECT_THAT(text, HasSubstr("reason=\"unauthenticated\""));
  std::string ready;
  testing::RunCommand(absl::StrCat("curl -sS http://127.0.0.1:", node->port("ops_port"), "/readyz"),
                      &ready);
  EXPECT_THAT(ready, HasSubstr("\"ready\":true"));
  // SIGTERM drains and exits cleanly.
  int st = node->Signal(SIGTERM);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << node->Log();
}

// grpc.health.v1.Health/Check for the whole server, by hand (no generated stub): the response's
// field 1 is the status, 1 = SERVING, 2 = NOT_SERVING.
int HealthStatus(NodeE2eTest* test, std::unique_ptr<nv1::IngestService::Stub>* unused,
                 std::shared_ptr<grpc::Channel> channel) {
  (void)test;
  (void)unused;
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::Slice empty("", 0);
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(s); });
  grpc::Status s = done.get_future().get();
  if (!s.ok()) return -1;
  std::vector<grpc::Slice> slices;
  response.Dump(&slices);
  std::string bytes;
  for (const auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : (bytes.empty() ? 0 : -2);
}

// A client that publishes `batches` batches of `per_batch` records with idempotency keys,
// retrying each batch until it is acknowledged, against whatever port the node has now.
class RetryingClient {
 public:
  RetryingClient(NodeE2eTest* test,
                 std::function<std::unique_ptr<nv1::IngestService::Stub>(int)> stub_for,
                 std::atomic<int>* port, int batches, int per_batch)
      : stub_for_(std::move(stub_for)), port_(port), batches_(batches), per_batch_(per_batch) {
    (void)test;
    thread_ = std::thread([this] { Run(); });
  }
  ~RetryingClient() { Join(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  int acked() const { return acked_.load(); }
  int failures() const { return failures_.load(); }
  std::set<std::string> expected() const {
    std::lock_guard<std::mutex> l(mu_);
    return expected_;
  }

 private:
  void Run() {
    int current_port = 0;
    std::unique_ptr<nv1::IngestService::Stub> stub;
    for (int b = 0; b < batches_; ++b) {
      nv1::PublishRequest req;
      req.set_dataset(kBikes);
      req.set_idempotency_key(absl::StrCat("batch-", b));
      for (int i = 0; i < per_batch_; ++i) {
        auto* r = req.add_records();
        r->set_json(BikeJson(absl::StrCat("gn-fault-", i % 7), b));
        r->set_ce_id(absl::StrCat("fault-", b, "-", i));
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        for (const auto& r : req.records()) expected_.insert(r.ce_id());
      }
      const absl::Time give_up = absl::Now() + absl::Minutes(3);
      while (absl::Now() < give_up) {
        if (port_->load() != current_port || stub == nullptr) {
          current_port = port_->load();
          stub = stub_for_(current_port);
        }
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
        nv1::PublishResponse resp;
        grpc::Status s = stub->Publish(&ctx, req, &resp);
        if (s.ok()) {
          ++acked_;
          break;
        }
        ++failures_;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
      }
    }
  }

  std::function<std::unique_ptr<nv1::IngestService::Stub>(int)> stub_for_;
  std::atomic<int>* port_;
  const int batches_, per_batch_;
  std::atomic<int> acked_{0}, failures_{0};
  mutable std::mutex mu_;
  std::set<std::string> expected_;
  std::thread thread_;
};

// Every expected ce_id is in the topic exactly once, and nothing else is.
void ExpectExactlyOnce(const std::map<std::string, int>& in_topic,
                       const std::set<std::string>& expected) {
  int duplicates = 0;
  for (const auto& [id, n] : in_topic) duplicates += n > 1 ? 1 : 0;
  EXPECT_EQ(duplicates, 0);
  for (const std::string& id : expected)
    EXPECT_EQ(in_topic.count(id), 1u) << id << " acknowledged but not in the topic";
  EXPECT_EQ(in_topic.size(), expected.size());
}

void WaitForAcks(const RetryingClient& client, int n) {
  const absl::Time deadline = absl::Now() + absl::Minutes(2);
  while (client.acked() < n && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
}

TEST_F(NodeE2eTest, KillNineOfTheNodeWhileAClientStreamsLosesAndDuplicatesNothing) {
  auto node = StartNode();
  std::atomic<int> port{node->grpc_port()};
  constexpr int kBatches = 60, kPerBatch = 10;
  RetryingClient client(
      this, [this](int p) { return Ingest(p); }, &port, kBatches, kPerBatch);
  WaitForAcks(client, 20);
  ASSERT_GE(client.acked(), 20);
  node->Kill();  // SIGKILL mid-stream: a batch may be between produce and commit
  node = StartNode();
  port = node->grpc_port();
  client.Join();
  EXPECT_EQ(client.acked(), kBatches) << node->Log();
  ExpectExactlyOnce(CeIdsInTopic(Topic(), 3, kBatches * kPerBatch), client.expected());
  RecordProperty("client_retries", client.failures());
}

TEST_F(NodeE2eTest, KillNineOfTheBrokerWhileAClientStreamsLosesAndDuplicatesNothing) {
  auto node = StartNode();
  std::atomic<int> port{node->grpc_port()};
  constexpr int kBatches = 60, kPerBatch = 10;
  RetryingClient client(
      this, [this](int p) { return Ingest(p); }, &port, kBatches, kPerBatch);
  WaitForAcks(client, 20);
  ASSERT_GE(client.acked(), 20);
  ASSERT_OK(broker().Kill());
  absl::SleepFor(absl::Seconds(3));
  ASSERT_OK(broker().Restart());
  client.Join();
  EXPECT_EQ(client.acked(), kBatches) << node->Log();
  EXPECT_GT(client.failures(), 0) << "the outage was seen by the client";
  ExpectExactlyOnce(CeIdsInTopic(Topic(), 3, kBatches * kPerBatch), client.expected());
}

TEST_F(NodeE2eTest, ValidatesFromItsCacheWhileTheRegistryIsDownAcrossARestart) {
  auto node = StartNode();
  const std::string one = WriteBody("one.json", absl::StrCat("[", BikeJson("gn-cache", 1), "]"));
  auto [status, body] = Curl(*node, kBikes, "application/json", one, TokenAuth(kToken));
  ASSERT_EQ(status, 200) << body;
  const int bikes_schema = body["schema_id"];
  // A client may name the schema; one that does not define the dataset's message is refused.
  int parking_schema = 0;
  {
    std::string out;
    testing::RunCommand(
        absl::StrCat("curl -sS --cacert ", fed_->bundle_path(),
                     " https://localhost:", node->port("schema_port"),
                     "/subjects/polder.datasets.parking.v1.ParkingOccupancy/versions/latest"),
        &out);
    parking_schema = json::parse(out, nullptr, false).value("id", 0);
    ASSERT_GT(parking_schema, 0) << out;
  }
  std::string cmd = absl::StrCat("-H 'Polder-Schema-Id: ", parking_schema, "' ", TokenAuth(kToken));
  std::tie(status, body) = Curl(*node, kBikes, "application/json", one, cmd);
  EXPECT_EQ(status, 400) << body;
  EXPECT_THAT(body.dump(),
              HasSubstr("is not a registered version of polder.datasets.mobility.v1.BikeCount"));
  cmd = absl::StrCat("-H 'Polder-Schema-Id: ", bikes_schema, "' ", TokenAuth(kToken));
  EXPECT_EQ(Curl(*node, kBikes, "application/json", one, cmd).first, 200);

  // The registry goes away; the node restarts from its persisted cache and keeps ingesting.
  registry_->Kill();
  ASSERT_EQ(node->Signal(SIGTERM), 0) << node->Log();
  node = StartNode();
  std::tie(status, body) = Curl(
      *node, kBikes, "application/json",
      WriteBody("two.json", absl::StrCat("[", BikeJson("gn-cache-2", 2), "]")), TokenAuth(kToken));
  EXPECT_EQ(status, 200) << body << node->Log();
  EXPECT_EQ(body["schema_id"], bikes_schema);
  std::string schema;
  testing::RunCommand(absl::StrCat("curl -sS --cacert ", fed_->bundle_path(), " https://localhost:",
                                   node->port("schema_port"), "/schemas/ids/", bikes_schema),
                      &schema);
  EXPECT_THAT(schema, HasSubstr("BikeCount")) << "the schema endpoint serves from the cache";
  std::string ready;
  testing::RunCommand(absl::StrCat("curl -sS http://127.0.0.1:", node->port("ops_port"), "/readyz"),
                      &ready);
  EXPECT_THAT(ready, HasSubstr("\"ready\":true")) << "known schemas keep the node ready";
}

TEST_F(NodeE2eTest, ABrokerOutageTurnsHealthAndReadinessOffAndOverloadIsRefused) {
  auto node = StartNode();
  auto channel =
      grpc::CreateChannel(absl::StrCat("localhost:", node->grpc_port()),
                          *tls::MakeChannelCredentials(gateway_, fed_->Checker(), "groningen"));
  EXPECT_EQ(HealthStatus(this, nullptr, channel), 1) << "SERVING";
  ASSERT_OK(broker().Pause());
  // Readiness follows within a few probe periods (2 s each, bounded by the 3 s request timeout).
  std::string ready;
  const absl::Time deadline = absl::Now() + absl::Seconds(3 * (2 + 3) * 3);
  while (absl::Now() < deadline) {
    testing::RunCommand(absl::StrCat("curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:",
                                     node->port("ops_port"), "/readyz"),
                        &ready);
    if (ready == "503") break;
    absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_EQ(ready, "503");
  EXPECT_EQ(HealthStatus(this, nullptr, channel), 2) << "NOT_SERVING while Kafka does not answer";
  // Requests wait for Kafka up to publish_timeout while holding their bytes: with 512 KiB in
  // flight allowed, the sixth ~94 KiB request in a row is refused at once.
  std::string records;
  for (int i = 0; i < 60; ++i) {
    records += absl::StrCat(i == 0 ? "" : "\n", R"({"counterId":")",
                            std::string(1500, 'a' + i % 26), R"(","eventTime":")", Now(), R"("})");
  }
  const std::string big = WriteBody("big.ndjson", records);
  std::vector<std::thread> senders;
  std::mutex mu;
  std::vector<int> statuses;
  for (int i = 0; i < 8; ++i) {
    senders.emplace_back([&, i] {
      absl::SleepFor(absl::Milliseconds(200 * i));
      int st = Curl(*node, kBikes, "application/x-ndjson", big, TokenAuth(kToken)).first;
      std::lock_guard<std::mutex> l(mu);
      statuses.push_back(st);
    });
  }
  for (auto& t : senders) t.join();
  EXPECT_THAT(statuses, ::testing::Contains(429));
  EXPECT_THAT(statuses, ::testing::Contains(503))
      << "the admitted ones time out against the paused broker";
  ASSERT_OK(broker().Resume());
  const absl::Time back = absl::Now() + absl::Seconds(60);
  while (absl::Now() < back && HealthStatus(this, nullptr, channel) != 1)
    absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(HealthStatus(this, nullptr, channel), 1) << "SERVING again";
}

}  // namespace
}  // namespace polder
