#include "services/node/server/node_server.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "common/memory/trim.h"
#include "common/server/host_port.h"
#include "common/status/status_macros.h"
#include "common/trust/trust_config.h"
#include "services/node/server/startup.h"
#include "services/node/topics.h"

namespace polder {
namespace node {

nlohmann::json NodeServer::Ports::ToJson() const {
  return {{"grpc_port", grpc},
          {"http_port", http},
          {"schema_port", schema},
          {"ops_port", ops},
          {"federation_port", federation},
          {"internal_port", internal}};
}

absl::StatusOr<std::unique_ptr<NodeServer>> NodeServer::Start(NodeConfig config,
                                                              kafka::ClientFactory& kafka,
                                                              Hooks hooks) {
  std::unique_ptr<NodeServer> node(new NodeServer(std::move(config)));
  RETURN_IF_ERROR(node->Build(kafka, std::move(hooks)));
  return node;
}

namespace {

// The audit-index role: its holder writes the index's `through` marks (AuditLog::SetMarkWriter).
class AuditIndexRole : public replica::Role {
 public:
  explicit AuditIndexRole(AuditLog* log) : log_(log) {}
  void Start() override { log_->SetMarkWriter(true); }
  void Stop(bool lost) override {
    (void)lost;
    log_->SetMarkWriter(false);
  }

 private:
  AuditLog* const log_;
};

}  // namespace

absl::Status NodeServer::Build(kafka::ClientFactory& kafka, Hooks hooks) {
  std::error_code ec;
  std::filesystem::create_directories(config_.state_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("node.state_dir ", config_.state_dir, ": ", ec.message()));
  }
  ASSIGN_OR_RETURN(trust_, NodeTrust::Build(config_));
  ASSIGN_OR_RETURN(schemas_, SchemaSubsystem::Build(config_, trust_, &readiness_));
  contracts_ = OpenContractBook(&config_, trust_);

