#include "services/aggregator/aggregator_server.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/json/bounded.h"
#include "common/kafka/admin.h"
#include "common/kafka/errors.h"
#include "common/log/log.h"
#include "common/memory/trim.h"
#include "common/server/grpc_security.h"
#include "common/server/host_port.h"
#include "common/status/status_macros.h"
#include "common/views/window.h"
#include "grpcpp/create_channel.h"
#include "services/aggregator/dashboard_files.h"
#include "services/node/schema_cache/registry_source.h"

namespace polder {
namespace aggregator {

namespace {

// Every answer of the API listener (the dashboard's files, the API, the live streams): the page
// runs only its own scripts and styles, talks only to its origin, is framed by no one and sends
// no referrer (ADR 0019 §3). HSTS only over TLS.
std::vector<std::pair<std::string, std::string>> SecurityHeaders(bool tls) {
  std::vector<std::pair<std::string, std::string>> h = {
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
      {"Cross-Origin-Resource-Policy", "same-origin"},
      {"Permissions-Policy",
       "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
       "microphone=(), payment=(), usb=()"},
  };
  if (tls) h.emplace_back("Strict-Transport-Security", "max-age=31536000");
  return h;
}

AggregatorJob::Stats Sum(const AggregatorJob::Stats& a, const AggregatorJob::Stats& b) {
  AggregatorJob::Stats s = b;  // the newer job's waiting inputs and positions
  for (const auto& [k, n] : a.records) s.records[k] += n;
  s.figures += a.figures;
  s.revisions += a.revisions;
  s.commits += a.commits;
  s.unreadable += a.unreadable;
  s.recoveries = std::max(a.recoveries, b.recoveries);
  if (s.positions.empty()) s.positions = a.positions;
  return s;
}

kafka::ClientOptions KafkaClient(const AggregatorConfig& c) {
  kafka::ClientOptions o;
  o.bootstrap_servers = c.bootstrap_servers;
  o.client_id = absl::StrCat("polder-aggregator-", c.id);
  o.properties = c.kafka_properties;
  o.request_timeout = c.kafka_request_timeout;
  return o;
}

}  // namespace

nlohmann::json AggregatorServer::Ports::ToJson() const {
  return {{"api_port", api}, {"ops_port", ops}};
}

// The national job as a role: held, it runs; given up, it commits what is pending and stops.
class AggregatorServer::JobRole : public replica::Role {
 public:
  explicit JobRole(AggregatorServer* server) : server_(server) {}
  void Start() override { server_->StartJob(); }
  void Stop(bool lost) override {
    (void)lost;  // a lost job's last commit is fenced by the new holder
    server_->StopJob("elsewhere");
  }

 private:
  AggregatorServer* const server_;
};

AggregatorServer::AggregatorServer(AggregatorConfig config, kafka::ClientFactory& kafka,
                                   BeforeCommit hook)
    : config_(std::move(config)), kafka_(kafka), before_commit_(std::move(hook)) {}

absl::StatusOr<std::unique_ptr<AggregatorServer>> AggregatorServer::Start(
    AggregatorConfig config, kafka::ClientFactory& kafka, BeforeCommit before_commit) {
  std::unique_ptr<AggregatorServer> server(
      new AggregatorServer(std::move(config), kafka, std::move(before_commit)));
  RETURN_IF_ERROR(server->Build());
  return server;
}

absl::Status AggregatorServer::Build() {
  std::error_code ec;
  std::filesystem::create_directories(config_.state_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("aggregator.state_dir ", config_.state_dir, ": ", ec.message()));
  }
  // Trust: the directory and who the registry and API clients are.
  if (!config_.development_mode) {
    ASSIGN_OR_RETURN(directory_, trust::OpenDirectoryStore(config_.trust), _.Prepend("trust: "));
    tls::IdentityChecker::Options io;
    io.federation = config_.federation;
    io.trust_bundle_path = config_.trust_bundle_file;
    io.crl_dir = config_.crl_dir;
    trust::DirectoryStore* dir = directory_.get();
    io.directory = [dir] { return dir->current(); };
    ASSIGN_OR_RETURN(checker_, tls::IdentityChecker::Create(io), _.Prepend("tls: "));
  } else {
    log::Warning("DEVELOPMENT MODE: plaintext API and registry connection, no identities");
  }

