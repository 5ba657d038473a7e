#include "services/node/federation/federation_testing.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/kafka/producer.h"
#include "common/status/status_macros.h"
#include "common/trust/contract.h"
#include "common/trust/keys.h"
#include "common/wire/confluent_frame.h"
#include "gtest/gtest.h"

namespace polder {
namespace node {
namespace testing {

namespace fv1 = ::polder::federation::v1;

namespace {

std::unique_ptr<AuditLog> NewAuditLog(kafka::ClientFactory& clients, const std::string& who) {
  kafka::ProducerOptions producer;
  producer.client.bootstrap_servers = "fake:9092";
  producer.client.client_id = absl::StrCat("audit-", who);
  kafka::ConsumerOptions consumer;
  consumer.client.bootstrap_servers = "fake:9092";
  consumer.client.client_id = absl::StrCat("audit-reader-", who);
  absl::StatusOr<std::unique_ptr<AuditLog>> log =
      AuditLog::Create(clients, producer, consumer, AuditLog::Options());
  EXPECT_TRUE(log.ok()) << log.status();
  return log.ok() ? *std::move(log) : nullptr;
}

void CreateTopics(kafka::testing::FakeKafka& kafka, const std::string& data_topic) {
  EXPECT_TRUE(kafka.CreateTopic({data_topic, kPartitions, 1, {}}).ok());
  EXPECT_TRUE(kafka.CreateTopic({"_polder.audit", 1, 1, {}}).ok());
  EXPECT_TRUE(
      kafka.CreateTopic({"_polder.audit-index", 1, 1, {{"cleanup.policy", "compact"}}}).ok());
  EXPECT_TRUE(kafka.CreateTopic({"_polder.cursors", 1, 1, {{"cleanup.policy", "compact"}}}).ok());
}

std::map<int32_t, std::vector<std::string>> Values(kafka::testing::FakeKafka& kafka,
                                                   const std::string& topic) {
  std::map<int32_t, std::vector<std::string>> out;
  for (int32_t p = 0; p < kPartitions; ++p) {
    for (const kafka::ConsumedRecord& r : kafka.Committed(topic, p)) out[p].push_back(r.value);
  }
  return out;
}

}  // namespace

FederationWorld::FederationWorld(const std::string& dir) : dir_(dir) {
  std::filesystem::create_directories(dir_ + "/contracts");
  std::filesystem::create_directories(dir_ + "/revocations");
  const absl::Time now = absl::Now();
  auto d = std::make_shared<trust::Directory>();
  d->federation = "nl-smartcity";
  d->serial = 1;
  d->valid_from = now - absl::Hours(1);
  d->valid_until = now + absl::Hours(24);
  for (const char* peer : {kProvider, kConsumer}) {
    keys.emplace(peer, *trust::PrivateKey::Generate());
    const trust::PublicKey& pub = keys.at(peer).public_key();
    d->peers.push_back({peer,
                        std::string(peer) + ".example:7443",
                        {},
                        {{pub.kid(), pub.RawBase64Url(), d->valid_from, d->valid_until}}});
  }
  directory = d;
  auto source = [this] { return directory; };
  contracts =
      std::make_unique<ContractBook>(kProvider, dir_ + "/contracts", dir_ + "/revocations", source);
  CreateTopics(provider_kafka, kSourceTopic);
  CreateTopics(consumer_kafka, kMirrorTopic);
  provider_audit = NewAuditLog(provider_clients, kProvider);
  consumer_audit = NewAuditLog(consumer_clients, kConsumer);
  provider_signer = std::make_unique<ReceiptSigner>(kProvider, keys.at(kProvider), source);
  consumer_signer = std::make_unique<ReceiptSigner>(kConsumer, keys.at(kConsumer), source);
  schema_version = [](const std::string&, int32_t id) -> absl::StatusOr<int64_t> {
    if (id == kSchemaId) return 1;
    return absl::NotFoundError(absl::StrCat("schema ", id, " is no version of the subject"));
  };
  WriteContract(kContractId);
}

void FederationWorld::WriteContract(const std::string& id, const std::string& start,
                                    std::vector<int64_t> schema_versions) {
  const absl::Time now = absl::Now();
  trust::SignedContract c;
  c.contract.id = id;
  c.contract.federation = "nl-smartcity";
  c.contract.provider = kProvider;
  c.contract.consumer = kConsumer;
  c.contract.dataset = kDataset;
  c.contract.schema_versions = std::move(schema_versions);
  c.contract.purpose = "regional dashboard";
  c.contract.access = trust::Access::kRaw;
  c.contract.start_position = start;
  c.contract.valid_from = now - absl::Hours(1);
  c.contract.valid_until = now + absl::Hours(5);
  EXPECT_TRUE(trust::SignContract(&c, kProvider, keys.at(kProvider), now - absl::Hours(1)).ok());
  EXPECT_TRUE(trust::SignContract(&c, kConsumer, keys.at(kConsumer), now - absl::Hours(1)).ok());
  std::ofstream(absl::StrCat(dir_, "/contracts/", id, ".json")) << c.ToFileText();
}

std::vector<std::string> FederationWorld::Publish(int n, const std::string& tag) {
  kafka::ProducerOptions o;
  o.client.bootstrap_servers = "fake:9092";
  o.transactional_id = "source-writer";
  std::vector<std::string> values;
  absl::StatusOr<std::unique_ptr<kafka::TransactionalProducer>> producer =
      provider_clients.NewTransactionalProducer(o);
  EXPECT_TRUE(producer.ok()) << producer.status();
  if (!producer.ok()) return values;
  EXPECT_TRUE((*producer)->InitTransactions(absl::Seconds(5)).ok());
  absl::Status s = kafka::RunInTransaction(
      **producer,
      [&]() -> absl::Status {
        for (int i = 0; i < n; ++i) {
          kafka::ProducerRecord r;
          r.topic = kSourceTopic;
          r.key = absl::StrCat("k", published_ + i);
          r.value = wire::Encode(kSchemaId, {}, absl::StrCat(tag, "-", published_ + i));
          r.headers = {{"ce_id", absl::StrCat(tag, "-", published_ + i)}};
          r.timestamp_ms = absl::ToUnixMillis(absl::Now());
          values.push_back(r.value);
          (*producer)->Send(r, [](absl::StatusOr<kafka::RecordMetadata>) {});
        }
        return (*producer)->Flush(absl::Seconds(5));
      },
      3, absl::Seconds(10));
  EXPECT_TRUE(s.ok()) << s;
  published_ += n;
  return values;
}

void FederationWorld::PublishGarbage(int32_t partition) {
  kafka::ProducerOptions o;
  o.client.bootstrap_servers = "fake:9092";
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer = provider_clients.NewProducer(o);
  ASSERT_TRUE(producer.ok()) << producer.status();
  kafka::ProducerRecord r;
  r.topic = kSourceTopic;
  r.partition = partition;
  r.key = "garbage";
  r.value = "\x01not a frame";
  ASSERT_TRUE(kafka::SendAndWait(**producer, r).ok());
}

FanOut::Options FederationWorld::FanOutOptions() {
  FanOut::Options o;
  o.consumer.client.bootstrap_servers = "fake:9092";
  o.consumer.client.client_id = "provider-source";
  o.kafka_timeout = absl::Seconds(5);
  o.tail_poll = absl::Milliseconds(20);
  return o;
}

ProviderStream::Options FederationWorld::StreamOptions() const {
  ProviderStream::Options o;
  o.self = kProvider;
  o.max_batch_records = 10;
  o.max_batch_bytes = 1 << 20;
  o.max_unacknowledged_bytes = 8 << 20;
  o.heartbeat_interval = absl::Milliseconds(200);
  o.recheck_interval = absl::Milliseconds(100);
  o.kafka_timeout = absl::Seconds(5);
  o.poll_wait = absl::Milliseconds(20);
  o.schema_version = schema_version;
  return o;
}

fv1::SubscribeRequest FederationWorld::Request() const {
  fv1::SubscribeRequest r;
  r.set_protocol_version(fv1::PROTOCOL_VERSION_1);
  r.set_dataset_id(kDataset);
  r.set_contract_id(kContractId);
  return r;
}

absl::StatusOr<std::shared_ptr<ProviderStream>> FederationWorld::OpenStream(
    const fv1::SubscribeRequest& request, const std::string& stream_id) {
  absl::StatusOr<trust::Contract> contract = contracts->ForSubscribe(
      kConsumer, request.dataset_id(), request.contract_id(), /*raw=*/true, absl::Now());
  if (!contract.ok()) return contract.status();
  SharedDataset dataset{kDataset, kSourceTopic, kPartitions, "epoch-1", "", "", ""};
  return ProviderStream::Open(StreamOptions(), fan_out, contracts.get(), provider_audit.get(),
                              stream_id, kConsumer, dataset, *std::move(contract), request);
}

MirrorWriter::Options FederationWorld::WriterOptions() const {
  MirrorWriter::Options o;
  o.producer.client.bootstrap_servers = "fake:9092";
  o.producer.transactional_id = "polder-mirror-amersfoort-groningen-mobility.bike-counts";
  o.producer.transaction_timeout = absl::Seconds(30);
  o.consumer.client.bootstrap_servers = "fake:9092";
  o.subscription = "amersfoort/groningen/mobility.bike-counts";
  o.mirror_topic = kMirrorTopic;
  o.timeout = absl::Seconds(5);
  return o;
}

MirrorSession::Options FederationWorld::SessionOptions() const {
  MirrorSession::Options o;
  o.self = kConsumer;
  o.provider = kProvider;
  o.dataset = kDataset;
  o.contract_id = kContractId;
  o.mirror_partitions = kPartitions;
  o.signer = consumer_signer.get();
  o.audit = consumer_audit.get();
  o.receipt_interval = absl::Milliseconds(50);
  return o;
}

std::map<int32_t, std::vector<std::string>> FederationWorld::MirrorValues() {
  return Values(consumer_kafka, kMirrorTopic);
}

std::map<int32_t, std::vector<std::string>> FederationWorld::SourceValues() {
  return Values(provider_kafka, kSourceTopic);
}

// ---- InProcessProvider -------------------------------------------------------------------------

namespace {

class QueueTransport : public ProviderStream::Transport {
 public:
  using SendFn = std::function<bool(const fv1::SubscribeResponse&)>;
  QueueTransport(SendFn send, std::function<bool()> cancelled)
      : send_(std::move(send)), cancelled_(std::move(cancelled)) {}
  bool Send(const fv1::SubscribeResponse& message) override { return send_(message); }
  bool Cancelled() override { return cancelled_(); }
  absl::Status RecheckPeer() override { return absl::OkStatus(); }