  // Kafka: the topics first, then everything that writes to them.
  ASSIGN_OR_RETURN(admin_, kafka.NewAdmin(NodeKafkaClient(config_)));
  ASSIGN_OR_RETURN(TopicReport topics, RetryWhileUnavailable("topics", absl::Minutes(2), [&] {
                     return EnsureTopics(*admin_, config_, config_.kafka_request_timeout);
                   }));
  for (const std::string& t : topics.created) log::Info("created topic", {{"topic", t}});
  for (const std::string& w : topics.warnings) log::Warning("topic check", {{"problem", w}});
  if (!topics.errors.empty()) {
    for (const std::string& e : topics.errors) log::Error("topic check", {{"problem", e}});
    return absl::FailedPreconditionError(
        absl::StrCat("Kafka topics do not fit this node: ", absl::StrJoin(topics.errors, "; ")));
  }
  std::vector<std::string> dataset_ids;
  for (const DatasetConfig& d : config_.datasets) dataset_ids.push_back(d.id);
  feed_quality_ = std::make_unique<FeedQualityTracker>(dataset_ids, absl::Now());
  ASSIGN_OR_RETURN(ingest_, IngestSubsystem::Build(config_, trust_, kafka, schemas_.get(),
                                                   &metrics_, &readiness_));
  ingest_->SetFeedQuality(feed_quality_.get());
  {
    kafka::ProducerOptions fq;
    fq.client = NodeKafkaClient(config_);
    fq.client.client_id = absl::StrCat("polder-node-", config_.peer_id, "-feed-quality");
    ASSIGN_OR_RETURN(feed_quality_producer_, kafka.NewProducer(fq));
  }
  RETURN_IF_ERROR(schemas_->StartEndpoint(config_));
  {
    replica::RoleGroup::Options ro;
    ro.group.client = NodeKafkaClient(config_);
    ro.group.group_id = absl::StrCat("polder-", config_.peer_id, "-roles");
    ro.group.instance_id = ingest_->keyed().replica_id();
    ro.group.session_timeout = config_.replica_session_timeout;
    ro.group.heartbeat_interval = config_.replica_heartbeat_interval;
    ro.topic = config_.roles_topic;
    ro.partitions = NodeConfig::kRolesPartitions;
    roles_ = std::make_unique<replica::RoleGroup>(ro);
  }
  if (config_.sharing.enabled) {
    // A receipt for a stream another replica serves goes to that replica (ADR 0021 §4).
    IngestSubsystem* ingest = ingest_.get();
    auto forward_receipt = [ingest](const std::string& replica, const std::string& peer,
                                    const federation::v1::ExchangeReceiptsRequest& request)
        -> absl::StatusOr<federation::v1::ExchangeReceiptsResponse> {
      std::optional<ReplicaAddress> to = ingest->keyed().ReplicaEndpoint(replica);
      if (!to.has_value()) {
        return absl::NotFoundError(absl::StrCat("replica '", replica, "' is not in the directory"));
      }
      return ingest->forwarder()->ForwardReceipt(to->endpoint, peer, request, absl::Seconds(5));
    };
    // A peer's streams and audit reads are counted by the holder of its key partition.
    ReplicaAdmission::Options ao;
    ao.replica = ingest_->keyed().replica_id();
    ao.partitions = config_.keys_partitions;
    ReplicaAdmission::Routing routing;
    routing.holds = [ingest](int32_t k) {
      for (int32_t held : ingest->keyed().held()) {
        if (held == k) return true;
      }
      return false;
    };
    routing.holder = [ingest](int32_t k) -> std::optional<std::string> {
      std::map<int32_t, ReplicaAddress> owners = ingest->keyed().owners();
      auto it = owners.find(k);
      if (it == owners.end()) return std::nullopt;
      return it->second.endpoint;
    };
    admission_ = std::make_unique<ReplicaAdmission>(ao, routing, ingest_->forwarder());
    ingest_->replica_service()->set_slots(admission_.get());
    ASSIGN_OR_RETURN(provider_, ProviderSubsystem::Build(config_, trust_, kafka, contracts_.get(),
                                                         schemas_.get(), feed_quality_.get(),
                                                         ingest_->keyed().replica_id(),
                                                         forward_receipt, admission_.get()));
    FederationService* federation = provider_->service();
    ingest_->replica_service()->set_receipts(
        [federation](const std::string& peer, const federation::v1::ExchangeReceiptsRequest& r) {
          return federation->ExchangeForwarded(peer, r);
        });
    provider_->audit()->SetMarkWriter(false);  // until this replica holds the audit-index role
    audit_index_role_ = std::make_unique<AuditIndexRole>(provider_->audit());
    roles_->Add("audit-index", "audit-index", audit_index_role_.get());
    subscriptions_ = SubscriptionsSubsystem::Build(
        config_, trust_, kafka, admin_.get(), contracts_.get(), provider_.get(), schemas_.get(),
        hooks.before_mirror_commit, roles_.get());
  }
  if (!config_.views.empty()) {
    views_ = std::make_unique<ViewsSubsystem>(config_, kafka, schemas_.get(),
                                              std::move(hooks.before_view_commit), roles_.get());
  }
  if (!roles_->Roles().empty()) {
    // Roles start as the group assigns them (a lone replica holds every one at once).
    RETURN_IF_ERROR(
        RetryWhileUnavailable("roles group", absl::Minutes(2), [&]() -> absl::StatusOr<bool> {
          RETURN_IF_ERROR(roles_->Join(kafka));
          return true;
        }).status());
    // Serve once in the group with the first assignment started (a lone replica then holds
    // every role); a slow group only delays readiness, which /readyz reports.
    for (const absl::Time until = absl::Now() + config_.publish_timeout;
         !roles_->joined() && absl::Now() < until;) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    if (!roles_->joined()) {
      log::Warning("the node starts before joining its roles group",
                   {{"group", absl::StrCat("polder-", config_.peer_id, "-roles")}});
    }
    readiness_.AddCheck("roles", [this]() -> absl::Status {
      return roles_->joined() ? absl::OkStatus()
                              : absl::UnavailableError("not yet in the roles group");
    });
  }
  RETURN_IF_ERROR(StartOps());
  ingest_->SetServing(readiness_.Ready());
  log::Info("polder-node serving", {{"peer", config_.peer_id},
                                    {"grpc_port", ingest_->grpc_port()},
                                    {"http_port", ingest_->http_port()},
                                    {"schema_port", schemas_->endpoint_port()},
                                    {"ops_port", ops_->port()},
                                    {"datasets", config_.datasets.size()},
                                    {"tls", !config_.development_mode}});

