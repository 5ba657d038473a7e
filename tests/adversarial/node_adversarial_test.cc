// Attacks on a running polder-node (ARCHITECTURE §security, docs/security.md): what an
// unauthenticated client, a hostile peer with a valid identity and a careless operator can do.
// Every test here failed on the node before its fix; the comment above each says how.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_consumer.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "proto/polder/node/v1/replica.grpc.pb.h"
#include "tests/node/federation_fixture.h"

namespace polder {
namespace node_testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class NodeAdversarialTest : public FederationFixture {
 protected:
  // Alive: still running 200 ms from now (a crashed node has exited).
  static bool Alive(ServiceProcess& node) {
    return node.WaitForExit(absl::Milliseconds(200)) == -1;
  }

  // Server-authenticated TLS without a client certificate or token.
  std::shared_ptr<grpc::ChannelCredentials> AnonymousCredentials() {
    grpc::SslCredentialsOptions o;
    std::ifstream in(fed_->bundle_path());
    std::stringstream pem;
    pem << in.rdbuf();
    o.pem_root_certs = pem.str();
    return grpc::SslCredentials(o);
  }

  std::string Statusz(const ServiceProcess& node) {
    std::string out;
    testing::RunCommand(
        absl::StrCat("curl -sS http://127.0.0.1:", node.port("ops_port"), "/statusz"), &out);
    return out;
  }

  // A valid bike count through HTTPS with the parking vendor's token: the node still serves.
  int ValidPublish(const ServiceProcess& node, const std::string& tag) {
    auto [status, body] =
        Curl(node, kBikes, "application/json",
             WriteBody(tag + ".json", absl::StrCat("[", BikeJson("gn-counter-1", 3), "]")),
             TokenAuth(kToken));
    return status;
  }
};

// Finding 1: HTTPS ingest parsed and re-serialised the body before authenticating; nlohmann's
// recursive dump overflowed the stack on 100,000 nested arrays, so one unauthenticated request
// killed the node (before the fix: curl got no answer and Alive() was false).
TEST_F(NodeAdversarialTest, DeepBodiesNeitherCrashNorReachAParserWithoutCredentials) {
  auto node = StartGroningen();
  std::string deep = "[{\"a\":";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}]";
  const std::string file = WriteBody("deep.json", deep);
  // No credentials: refused on the headers, the body never read.
  auto [status, body] = Curl(*node, kBikes, "application/json", file, "");
  EXPECT_EQ(status, 401) << body;
  EXPECT_THAT(body.dump(), HasSubstr("Bearer"));
  ASSERT_TRUE(Alive(*node)) << node->Log();
  // A wrong token: the same.
  std::tie(status, body) =
      Curl(*node, kBikes, "application/json", file, TokenAuth("not-the-token-0123456789"));
  EXPECT_EQ(status, 401) << body;
  // Authenticated: the depth bound refuses it before any recursive code sees it.
  std::tie(status, body) = Curl(*node, kBikes, "application/json", file, TokenAuth(kToken));
  EXPECT_EQ(status, 400) << body;
  EXPECT_THAT(body.dump(), HasSubstr("nests deeper than 64 levels"));
  // Deep records inside a valid array, and as NDJSON: refused by the validator's bound.
  std::string deep_record =
      absl::StrCat("[{\"counterId\":", std::string(5000, '['), std::string(5000, ']'), "}]");
  std::tie(status, body) = Curl(*node, kBikes, "application/json",
                                WriteBody("deep2.json", deep_record), TokenAuth(kToken));
  EXPECT_EQ(status, 400) << body;
  std::tie(status, body) =
      Curl(*node, kBikes, "application/x-ndjson",
           WriteBody("deep.ndjson", deep_record.substr(1, deep_record.size() - 2) + "\n"),
           TokenAuth(kToken));
  EXPECT_EQ(status, 400) << body;
  EXPECT_THAT(body.dump(), HasSubstr("nests deeper"));
  ASSERT_TRUE(Alive(*node)) << node->Log();
  EXPECT_EQ(ValidPublish(*node, "after-deep"), 200);
}

// Finding 0 (identities): a gateway certificate whose name is a token identity's received that
// identity's grants (before the fix: the publish below succeeded).
TEST_F(NodeAdversarialTest, ACertificateNamedLikeATokenIdentityGetsNothing) {
  auto node = StartGroningen();
  tls::TlsFiles impostor =
      ingest_ca_->WriteIdentity("parking-vendor", ingest_ca_->Issue("parking-vendor"));
  impostor.trust_bundle_path = fed_->bundle_path();
  auto creds = tls::MakeChannelCredentials(impostor, fed_->Checker(), "groningen");
  ASSERT_OK(creds.status());
  auto stub = nv1::IngestService::NewStub(
      grpc::CreateChannel(absl::StrCat("localhost:", node->grpc_port()), *creds));
  nv1::PublishRequest req;
  req.set_dataset("parking.occupancy");
  req.add_records()->set_json(BikeJson("x", 1));
  grpc::ClientContext ctx;
  nv1::PublishResponse resp;
  grpc::Status s = stub->Publish(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("authenticates by bearer token"));
  // Over HTTPS the same, refused on the headers.
  auto [status, body] = Curl(*node, "parking.occupancy", "application/json",
                             WriteBody("impostor.json", "[]"), CertAuth(impostor));
  EXPECT_EQ(status, 403) << body;
}