 private:
  SendFn send_;
  std::function<bool()> cancelled_;
};

}  // namespace

InProcessProvider::~InProcessProvider() {
  CancelStream();
  if (thread_.joinable()) thread_.join();
}

void InProcessProvider::Subscribe(const fv1::SubscribeRequest& request) {
  absl::StatusOr<std::shared_ptr<ProviderStream>> stream =
      world_->OpenStream(request, absl::StrCat("stream-", absl::ToUnixNanos(absl::Now())));
  absl::MutexLock lock(&mu_);
  if (!stream.ok()) {
    ended_ = true;
    end_ = stream.status();
    return;
  }
  stream_ = *stream;
  thread_ = std::thread([this, s = *stream] {
    bool first = true;
    QueueTransport transport(
        [this, &first](const fv1::SubscribeResponse& m) {
          absl::MutexLock lock(&mu_);
          if (cancelled_) return false;
          messages_.push_back(m);
          if (first) {
            first = false;
            for (auto& injected : injected_) messages_.push_back(std::move(injected));
            injected_.clear();
          }
          return true;
        },
        [this] {
          absl::MutexLock lock(&mu_);
          return cancelled_;
        });
    absl::Status end = s->Run(transport);
    absl::MutexLock lock(&mu_);
    ended_ = true;
    end_ = end;
  });
}

bool InProcessProvider::Read(fv1::SubscribeResponse* message) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !messages_.empty() || ended_ || cancelled_;
  };
  mu_.Await(absl::Condition(&ready));
  if (messages_.empty()) return false;
  *message = std::move(messages_.front());
  messages_.pop_front();
  return true;
}

void InProcessProvider::CancelStream() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
}

