#include "services/node/server/federation_subsystem.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/server/grpc_reflection.h"
#include "common/server/keepalive.h"
#include "common/status/status_macros.h"
#include "common/tls/grpc_tls.h"
#include "common/trust/keys.h"
#include "common/views/names.h"
#include "common/views/spec.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/server_builder.h"
#include "services/node/server/startup.h"

namespace polder {
namespace node {
namespace {

server::Keepalive FederationKeepalive(const FederationConfig& fc) {
  server::Keepalive k;
  k.time = fc.keepalive_time;
  k.timeout = fc.keepalive_timeout;
  k.max_connection_age = fc.max_connection_age;
  k.max_connection_age_grace = fc.max_connection_age_grace;
  k.max_connection_idle = fc.max_connection_idle;
  return k;
}

tls::TlsFiles FederationFiles(const NodeConfig& config) {
  return tls::TlsFiles{config.cert_file, config.key_file, config.trust_bundle_file};
}

}  // namespace

std::unique_ptr<ContractBook> OpenContractBook(NodeConfig* config, const NodeTrust& trust) {
  if (!config->sharing.enabled) return nullptr;
  auto contracts =
      std::make_unique<ContractBook>(config->peer_id, config->sharing.contracts_dir,
                                     config->sharing.revocations_dir, trust.directory_source());
  for (SubscriptionConfig& sub : config->sharing.subscriptions) {
    if (std::optional<trust::Contract> c = contracts->Find(sub.contract))
      sub.mirror_retention = c->mirror_retention;
  }
  return contracts;
}

absl::StatusOr<std::unique_ptr<ProviderSubsystem>> ProviderSubsystem::Build(
    const NodeConfig& config, const NodeTrust& trust, kafka::ClientFactory& kafka,
    ContractBook* contracts, SchemaSubsystem* schemas, const FeedQualityTracker* feed_quality,
    const std::string& replica,
    decltype(FederationService::Options::forward_receipt) forward_receipt,
    PeerAdmission* admission) {
  std::unique_ptr<ProviderSubsystem> s(new ProviderSubsystem());
  const SizeLimits limits = DeriveSizeLimits(config);
  const FederationConfig& fc = config.sharing;
  ASSIGN_OR_RETURN(trust::PrivateKey signing_key, trust::PrivateKey::ReadFile(fc.signing_key_file),
                   _.Prepend("federation.signing_key_file: "));
  s->signer_ = std::make_unique<ReceiptSigner>(config.peer_id, std::move(signing_key),
                                               trust.directory_source());
  kafka::ProducerOptions audit_producer;
  audit_producer.client = NodeKafkaClient(config);
  audit_producer.max_request_bytes = limits.producer_max_request_bytes;
  audit_producer.batch_bytes = limits.producer_batch_bytes;
  audit_producer.delivery_timeout = config.delivery_timeout;
  // One acknowledged write per offered batch, waited for before sending: lingering only adds
  // latency (5 ms per batch at librdkafka's default).
  audit_producer.linger = absl::ZeroDuration();
  kafka::ConsumerOptions audit_consumer;
  audit_consumer.client = NodeKafkaClient(config);
  AuditLog::Options audit_options;
  audit_options.topic = fc.audit_topic;
  audit_options.index_topic = fc.audit_index_topic;
  ASSIGN_OR_RETURN(s->audit_,
                   AuditLog::Create(kafka, audit_producer, audit_consumer, audit_options));

  FederationService::Options fo;
  fo.stream.self = config.peer_id;
  for (const DatasetConfig& d : config.datasets) {
    fo.datasets[d.id] = {d.id,          config.TopicOf(d), d.partitions,   d.epoch,
                         d.description, d.licence,         d.owner_contact};
  }
  // The node's own aggregate views, offered under aggregate-only contracts (ADR 0016 §12).
  for (const views::ViewSetSpec& set : config.views) {
    const DatasetConfig* d = config.FindDataset(set.dataset);
    if (d == nullptr) continue;
    for (const views::ViewSpec& v : set.views) {
      SharedDataset shared{d->id,
                           views::ViewTopic(config.peer_id, d->id, v.id),
                           1,
                           v.epoch,
                           d->description,
                           d->licence,
                           d->owner_contact};
      shared.view = v.id;
      shared.definition_hash = views::DefinitionHash(set, v);
      shared.definition_json = views::DefinitionJson(set, v);
      fo.views[{d->id, v.id}] = std::move(shared);
    }
  }
  fo.fan_out.consumer.client = NodeKafkaClient(config);
  fo.fan_out.consumer.max_partition_fetch_bytes = limits.consumer_max_partition_fetch_bytes;
  // Each reading consumer's prefetch — a dataset's shared tail, a catch-up reader —
  // (librdkafka queues up to 64 MiB per consumer by default): federation.source_prefetch_bytes.
  // librdkafka 2.0.2 stops fetching for up to a second each time that queue is full, so it must
  // hold about that long of reading: at 2 MiB the provider read ~22k records/s, at 8 MiB ~55k
  // (bench/federation_bench).
  fo.fan_out.prefetch_bytes = fc.source_prefetch_bytes;
  fo.fan_out.tail_bytes = fc.fanout_tail_bytes;
  fo.fan_out.max_catchup_readers = fc.fanout_max_catchup_readers;
  fo.fan_out.kafka_timeout = config.kafka_request_timeout;
  fo.stream.max_unacknowledged_bytes = fc.max_unacknowledged_bytes;
  fo.stream.max_batch_records = fc.max_batch_records;
  fo.stream.max_batch_bytes = fc.max_batch_bytes;
  fo.stream.heartbeat_interval = fc.heartbeat_interval;
  fo.stream.recheck_interval = fc.recheck_interval;
  fo.stream.kafka_timeout = config.kafka_request_timeout;
  fo.max_streams_per_peer = fc.max_streams_per_peer;
  fo.checker = trust.federation_checker;
  fo.replica = replica;
  fo.forward_receipt = std::move(forward_receipt);
  fo.admission = admission;
  // Answers fit the listener's largest message (below), with room for framing.
  const int64_t max_send = std::min<int64_t>(
      fc.max_batch_bytes + int64_t{fc.max_batch_records} * 256 + (64 << 10), 8 << 20);
  fo.max_response_bytes = max_send - (16 << 10);
  if (feed_quality != nullptr) {
    fo.stream.feed_quality = [feed_quality](const std::string& dataset) {
      return feed_quality->Snapshot(dataset, absl::Now());
    };
  }
  fo.stream.schema_version = [schemas](const std::string& dataset, int32_t id) {
    return schemas->VersionOfDatasetSchema(dataset, id);
  };
  s->service_ =
      std::make_unique<FederationService>(fo, kafka, contracts, s->audit_.get(), s->signer_.get());

  ASSIGN_OR_RETURN(auto creds,
                   tls::MakeServerCredentials(FederationFiles(config), trust.federation_checker));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(fc.address, creds, &s->port_);
  builder.RegisterService(s->service_.get());
  // A batch message: up to max_batch_bytes of keys, values and headers, plus Protobuf framing
  // per record and header (generously 256 bytes a record). The subscriber accepts 8 MiB.
  builder.SetMaxSendMessageSize(static_cast<int>(max_send));
  server::ApplyServerKeepalive(FederationKeepalive(fc), &builder);
  // Each Subscribe stream holds a thread (the synchronous API): room for the fan-out of one
  // provider to hundreds of subscribers, and the unary calls beside them.
  tls::GrpcServerLimits limits_per_listener;
  limits_per_listener.max_threads = 512;
  tls::ApplyServerLimits(&builder, "federation", limits_per_listener);
  server::NoReflection(&builder);  // peers describe the service with the published protos
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for the federation on ", fc.address));
  }
  return s;
}

ProviderSubsystem::~ProviderSubsystem() { Stop(); }

void ProviderSubsystem::Stop() {
  if (stopped_ || server_ == nullptr) return;
  stopped_ = true;
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
}

void ProviderSubsystem::Export(NodeMetrics* metrics) const {
  FederationService::Stats fs = service_->stats();
  for (const auto& [key, p] : fs.peers) {
    metrics->SetOffered(key.first, key.second,
                        {p.records, p.bytes, p.streams_open, p.unacknowledged_bytes});
  }
  for (const auto& [key, n] : fs.ended) metrics->SetStreamsEnded(key.first, key.second, n);
  metrics->SetReceiptsReceived(fs.receipts);
  const FanOut::Stats f = service_->fan_out_stats();
  metrics->SetFanOut({f.tails, f.tail_bytes, f.live, f.catching_up, f.waiting, f.fell_behind,
                      f.tail_failures, f.waited});
}

// A subscription held by this replica runs; given up, it stops (committing what is queued unless
// the role was lost) and shows "elsewhere".
class SubscriptionsSubsystem::SubscriptionRole : public replica::Role {
 public:
  explicit SubscriptionRole(Subscriber* subscriber) : subscriber_(subscriber) {}
  void Start() override { subscriber_->Start(); }
  void Stop(bool lost) override {
    (void)lost;  // a lost role's last commit is fenced by the new holder
    subscriber_->Stop(SubscriptionStatus::kElsewhere);
  }