// Finding 7: deleting or emptying a token file did not revoke the token (before the fix: the
// publish after the delete answered 200).
TEST_F(NodeAdversarialTest, DeletingOrBreakingATokenFileRevokesIt) {
  auto node = StartGroningen();
  ASSERT_EQ(ValidPublish(*node, "before"), 200);
  const std::string token_valid = "polder_node_ingest_token_valid{identity=\"parking-vendor\"}";
  EXPECT_EQ(Metric(*node, token_valid), 1);
  std::filesystem::remove(token_file_);
  EXPECT_EQ(ValidPublish(*node, "deleted"), 401);
  EXPECT_EQ(Metric(*node, token_valid), 0);
  EXPECT_THAT(Statusz(*node), HasSubstr("is missing"));
  EXPECT_THAT(node->Log(), HasSubstr("ingest token revoked"));
  // Restored: valid again; then emptied: revoked again.
  std::ofstream(token_file_) << kToken << "\n";
  std::filesystem::permissions(
      token_file_, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(ValidPublish(*node, "restored"), 200);
  std::ofstream(token_file_) << "\n";
  EXPECT_EQ(ValidPublish(*node, "emptied"), 401);
  EXPECT_THAT(Statusz(*node), HasSubstr("is empty"));
  // Without any request, the periodic check shows a revocation too.
  std::ofstream(token_file_) << kToken << "\n";
  EXPECT_EQ(ValidPublish(*node, "restored-again"), 200);
  std::ofstream(token_file_) << "short-token\n";
  const absl::Time until =
      absl::Now() + absl::Seconds(3 * 2 * 3);  // the 2 s check, 3x slack, 3 periods
  while (Metric(*node, token_valid) != 0 && absl::Now() < until)
    absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(Metric(*node, token_valid), 0);
  EXPECT_THAT(Statusz(*node), HasSubstr("shorter than 16"));
}

// Finding 5: a city registered, under its own prefix, a schema declaring the standard
// BikeCount message with an extra field; ingest took it (it matched datasets by message name)
// and the provider served its records under a contract for version 1 (before the fix: the
// registry answered 200 and so did the ingest of a record naming that schema).
TEST_F(NodeAdversarialTest, ARogueSchemaImpersonatingAStandardDatasetIsRefused) {
  auto national = Rest(*registry_, "national");
  auto groningen = Rest(*registry_, "groningen");
  int st = 0;
  json latest =
      Get(*national, "/subjects/polder.datasets.mobility.v1.BikeCount/versions/latest", &st);
  ASSERT_EQ(st, 200) << latest;
  std::string text = latest["schema"].get<std::string>();
  const size_t at = text.find("message BikeCount {");
  ASSERT_NE(at, std::string::npos) << text;
  text.insert(at + std::string("message BikeCount {").size(), "\n  string rogue = 999;");
  json rogue = {{"schemaType", "PROTOBUF"}, {"schema", text}};
  if (latest.contains("references")) rogue["references"] = latest["references"];
  // The registry refuses it under the city's prefix: the package is not the city's.
  json r = Post(*groningen, "/subjects/polder.cities.groningen.rogue-bikes/versions", rogue, &st);
  EXPECT_EQ(st, 403) << r;
  EXPECT_THAT(Msg(r), HasSubstr("outside the writer's namespace 'polder.cities.groningen'"));
  // Registered by the operator under another subject, it is still not the dataset's schema.
  r = Post(*national, "/subjects/polder.datasets.mobility.v1.BikeCountDraft/versions", rogue, &st);
  ASSERT_EQ(st, 200) << r;
  const int rogue_id = r["id"];
  auto node = StartGroningen();
  auto [status, body] =
      Curl(*node, kBikes, "application/json",
           WriteBody("rogue.json", absl::StrCat("[", BikeJson("gn-rogue", 1), "]")),
           absl::StrCat("-H 'Polder-Schema-Id: ", rogue_id, "' ", TokenAuth(kToken)));
  EXPECT_EQ(status, 400) << body;
  EXPECT_THAT(body.dump(),
              HasSubstr("is not a registered version of polder.datasets.mobility.v1.BikeCount"));
}

// Finding 8: the node's schema endpoint (no client certificate) fetched any id or subject from
// the registry with the node's identity and cached it — other cities' private subjects too
// (before the fix: 200 for the private subject below).
TEST_F(NodeAdversarialTest, TheSchemaEndpointServesOnlyThisNodesSchemas) {
  auto amersfoort = Rest(*registry_, "amersfoort");
  int st = 0;
  json r = Post(*amersfoort, "/subjects/polder.cities.amersfoort.grid.v1.Feeder/versions",
                Proto("syntax = \"proto3\"; package polder.cities.amersfoort.grid.v1; message "
                      "Feeder { string id = 1; }"),
                &st);
  ASSERT_EQ(st, 200) << r;
  const int private_id = r["id"];
  auto node = StartGroningen();
  const double cached = Metric(*node, "polder_schema_cache_schemas");
  auto get = [&](const std::string& path, std::string* out) {
    testing::RunCommand(
        absl::StrCat("curl -sS -o ", dir_, "/schema.out -w '%{http_code}' --cacert ",
                     fed_->bundle_path(), " https://localhost:", node->port("schema_port"), path),
        out);
    std::ifstream in(dir_ + "/schema.out");
    std::stringstream body;
    body << in.rdbuf();
    return body.str();
  };
  std::string code;
  std::string body = get(absl::StrCat("/schemas/ids/", private_id), &code);
  EXPECT_EQ(code, "404") << body;
  body = get("/subjects/polder.cities.amersfoort.grid.v1.Feeder/versions/latest", &code);
  EXPECT_EQ(code, "404") << body;
  body = get("/schemas/ids/999999", &code);
  EXPECT_EQ(code, "404") << body;
  EXPECT_EQ(Metric(*node, "polder_schema_cache_schemas"), cached)
      << "nothing was fetched or cached for a client";
  // This node's own datasets (and what they reference) are served.
  body = get("/subjects/polder.datasets.mobility.v1.BikeCount/versions/latest", &code);
  EXPECT_EQ(code, "200") << body;
  json own = json::parse(body, nullptr, false);
  body = get(absl::StrCat("/schemas/ids/", own.value("id", 0)), &code);
  EXPECT_EQ(code, "200") << body;
  for (const json& ref : own.value("references", json::array())) {
    body = get(absl::StrCat("/subjects/", ref["subject"].get<std::string>(), "/versions/",
                            ref["version"].get<int>()),
               &code);
    EXPECT_EQ(code, "200") << ref << body;
  }
}

int Threads(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "Threads:")) return std::atoi(line.substr(8).c_str());
  }
  return -1;
}

