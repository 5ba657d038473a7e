// Ingest and its two transports without a broker or a registry: the publisher on the fake Kafka
// (held to a real broker by the conformance suite), schemas from an in-memory registry, callers
// by certificate identity and bearer token. The gRPC service runs in-process on loopback, the
// HTTP routes on a plaintext development listener. Every case counts what a read_committed
// reader of the topic sees.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/http/https_server.h"
#include "common/kafka/testing/fake_kafka.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "services/node/ingest/ingest.h"
#include "services/node/ingest/transports.h"
#include "services/node/schema_cache/fake_schema_source.h"

namespace polder {
namespace node {
namespace {

using ::polder::kafka::testing::FakeClientFactory;
using ::polder::kafka::testing::FakeKafka;
using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kTopic[] = "groningen.mobility.bike-counts";
constexpr char kSubject[] = "polder.datasets.mobility.v1.BikeCount";
constexpr char kToken[] = "parking-vendor-token-0123456789";

std::string BikeJson(int count) {
  return absl::StrCat(R"({"counterId":"gn-herestraat-01","eventTime":"2026-11-17T08:00:00Z",)",
                      R"("location":{"latitude":53.2,"longitude":6.56},"count":")", count,
                      R"(","direction":"DIRECTION_INBOUND"})");
}

class IngestUnitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    const std::string token_file = dir_ + "/parking.token";
    { std::ofstream(token_file) << kToken << "\n"; }
    std::filesystem::permissions(
        token_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    const std::string yaml = absl::StrCat(R"(node:
  peer_id: groningen
  federation: nl-smartcity
  state_dir: )",
                                          dir_, R"(
kafka:
  bootstrap_servers: fake:9092
registry:
  address: registry.example:7443
tls:
  cert_file: /etc/polder/tls/cert.pem
  key_file: /etc/polder/tls/key.pem
  trust_bundle_file: /etc/polder/tls/bundle.pem
  crl_dir: /etc/polder/tls/crl
trust:
  federation: nl-smartcity
  directory_file: /etc/polder/directory.json
  directory_state: /var/lib/polder/directory-state.json
  operator_keys:
    - public_key_file: /etc/polder/operator.pub
ingest:
  trust_domain: groningen-ingest
  client_ca_file: /etc/polder/ingest-ca.pem
  crl_dir: /etc/polder/ingest-crl
  max_batch_records: 50
  identities:
    - {id: gateway-north, datasets: [mobility.bike-counts]}
    - {id: gateway-air, datasets: [environment.air-quality]}
    - {id: parking-vendor, datasets: ["*"], token_file: )",
                                          token_file, R"(}
datasets:
  - id: mobility.bike-counts
    subject: polder.datasets.mobility.v1.BikeCount
    partitions: 3
  - id: environment.air-quality
    subject: polder.datasets.environment.v1.AirQualityObservation
    partitions: 1
)");
    absl::StatusOr<NodeConfig> config = ParseNodeConfig(yaml, "node.yaml");
    ASSERT_OK(config.status());
    config_ = *std::move(config);
    ASSERT_OK(kafka_.CreateTopic({kTopic, 3, 1, {}}));
    ASSERT_OK(kafka_.CreateTopic({"groningen.environment.air-quality", 1, 1, {}}));
    ASSERT_OK(kafka_.CreateTopic({config_.keys_topic, 1, 1, {{"cleanup.policy", "compact"}}}));
    source_ = std::make_shared<FakeSchemaSource>();
    ASSERT_OK_AND_ASSIGN(schemas_, SchemaCache::Open(dir_ + "/schema-cache.json", source_));
    ASSERT_OK(schemas_->Refresh({kSubject}));
    Publisher::Options po;
    po.producer.client.bootstrap_servers = "fake:9092";
    po.producer.transactional_id = config_.transactional_id;
    po.producer.transaction_timeout = absl::Seconds(30);
    po.keys_consumer.client.bootstrap_servers = "fake:9092";
    po.keys_topic = config_.keys_topic;
    po.publish_timeout = absl::Seconds(5);
    ASSERT_OK_AND_ASSIGN(publisher_, Publisher::Start(po, clients_));
    ASSERT_OK_AND_ASSIGN(auth_, IngestAuthenticator::Create(config_.identities, false));
    ingest_ =
        std::make_unique<Ingest>(config_, schemas_.get(), publisher_.get(), auth_.get(), &metrics_);
  }

  v1::PublishRequest Request(int n, const std::string& key = "") {
    v1::PublishRequest r;
    r.set_dataset("mobility.bike-counts");
    r.set_idempotency_key(key);
    for (int i = 0; i < n; ++i) r.add_records()->set_json(BikeJson(i));
    return r;
  }

  size_t Committed() {
    size_t n = 0;
    for (int p = 0; p < 3; ++p) n += kafka_.Committed(kTopic, p).size();
    return n;
  }

  static Caller Certificate(const std::string& id) { return Caller{id, ""}; }
  static Caller Bearer(const std::string& token) {
    return Caller{"", absl::StrCat("Bearer ", token)};
  }

  std::string dir_;
  NodeConfig config_;
  FakeKafka kafka_;
  FakeClientFactory clients_{&kafka_};
  std::shared_ptr<FakeSchemaSource> source_;
  std::unique_ptr<SchemaCache> schemas_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<IngestAuthenticator> auth_;
  NodeMetrics metrics_;
  std::unique_ptr<Ingest> ingest_;
};