absl::Status InProcessProvider::FinishStream() {
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  if (cancelled_ && end_.ok()) return absl::CancelledError("cancelled by the subscriber");
  return end_;
}

absl::StatusOr<fv1::ExchangeReceiptsResponse> InProcessProvider::ExchangeReceipts(
    const fv1::ExchangeReceiptsRequest& request, CancelSlot* cancel) {
  if (cancel != nullptr && !cancel->Arm([] {})) {
    return absl::CancelledError("receipt exchange cancelled");
  }
  if (cancel != nullptr) cancel->Disarm();
  std::shared_ptr<ProviderStream> stream;
  {
    absl::MutexLock lock(&mu_);
    ++exchanges_;
    stream = stream_;
  }
  const audit::Receipt theirs = FromProto(request.receipt());
  RETURN_IF_ERROR(world_->provider_signer->Verify(theirs, kConsumer, theirs.stream_id));
  fv1::ExchangeReceiptsResponse response;
  if (stream == nullptr || stream->id() != theirs.stream_id) {
    // A gap chain or an earlier stream: countersigned as it stands.
    ASSIGN_OR_RETURN(
        audit::Receipt ours,
        world_->provider_signer->Sign(theirs.stream_id, theirs.sequence, theirs.hash, absl::Now()));
    *response.mutable_receipt() = ToProto(ours);
    return response;
  }
  stream->Acknowledge(
      {request.committed().next_offsets().begin(), request.committed().next_offsets().end()});
  const ProviderStream::Head head = stream->head();
  ASSIGN_OR_RETURN(
      audit::Receipt ours,
      world_->provider_signer->Sign(theirs.stream_id, head.sequence, head.hash, absl::Now()));
  *response.mutable_receipt() = ToProto(ours);
  return response;
}

void InProcessProvider::Inject(fv1::SubscribeResponse message) {
  absl::MutexLock lock(&mu_);
  injected_.push_back(std::move(message));
}

int InProcessProvider::exchanges() const {
  absl::MutexLock lock(&mu_);
  return exchanges_;
}

std::shared_ptr<ProviderStream> InProcessProvider::stream() const {
  absl::MutexLock lock(&mu_);
  return stream_;
}

}  // namespace testing
}  // namespace node
}  // namespace polder