// Finding 6: PublishStream authenticated on its first message, so a silent stream without
// credentials held a server thread (before the fix: +300 threads for the 300 streams below).
// Now gRPC's auth filter refuses such calls before they reach a handler — health included.
TEST_F(NodeAdversarialTest, SilentUnauthenticatedStreamsHoldNoThreads) {
  auto node = StartGroningen();
  const int before = Threads(node->pid());
  auto anonymous = Ingest(node->grpc_port(), /*certificate=*/false);
  constexpr int kStreams = 300;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<nv1::PublishStreamResponse> responses(kStreams);
  std::vector<std::unique_ptr<grpc::ClientWriter<nv1::PublishRequest>>> streams;
  for (int i = 0; i < kStreams; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    streams.push_back(anonymous->PublishStream(contexts.back().get(), &responses[i]));
  }
  absl::SleepFor(absl::Seconds(2));  // let the server take them (a handler would block in Read)
  const int during = Threads(node->pid());
  EXPECT_LT(during - before, 30) << "threads before " << before << ", with " << kStreams
                                 << " silent streams " << during;
  int refused = 0;
  for (auto& w : streams) {
    w->WritesDone();
    if (w->Finish().error_code() == grpc::StatusCode::UNAUTHENTICATED) ++refused;
  }
  EXPECT_EQ(refused, kStreams);
  // The health service sits behind the same filter.
  grpc::GenericStub health(
      grpc::CreateChannel(absl::StrCat("localhost:", node->grpc_port()), AnonymousCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::Slice empty("", 0);
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  health.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                   [&done](grpc::Status st) { done.set_value(st); });
  EXPECT_EQ(done.get_future().get().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(Alive(*node));
  EXPECT_EQ(ValidPublish(*node, "after-streams"), 200);
}

// One ingest identity holds at most 16 PublishStream calls at once: a gateway (or a stolen
// token) cannot take every thread of the ingest server.
TEST_F(NodeAdversarialTest, OneIdentityHoldsABoundedNumberOfStreams) {
  auto node = StartGroningen();
  // One attempt on a fresh channel: 16 open streams, then the 17th; the 17th's status. A
  // transport failure of the whole connection (UNAVAILABLE, seen once in CI as "Broken pipe" on
  // every stream at once, with the node alive) is not what this test is about: it is reported and
  // the attempt repeated, at most three times; the limit itself is asserted on every attempt that
  // reaches the server.
  auto attempt = [&]() -> grpc::Status {
    auto stub = Ingest(node->grpc_port());
    std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
    std::vector<nv1::PublishStreamResponse> responses(17);
    std::vector<std::unique_ptr<grpc::ClientWriter<nv1::PublishRequest>>> streams;
    for (int i = 0; i < 16; ++i) {
      contexts.push_back(std::make_unique<grpc::ClientContext>());
      contexts.back()->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
      streams.push_back(stub->PublishStream(contexts.back().get(), &responses[i]));
    }
    absl::SleepFor(absl::Seconds(1));  // the server holds all 16
    grpc::ClientContext extra;
    extra.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    auto seventeenth = stub->PublishStream(&extra, &responses[16]);
    seventeenth->WritesDone();
    grpc::Status s = seventeenth->Finish();
    std::vector<grpc::Status> held;
    for (auto& w : streams) {
      w->WritesDone();
      held.push_back(w->Finish());
    }
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE) return s;
    for (const grpc::Status& h : held) EXPECT_TRUE(h.ok()) << h.error_message();
    // Released: a new stream is taken again.
    grpc::ClientContext again;
    again.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    nv1::PublishStreamResponse resp;
    auto w = stub->PublishStream(&again, &resp);
    w->WritesDone();
    grpc::Status after = w->Finish();
    EXPECT_TRUE(after.ok()) << after.error_message();
    return s;
  };
  grpc::Status s = attempt();
  for (int retry = 0; retry < 2 && s.error_code() == grpc::StatusCode::UNAVAILABLE; ++retry) {
    ASSERT_TRUE(Alive(*node)) << "the node died; its log:\n" << node->Log();
    std::cerr << "connection failed (" << s.error_message() << "); node log so far:\n"
              << node->Log() << "\nretrying\n";
    s = attempt();
  }
  ASSERT_TRUE(Alive(*node)) << "the node died; its log:\n" << node->Log();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("16 PublishStream calls open already"));
}