TEST_F(IngestUnitTest, CommitsAValidatedBatchOnceAndAnswersARetryFromTheKey) {
  ASSERT_OK_AND_ASSIGN(v1::PublishResponse first,
                       ingest_->Publish(Certificate("gateway-north"), Request(5, "batch-1")));
  EXPECT_EQ(first.records(), 5);
  EXPECT_EQ(first.topic(), kTopic);
  EXPECT_EQ(first.schema_id(), source_->IdOf(kSubject));
  EXPECT_EQ(first.ce_ids_size(), 5);
  EXPECT_FALSE(first.duplicate());
  EXPECT_EQ(Committed(), 5u);
  ASSERT_OK_AND_ASSIGN(v1::PublishResponse again,
                       ingest_->Publish(Certificate("gateway-north"), Request(5, "batch-1")));
  EXPECT_TRUE(again.duplicate());
  EXPECT_EQ(std::vector<std::string>(again.ce_ids().begin(), again.ce_ids().end()),
            std::vector<std::string>(first.ce_ids().begin(), first.ce_ids().end()));
  EXPECT_EQ(Committed(), 5u);  // nothing written twice
  EXPECT_EQ(ingest_->inflight_bytes(), 0);
}

TEST_F(IngestUnitTest, AuthenticatesBeforeItLooksAtTheBatch) {
  EXPECT_THAT(ingest_->Publish(Caller{}, Request(1)), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(ingest_->Publish(Bearer("wrong-token-0123456789"), Request(1)),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(ingest_->Publish(Certificate("stranger"), Request(1)),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // An identity with a token authenticates only by its token, never by a certificate name.
  EXPECT_THAT(ingest_->Publish(Certificate("parking-vendor"), Request(1)),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // A known identity without a grant for this dataset.
  EXPECT_THAT(ingest_->Publish(Certificate("gateway-air"), Request(1)),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("mobility.bike-counts")));
  ASSERT_OK(ingest_->Publish(Bearer(kToken), Request(2)).status());
  EXPECT_EQ(Committed(), 2u);
}

TEST_F(IngestUnitTest, BadBatchesAreRefusedWholeWithWhatWasWrong) {
  const Caller caller = Certificate("gateway-north");
  v1::PublishRequest unknown = Request(1);
  unknown.set_dataset("mobility.scooters");
  EXPECT_THAT(ingest_->Publish(caller, unknown),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("it publishes: mobility.bike-counts, environment.air-quality")));
  v1::PublishRequest bad = Request(3);
  bad.mutable_records(1)->set_json(R"({"counterId":"x","count":"many"})");
  EXPECT_THAT(ingest_->Publish(caller, bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("record 1")));
  v1::PublishRequest empty_record = Request(2);
  empty_record.add_records();
  EXPECT_THAT(ingest_->Publish(caller, empty_record),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("record 2: has neither binary nor json")));
  EXPECT_THAT(ingest_->Publish(caller, Request(51)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("50")));
  v1::PublishRequest long_key = Request(1, std::string(201, 'k'));
  EXPECT_THAT(ingest_->Publish(caller, long_key),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("idempotency_key")));
  v1::PublishRequest unregistered = Request(1);
  unregistered.set_schema_id(999);
  EXPECT_THAT(ingest_->Publish(caller, unregistered),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("999")));
  EXPECT_EQ(Committed(), 0u);  // nothing of any refused batch
  EXPECT_EQ(ingest_->inflight_bytes(), 0);
}

TEST_F(IngestUnitTest, KafkaDownIsUnavailableAndNothingIsHalfWritten) {
  kafka_.SetDown(true);
  EXPECT_THAT(ingest_->Publish(Certificate("gateway-north"), Request(4, "down-1")),
              StatusIs(absl::StatusCode::kUnavailable));
  kafka_.SetDown(false);
  EXPECT_EQ(Committed(), 0u);
  // The retry with the same key commits once.
  ASSERT_OK(ingest_->Publish(Certificate("gateway-north"), Request(4, "down-1")).status());
  EXPECT_EQ(Committed(), 4u);
}