  // The registry, for the output schema's id (cached on disk: a restart does not need it).
  server::ChannelSecurity security;
  security.development_mode = config_.development_mode;
  security.files = tls::TlsFiles{config_.cert_file, config_.key_file, config_.trust_bundle_file};
  security.checker = checker_;
  security.expected_peer_id = config_.registry_peer;
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> creds,
                   server::GrpcChannelCredentials(security));
  auto source = std::make_shared<node::RegistryGrpcSource>(
      grpc::CreateChannel(config_.registry_address, creds), config_.registry_timeout);
  ASSIGN_OR_RETURN(schemas_,
                   node::SchemaCache::Open(config_.state_dir + "/schema-cache.json", source));

  // The read API.
  api_handlers_ = std::make_unique<ReadApi>(
      config_.views, [this] { return Figures(); },
      [this] {
        absl::MutexLock lock(&feed_quality_mu_);
        return feed_quality_;
      });
  ASSIGN_OR_RETURN(server::HostPort address,
                   server::ParseHostPort(config_.api_address, "aggregator.api_address"));
  http::HttpsOptions ho;
  ho.files = tls::TlsFiles{config_.ApiCertFile(), config_.ApiKeyFile(), config_.trust_bundle_file};
  ho.bind_address = address.host;
  ho.port = address.port;
  ho.max_body_bytes = 0;  // GET only
  ho.max_connections = static_cast<int>(config_.api_max_connections);
  ho.max_connections_per_source = static_cast<int>(config_.api_max_connections_per_source);
  ho.per_source_limits = config_.api_per_source_limits;
  ho.listener = "api";
  ho.plaintext_development = config_.development_mode;
  ho.client_auth =
      config_.api_client_auth == "required" ? http::ClientAuth::kRequired : http::ClientAuth::kNone;
  ho.on_response = [this](const http::HttpExchange& e) { metrics_.RecordApi(e); };
  ho.max_streams = static_cast<int>(config_.api_max_streams);
  ho.max_streams_per_source = static_cast<int>(config_.api_max_streams_per_source);
  ho.response_headers = SecurityHeaders(!config_.development_mode);
  ASSIGN_OR_RETURN(api_, http::HttpsServer::Create(
                             ho, ho.client_auth == http::ClientAuth::kNone ? nullptr : checker_));
  api_handlers_->Register(api_.get());
  LiveFeed::Options live;
  live.push_interval = config_.api_push_interval;
  live.heartbeat_interval = config_.api_heartbeat_interval;
  live_ = std::make_unique<LiveFeed>(api_handlers_.get(), live);
  live_->Register(api_.get());
  if (config_.dashboard) {
    dashboard_ = std::make_unique<http::StaticSite>(DashboardFiles(),
                                                    std::map<std::string, std::string>{
                                                        {"/", "/dashboard/index.html"},
                                                        {"/dashboard/", "/dashboard/index.html"},
                                                    });
    dashboard_->Register(api_.get());
  }

  // Replicas: the committed figures for when another replica holds the job, and the group.
  replica_id_ = config_.replica_id.empty() ? replica::HostReplicaId() : config_.replica_id;
  {
    FiguresFollower::Options fo;
    fo.views = config_.views;
    fo.changelog_topic = config_.changelog_topic;
    fo.consumer.client = KafkaClient(config_);
    fo.kafka_timeout = config_.kafka_timeout;
    ASSIGN_OR_RETURN(follower_, FiguresFollower::Start(fo, kafka_));
  }
  {
    replica::RoleGroup::Options ro;
    ro.group.client = KafkaClient(config_);
    ro.group.group_id = absl::StrCat("polder-aggregator-", config_.id, "-roles");
    ro.group.instance_id = replica_id_;
    ro.group.session_timeout = config_.replica_session_timeout;
    ro.group.heartbeat_interval = config_.replica_heartbeat_interval;
    ro.topic = config_.roles_topic;
    ro.partitions = AggregatorConfig::kRolesPartitions;
    roles_ = std::make_unique<replica::RoleGroup>(ro);
    job_role_ = std::make_unique<JobRole>(this);
    roles_->Add(kJobRole, "job", job_role_.get());
  }