// The internal port (ADR 0021 §5) serves only this node's own replicas: another organisation's
// valid federation identity, a client without a certificate and plaintext are refused before
// any request is parsed, and a batch "forwarded" by them is never written (a forwarded batch is
// trusted as validated, so this is what stands between a peer and the city's topics). Slot and
// receipt calls likewise. The node's own identity — another replica — is served (the control).
TEST_F(NodeAdversarialTest, TheInternalPortServesOnlyThisNodesReplicas) {
  WriteContract("gr-am-bikes-1");
  auto node = StartGroningen();
  const int port = node->port("internal_port");
  ASSERT_GT(port, 0) << node->Log();
  auto stub = [&](std::shared_ptr<grpc::ChannelCredentials> creds) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return polder::node::v1::Replica::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("localhost:", port), creds, args));
  };
  auto deadline = [](grpc::ClientContext* ctx) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  };
  polder::node::v1::ForwardPublishRequest batch;
  batch.set_key_partition(-1);
  batch.set_identity("gateway-1");
  batch.set_dataset_id(kBikes);
  polder::node::v1::ForwardedRecord* r = batch.add_records();
  r->set_topic(Topic());
  r->set_partition(0);
  r->set_value("not even a framed record");
  polder::node::v1::ForwardedHeader* h = r->add_headers();
  h->set_key("ce_id");
  h->set_value("rogue-1");
  polder::node::v1::AdmitSlotRequest slot;
  slot.set_key_partition(0);
  slot.set_replica("rogue");
  slot.mutable_slot()->set_peer("amersfoort");
  slot.mutable_slot()->set_kind("stream");
  slot.mutable_slot()->set_ticket("rogue-1");
  slot.set_limit(1000);
  auto amersfoort = tls::MakeChannelCredentials(files_["amersfoort"], fed_->Checker(), "groningen");
  ASSERT_OK(amersfoort.status());
  // The topic's end offsets before the attacks (earlier tests' records share it).
  kafka::ConsumerOptions co;
  co.client = ClientOptions();
  co.client.bootstrap_servers = broker().bootstrap_servers();
  auto probe = kafka::KafkaConsumer::Create(co);
  ASSERT_OK(probe.status());
  auto ends = [&] {
    std::vector<int64_t> out;
    for (int p = 0; p < kPartitions; ++p) {
      auto marks = (*probe)->QueryWatermarks(Topic(), p, absl::Seconds(5));
      EXPECT_OK(marks.status());
      out.push_back(marks.ok() ? marks->second : -1);
    }
    return out;
  };
  const std::vector<int64_t> ends_before = ends();
  const std::vector<std::pair<std::string, std::shared_ptr<grpc::ChannelCredentials>>> refused = {
      {"another organisation's identity", *amersfoort},
      {"no client certificate", AnonymousCredentials()},
      {"plaintext", grpc::InsecureChannelCredentials()},
  };
  for (const auto& [who, creds] : refused) {
    auto s = stub(creds);
    grpc::ClientContext c1, c2, c3;
    deadline(&c1);
    deadline(&c2);
    deadline(&c3);
    polder::node::v1::ForwardPublishResponse pr;
    const grpc::Status p = s->ForwardPublish(&c1, batch, &pr);
    EXPECT_FALSE(p.ok()) << who << " forwarded a batch";
    EXPECT_NE(p.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << who << ": the request reached the handler (" << p.error_message() << ")";
    polder::node::v1::SlotResponse sr;
    EXPECT_FALSE(s->AdmitSlot(&c2, slot, &sr).ok()) << who << " took a peer slot";
    polder::node::v1::ForwardReceiptRequest rr;
    rr.set_peer_id("amersfoort");
    rr.mutable_request()->mutable_receipt()->set_stream_id("stream-x-00");
    federation::v1::ExchangeReceiptsResponse er;
    const grpc::Status e = s->ForwardReceipt(&c3, rr, &er);
    EXPECT_FALSE(e.ok()) << who;
    EXPECT_NE(e.error_code(), grpc::StatusCode::NOT_FOUND) << who << ": reached the handler";
  }
  // The control: the node's own identity (another replica) is served — the handler answers.
  auto own = tls::MakeChannelCredentials(files_["groningen"], fed_->Checker(), "groningen");
  ASSERT_OK(own.status());
  {
    grpc::ClientContext ctx;
    deadline(&ctx);
    polder::node::v1::ForwardReceiptRequest rr;
    rr.set_peer_id("amersfoort");
    rr.mutable_request()->mutable_receipt()->set_stream_id("stream-x-00");
    federation::v1::ExchangeReceiptsResponse er;
    const grpc::Status e = stub(*own)->ForwardReceipt(&ctx, rr, &er);
    EXPECT_EQ(e.error_code(), grpc::StatusCode::NOT_FOUND) << e.error_message();
  }
  // Malformed slots are refused even from a replica, naming what is wrong.
  for (const auto& [kind, limit] :
       std::vector<std::pair<std::string, int>>{{"x", 8}, {"stream", 0}}) {
    grpc::ClientContext ctx;
    deadline(&ctx);
    polder::node::v1::AdmitSlotRequest bad = slot;
    bad.mutable_slot()->set_kind(kind);
    bad.set_limit(limit);
    polder::node::v1::SlotResponse sr;
    const grpc::Status e = stub(*own)->AdmitSlot(&ctx, bad, &sr);
    EXPECT_EQ(e.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << kind << " " << limit;
    EXPECT_THAT(e.error_message(), ::testing::AnyOf(HasSubstr("kind"), HasSubstr("limit")));
  }
  ASSERT_TRUE(Alive(*node)) << node->Log();
  // Nothing the refused callers sent was written: not a record, not a transaction marker.
  EXPECT_EQ(ends(), ends_before);
}

// With the replicas' own CA (on Kubernetes a per-release cert-manager CA Issuer; ADR 0022 §4),
// the internal port admits only a certificate from that CA naming the replicas' identity: the
// node's own federation identity, the replica identity from another CA (another release), a
// certificate from the right CA with another name, none and plaintext are refused before any
// request is parsed; the replica certificate is served (the control).
TEST_F(NodeAdversarialTest, TheInternalPortWithItsOwnCaAdmitsOnlyThatCasReplicas) {
  tls::TestFederation ours(dir_ + "/replicas-ca", "groningen-replicas");
  tls::TestFederation other(dir_ + "/other-release-ca", "groningen-replicas");
  tls::TlsFiles replica = ours.WriteIdentity("replica", ours.Issue("replica"));
  tls::TlsFiles intruder = ours.WriteIdentity("intruder", ours.Issue("intruder"));
  tls::TlsFiles foreign = other.WriteIdentity("replica", other.Issue("replica"));
  replicas_yaml_ =
      absl::StrCat("replicas:\n  internal_address: 127.0.0.1:0\n  cert_file: ", replica.cert_path,
                   "\n  key_file: ", replica.key_path, "\n  ca_file: ", ours.bundle_path(), "\n");
  auto node = StartGroningen();
  const int port = node->port("internal_port");
  ASSERT_GT(port, 0) << node->Log();
  auto receipt = [&](std::shared_ptr<grpc::ChannelCredentials> creds) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto stub = polder::node::v1::Replica::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("localhost:", port), creds, args));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    polder::node::v1::ForwardReceiptRequest rr;
    rr.set_peer_id("amersfoort");
    rr.mutable_request()->mutable_receipt()->set_stream_id("stream-x-00");
    federation::v1::ExchangeReceiptsResponse er;
    return stub->ForwardReceipt(&ctx, rr, &er);
  };
  // The client side checks the server as a replica would: the replicas' CA, the name "replica".
  tls::IdentityChecker::Options co;
  co.federation = "groningen-replicas";
  co.trust_bundle_path = ours.bundle_path();
  co.require_directory = false;
  auto made = tls::IdentityChecker::Create(co);
  ASSERT_OK(made.status());
  std::shared_ptr<const tls::IdentityChecker> checker = std::move(*made);
  auto as = [&](const tls::TlsFiles& files) {
    tls::TlsFiles f = files;
    f.trust_bundle_path = ours.bundle_path();
    auto c = tls::MakeChannelCredentials(f, checker, "replica");
    EXPECT_OK(c.status());
    return *c;
  };
  tls::TlsFiles federation_identity = files_["groningen"];
  const std::vector<std::pair<std::string, std::shared_ptr<grpc::ChannelCredentials>>> refused = {
      {"the node's federation identity", as(federation_identity)},
      {"the replica name from another release's CA", as(foreign)},
      {"another name from the replicas' CA", as(intruder)},
      {"no client certificate", AnonymousCredentials()},
      {"plaintext", grpc::InsecureChannelCredentials()},
  };
  for (const auto& [who, creds] : refused) {
    const grpc::Status e = receipt(creds);
    EXPECT_FALSE(e.ok()) << who;
    EXPECT_NE(e.error_code(), grpc::StatusCode::NOT_FOUND) << who << ": reached the handler";
  }
  const grpc::Status served = receipt(as(replica));
  EXPECT_EQ(served.error_code(), grpc::StatusCode::NOT_FOUND) << served.error_message();
  ASSERT_TRUE(Alive(*node)) << node->Log();
}