// The gRPC adapter: status codes as the domain says, the per-identity stream bound.
class IngestGrpcTest : public IngestUnitTest {
 protected:
  void SetUp() override {
    IngestUnitTest::SetUp();
    if (HasFatalFailure()) return;
    service_ = std::make_unique<IngestGrpcService>(ingest_.get(), /*max_streams_per_identity=*/1);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0",
                             grpc::InsecureServerCredentials(),  // loopback development mode only
                             &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                            grpc::InsecureChannelCredentials());  // loopback development mode only
    stub_ = v1::IngestService::NewStub(channel_);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }
  static void Authorize(grpc::ClientContext* ctx) {
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
  }

  std::unique_ptr<IngestGrpcService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::IngestService::Stub> stub_;
};

TEST_F(IngestGrpcTest, PublishAnswersWithTheDomainsStatus) {
  {
    grpc::ClientContext ctx;
    Authorize(&ctx);
    v1::PublishResponse response;
    grpc::Status s = stub_->Publish(&ctx, Request(3, "g-1"), &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.records(), 3);
  }
  {
    grpc::ClientContext ctx;  // no token
    v1::PublishResponse response;
    EXPECT_EQ(stub_->Publish(&ctx, Request(1), &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    Authorize(&ctx);
    v1::PublishRequest unknown = Request(1);
    unknown.set_dataset("nope.nope");
    v1::PublishResponse response;
    grpc::Status s = stub_->Publish(&ctx, unknown, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(s.error_message(), HasSubstr("'nope.nope' is not published by this node"));
  }
  EXPECT_EQ(Committed(), 3u);
}

TEST_F(IngestGrpcTest, AStreamCommitsEveryBatchAndOneIdentityHoldsAtMostItsStreams) {
  grpc::ClientContext first_ctx;
  Authorize(&first_ctx);
  v1::PublishStreamResponse first_response;
  auto first = stub_->PublishStream(&first_ctx, &first_response);
  ASSERT_TRUE(first->Write(Request(2, "s-1")));
  // A second stream of the same identity while the first is open: refused.
  grpc::ClientContext second_ctx;
  Authorize(&second_ctx);
  v1::PublishStreamResponse second_response;
  auto second = stub_->PublishStream(&second_ctx, &second_response);
  second->Write(Request(1, "s-x"));
  second->WritesDone();
  EXPECT_EQ(second->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(first->Write(Request(3, "s-2")));
  first->WritesDone();
  grpc::Status s = first->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Committed(), 5u);
}

// The HTTP adapter on a plaintext development listener (the production one is HTTPS with the
// same routes): media types, status codes and the JSON error body.
class IngestHttpTest : public IngestUnitTest {
 protected:
  void SetUp() override {
    IngestUnitTest::SetUp();
    if (HasFatalFailure()) return;
    http::HttpsOptions o;
    o.bind_address = "127.0.0.1";
    o.port = 0;
    o.plaintext_development = true;
    ASSERT_OK_AND_ASSIGN(server_, http::HttpsServer::Create(o, nullptr));
    RegisterIngestRoutes(server_.get(), ingest_.get(), /*development=*/true);
    ASSERT_OK(server_->Start());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
  }

  httplib::Result Post(const std::string& body, const std::string& type,
                       const std::string& dataset = "mobility.bike-counts",
                       const std::string& key = "") {
    httplib::Headers headers = {{"Authorization", absl::StrCat("Bearer ", kToken)}};
    if (!key.empty()) headers.emplace("Idempotency-Key", key);
    return client_->Post(absl::StrCat("/v1/datasets/", dataset, "/records"), headers, body, type);
  }

  std::unique_ptr<http::HttpsServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(IngestHttpTest, JsonAndNdjsonBodiesCommitAndBadOnesGetTheRightStatus) {
  auto ok = Post(absl::StrCat("[", BikeJson(1), ",", BikeJson(2), "]"), "application/json",
                 "mobility.bike-counts", "h-1");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  nlohmann::json answer = nlohmann::json::parse(ok->body, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << ok->body;
  EXPECT_EQ(answer.value("records", 0), 2);
  EXPECT_EQ(answer.value("topic", ""), kTopic);
  auto nd = Post(absl::StrCat(BikeJson(3), "\n", BikeJson(4), "\n"), "application/x-ndjson");
  ASSERT_TRUE(nd);
  EXPECT_EQ(nd->status, 200) << nd->body;
  EXPECT_EQ(Committed(), 4u);

  auto media = Post("<xml/>", "application/xml");
  ASSERT_TRUE(media);
  EXPECT_EQ(media->status, 415) << media->body;
  auto malformed = Post("[{", "application/json");
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->status, 400) << malformed->body;
  EXPECT_THAT(malformed->body, HasSubstr("\"error\""));
  auto unknown = Post(absl::StrCat("[", BikeJson(5), "]"), "application/json", "nope.nope");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
  auto invalid = Post(R"([{"counterId":"x","count":"many"}])", "application/json");
  ASSERT_TRUE(invalid);
  EXPECT_EQ(invalid->status, 400) << invalid->body;
  EXPECT_EQ(Committed(), 4u);  // nothing of the refused bodies
}

}  // namespace
}  // namespace node
}  // namespace polder
