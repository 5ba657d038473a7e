// The provider's FederationService in process over mutual TLS (certificates made at test time)
// against a real broker: a contracted subscriber receives every committed record with the
// provider's audit references, recorded before sending; refusals name what is missing.
#include "services/node/federation/federation_service.h"

#include <filesystem>
#include <fstream>
#include <functional>

#include "absl/strings/str_cat.h"
#include "common/kafka/producer.h"
#include "common/kafka/rdkafka_admin.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/kafka/rdkafka_producer.h"
#include "common/status/status_matchers.h"
#include "common/testing/kafka_fixture.h"
#include "common/tls/grpc_tls.h"
#include "common/tls/test_federation.h"
#include "common/trust/document.h"
#include "common/wire/confluent_frame.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/node/federation/subscriber.h"
#include "tests/fault/fault_proxy.h"
#include "tools/kafka/kafka_broker.h"

namespace polder {
namespace node {
namespace {

namespace fv1 = ::polder::federation::v1;
using ::testing::HasSubstr;

class FederationServiceTest : public testing::KafkaBrokerTest {
 protected:
  kafka::RdKafkaClientFactory kafka_;  // first: outlives the service

  void SetUp() override {
    testing::KafkaBrokerTest::SetUp();
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fed_ = std::make_unique<tls::TestFederation>(dir_ + "/pki");
    for (const char* peer : {"groningen", "amersfoort", "enschede"}) {
      tls::KeyAndCert kc = fed_->Issue(peer);
      fed_->Admit(peer, kc);
      files_[peer] = fed_->WriteIdentity(peer, kc);
      keys_.emplace(peer, *trust::PrivateKey::Generate());
    }
    // The directory the contracts are checked against: the federation's, with signing keys.
    auto d = std::make_shared<trust::Directory>(*fed_->directory());
    for (trust::PeerEntry& p : d->peers) {
      const trust::PublicKey& pub = keys_.at(p.id).public_key();
      p.signing_keys.push_back({pub.kid(), pub.RawBase64Url(), d->valid_from, d->valid_until});
    }
    directory_ = d;
    std::filesystem::create_directories(dir_ + "/contracts");
    WriteContract("gr-am-bikes-1");
    contracts_ = std::make_unique<ContractBook>(
        "groningen", dir_ + "/contracts", dir_ + "/revocations", [this] { return directory_; });
    source_ = CreateTopic("groningen.mobility.bike-counts", 3);
    audit_topic_ = CreateTopic("_polder.audit", 1);
    audit_index_topic_ = CreateTopic("_polder.audit-index", 1, {{"cleanup.policy", "compact"}});
    MakeAudit();
  }

  void MakeAudit() {
    kafka::ProducerOptions po;
    po.client = ClientOptions();
    kafka::ConsumerOptions co;
    co.client = ClientOptions();
    AuditLog::Options ao;
    ao.topic = audit_topic_;
    ao.index_topic = audit_index_topic_;
    ao.mark_interval = absl::Milliseconds(200);
    ASSERT_OK_AND_ASSIGN(audit_, AuditLog::Create(kafka_, po, co, ao));
  }

  // A contract Groningen → Amersfoort for the bike counts, signed by both, in the contracts
  // folder; `change` adjusts it before signing.
  void WriteContract(const std::string& id,
                     const std::function<void(trust::Contract&)>& change = {}) {
    trust::SignedContract c;
    c.contract.id = id;
    c.contract.federation = directory_->federation;
    c.contract.provider = "groningen";
    c.contract.consumer = "amersfoort";
    c.contract.dataset = "mobility.bike-counts";
    c.contract.schema_versions = {1};
    c.contract.purpose = "regional cycling dashboard";
    c.contract.valid_from = absl::Now() - absl::Hours(1);
    c.contract.valid_until = absl::Now() + absl::Hours(1);
    if (change) change(c.contract);
    ASSERT_OK(trust::SignContract(&c, "groningen", keys_.at("groningen"), absl::Now()));
    ASSERT_OK(trust::SignContract(&c, "amersfoort", keys_.at("amersfoort"), absl::Now()));
    std::ofstream(absl::StrCat(dir_, "/contracts/", id, ".json")) << c.ToFileText();
  }