  // Ops.
  readiness_.AddCheck("figures", [this]() -> absl::Status {
    if (recovered_ || follower_->caught_up()) return absl::OkStatus();
    return absl::UnavailableError(
        "the national figures are not loaded yet (the job has not recovered them and the "
        "changelog was not read to its end)");
  });
  if (!config_.development_mode) {
    certificate_ = std::make_unique<server::CertificateExpiry>(config_.cert_file);
    readiness_.AddCheck("certificate", [this] { return certificate_->Check(absl::Now()); });
  }
  ASSIGN_OR_RETURN(ops_, server::OpsServer::Listen(
                             config_.ops_address, "aggregator.ops_address", &readiness_,
                             [this] { return StatusPage(); }, [this] { return MetricsText(); }));

  joiner_ = std::thread([this] { JoinWhenTopicsExist(); });
  live_->Start();
  RETURN_IF_ERROR(api_->Start());
  log::Info("polder-aggregator serving", {{"id", config_.id},
                                          {"views", static_cast<int64_t>(config_.views.size())},
                                          {"api_port", api_->port()},
                                          {"api_client_auth", config_.api_client_auth},
                                          {"ops_port", ops_->port()},
                                          {"tls", !config_.development_mode}});

  // Upkeep: memory freed by bursts goes back, the certificate and directory are re-read.
  upkeep_.Add("memory", absl::Seconds(2), [] { memory::ReturnFreeMemory(); });
  upkeep_.Add("feed quality", config_.feed_quality_interval, [this] { RefreshFeedQuality(); });
  upkeep_.Add("trust files", absl::Seconds(30), [this] {
    if (certificate_ != nullptr) certificate_->Refresh();
    if (directory_ != nullptr) trust::RefreshDirectory(*directory_, config_.trust);
  });
  upkeep_.Start();
  return absl::OkStatus();
}

absl::Status AggregatorServer::EnsureTopics() {
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::Admin> admin, kafka_.NewAdmin(KafkaClient(config_)));
  auto ensure = [&](const kafka::TopicSpec& spec, bool compacted) -> absl::Status {
    absl::Status created = admin->CreateTopic(spec, config_.kafka_timeout);
    if (created.ok()) {
      log::Info("topic created", {{"topic", spec.name}});
      return absl::OkStatus();
    }
    if (!absl::IsAlreadyExists(created)) return created;
    ASSIGN_OR_RETURN(kafka::TopicDescription d,
                     admin->DescribeTopic(spec.name, config_.kafka_timeout));
    if (d.partitions != 1) {
      return absl::FailedPreconditionError(absl::StrCat("topic ", spec.name, " has ", d.partitions,
                                                        " partitions; the aggregator writes one"));
    }
    auto policy = d.configs.find("cleanup.policy");
    const bool is_compacted =
        policy != d.configs.end() && policy->second.value.find("compact") != std::string::npos;
    if (compacted && !is_compacted) {
      return absl::FailedPreconditionError(
          absl::StrCat("topic ", spec.name, " must be compacted (cleanup.policy=compact)"));
    }
    if (!compacted && is_compacted) {
      return absl::FailedPreconditionError(absl::StrCat(
          "topic ", spec.name,
          " is compacted: it would lose every revision but the last (cleanup.policy=delete)"));
    }
    return absl::OkStatus();
  };
  for (const NationalViewSpec& v : config_.views) {
    // Every revision stays in the log: nothing expires.
    RETURN_IF_ERROR(ensure({NationalTopic(v.dataset, v.view),
                            1,
                            config_.replication_factor,
                            {{"cleanup.policy", "delete"}, {"retention.ms", "-1"}}},
                           false));
  }
  RETURN_IF_ERROR(ensure(
      {config_.changelog_topic, 1, config_.replication_factor, {{"cleanup.policy", "compact"}}},
      true));
  // The roles topic: only its partitions matter (the group assigns them).
  absl::Status roles =
      admin->CreateTopic({config_.roles_topic,
                          AggregatorConfig::kRolesPartitions,
                          config_.replication_factor,
                          {{"cleanup.policy", "delete"}, {"retention.ms", "3600000"}}},
                         config_.kafka_timeout);
  if (!roles.ok() && !absl::IsAlreadyExists(roles)) return roles;
  ASSIGN_OR_RETURN(kafka::TopicDescription d,
                   admin->DescribeTopic(config_.roles_topic, config_.kafka_timeout));
  if (d.partitions != AggregatorConfig::kRolesPartitions) {
    return absl::FailedPreconditionError(absl::StrCat(
        "topic ", config_.roles_topic, " has ", d.partitions, " partitions; the roles topic has ",
        AggregatorConfig::kRolesPartitions,
        " (a role's partition follows from the count): delete it while every replica is stopped, "
        "or name another kafka.roles_topic"));
  }
  return absl::OkStatus();
}