// Server reflection is served on the ingest port to callers that pass its
// authentication (a gateway certificate or a token), not to anonymous callers, and not on the
// federation port. A standard client, buf curl, is the probe.
TEST_F(NodeAdversarialTest, ReflectionOnlyOnTheIngestPortAndOnlyAfterAuthentication) {
  auto node = StartGroningen();
  const std::string buf =
      absl::StrCat(testing::NpmHome(), "/node_modules/.bin/buf curl --protocol grpc --cacert ",
                   fed_->bundle_path(), " ");
  const std::string ingest = absl::StrCat("https://localhost:", node->grpc_port());
  std::string out;
  ASSERT_EQ(
      testing::RunCommand(absl::StrCat(buf, "--cert ", gateway_.cert_path, " --key ",
                                       gateway_.key_path, " --list-services ", ingest, " 2>&1"),
                          &out),
      0)
      << out;
  EXPECT_THAT(out, HasSubstr("polder.node.v1.IngestService"));
  EXPECT_THAT(out, HasSubstr("grpc.health.v1.Health"));
  EXPECT_THAT(out, Not(HasSubstr("polder.federation.v1"))) << "only this port's services";
  // buf sends -H headers on the call only; --reflect-header '*' sends them on reflection too.
  ASSERT_EQ(testing::RunCommand(
                absl::StrCat(buf, "-H 'Authorization: Bearer ", kToken, "' --reflect-header '*' ",
                             ingest, "/grpc.health.v1.Health/Check 2>&1"),
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("\"SERVING\""));
  EXPECT_NE(testing::RunCommand(absl::StrCat(buf, "--list-services ", ingest, " 2>&1"), &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("not authenticated")) << out;
  EXPECT_NE(
      testing::RunCommand(
          absl::StrCat(
              buf, "-H 'Authorization: Bearer not-a-token' --reflect-header '*' --list-services ",
              ingest, " 2>&1"),
          &out),
      0)
      << out;
  // The federation port: a listed peer with a valid certificate gets no reflection.
  const tls::TlsFiles& am = files_["amersfoort"];
  EXPECT_NE(testing::RunCommand(absl::StrCat(buf, "--cert ", am.cert_path, " --key ", am.key_path,
                                             " --list-services ", "https://localhost:",
                                             node->port("federation_port"), " 2>&1"),
                                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("nimplemented")) << out;
}

// Reflection streams are calls like any other: each holds one of the ingest server's call
// threads, so an authenticated caller that opens 300 and never speaks is stopped by the thread
// quota (256) instead of taking a thread each; the node keeps serving and frees them all.
TEST_F(NodeAdversarialTest, SilentReflectionStreamsAreBoundedByTheThreadQuota) {
  auto node = StartGroningen();
  const int before = Threads(node->pid());
  constexpr int kChannels = 3, kPerChannel = 100;
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::GenericClientAsyncReaderWriter>> calls;
  for (int c = 0; c < kChannels; ++c) {
    auto creds = tls::MakeChannelCredentials(gateway_, fed_->Checker(), "groningen");
    ASSERT_OK(creds.status());
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    stubs.push_back(std::make_unique<grpc::GenericStub>(
        grpc::CreateCustomChannel(absl::StrCat("localhost:", node->grpc_port()), *creds, args)));
    for (int i = 0; i < kPerChannel; ++i) {
      contexts.push_back(std::make_unique<grpc::ClientContext>());
      contexts.back()->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
      calls.push_back(stubs.back()->PrepareCall(
          contexts.back().get(), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
          &cq));
      calls.back()->StartCall(reinterpret_cast<void*>(calls.size()));
    }
  }
  const int n = static_cast<int>(calls.size());
  auto drain = [&cq](int events) {
    for (int i = 0; i < events; ++i) {
      void* tag = nullptr;
      bool ok = false;
      ASSERT_TRUE(cq.Next(&tag, &ok));
    }
  };
  drain(n);                          // every call started
  absl::SleepFor(absl::Seconds(3));  // the server takes what it can
  const int during = Threads(node->pid());
  EXPECT_LT(during - before, 256 + 40)
      << "threads before " << before << ", with " << n << " silent streams " << during;
  std::vector<grpc::Status> statuses(n);
  for (int i = 0; i < n; ++i) {
    calls[i]->WritesDone(reinterpret_cast<void*>(1000 + i));
    calls[i]->Finish(&statuses[i], reinterpret_cast<void*>(2000 + i));
  }
  drain(2 * n);
  int ok = 0, exhausted = 0;
  for (const grpc::Status& s : statuses) {
    if (s.ok()) ++ok;
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++exhausted;
  }
  EXPECT_GT(exhausted, 0) << ok << " served";
  EXPECT_EQ(ok + exhausted, n) << "every stream was served or refused for the quota";
  ASSERT_TRUE(Alive(*node));
  EXPECT_EQ(ValidPublish(*node, "after-reflection-streams"), 200);
}

// A provider with a valid identity (amersfoort) that misbehaves on its Subscribe streams: it
// claims a huge window and sends without waiting for receipts, or names a partition the mirror
// does not have.
class HostileProvider final : public fv1::FederationService::Service {
 public:
  enum class Mode { kIgnoreFlowControl, kBadPartition };
  explicit HostileProvider(Mode mode) : mode_(mode) {}

  grpc::Status Subscribe(grpc::ServerContext* context, const fv1::SubscribeRequest*,
                         grpc::ServerWriter<fv1::SubscribeResponse>* writer) override {
    fv1::SubscribeResponse opened;
    opened.mutable_opened()->set_stream_id("stream-hostile");
    opened.mutable_opened()->set_protocol_version(fv1::PROTOCOL_VERSION_1);
    opened.mutable_opened()->set_epoch("e1");
    opened.mutable_opened()->set_partitions(1);
    opened.mutable_opened()->set_max_unacknowledged_bytes(int64_t{1} << 40);  // "send all you like"
    if (!writer->Write(opened)) return grpc::Status::OK;
    int64_t offset = sent_offset_;
    while (!context->IsCancelled() && sent_bytes_ < kMaxBytes) {
      fv1::SubscribeResponse m;
      fv1::RecordBatch* b = m.mutable_batch();
      b->set_partition(mode_ == Mode::kBadPartition ? 7 : 0);
      for (int i = 0; i < 64; ++i) {
        fv1::Record* r = b->add_records();
        r->set_key(absl::StrCat("k", offset));
        r->set_value(std::string(16 << 10, 'v'));
        r->set_source_offset(offset++);
        r->set_timestamp_ms(absl::ToUnixMillis(absl::Now()));
      }
      b->set_next_offset(offset);
      if (!writer->Write(m)) break;
      sent_bytes_ += 64 * (16 << 10);
    }
    sent_offset_ = offset;
    ended_ = true;
    return grpc::Status::OK;
  }

  static constexpr int64_t kMaxBytes = int64_t{160} << 20;
  std::atomic<int64_t> sent_bytes_{0};
  std::atomic<bool> ended_{false};

 private:
  const Mode mode_;
  int64_t sent_offset_ = 0;
};

// Finding 9: the subscriber queued whatever its provider sent (before the fix: the hostile
// provider below sent all 160 MiB, unacknowledged, into the node), and took a batch's
// partition on trust. Now a stream that runs more than two windows ahead of its receipts ends
// with RESOURCE_EXHAUSTED, a partition outside the mirror with INVALID_ARGUMENT.
TEST_F(NodeAdversarialTest, AHostileProviderCannotFloodTheSubscriber) {
  for (HostileProvider::Mode mode :
       {HostileProvider::Mode::kIgnoreFlowControl, HostileProvider::Mode::kBadPartition}) {
    const bool flow = mode == HostileProvider::Mode::kIgnoreFlowControl;
    SCOPED_TRACE(flow ? "ignores flow control" : "bad partition");
    HostileProvider provider(mode);
    auto creds = tls::MakeServerCredentials(files_["amersfoort"], fed_->Checker());
    ASSERT_OK(creds.status());
    int port = 0;
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", *creds, &port);
    b.RegisterService(&provider);
    b.SetMaxSendMessageSize(8 << 20);
    std::unique_ptr<grpc::Server> server = b.BuildAndStart();
    ASSERT_NE(server, nullptr);
    auto node = StartGroningen(
        absl::StrCat("  subscriptions:\n    - {provider: amersfoort, endpoint: \"localhost:", port,
                     "\", dataset: air.quality, contract: am-gr-air-1, partitions: 1, "
                     "replication_factor: 1}\n"));
    const std::string expected =
        flow ? "the provider ignored flow control" : "a batch of partition 7";
    const absl::Time until = absl::Now() + absl::Seconds(60);
    while (!absl::StrContains(Statusz(*node), expected) && !provider.ended_ &&
           absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_THAT(Statusz(*node), HasSubstr(expected));
    EXPECT_LT(provider.sent_bytes_.load(), int64_t{64} << 20)
        << "the node read far beyond its window";
    EXPECT_LT(RssKiB(node->pid()) / 1024, 512);
    ASSERT_TRUE(Alive(*node));
    server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }
}

// Finding 4: GetAuditEntries scanned the whole audit topic with fresh consumers (64 MiB
// prefetch each) on every call, before checking the stream was the caller's; 40 parallel calls
// took a node from 41 MB to 3.9 GB (before the fix: all 40 below were served at once). Now the
// audit index answers who a stream belongs to, reads seek to a checkpoint with a small prefetch,
// and a peer has at most 2 reads in progress.
TEST_F(NodeAdversarialTest, AuditEntryFloodsAreBoundedPerPeer) {
  WriteContract("gr-am-bikes-1");
  auto node = StartGroningen();
  Publish(node->grpc_port(), 5, 200, "audit-flood");
  // One real stream with a few batches (each recorded in the audit log before it is sent).
  std::string stream_id;
  {
    auto stub = FederationClient(files_["amersfoort"], node->port("federation_port"));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    auto reader = stub->Subscribe(&ctx, Subscribe("gr-am-bikes-1"));
    fv1::SubscribeResponse m;
    int batches = 0;
    while (batches < 3 && reader->Read(&m)) {
      if (m.has_opened()) stream_id = m.opened().stream_id();
      if (m.has_batch()) ++batches;
    }
    ctx.TryCancel();
    reader->Finish();
  }
  ASSERT_FALSE(stream_id.empty());
  std::atomic<int> ok{0}, limited{0}, other{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 40; ++i) {
    callers.emplace_back([&] {
      auto stub = FederationClient(files_["amersfoort"], node->port("federation_port"));
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      fv1::GetAuditEntriesRequest req;
      req.set_stream_id(stream_id);
      req.set_from_sequence(1);
      fv1::GetAuditEntriesResponse resp;
      grpc::Status s = stub->GetAuditEntries(&ctx, req, &resp);
      if (s.ok() && resp.entries_size() >= 3) {
        ++ok;
      } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++limited;
      } else {
        ++other;
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_GE(ok, 2);
  EXPECT_GE(limited, 1) << "40 calls at once from one peer";
  EXPECT_EQ(other, 0) << "no call failed otherwise (timed out)";
  EXPECT_LT(RssKiB(node->pid()) / 1024, 512);
  // A stream the topic does not hold: NOT_FOUND once the index has caught up, nothing scanned.
  auto client = FederationClient(files_["amersfoort"], node->port("federation_port"));
  grpc::ClientContext ctx;
  fv1::GetAuditEntriesRequest req;
  req.set_stream_id("stream-that-does-not-exist");
  fv1::GetAuditEntriesResponse resp;
  EXPECT_EQ(client->GetAuditEntries(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

// A TCP listener that records what each connection sends first: a TLS ClientHello starts with
// 0x16, gRPC in plaintext with the HTTP/2 preface "PRI * HTTP/2.0".
class FirstBytesListener {
 public:
  FirstBytesListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 64);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~FirstBytesListener() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  int tls() const { return tls_; }
  int plaintext() const { return plaintext_; }

 private:
  void Run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      pollfd q{c, POLLIN, 0};
      char buf[16] = {0};
      ssize_t n = poll(&q, 1, 2000) > 0 ? read(c, buf, sizeof buf) : 0;
      if (n > 0 && static_cast<unsigned char>(buf[0]) == 0x16) ++tls_;
      if (n > 0 && absl::StartsWith(absl::string_view(buf, n), "PRI * HTTP/2.0")) ++plaintext_;
      close(c);
    }
  }
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> tls_{0}, plaintext_{0};
  std::thread thread_;
};

// Finding 0 (critical): when its mTLS credentials could not be built, the subscriber dialled
// its provider in plaintext (before the fix: the listener counted plaintext HTTP/2 prefaces).
// Now the subscription is not dialled, says why, and dials again once the files are repaired.
TEST_F(NodeAdversarialTest, ASubscriberWithoutUsableCredentialsDialsNothing) {
  FirstBytesListener provider;
  auto node = StartGroningen(absl::StrCat(
      "  subscriptions:\n    - {provider: amersfoort, endpoint: \"127.0.0.1:", provider.port(),
      "\", dataset: air.quality, contract: am-gr-air-1, partitions: 1, replication_factor: 1}\n"));
  // With its credentials intact it speaks TLS (the fake provider cannot answer it).
  absl::Time until = absl::Now() + absl::Seconds(30);
  while (provider.tls() == 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_GT(provider.tls(), 0);
  // The key becomes unusable (readable by others: MakeChannelCredentials refuses it).
  const std::string key = files_["groningen"].key_path;
  std::filesystem::permissions(key, std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  until = absl::Now() + absl::Seconds(90);  // backoff up to 30 s, 3x slack
  while (!absl::StrContains(Statusz(*node), "no-credentials") && provider.plaintext() == 0 &&
         absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  const std::string status = Statusz(*node);
  EXPECT_THAT(status, HasSubstr("\"state\":\"no-credentials\""));
  EXPECT_THAT(status, HasSubstr("accessible to others"));
  EXPECT_EQ(provider.plaintext(), 0) << "the subscriber spoke plaintext to its provider";
  EXPECT_THAT(status, HasSubstr("\"ready\":true"))
      << "a subscription's state is not the node's readiness";
  // Repaired: it dials again, over TLS.
  const int tls_before = provider.tls();
  std::filesystem::permissions(key, std::filesystem::perms::others_read,
                               std::filesystem::perm_options::remove);
  until = absl::Now() + absl::Seconds(90);
  while (provider.tls() == tls_before && absl::Now() < until)
    absl::SleepFor(absl::Milliseconds(200));
  EXPECT_GT(provider.tls(), tls_before);
  EXPECT_EQ(provider.plaintext(), 0);
  EXPECT_THAT(Statusz(*node), Not(HasSubstr("no-credentials")));
}

}  // namespace
}  // namespace node_testing
}  // namespace polder