  void Produce(int n, int32_t schema_id) {
    kafka::ProducerOptions po;
    po.client = ClientOptions();
    ASSERT_OK_AND_ASSIGN(auto p, kafka::IdempotentProducer::Create(po));
    for (int i = 0; i < n; ++i) {
      kafka::ProducerRecord r;
      r.topic = source_;
      r.partition = i % 3;
      r.key = absl::StrCat("counter-", i);
      r.value = wire::Encode(schema_id, {0}, absl::StrCat("payload-", i));
      r.headers = {{"ce_id", absl::StrCat("id-", schema_id, "-", i)}};
      ASSERT_OK(kafka::SendAndWait(*p, std::move(r)).status());
    }
  }

  void StartServer() {
    FederationService::Options o;
    o.stream.self = "groningen";
    o.datasets["mobility.bike-counts"] = {
        "mobility.bike-counts", source_, 3, "epoch-1", "", "", ""};
    o.fan_out.consumer.client = ClientOptions();
    o.stream.max_batch_records = 4;
    o.stream.heartbeat_interval = absl::Milliseconds(500);
    o.stream.schema_version = [](const std::string&, int32_t id) -> absl::StatusOr<int64_t> {
      if (id == 4) return 1;
      if (id == 9) return 3;
      return absl::NotFoundError("unknown schema");
    };
    o.checker = fed_->Checker();
    o.stream.max_unacknowledged_bytes = max_unacknowledged_bytes_;
    // GetAuditEntries pages: a few entries each (one is ~500 bytes).
    o.max_response_bytes = 1500;
    o.stream.feed_quality = [](const std::string& dataset) -> std::optional<fv1::FeedQuality> {
      if (dataset != "mobility.bike-counts") return std::nullopt;
      fv1::FeedQuality q;
      q.set_dataset_id(dataset);
      q.set_records_accepted(30);
      q.set_records_rejected(2);
      return q;
    };
    signer_ = std::make_unique<ReceiptSigner>("groningen", keys_.at("groningen"),
                                              [this] { return directory_; });
    service_ = std::make_unique<FederationService>(o, kafka_, contracts_.get(), audit_.get(),
                                                   signer_.get());
    auto creds = tls::MakeServerCredentials(files_["groningen"], fed_->Checker());
    ASSERT_OK(creds.status());
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", *creds, &port_);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  std::unique_ptr<fv1::FederationService::Stub> Client(const std::string& who) {
    auto creds = tls::MakeChannelCredentials(files_[who], fed_->Checker(), "groningen");
    EXPECT_OK(creds.status());
    return fv1::FederationService::NewStub(
        grpc::CreateChannel(absl::StrCat("localhost:", port_), *creds));
  }