void AggregatorServer::JoinWhenTopicsExist() {
  absl::Duration backoff = absl::Seconds(1);
  while (!stop_) {
    absl::Status s = EnsureTopics();
    if (s.ok()) s = roles_->Join(kafka_);
    if (s.ok()) return;
    {
      absl::MutexLock lock(&mu_);
      last_error_ = std::string(s.message());
    }
    log::Error("aggregator topics or roles group not ready; retrying",
               {{"error", std::string(s.message())}, {"retry_in", absl::FormatDuration(backoff)}});
    absl::MutexLock lock(&wake_mu_);
    wake_mu_.AwaitWithTimeout(absl::Condition(&wake_), backoff);
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

void AggregatorServer::StartJob() {
  if (supervisor_.joinable()) supervisor_.join();  // a run that ended fenced
  run_stop_ = false;
  {
    absl::MutexLock lock(&wake_mu_);
    wake_ = stop_;
  }
  {
    absl::MutexLock lock(&mu_);
    state_ = "starting";
  }
  supervisor_ = std::thread([this] { Supervise(); });
}

void AggregatorServer::StopJob(const std::string& final_state) {
  run_stop_ = true;
  {
    absl::MutexLock lock(&wake_mu_);
    wake_ = true;
  }
  if (supervisor_.joinable()) supervisor_.join();
  absl::MutexLock lock(&mu_);
  state_ = final_state;
}

absl::StatusOr<AggregatorJob::Options> AggregatorServer::JobOptions() {
  ASSIGN_OR_RETURN(int32_t output_id, schemas_->IdOf(kNationalFigureSubject, -1),
                   _.Prepend(absl::StrCat(kNationalFigureSubject,
                                          " (registered by `polderctl federation bootstrap`): ")));
  AggregatorJob::Options o;
  o.id = config_.id;
  o.federation = config_.federation;
  o.views = config_.views;
  o.changelog_topic = config_.changelog_topic;
  o.output_schema_id = output_id;
  o.producer.client = KafkaClient(config_);
  o.producer.transaction_timeout = config_.transaction_timeout;
  o.producer.delivery_timeout = config_.kafka_timeout;
  o.producer.linger = absl::ZeroDuration();  // each commit flushes at once
  o.producer.transaction_spacing = absl::Milliseconds(5);
  o.consumer.client = KafkaClient(config_);
  o.commit_interval = config_.commit_interval;
  o.kafka_timeout = config_.kafka_timeout;
  o.before_commit = before_commit_;
  return o;
}

void AggregatorServer::Supervise() {
  absl::Duration backoff = absl::Seconds(1);
  while (!run_stop_) {
    absl::Status ended = EnsureTopics();
    std::shared_ptr<AggregatorJob> job;
    if (ended.ok()) {
      absl::StatusOr<AggregatorJob::Options> options = JobOptions();
      if (options.ok()) {
        absl::StatusOr<std::unique_ptr<AggregatorJob>> started =
            AggregatorJob::Start(*std::move(options), kafka_);
        if (started.ok()) {
          job = *std::move(started);
        } else {
          ended = started.status();
        }
      } else {
        ended = options.status();
      }
    }
    if (job != nullptr) {
      {
        absl::MutexLock lock(&mu_);
        job_ = job;
        state_ = "running";
        last_error_.clear();
      }
      recovered_ = true;
      backoff = absl::Seconds(1);
      while (!run_stop_) {
        ended = job->Step();
        if (!ended.ok()) break;
      }
      if (ended.ok()) ended = job->Commit();  // stopping: what is pending
      absl::MutexLock lock(&mu_);
      ended_ = Sum(ended_, job->stats());
      last_figures_ = job->figures();
      job_.reset();
    }
    if (run_stop_ && ended.ok()) break;
    if (kafka::IsFenced(ended)) {
      // Another replica holds the job now: never initialise over it (ADR 0021 §3). The group
      // stops this role and, if it gives the job back, starts it anew.
      {
        absl::MutexLock lock(&mu_);
        state_ = "fenced";
        last_error_ = std::string(ended.message());
      }
      log::Error("national job fenced: another replica holds it; waiting for the group",
                 {{"error", std::string(ended.message())}});
      roles_->Fenced(kJobRole);
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      state_ = "retrying";
      last_error_ = std::string(ended.message());
      ++restarts_;
    }
    log::Error("aggregator stopped; starting again", {{"error", std::string(ended.message())},
                                                      {"retry_in", absl::FormatDuration(backoff)}});
    job.reset();
    absl::MutexLock lock(&wake_mu_);
    wake_mu_.AwaitWithTimeout(absl::Condition(&wake_), backoff);
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

void AggregatorServer::RefreshFeedQuality() {
  // Bounded: the upkeep thread also re-reads the trust files. A topic that does not exist yet
  // (the national node wrote none so far) is no error.
  const absl::Duration timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<kafka::Admin>> admin = kafka_.NewAdmin(KafkaClient(config_));
  if (!admin.ok()) return;
  absl::StatusOr<kafka::TopicDescription> topic =
      (*admin)->DescribeTopic(config_.feed_quality_topic, timeout);
  if (!topic.ok()) {
    if (!absl::IsNotFound(topic.status())) {
      log::Warning("feed quality not read", {{"error", std::string(topic.status().message())}});
    }
    return;
  }
  kafka::ConsumerOptions o;
  o.client = KafkaClient(config_);
  std::map<std::string, nlohmann::json> latest;
  absl::StatusOr<int64_t> read =
      kafka::ReadToEnd(kafka_, o, config_.feed_quality_topic, 0, 0, timeout,
                       [&](const kafka::ConsumedRecord& r) -> absl::Status {
                         if (!r.key.has_value()) return absl::OkStatus();
                         if (r.tombstone) {
                           latest.erase(*r.key);
                           return absl::OkStatus();
                         }
                         absl::StatusOr<nlohmann::json> j = json_input::Parse(r.value);
                         if (j.ok() && j->is_object()) {
                           latest[*r.key] = *std::move(j);  // else: skipped
                         }
                         return absl::OkStatus();
                       });
  if (!read.ok()) {
    log::Warning("feed quality not read", {{"error", std::string(read.status().message())}});
    return;
  }
  absl::MutexLock lock(&feed_quality_mu_);
  feed_quality_ = std::move(latest);
}

std::shared_ptr<const AggregatorJob::Figures> AggregatorServer::Figures() const {
  {
    absl::MutexLock lock(&mu_);
    if (job_ != nullptr) return job_->figures();
  }
  // Not running here: what the holder committed, read back from the changelog.
  if (std::shared_ptr<const AggregatorJob::Figures> f = follower_->figures(); f != nullptr) {
    return f;
  }
  absl::MutexLock lock(&mu_);
  return last_figures_;
}

nlohmann::json AggregatorServer::StatusPage() const {
  AggregatorJob::Stats stats;
  nlohmann::json job;
  {
    absl::MutexLock lock(&mu_);
    stats = job_ != nullptr ? Sum(ended_, job_->stats()) : ended_;
    job = {{"state", state_}, {"error", last_error_}, {"restarts", restarts_}};
  }
  job["records"] = stats.records;
  job["records"]["unreadable"] = stats.unreadable;
  job["figures"] = stats.figures;
  job["revisions"] = stats.revisions;
  job["commits"] = stats.commits;
  job["inputs_waiting"] = stats.waiting_inputs;
  job["input_positions"] = stats.positions;
  std::shared_ptr<const AggregatorJob::Figures> figures = Figures();
  nlohmann::json views = nlohmann::json::array();
  for (const NationalViewSpec& v : config_.views) {
    nlohmann::json entry = {{"dataset", v.dataset},
                            {"view", v.view},
                            {"topic", NationalTopic(v.dataset, v.view)},
                            {"cities", v.cities},
                            {"windows", 0}};
    if (figures != nullptr) {
      auto it = figures->find(absl::StrCat(v.dataset, "/", v.view));
      if (it != figures->end() && !it->second.empty()) {
        const national::v1::NationalFigure& latest = it->second.rbegin()->second.back();
        entry["windows"] = it->second.size();
        entry["latest"] = ReadApi::FigureJson(latest);
      }
    }
    views.push_back(std::move(entry));
  }
  nlohmann::json replica = {{"id", replica_id_},
                            {"job_held", roles_->Holds(kJobRole)},
                            {"roles_joined", roles_->joined()},
                            {"role_rebalances", roles_->rebalances()},
                            {"roles_fenced", roles_->fenced_counts()},
                            {"follower_caught_up", follower_->caught_up()}};
  return {{"service", "polder-aggregator"},
          {"id", config_.id},
          {"replica", std::move(replica)},
          {"job", std::move(job)},
          {"views", std::move(views)},
          {"feed_quality", FeedQualityJson()},
          {"api", {{"port", api_->port()}, {"client_auth", config_.api_client_auth}}}};
}

nlohmann::json AggregatorServer::FeedQualityJson() const {
  absl::MutexLock lock(&feed_quality_mu_);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, q] : feed_quality_) out[key] = q;
  return out;
}

std::string AggregatorServer::MetricsText() {
  {
    absl::MutexLock lock(&mu_);
    metrics_.SetJob(job_ != nullptr, restarts_,
                    job_ != nullptr ? Sum(ended_, job_->stats()) : ended_);
  }
  if (std::shared_ptr<const AggregatorJob::Figures> f = Figures(); f != nullptr) {
    metrics_.SetFigures(*f);
  }
  {
    absl::MutexLock lock(&feed_quality_mu_);
    metrics_.SetFeedQuality(feed_quality_);
  }
  metrics_.SetReplica(roles_->held_counts(), roles_->rebalances(), roles_->fenced_counts());
  metrics_.SetHttpListener("api", api_->stats());
  metrics_.SetHttpListener("ops", ops_->stats());
  return metrics_.Serialize();
}

AggregatorServer::Ports AggregatorServer::ports() const {
  return Ports{api_ == nullptr ? 0 : api_->port(), ops_ == nullptr ? 0 : ops_->port()};
}

void AggregatorServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  upkeep_.Stop();
  if (api_ != nullptr) api_->Stop();
  if (live_ != nullptr) live_->Stop();
  if (ops_ != nullptr) ops_->Stop();
  stop_ = true;
  {
    absl::MutexLock lock(&wake_mu_);
    wake_ = true;
  }
  if (joiner_.joinable()) joiner_.join();
  // Leaving the group stops the job if held here (it commits what is pending) and hands it over.
  if (roles_ != nullptr) roles_->Leave();
  StopJob("stopped");
  follower_.reset();
}

AggregatorServer::~AggregatorServer() { Stop(); }

}  // namespace aggregator
}  // namespace polder