  // Upkeep: Kafka probe and token files every 2 s, schemas, certificate and directory every
  // registry_refresh, gRPC health following readiness twice a second.
  upkeep_.Add("kafka probe", absl::Seconds(2), [this] {
    ProbeKafka();
    ingest_->RefreshTokens();    // a deleted or broken token file revokes its token now
    memory::ReturnFreeMemory();  // what a burst of connections freed goes back to the system
  });
  upkeep_.Add("refresh", config_.registry_refresh, [this] {
    schemas_->Refresh();
    if (certificate_ != nullptr) certificate_->Refresh();
    if (trust_.directory != nullptr) trust::RefreshDirectory(*trust_.directory, config_.trust);
  });
  upkeep_.Add("health", absl::Milliseconds(500),
              [this] { ingest_->SetServing(readiness_.Ready()); });
  // Feed quality: the views' late records and entities reporting follow each second; the topic
  // gets it every 10 s.
  upkeep_.Add("late records", absl::Seconds(1), [this] {
    if (views_ == nullptr) return;
    for (const auto& [dataset, late] : views_->LateRecords()) feed_quality_->SetLate(dataset, late);
    for (const auto& [dataset, figures] : views_->FeedFigures()) {
      for (const auto& [view, figure] : figures) {
        feed_quality_->SetEntities(dataset, view, figure);
      }
    }
  });
  upkeep_.Add("feed quality", config_.feed_quality_interval, [this] { PublishFeedQuality(); });
  upkeep_.Start();
  return absl::OkStatus();
}

nlohmann::json NodeServer::FeedQualityStatus() const {
  nlohmann::json out = nlohmann::json::array();
  for (const DatasetConfig& d : config_.datasets) {
    if (std::optional<federation::v1::FeedQuality> q = feed_quality_->Snapshot(d.id, absl::Now());
        q.has_value()) {
      out.push_back(FeedQualityTracker::ToJson(*q));
    }
  }
  return out;
}

void NodeServer::PublishFeedQuality() {
  auto send = [this](const std::string& provider, const federation::v1::FeedQuality& q) {
    kafka::ProducerRecord r;
    r.topic = config_.feed_quality_topic;
    r.partition = 0;
    r.key = absl::StrCat(provider, "/", q.dataset_id());
    nlohmann::json j = FeedQualityTracker::ToJson(q);
    j["provider"] = provider;
    r.value = j.dump();
    feed_quality_producer_->Send(std::move(r), [](absl::StatusOr<kafka::RecordMetadata> m) {
      if (!m.ok()) {
        log::Warning("feed quality not written", {{"error", std::string(m.status().message())}});
      }
    });
  };
  for (const DatasetConfig& d : config_.datasets) {
    if (std::optional<federation::v1::FeedQuality> q = feed_quality_->Snapshot(d.id, absl::Now());
        q.has_value()) {
      send(config_.peer_id, *q);
    }
  }
  if (subscriptions_ != nullptr) {
    for (const auto& [provider, q] : subscriptions_->ReceivedFeedQuality()) send(provider, q);
  }
}

absl::Status NodeServer::StartOps() {
  readiness_.AddCheck("kafka", [this]() -> absl::Status {
    return kafka_reachable_ ? absl::OkStatus()
                            : absl::UnavailableError("the cluster does not answer");
  });
  if (!config_.development_mode) {
    certificate_ = std::make_unique<server::CertificateExpiry>(config_.cert_file);
    readiness_.AddCheck("certificate", [this] { return certificate_->Check(absl::Now()); });
  }
  // Plain HTTP, nothing secret, on the event-loop server, so slow or idle connections hold no
  // thread (ADR 0011).
  ASSIGN_OR_RETURN(ops_, server::OpsServer::Listen(
                             config_.ops_address, "node.ops_address", &readiness_,
                             [this] { return StatusPage(); }, [this] { return MetricsText(); }));
  return absl::OkStatus();
}

void NodeServer::ProbeKafka() {
  // A metadata request to the cluster, bounded by the Kafka request timeout.
  absl::StatusOr<kafka::TopicDescription> probe =
      admin_->DescribeTopic(config_.keys_topic, config_.kafka_request_timeout);
  if (probe.ok() != kafka_reachable_.load()) {
    log::Write(probe.ok() ? log::Severity::kInfo : log::Severity::kWarning,
               probe.ok() ? "Kafka answers again" : "Kafka does not answer",
               {{"error", probe.ok() ? "" : std::string(probe.status().message())}});
  }
  kafka_reachable_ = probe.ok();
}

nlohmann::json NodeServer::StatusPage() const {
  return {{"service", "polder-node"},
          {"peer", config_.peer_id},
          {"subscriptions",
           subscriptions_ != nullptr ? subscriptions_->Status() : nlohmann::json::array()},
          {"views", views_ != nullptr ? views_->Status() : nlohmann::json::array()},
          {"feed_quality", FeedQualityStatus()},
          {"ingest_tokens", ingest_->TokensStatus()},
          {"replica", ReplicaStatus()}};
}

nlohmann::json NodeServer::ReplicaStatus() const {
  nlohmann::json out = ingest_->ReplicaStatus();
  nlohmann::json held = nlohmann::json::array();
  nlohmann::json elsewhere = nlohmann::json::array();
  for (const replica::RoleGroup::RoleState& r : roles_->Roles()) {
    nlohmann::json role = {{"name", r.name}, {"kind", r.kind}, {"partition", r.partition}};
    if (r.fenced) role["fenced"] = true;
    (r.held ? held : elsewhere).push_back(std::move(role));
  }
  out["roles_held"] = std::move(held);
  out["roles_elsewhere"] = std::move(elsewhere);
  out["roles_joined"] = roles_->joined();
  out["role_rebalances"] = roles_->rebalances();
  out["roles_fenced"] = roles_->fenced_counts();
  if (provider_ != nullptr) out["receipts_forwarded"] = provider_->service()->receipts_forwarded();
  return out;
}

std::string NodeServer::MetricsText() {
  ingest_->Export(&metrics_);
  schemas_->Export(&metrics_);
  metrics_.SetHttpListener("ops", ops_->stats());
  {
    NodeMetrics::ReplicaStats rs;
    const KeyedPublisher::Stats ks = ingest_->keyed().stats();
    rs.roles = roles_->held_counts();
    rs.roles["key-partition"] = ks.partitions_held;
    rs.rebalances = {{"keys", ks.rebalances}, {"roles", roles_->rebalances()}};
    rs.forwarded = {{{"ForwardPublish", "ok"}, ks.forwarded_ok},
                    {{"ForwardPublish", "failed"}, ks.forwarded_failed}};
    if (provider_ != nullptr) {
      rs.forwarded[{"ForwardReceipt", "ok"}] = provider_->service()->receipts_forwarded();
    }
    rs.fenced = roles_->fenced_counts();
    metrics_.SetReplica(rs);
  }
  if (subscriptions_ != nullptr) subscriptions_->Export(&metrics_);
  if (views_ != nullptr) views_->Export(&metrics_);
  if (provider_ != nullptr) {
    provider_->Export(&metrics_);
    for (const ContractBook::Listed& l : contracts_->All(absl::Now())) {
      metrics_.SetExpiry("contract", l.contract.id, l.contract.valid_until);
    }
    if (std::shared_ptr<const trust::Directory> d = trust_.current_directory(); d != nullptr) {
      metrics_.SetExpiry("directory", d->federation, d->valid_until);
    }
    if (certificate_ != nullptr && certificate_->not_after() != absl::InfinitePast()) {
      metrics_.SetExpiry("certificate", config_.peer_id, certificate_->not_after());
    }
  }
  return metrics_.Serialize();
}

NodeServer::Ports NodeServer::ports() const {
  Ports p;
  p.grpc = ingest_->grpc_port();
  p.http = ingest_->http_port();
  p.schema = schemas_->endpoint_port();
  p.ops = ops_->port();
  p.federation = provider_ != nullptr ? provider_->port() : 0;
  p.internal = ingest_->internal_port();
  return p;
}

void NodeServer::Drain() {
  if (drained_) return;
  drained_ = true;
  upkeep_.Stop();
  ingest_->SetServing(false);
  // In-flight calls finish (up to drain_timeout); then queued batches are committed. Leaving
  // the roles group stops each role held (committing what it queued) and hands it over.
  roles_->Leave();
  if (subscriptions_ != nullptr) subscriptions_->Stop();
  if (views_ != nullptr) views_->Stop();
  if (provider_ != nullptr) provider_->Stop();
  ingest_->StopListening(config_.drain_timeout);
  schemas_->StopEndpoint();
  ingest_->CommitQueued();
  ops_->Stop();
}

NodeServer::~NodeServer() {
  upkeep_.Stop();
  if (ops_ != nullptr && !drained_) ops_->Stop();
  // Forwarded receipts call into the provider, destroyed before the ingest subsystem.
  if (ingest_ != nullptr) {
    ingest_->replica_service()->set_receipts(nullptr);
    ingest_->replica_service()->set_slots(nullptr);
    ingest_->StopInternal();
  }
  // Then the subsystems, in reverse order of construction (members' order).
}

}  // namespace node
}  // namespace polder