  fv1::SubscribeRequest Request(const std::string& contract = "gr-am-bikes-1") {
    fv1::SubscribeRequest r;
    r.set_protocol_version(fv1::PROTOCOL_VERSION_1);
    r.set_dataset_id("mobility.bike-counts");
    r.set_contract_id(contract);
    return r;
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  std::string dir_, source_, audit_topic_, audit_index_topic_;
  std::unique_ptr<tls::TestFederation> fed_;
  std::map<std::string, tls::TlsFiles> files_;
  std::map<std::string, trust::PrivateKey> keys_;
  std::shared_ptr<const trust::Directory> directory_;
  std::unique_ptr<ContractBook> contracts_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<ReceiptSigner> signer_;
  int64_t max_unacknowledged_bytes_ = 8 << 20;
  std::unique_ptr<FederationService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(FederationServiceTest, StreamsEveryRecordWithAuditRecordedBeforeSending) {
  Produce(30, 4);
  StartServer();
  auto stub = Client("amersfoort");
  {
    grpc::ClientContext ctx;
    fv1::ListDatasetsResponse list;
    ASSERT_TRUE(stub->ListDatasets(&ctx, {}, &list).ok());
    ASSERT_EQ(list.datasets_size(), 1);
    EXPECT_EQ(list.datasets(0).contracts(0).contract_id(), "gr-am-bikes-1");
    EXPECT_EQ(list.datasets(0).partitions(), 3);
    EXPECT_EQ(list.datasets(0).feed_quality().records_accepted(), 30) << "feed quality (ADR 0018)";
    EXPECT_EQ(list.datasets(0).feed_quality().records_rejected(), 2);
  }
  {
    // A peer without a contract for the dataset sees neither it nor its feed quality.
    grpc::ClientContext ctx;
    fv1::ListDatasetsResponse list;
    ASSERT_TRUE(Client("enschede")->ListDatasets(&ctx, {}, &list).ok());
    EXPECT_EQ(list.datasets_size(), 0);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto reader = stub->Subscribe(&ctx, Request());
  fv1::SubscribeResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  ASSERT_TRUE(msg.has_opened());
  const std::string stream_id = msg.opened().stream_id();
  EXPECT_EQ(msg.opened().max_batch_records(), 4);
  std::map<int32_t, std::vector<int64_t>> offsets;
  uint64_t last_audit = 0;
  int records = 0;
  while (records < 30 && reader->Read(&msg)) {
    if (msg.has_heartbeat()) continue;
    ASSERT_TRUE(msg.has_batch());
    EXPECT_LE(msg.batch().records_size(), 4);
    EXPECT_EQ(msg.batch().provider_audit().sequence(), last_audit + 1);
    last_audit = msg.batch().provider_audit().sequence();
    for (const auto& r : msg.batch().records())
      offsets[msg.batch().partition()].push_back(r.source_offset());
    records += msg.batch().records_size();
  }
  EXPECT_EQ(records, 30);
  for (auto& [p, o] : offsets) {
    EXPECT_EQ(o.size(), 10u);
    for (size_t i = 0; i < o.size(); ++i)
      EXPECT_EQ(o[i], static_cast<int64_t>(i)) << "partition " << p;
  }
  // Quiet: heartbeats carry the dataset's feed quality and the high watermarks — those as the
  // source's shared tail has cached them, so a heartbeat before its first watermark query goes
  // without (by design: it never waits on Kafka); one of the next few carries them.
  fv1::SubscribeResponse hb;
  for (int heartbeats = 0;
       heartbeats < 5 && hb.heartbeat().high_watermarks().empty() && reader->Read(&msg);) {
    if (!msg.has_heartbeat()) continue;
    hb = msg;
    ++heartbeats;
  }
  ASSERT_TRUE(hb.has_heartbeat()) << "the stream ended without a heartbeat";
  ASSERT_EQ(hb.heartbeat().high_watermarks().count(0), 1u) << hb.ShortDebugString();
  EXPECT_EQ(hb.heartbeat().high_watermarks().at(0), 10);
  EXPECT_EQ(hb.heartbeat().feed_quality().records_accepted(), 30);
  ctx.TryCancel();
  reader->Finish();
  ASSERT_OK_AND_ASSIGN(auto links, audit_->Read(stream_id, 1, 1000, absl::Seconds(10)));
  EXPECT_EQ(links.size(), last_audit);
  EXPECT_OK(audit::VerifyChain(stream_id, links));
}

TEST_F(FederationServiceTest, RefusalsNameWhatIsMissing) {
  Produce(3, 9);  // schema version 3, which the contract does not allow
  StartServer();
  auto read_status = [&](const std::string& who, fv1::SubscribeRequest req) {
    auto stub = Client(who);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    auto reader = stub->Subscribe(&ctx, req);
    fv1::SubscribeResponse msg;
    while (reader->Read(&msg)) {
    }
    return reader->Finish();
  };
  grpc::Status s = read_status("enschede", Request());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("is for consumer 'amersfoort', not 'enschede'"));
  s = read_status("amersfoort", Request("no-such-contract"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("no contract 'no-such-contract'"));
  fv1::SubscribeRequest old = Request();
  old.set_protocol_version(fv1::PROTOCOL_VERSION_UNSPECIFIED);
  EXPECT_EQ(read_status("amersfoort", old).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  fv1::SubscribeRequest gap = Request();
  gap.mutable_cursor()->set_epoch("epoch-1");
  (*gap.mutable_cursor()->mutable_next_offsets())[0] = 0;
  (*gap.mutable_cursor()->mutable_next_offsets())[1] = 500;
  (*gap.mutable_cursor()->mutable_next_offsets())[2] = 0;
  s = read_status("amersfoort", gap);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(s.error_message(), HasSubstr("partition 1"));
  fv1::SubscribeRequest other_epoch = gap;
  other_epoch.mutable_cursor()->set_epoch("epoch-0");
  EXPECT_EQ(read_status("amersfoort", other_epoch).error_code(), grpc::StatusCode::OUT_OF_RANGE);
  s = read_status("amersfoort", Request());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(),
              HasSubstr("schema version 3 of mobility.bike-counts is not allowed by contract"));
}

// Where a stream starts without a cursor: the requested position (earliest, latest, a time),
// never before the contract's; anything else is refused.
TEST_F(FederationServiceTest, StartPositions) {
  Produce(30, 4);
  absl::SleepFor(absl::Milliseconds(1100));
  const absl::Time middle = absl::Now();
  absl::SleepFor(absl::Milliseconds(100));
  Produce(30, 4);
  StartServer();
  auto records_from = [&](const std::string& position, grpc::Status* status) {
    auto stub = Client("amersfoort");
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    fv1::SubscribeRequest req = Request();
    req.set_start_position(position);
    auto reader = stub->Subscribe(&ctx, req);
    fv1::SubscribeResponse msg;
    int records = 0, quiet = 0;
    bool open = true;
    while (quiet < 2 && (open = reader->Read(&msg))) {
      if (msg.has_heartbeat()) ++quiet;
      if (msg.has_batch()) records += msg.batch().records_size();
    }
    if (open) ctx.TryCancel();  // still streaming: we end it
    *status = reader->Finish();
    return records;
  };
  grpc::Status s;
  EXPECT_EQ(records_from("", &s), 60) << "the contract's start: earliest";
  EXPECT_EQ(records_from("earliest", &s), 60);
  EXPECT_EQ(records_from("latest", &s), 0);
  EXPECT_EQ(records_from(trust::FormatRfc3339(middle), &s), 30)
      << "from the first record at or after the time";
  EXPECT_EQ(records_from("yesterday", &s), 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              HasSubstr("start_position: the requested start position 'yesterday'"));
}

// A cursor is bounded by the contract like a start position, but never clamped: a cursor before
// the contract's start (a time) is refused with the contract's first offsets; partitions outside
// the topic are refused.
TEST_F(FederationServiceTest, ACursorBeforeTheContractsStartIsRefused) {
  Produce(30, 4);
  absl::SleepFor(absl::Milliseconds(1100));
  const absl::Time middle = absl::Now();
  absl::SleepFor(absl::Milliseconds(100));
  Produce(30, 4);
  WriteContract("gr-am-bikes-2", [&](trust::Contract& c) {
    c.purpose = "counts from the middle on";
    c.start_position = trust::FormatRfc3339(middle);
  });
  StartServer();
  auto from_cursor = [&](const std::map<int32_t, int64_t>& cursor, grpc::Status* status) {
    auto stub = Client("amersfoort");
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    fv1::SubscribeRequest req = Request("gr-am-bikes-2");
    req.mutable_cursor()->set_epoch("epoch-1");
    for (const auto& [p, o] : cursor) (*req.mutable_cursor()->mutable_next_offsets())[p] = o;
    auto reader = stub->Subscribe(&ctx, req);
    fv1::SubscribeResponse msg;
    int records = 0, quiet = 0;
    bool open = true;
    while (quiet < 2 && (open = reader->Read(&msg))) {
      if (msg.has_heartbeat()) ++quiet;
      if (msg.has_batch()) records += msg.batch().records_size();
    }
    if (open) ctx.TryCancel();
    *status = reader->Finish();
    return records;
  };
  grpc::Status s;
  EXPECT_EQ(from_cursor({{0, 0}, {1, 0}, {2, 0}}, &s), 0)
      << "nothing from before the contract's start";
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("reaches before the start of contract gr-am-bikes-2"));
  EXPECT_THAT(s.error_message(), HasSubstr("{0:10, 1:10, 2:10}"));
  EXPECT_EQ(from_cursor({{0, 10}, {1, 9}, {2, 10}}, &s), 0) << "one partition below is enough";
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(from_cursor({{0, 10}, {1, 10}, {2, 10}}, &s), 30) << "from the contract's start on";
  EXPECT_EQ(from_cursor({{0, 12}, {1, 10}, {2, 10}}, &s), 28);
  EXPECT_EQ(from_cursor({{0, 10}, {1, 10}, {7, 10}}, &s), 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("the cursor names partition 7"));
}

// Flow control, receipts and audit entries: the provider stops sending once the window of
// unacknowledged bytes is full and goes on when the subscriber's receipt acknowledges its cursor;
// receipts are checked against the directory and answered with the provider's signed head;
// each bad exchange is refused with its reason.
TEST_F(FederationServiceTest, WindowReceiptsAndAuditEntries) {
  Produce(60, 4);
  max_unacknowledged_bytes_ = 400;  // about two batches of 4 records
  StartServer();
  auto stub = Client("amersfoort");
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto reader = stub->Subscribe(&ctx, Request());
  fv1::SubscribeResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  ASSERT_TRUE(msg.has_opened());
  const std::string stream_id = msg.opened().stream_id();
  EXPECT_EQ(msg.opened().max_unacknowledged_bytes(), 400);
  // Read until only heartbeats come: the window is full.
  std::map<int32_t, int64_t> cursor;
  int batches = 0, records = 0, quiet_heartbeats = 0;
  uint64_t sequence = 0;
  while (quiet_heartbeats < 3 && reader->Read(&msg)) {
    if (msg.has_heartbeat()) {
      ++quiet_heartbeats;
      continue;
    }
    quiet_heartbeats = 0;
    ++batches;
    records += msg.batch().records_size();
    cursor[msg.batch().partition()] = msg.batch().next_offset();
    sequence = msg.batch().provider_audit().sequence();
  }
  EXPECT_GE(batches, 1);
  EXPECT_LT(records, 60) << "the provider stopped at the window";
  EXPECT_LE(batches, 3) << "at most the window plus the one batch that always fits";

  auto exchange = [&](const std::string& who, const audit::Receipt& r,
                      fv1::ExchangeReceiptsResponse* resp) {
    auto client = Client(who);
    grpc::ClientContext c;
    fv1::ExchangeReceiptsRequest req;
    *req.mutable_receipt() = ToProto(r);
    req.mutable_committed()->set_epoch("epoch-1");
    for (const auto& [p, o] : cursor) (*req.mutable_committed()->mutable_next_offsets())[p] = o;
    return client->ExchangeReceipts(&c, req, resp);
  };
  auto receipt = [&](const std::string& peer, const trust::PrivateKey& key,
                     const std::string& stream, uint64_t seq) {
    return *audit::MakeReceipt(stream, peer, seq, "cafe", key, absl::Now());
  };
  fv1::ExchangeReceiptsResponse resp;
  // Bad exchanges, each with its reason.
  {
    auto client = Client("amersfoort");
    grpc::ClientContext c;
    grpc::Status s = client->ExchangeReceipts(&c, {}, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("receipt: required"));
  }
  grpc::Status s = exchange("amersfoort",
                            receipt("amersfoort", keys_.at("amersfoort"), "stream-nope", 1), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  s = exchange("enschede", receipt("enschede", keys_.at("enschede"), stream_id, 1), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("is not a stream of 'enschede'"));
  s = exchange("amersfoort", receipt("amersfoort", keys_.at("enschede"), stream_id, 1), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << "signed with a key not listed for amersfoort";
  s = exchange("amersfoort", receipt("groningen", keys_.at("amersfoort"), stream_id, 1), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("names peer 'groningen'"));
  s = exchange("amersfoort", receipt("amersfoort", keys_.at("amersfoort"), stream_id, sequence + 5),
               &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("were offered"));
  // Nothing was acknowledged by the refused exchanges: still only heartbeats.
  int more = 0;
  for (int i = 0; i < 2 && reader->Read(&msg); ++i) more += msg.has_batch() ? 1 : 0;
  EXPECT_EQ(more, 0);

  // A good exchange: the provider's signed head comes back and the stream goes on.
  s = exchange("amersfoort", receipt("amersfoort", keys_.at("amersfoort"), stream_id, sequence),
               &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const audit::Receipt theirs = FromProto(resp.receipt());
  EXPECT_EQ(theirs.peer, "groningen");
  EXPECT_EQ(theirs.sequence, sequence);
  ASSERT_OK_AND_ASSIGN(auto links, audit_->Read(stream_id, 1, 1000, absl::Seconds(10)));
  EXPECT_OK(audit::CheckReceipt(links, theirs, keys_.at("groningen").public_key()));
  bool resumed = false;
  for (int i = 0; i < 10 && !resumed && reader->Read(&msg); ++i) resumed = msg.has_batch();
  EXPECT_TRUE(resumed) << "acknowledged bytes reopen the window";
  ctx.TryCancel();
  reader->Finish();
  EXPECT_EQ(service_->stats().receipts, 1);
  // The same receipt again and again (a peer trying to grow the never-deleted audit topic): each
  // answered, none stored again.
  for (int i = 0; i < 50; ++i) {
    s = exchange("amersfoort", receipt("amersfoort", keys_.at("amersfoort"), stream_id, sequence),
                 &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(service_->stats().receipts, 1) << "a receipt that does not advance is not stored";

  // GetAuditEntries: the caller's own stream only.
  auto entries = [&](const std::string& who, const std::string& stream,
                     fv1::GetAuditEntriesResponse* out, uint64_t from = 1) {
    auto client = Client(who);
    grpc::ClientContext c;
    fv1::GetAuditEntriesRequest req;
    req.set_stream_id(stream);
    req.set_from_sequence(from);
    return client->GetAuditEntries(&c, req, out);
  };
  // In pages within the listener's largest message (max_response_bytes), asked from the next
  // sequence until there is none.
  std::vector<audit::AuditLink> fetched;
  int pages = 0;
  for (uint64_t from = 1;; ++pages) {
    fv1::GetAuditEntriesResponse got;
    const grpc::Status s = entries("amersfoort", stream_id, &got, from);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND && pages > 0) break;
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_GT(got.entries_size(), 0);
    EXPECT_LE(got.ByteSizeLong(), 1500u + 600u) << "one entry past the budget at most";
    for (const auto& e : got.entries())
      fetched.push_back({e.sequence(), e.hash(), e.canonical_json()});
    from = fetched.back().sequence + 1;
  }
  EXPECT_GE(fetched.size(), sequence);
  EXPECT_GT(pages, 1) << fetched.size() << " entries in one page";
  EXPECT_OK(audit::VerifyChain(stream_id, fetched));
  fv1::GetAuditEntriesResponse none;
  EXPECT_EQ(entries("enschede", stream_id, &none).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(entries("amersfoort", "stream-nope", &none).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(entries("amersfoort", "", &none).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Receipts close what a stream left unsigned (finding 9): after the provider restarted (the
// stream is gone from its memory) the subscriber still exchanges receipts for the stream's last
// head, answered from the audit index; and a gap the provider reported is countersigned once.
TEST_F(FederationServiceTest, ReceiptsForEndedStreamsAndGapsComeFromTheAuditIndex) {
  Produce(20, 4);
  StartServer();
  std::string stream_id;
  uint64_t sequence = 0;
  {
    auto stub = Client("amersfoort");
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    auto reader = stub->Subscribe(&ctx, Request());
    fv1::SubscribeResponse msg;
    int records = 0;
    while (records < 20 && reader->Read(&msg)) {
      if (msg.has_opened()) stream_id = msg.opened().stream_id();
      if (!msg.has_batch()) continue;
      records += msg.batch().records_size();
      sequence = msg.batch().provider_audit().sequence();
    }
    ASSERT_EQ(records, 20);
    ctx.TryCancel();
    reader->Finish();
  }
  // The provider restarts: its streams are no longer in memory.
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server_.reset();
  service_.reset();
  audit_.reset();
  MakeAudit();
  StartServer();
  auto exchange = [&](const std::string& who, const std::string& signer, const std::string& stream,
                      uint64_t seq, fv1::ExchangeReceiptsResponse* resp,
                      const std::string& hash = std::string(64, 'c')) {
    auto client = Client(who);
    grpc::ClientContext c;
    c.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    fv1::ExchangeReceiptsRequest req;
    *req.mutable_receipt() =
        ToProto(*audit::MakeReceipt(stream, who, seq, hash, keys_.at(signer), absl::Now()));
    return client->ExchangeReceipts(&c, req, resp);
  };
  fv1::ExchangeReceiptsResponse resp;
  grpc::Status s = exchange("amersfoort", "amersfoort", stream_id, sequence, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const audit::Receipt head = FromProto(resp.receipt());
  EXPECT_EQ(head.sequence, sequence) << "the provider signs its whole chain, tail included";
  ASSERT_OK_AND_ASSIGN(auto links, audit_->Read(stream_id, 1, 1000, absl::Seconds(10)));
  EXPECT_OK(audit::CheckReceipt(links, head, keys_.at("groningen").public_key()));
  EXPECT_EQ(service_->stats().receipts, 1);
  for (int i = 0; i < 5; ++i) {
    s = exchange("amersfoort", "amersfoort", stream_id, sequence, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(service_->stats().receipts, 1) << "a receipt that does not advance is not stored again";
  s = exchange("enschede", "enschede", stream_id, sequence, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  s = exchange("amersfoort", "amersfoort", stream_id, sequence + 1, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  s = exchange("amersfoort", "enschede", stream_id, sequence, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << "signed with another peer's key";
  s = exchange("amersfoort", "amersfoort", "stream-never", 1, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();

  // A gap: nothing to notarise before this node reported one.
  const std::string gap = "gap-amersfoort-groningen-mobility.bike-counts-1795000000000";
  s = exchange("amersfoort", "amersfoort", gap, 1, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  {
    auto stub = Client("amersfoort");
    grpc::ClientContext ctx;
    fv1::SubscribeRequest stale = Request();
    stale.mutable_cursor()->set_epoch("epoch-0");  // the topic was re-created since: a gap
    auto reader = stub->Subscribe(&ctx, stale);
    fv1::SubscribeResponse msg;
    while (reader->Read(&msg)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::OUT_OF_RANGE);
  }
  s = exchange("amersfoort", "amersfoort", gap, 2, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "a gap chain has one entry";
  const int64_t before = service_->stats().receipts;
  s = exchange("amersfoort", "amersfoort", gap, 1, &resp, std::string(64, 'd'));
  ASSERT_TRUE(s.ok()) << s.error_message();
  const audit::Receipt countersigned = FromProto(resp.receipt());
  EXPECT_EQ(countersigned.peer, "groningen");
  EXPECT_EQ(countersigned.hash, std::string(64, 'd'));
  EXPECT_OK(audit::VerifyReceiptSignature(countersigned, keys_.at("groningen").public_key()));
  EXPECT_EQ(service_->stats().receipts, before + 1) << "the subscriber's signed gap head is kept";
  s = exchange("amersfoort", "amersfoort", gap, 1, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "one notarisation per reported gap";
  s = exchange("enschede", "enschede", "gap-enschede-groningen-mobility.bike-counts-1", 1, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "no gap was reported to enschede";
}

// Amersfoort mirrors Groningen's topic into its own cluster through a fault proxy: the link is
// cut mid-stream and the subscriber is stopped and restarted; the mirror ends up equal to the
// source — every ce_id once, in source order per partition.
TEST_F(FederationServiceTest, SubscriberMirrorsExactlyOnceAcrossACutLinkAndARestart) {
  Produce(600, 4);
  StartServer();
  kafka_testing::KafkaBrokerOptions bo;
  bo.name = "amersfoort";
  ASSERT_OK_AND_ASSIGN(auto amersfoort, kafka_testing::KafkaBroker::Start(bo));
  kafka::ClientOptions mirror_client;
  mirror_client.bootstrap_servers = amersfoort->bootstrap_servers();
  mirror_client.request_timeout = absl::Seconds(3);
  ASSERT_OK_AND_ASSIGN(auto admin, kafka::KafkaAdmin::Create(mirror_client));
  ASSERT_OK(admin->CreateTopic({source_, 3, 1, {}}, absl::Seconds(10)));
  ASSERT_OK(admin->CreateTopic({"_polder.cursors", 1, 1, {{"cleanup.policy", "compact"}}},
                               absl::Seconds(10)));
  ASSERT_OK(admin->CreateTopic({"_polder.audit", 1, 1, {}}, absl::Seconds(10)));
  ASSERT_OK(admin->CreateTopic({"_polder.audit-index", 1, 1, {{"cleanup.policy", "compact"}}},
                               absl::Seconds(10)));
  fault::FaultProxy proxy("127.0.0.1", port_);
  ASSERT_OK(proxy.Start());

  Subscriber::Options so;
  so.session.self = "amersfoort";
  so.session.provider = "groningen";
  so.session.dataset = "mobility.bike-counts";
  so.session.contract_id = "gr-am-bikes-1";
  so.session.mirror_partitions = 3;
  so.channel = [this, &proxy]() -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
    auto creds = tls::MakeChannelCredentials(files_["amersfoort"], fed_->Checker(), "groningen");
    if (!creds.ok()) return creds.status();
    return grpc::CreateChannel(absl::StrCat("localhost:", proxy.port()), *creds);
  };
  so.writer.producer.client = mirror_client;
  so.writer.producer.delivery_timeout = absl::Seconds(5);
  so.writer.producer.transaction_timeout = absl::Seconds(10);
  so.writer.consumer.client = mirror_client;
  so.writer.subscription = "amersfoort-from-groningen-bikes";
  so.writer.mirror_topic = source_;
  so.writer.timeout = absl::Seconds(6);
  so.min_backoff = absl::Milliseconds(100);
  so.max_backoff = absl::Seconds(30);
  so.unavailable_max_backoff = absl::Milliseconds(100);
  auto wait_for = [](const std::function<bool()>& done) {
    const absl::Time until = absl::Now() + absl::Seconds(90);
    while (!done() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(100));
    return done();
  };
  {
    // The provider out of reach (UNAVAILABLE) for 4 s: the backoff stops growing at 100 ms, so
    // the subscriber dials at least 12 times (one per 333 ms: over 3x its bound); growing to the
    // 30 s of other errors it would dial 6 times (0, 0.1, 0.3, 0.7, 1.5, 3.1 s).
    proxy.Cut();
    Subscriber first(so, kafka_);
    first.Start();
    absl::SleepFor(absl::Seconds(4));
    const int64_t dialled = proxy.connections_accepted();
    proxy.Restore();
    EXPECT_GE(dialled, 12) << "UNAVAILABLE backed off past unavailable_max_backoff";
    ASSERT_TRUE(wait_for([&] { return first.state().records >= 150; })) << first.state().last_error;
    proxy.Cut();
    absl::SleepFor(absl::Seconds(2));
    proxy.Restore();
    EXPECT_TRUE(wait_for([&] { return first.state().reconnects >= 1; }))
        << "the cut link was noticed";
    ASSERT_TRUE(wait_for([&] { return first.state().records >= 300; })) << first.state().last_error;
  }  // stopped mid-stream
  Produce(300, 4);
  Subscriber second(so, kafka_);
  second.Start();
  // Mirror = source: every ce_id once, in the same order per partition.
  kafka::ConsumerOptions read;
  read.client = mirror_client;
  auto ids = [&](const std::string& bootstrap) {
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    o.client.bootstrap_servers = bootstrap;
    auto c = kafka::KafkaConsumer::Create(o);
    std::map<int32_t, std::vector<std::string>> out;
    if (!c.ok()) return out;
    EXPECT_OK((*c)->Assign({{source_, 0, kafka::kOffsetBeginning},
                            {source_, 1, kafka::kOffsetBeginning},
                            {source_, 2, kafka::kOffsetBeginning}}));
    size_t n = 0;
    const absl::Time until = absl::Now() + absl::Seconds(20);
    while (n < 900 && absl::Now() < until) {
      auto batch = (*c)->Poll(absl::Milliseconds(500), 1000);
      if (!batch.ok()) break;
      for (const auto& r : *batch) {
        for (const auto& h : r.headers) {
          if (h.key == "ce_id") out[r.partition].push_back(h.value);
        }
        ++n;
      }
    }
    return out;
  };
  ASSERT_TRUE(wait_for([&] {
    size_t n = 0;
    for (const auto& [p, v] : ids(amersfoort->bootstrap_servers())) n += v.size();
    return n >= 900;
  })) << second.state().last_error;
  second.Stop();
  auto source_ids = ids(broker().bootstrap_servers());
  auto mirror_ids = ids(amersfoort->bootstrap_servers());
  EXPECT_EQ(mirror_ids, source_ids);
  size_t total = 0;
  for (const auto& [p, v] : mirror_ids) total += v.size();
  EXPECT_EQ(total, 900u);
}

}  // namespace
}  // namespace node
}  // namespace polder