 private:
  Subscriber* const subscriber_;
};

SubscriptionsSubsystem::~SubscriptionsSubsystem() { Stop(); }

std::string SubscriptionsSubsystem::RoleName(const SubscriptionConfig& sub) {
  return sub.view.empty() ? absl::StrCat("sub/", sub.provider, "/", sub.dataset)
                          : absl::StrCat("sub/", sub.provider, "/", sub.dataset, "/", sub.view);
}

std::unique_ptr<SubscriptionsSubsystem> SubscriptionsSubsystem::Build(
    const NodeConfig& config, const NodeTrust& trust, kafka::ClientFactory& kafka,
    kafka::Admin* admin, ContractBook* contracts, const ProviderSubsystem* provider,
    SchemaSubsystem* schemas, BeforeCommit before_commit, replica::RoleGroup* roles) {
  std::unique_ptr<SubscriptionsSubsystem> s(new SubscriptionsSubsystem());
  if (!config.sharing.enabled) return s;
  const SizeLimits limits = DeriveSizeLimits(config);
  const FederationConfig& fc = config.sharing;
  s->configs_ = fc.subscriptions;
  for (const SubscriptionConfig& sub : fc.subscriptions) {
    Subscriber::Options so;
    so.session.self = config.peer_id;
    so.session.provider = sub.provider;
    so.session.dataset = sub.dataset;
    so.session.view = sub.view;
    so.session.contract_id = sub.contract;
    so.session.mirror_partitions = sub.partitions;
    so.channel = [endpoint = sub.endpoint, provider = sub.provider,
                  checker = trust.federation_checker, files = FederationFiles(config),
                  keepalive =
                      FederationKeepalive(fc)]() -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
      // Mutual TLS only: without usable credentials the subscription is not dialled at all.
      ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> creds,
                       tls::MakeChannelCredentials(files, checker, provider));
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(8 << 20);
      server::ApplyClientKeepalive(keepalive, &args);
      return grpc::CreateCustomChannel(endpoint, creds, args);
    };
    so.writer.producer.client = NodeKafkaClient(config);
    // Batches no larger than the topics' max.message.bytes (EnsureTopics sets it from these).
    so.writer.producer.max_request_bytes = limits.producer_max_request_bytes;
    so.writer.producer.batch_bytes = limits.producer_batch_bytes;
    so.writer.producer.delivery_timeout = config.delivery_timeout;
    so.writer.producer.transaction_timeout = config.transaction_timeout;
    so.writer.producer.transaction_spacing = config.transaction_spacing;
    // Each group commit flushes at once; records queue up anyway while a request is in flight.
    so.writer.producer.linger = absl::ZeroDuration();
    // A view's mirror is a subscription of its own: its own transactional id and cursor.
    const std::string view_suffix = sub.view.empty() ? "" : absl::StrCat(".view.", sub.view);
    so.writer.producer.transactional_id = config.MirrorTransactionalIdOf(sub);
    so.writer.consumer.client = NodeKafkaClient(config);
    so.writer.subscription =
        absl::StrCat(config.peer_id, "/", sub.provider, "/", sub.dataset, view_suffix);
    so.writer.mirror_topic = NodeConfig::MirrorTopicOf(sub);
    so.writer.cursors_topic = fc.cursors_topic;
    so.writer.audit_topic = fc.audit_topic;
    so.writer.audit_index_topic = fc.audit_index_topic;
    so.writer.timeout = config.publish_timeout;
    if (before_commit) {
      so.writer.before_commit = [before_commit, subscription = so.writer.subscription](
                                    int64_t write) { before_commit(subscription, write); };
    }
    const std::string contract_id = sub.contract;
    so.revoked = [contracts, contract_id] {
      return contracts->IsRevoked(contract_id, absl::Now());
    };
    if (sub.purge_on_revocation) {
      so.purge = [admin, mirror = so.writer.mirror_topic, partitions = sub.partitions,
                  timeout = config.kafka_request_timeout] {
        std::map<int32_t, int64_t> all;
        for (int32_t p = 0; p < partitions; ++p) all[p] = -1;  // up to the high watermark
        return admin->DeleteRecords(mirror, all, timeout);
      };
    }
    so.session.start_position = sub.start;
    so.session.signer = provider->signer();
    so.session.audit = provider->audit();
    so.session.receipt_interval = fc.receipt_interval;
    so.session.max_unacknowledged_bytes = fc.max_unacknowledged_bytes;
    so.session.contract = [contracts, contract_id] { return contracts->Find(contract_id); };
    so.session.on_schema = [schemas](int32_t id) { schemas->PinMirrored(id); };
    so.fenced = [roles, name = RoleName(sub)] { roles->Fenced(name); };
    s->subscribers_.push_back(std::make_unique<Subscriber>(so, kafka));
    s->subscribers_.back()->Standby();
    s->roles_.push_back(std::make_unique<SubscriptionRole>(s->subscribers_.back().get()));
    roles->Add(RoleName(sub), "subscription", s->roles_.back().get());
  }
  return s;
}

void SubscriptionsSubsystem::Stop() {
  for (auto& sub : subscribers_) sub->Stop();
}

nlohmann::json SubscriptionsSubsystem::Status() const {
  nlohmann::json subs = nlohmann::json::array();
  for (size_t i = 0; i < subscribers_.size(); ++i) {
    const SubscriptionConfig& sub = configs_[i];
    Subscriber::State st = subscribers_[i]->state();
    subs.push_back(
        {{"provider", sub.provider},
         {"dataset", sub.dataset},
         {"view", sub.view},
         {"contract", sub.contract},
         {"state", std::string(SubscriptionStatusName(st.status))},
         {"last_error", st.last_error},
         {"records", st.records},
         {"reconnects", st.reconnects},
         {"gaps", st.gaps},
         {"receipts", st.receipts},
         {"feed_quality", st.feed_quality.has_value() ? FeedQualityTracker::ToJson(*st.feed_quality)
                                                      : nlohmann::json()}});
  }
  return subs;
}

std::vector<std::pair<std::string, federation::v1::FeedQuality>>
SubscriptionsSubsystem::ReceivedFeedQuality() const {
  std::vector<std::pair<std::string, federation::v1::FeedQuality>> out;
  for (size_t i = 0; i < subscribers_.size(); ++i) {
    Subscriber::State st = subscribers_[i]->state();
    if (st.feed_quality.has_value()) out.emplace_back(configs_[i].provider, *st.feed_quality);
  }
  return out;
}

void SubscriptionsSubsystem::Export(NodeMetrics* metrics) const {
  for (size_t i = 0; i < subscribers_.size(); ++i) {
    const SubscriptionConfig& sub = configs_[i];
    Subscriber::State st = subscribers_[i]->state();
    // A view's subscription is labelled <dataset>.view.<view>, beside the dataset's own.
    metrics->SetSubscription(
        sub.provider,
        sub.view.empty() ? sub.dataset : absl::StrCat(sub.dataset, ".view.", sub.view),
        {std::string(SubscriptionStatusName(st.status)), st.records, st.bytes, st.reconnects,
         st.gaps, st.receipts, st.lag, st.lag_seconds});
  }
}

}  // namespace node
}  // namespace polder
