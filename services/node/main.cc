// polder-node: a city's node: authenticated, validated, durable publishing of the city's
// datasets into its own Kafka (ingest), sharing them with peer cities and mirroring theirs
// (federation), the read-only schema endpoint, health, status and metrics.
//
//   polder-node --config node.yaml [--ready_file ports.json]
//
// Listeners: gRPC ingest (polder.node.v1.IngestService, grpc.health.v1.Health), HTTPS ingest
// (POST /v1/datasets/{dataset}/records), the Confluent schema endpoint (server TLS), the
// federation (mutual TLS, when configured), and the plain-HTTP ops listener (/metrics, /livez,
// /readyz, /statusz). Every listener authenticates before it parses and bounds what an
// unauthenticated connection costs (ADR 0011). SIGTERM/SIGINT: stop taking requests, finish
// those in flight (drain_timeout), commit what is queued, exit 0.
#include <signal.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/http/https_server.h"
#include "common/kafka/admin.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/log/log.h"
#include "common/memory/trim.h"
#include "common/server/grpc_reflection.h"
#include "common/server/ops_server.h"
#include "common/status/status_macros.h"
#include "common/tls/grpc_tls.h"
#include "common/tls/identity.h"
#include "common/tls/pki.h"
#include "common/trust/keys.h"
#include "common/trust/trust_config.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "nlohmann/json.hpp"
#include "services/node/federation/audit_log.h"
#include "services/node/federation/contracts.h"
#include "services/node/federation/federation_service.h"
#include "services/node/federation/receipts.h"
#include "services/node/federation/subscriber.h"
#include "services/node/ingest/auth.h"
#include "services/node/ingest/ingest.h"
#include "services/node/ingest/publisher.h"
#include "services/node/ingest/transports.h"
#include "services/node/node_config.h"
#include "services/node/node_metrics.h"
#include "services/node/schema_cache/registry_source.h"
#include "services/node/schema_cache/schema_cache.h"
#include "services/node/schema_cache/schema_endpoint.h"
#include "services/node/topics.h"

ABSL_FLAG(std::string, config, "", "Path of the YAML configuration (required).");
ABSL_FLAG(std::string, ready_file, "", "Written with the listening ports once the node serves.");

namespace polder {
namespace node {
namespace {

// Protobuf reports what it refused in client input (invalid UTF-8 in a string field, ...):
// logged at most 10 times a second, the rest counted, so input cannot flood the log.
void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  static log::RateLimit limit(10);
  int64_t suppressed = 0;
  if (!limit.Allow(&suppressed)) return;
  log::Write(
      level >= google::protobuf::LOGLEVEL_ERROR ? log::Severity::kError : log::Severity::kWarning,
      message,
      {{"source", "libprotobuf"},
       {"file", file},
       {"line", line},
       {"suppressed_before", suppressed}});
}

std::pair<std::string, int> HostPort(const std::string& address) {
  size_t colon = address.rfind(':');
  return {address.substr(0, colon), std::stoi(address.substr(colon + 1))};
}

// Retries `fn` while Kafka is unavailable at start-up, up to `limit`.
template <typename Fn>
auto RetryWhileUnavailable(const char* what, absl::Duration limit, Fn fn) -> decltype(fn()) {
  const absl::Time deadline = absl::Now() + limit;
  while (true) {
    auto result = fn();
    if (result.ok() || result.status().code() != absl::StatusCode::kUnavailable ||
        absl::Now() > deadline) {
      return result;
    }
    log::Warning("waiting for Kafka",
                 {{"step", what}, {"error", std::string(result.status().message())}});
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

absl::Status Run(NodeConfig config) {
  log::SetComponent("polder-node");
  google::protobuf::SetLogHandler(&ProtobufLog);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::filesystem::create_directories(config.state_dir);
  const SizeLimits limits = DeriveSizeLimits(config);

  // Trust: the federation (registry client, server certificates) and the ingest identities.
  std::unique_ptr<trust::DirectoryStore> directory;
  std::shared_ptr<tls::IdentityChecker> federation_checker, ingest_checker;
  if (!config.development_mode) {
    ASSIGN_OR_RETURN(directory, trust::OpenDirectoryStore(config.trust), _.Prepend("trust: "));
    tls::IdentityChecker::Options fo;
    fo.federation = config.federation;
    fo.trust_bundle_path = config.trust_bundle_file;
    fo.crl_dir = config.crl_dir;
    trust::DirectoryStore* dir = directory.get();
    fo.directory = [dir] { return dir->current(); };
    ASSIGN_OR_RETURN(federation_checker, tls::IdentityChecker::Create(fo), _.Prepend("tls: "));
    tls::IdentityChecker::Options io;
    io.federation =
        config.ingest_trust_domain.empty() ? config.federation : config.ingest_trust_domain;
    io.trust_bundle_path = config.ingest_client_ca_file.empty() ? config.trust_bundle_file
                                                                : config.ingest_client_ca_file;
    io.crl_dir = config.ingest_crl_dir;
    io.require_directory = false;
    ASSIGN_OR_RETURN(ingest_checker, tls::IdentityChecker::Create(io), _.Prepend("ingest: "));
  } else {
    log::Warning(
        "DEVELOPMENT MODE: plaintext listeners, no identities, every caller may publish every "
        "dataset");
  }

  // Schemas: the registry through the node's cache.
  std::shared_ptr<grpc::ChannelCredentials> registry_creds;
  if (config.development_mode) {
    registry_creds =
        grpc::InsecureChannelCredentials();  // loopback development mode only (node_config)
  } else {
    tls::TlsFiles files{config.cert_file, config.key_file, config.trust_bundle_file};
    ASSIGN_OR_RETURN(registry_creds,
                     tls::MakeChannelCredentials(files, federation_checker, config.registry_peer));
  }
  auto source = std::make_shared<RegistryGrpcSource>(
      grpc::CreateChannel(config.registry_address, registry_creds), config.registry_timeout);
  ASSIGN_OR_RETURN(std::unique_ptr<SchemaCache> schemas,
                   SchemaCache::Open(config.state_dir + "/schema-cache.json", source));
  std::vector<std::string> subjects;
  for (const DatasetConfig& d : config.datasets) subjects.push_back(d.subject);
  schemas->SetServedSubjects(subjects);

  // Contracts (federation): read before the topics, since a mirror keeps what its contract allows.
  std::unique_ptr<ContractBook> contracts;
  if (config.sharing.enabled) {
    trust::DirectoryStore* dir = directory.get();
    contracts = std::make_unique<ContractBook>(config.peer_id, config.sharing.contracts_dir,
                                               config.sharing.revocations_dir,
                                               [dir] { return dir->current(); });
    for (SubscriptionConfig& sub : config.sharing.subscriptions) {
      if (std::optional<trust::Contract> c = contracts->Find(sub.contract))
        sub.mirror_retention = c->mirror_retention;
    }
  }

  // Kafka: topics, then the transactional publisher.
  kafka::ClientOptions client;
  client.bootstrap_servers = config.bootstrap_servers;
  client.client_id = absl::StrCat("polder-node-", config.peer_id);
  client.properties = config.kafka_properties;
  client.request_timeout = config.kafka_request_timeout;
  // The one place the node names an implementation: every Kafka client comes from here.
  kafka::RdKafkaClientFactory kafka_clients;
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::Admin> admin, kafka_clients.NewAdmin(client));
  ASSIGN_OR_RETURN(TopicReport topics, RetryWhileUnavailable("topics", absl::Minutes(2), [&] {
                     return EnsureTopics(*admin, config, config.kafka_request_timeout);
                   }));
  for (const std::string& t : topics.created) log::Info("created topic", {{"topic", t}});
  for (const std::string& w : topics.warnings) log::Warning("topic check", {{"problem", w}});
  if (!topics.errors.empty()) {
    for (const std::string& e : topics.errors) log::Error("topic check", {{"problem", e}});
    return absl::FailedPreconditionError(
        absl::StrCat("Kafka topics do not fit this node: ", absl::StrJoin(topics.errors, "; ")));
  }
  Publisher::Options po;
  po.producer.client = client;
  po.producer.transactional_id = config.transactional_id;
  po.producer.delivery_timeout = config.delivery_timeout;
  po.producer.transaction_timeout = config.transaction_timeout;
  po.producer.max_request_bytes = limits.producer_max_request_bytes;
  po.producer.batch_bytes = limits.producer_batch_bytes;
  po.keys_consumer.client = client;
  po.keys_consumer.max_partition_fetch_bytes = limits.consumer_max_partition_fetch_bytes;
  po.keys_topic = config.keys_topic;
  po.idempotency_window = config.idempotency_window;
  po.publish_timeout = config.publish_timeout;
  ASSIGN_OR_RETURN(std::unique_ptr<Publisher> publisher,
                   RetryWhileUnavailable("ingest producer", absl::Minutes(2),
                                         [&] { return Publisher::Start(po, kafka_clients); }));

  ASSIGN_OR_RETURN(std::unique_ptr<IngestAuthenticator> auth,
                   IngestAuthenticator::Create(config.identities, config.development_mode));
  NodeMetrics metrics;
  Ingest ingest(config, schemas.get(), publisher.get(), auth.get(), &metrics);

  // Readiness: Kafka answers, the producer is up and every dataset has a schema.
  std::atomic<bool> schemas_ready{false};
  std::atomic<bool> kafka_reachable{true};
  auto refresh = [&] {
    absl::Status s = schemas->Refresh(subjects);
    if (!s.ok()) log::Warning("schema refresh", {{"error", std::string(s.message())}});
    bool all = true;
    for (const std::string& subject : subjects) {
      // Known from an earlier refresh or the persisted cache.
      all &= schemas->IdOf(subject, -1).ok();
    }
    schemas_ready = all;
  };
  refresh();

  // gRPC: ingest and health.
  grpc::EnableDefaultHealthCheckService(true);
  IngestGrpcService grpc_service(&ingest);
  std::shared_ptr<grpc::ServerCredentials> grpc_creds;
  tls::TlsFiles ingest_files{config.cert_file, config.key_file,
                             config.ingest_client_ca_file.empty() ? config.trust_bundle_file
                                                                  : config.ingest_client_ca_file};
  if (config.development_mode) {
    grpc_creds = grpc::InsecureServerCredentials();  // loopback development mode only (node_config)
  } else {
    // A caller without a certificate is authenticated by its token in gRPC's auth filter: an
    // unauthenticated call (health included) never reaches a handler or holds a thread.
    IngestAuthenticator* a = auth.get();
    ASSIGN_OR_RETURN(
        grpc_creds,
        tls::MakeServerCredentials(ingest_files, ingest_checker, tls::ClientCertificates::kOptional,
                                   [a](const std::string& authorization) {
                                     return a->Authenticate("", authorization).status();
                                   }));
  }
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(config.grpc_address, grpc_creds, &grpc_port);
  builder.RegisterService(&grpc_service);
  // Reflection on the ingest port only (not on the federation port), behind its authentication.
  server::AddReflection(&builder);
  builder.SetMaxReceiveMessageSize(static_cast<int>(limits.grpc_max_message_bytes));
  tls::ApplyServerLimits(&builder, "ingest", tls::GrpcServerLimits{});
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr || grpc_port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", config.grpc_address));
  }
  auto set_health = [&](bool serving) {
    grpc_server->GetHealthCheckService()->SetServingStatus(serving);
  };

  // HTTPS ingest.
  http::HttpsOptions ho;
  ho.files = ingest_files;
  std::tie(ho.bind_address, ho.port) = HostPort(config.http_address);
  ho.max_body_bytes = static_cast<size_t>(limits.http_max_body_bytes);
  ho.plaintext_development = config.development_mode;
  ho.client_auth = http::ClientAuth::kOptional;
  ASSIGN_OR_RETURN(std::unique_ptr<http::HttpsServer> http_server,
                   http::HttpsServer::Create(ho, ingest_checker));
  RegisterIngestRoutes(http_server.get(), &ingest, config.development_mode);
  RETURN_IF_ERROR(http_server->Start());

  // The schema endpoint: server TLS only.
  http::HttpsOptions so;
  so.files = tls::TlsFiles{config.cert_file, config.key_file, config.trust_bundle_file};
  std::tie(so.bind_address, so.port) = HostPort(config.schema_address);
  so.plaintext_development = config.development_mode;
  so.client_auth = http::ClientAuth::kNone;
  so.refusal_formatter = &SchemaEndpointRefusal;
  ASSIGN_OR_RETURN(std::unique_ptr<http::HttpsServer> schema_server,
                   http::HttpsServer::Create(so, nullptr));
  RegisterSchemaRoutes(schema_server.get(), schemas.get());
  RETURN_IF_ERROR(schema_server->Start());

  // Federation: share this node's datasets, mirror others' (mutual TLS with federation peers).
  std::unique_ptr<AuditLog> audit_log;
  std::unique_ptr<ReceiptSigner> receipt_signer;
  std::unique_ptr<FederationService> federation_service;
  std::unique_ptr<grpc::Server> federation_server;
  int federation_port = 0;
  std::vector<std::unique_ptr<Subscriber>> subscribers;
  if (config.sharing.enabled) {
    trust::DirectoryStore* dir = directory.get();
    ASSIGN_OR_RETURN(trust::PrivateKey signing_key,
                     trust::PrivateKey::ReadFile(config.sharing.signing_key_file),
                     _.Prepend("federation.signing_key_file: "));
    receipt_signer = std::make_unique<ReceiptSigner>(config.peer_id, std::move(signing_key),
                                                     [dir] { return dir->current(); });
    kafka::ProducerOptions audit_producer;
    audit_producer.client = client;
    audit_producer.max_request_bytes = limits.producer_max_request_bytes;
    audit_producer.batch_bytes = limits.producer_batch_bytes;
    audit_producer.delivery_timeout = config.delivery_timeout;
    // One acknowledged write per offered batch, waited for before sending: lingering only adds
    // latency (5 ms per batch at librdkafka's default).
    audit_producer.linger = absl::ZeroDuration();
    kafka::ConsumerOptions audit_consumer;
    audit_consumer.client = client;
    AuditLog::Options audit_options;
    audit_options.topic = config.sharing.audit_topic;
    audit_options.index_topic = config.sharing.audit_index_topic;
    ASSIGN_OR_RETURN(
        audit_log, AuditLog::Create(kafka_clients, audit_producer, audit_consumer, audit_options));
    FederationService::Options fo;
    fo.self = config.peer_id;
    for (const DatasetConfig& d : config.datasets) {
      fo.datasets[d.id] = {d.id,          config.TopicOf(d), d.partitions,   d.epoch,
                           d.description, d.licence,         d.owner_contact};
    }
    fo.consumer.client = client;
    // Each stream's source prefetch (librdkafka queues up to 64 MiB per consumer by default):
    // federation.source_prefetch_bytes. librdkafka 2.0.2 stops fetching for up to a second each
    // time that queue is full, so it must hold about that long of reading: at 2 MiB the provider
    // read ~22k records/s, at 8 MiB ~55k (bench/federation_bench).
    fo.consumer.client.properties["queued.max.messages.kbytes"] =
        std::to_string(std::max<int64_t>(1, config.sharing.source_prefetch_bytes / 1024));
    fo.max_unacknowledged_bytes = config.sharing.max_unacknowledged_bytes;
    fo.consumer.max_partition_fetch_bytes = limits.consumer_max_partition_fetch_bytes;
    fo.max_batch_records = config.sharing.max_batch_records;
    fo.max_batch_bytes = config.sharing.max_batch_bytes;
    fo.heartbeat_interval = config.sharing.heartbeat_interval;
    fo.recheck_interval = config.sharing.recheck_interval;
    fo.kafka_timeout = config.kafka_request_timeout;
    fo.max_streams_per_peer = config.sharing.max_streams_per_peer;
    fo.checker = federation_checker;
    SchemaCache* cache = schemas.get();
    std::map<std::string, std::string> subject_of;
    for (const DatasetConfig& d : config.datasets) subject_of[d.id] = d.subject;
    fo.schema_version = [cache, subject_of](const std::string& dataset,
                                            int32_t id) -> absl::StatusOr<int64_t> {
      auto s = subject_of.find(dataset);
      if (s == subject_of.end())
        return absl::NotFoundError(absl::StrCat("dataset ", dataset, " is not this node's"));
      return cache->VersionUnder(s->second, id);
    };
    federation_service = std::make_unique<FederationService>(fo, kafka_clients, contracts.get(),
                                                             audit_log.get(), receipt_signer.get());
    tls::TlsFiles federation_files{config.cert_file, config.key_file, config.trust_bundle_file};
    ASSIGN_OR_RETURN(auto federation_creds,
                     tls::MakeServerCredentials(federation_files, federation_checker));
    grpc::ServerBuilder fb;
    fb.AddListeningPort(config.sharing.address, federation_creds, &federation_port);
    fb.RegisterService(federation_service.get());
    // A batch message: up to max_batch_bytes of keys, values and headers, plus Protobuf framing
    // per record and header (generously 256 bytes a record). The subscriber accepts 8 MiB.
    const FederationConfig& fc = config.sharing;
    fb.SetMaxSendMessageSize(static_cast<int>(std::min<int64_t>(
        fc.max_batch_bytes + int64_t{fc.max_batch_records} * 256 + (64 << 10), 8 << 20)));
    fb.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                          static_cast<int>(absl::ToInt64Milliseconds(fc.keepalive_time)));
    fb.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                          static_cast<int>(absl::ToInt64Milliseconds(fc.keepalive_timeout)));
    fb.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    // Peers ping every keepalive_time; accept that (gRPC's default refuses pings under 5 min).
    fb.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                          static_cast<int>(absl::ToInt64Milliseconds(fc.keepalive_time / 2)));
    fb.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    fb.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                          static_cast<int>(absl::ToInt64Milliseconds(fc.max_connection_age)));
    fb.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                          static_cast<int>(absl::ToInt64Milliseconds(fc.max_connection_age_grace)));
    fb.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                          static_cast<int>(absl::ToInt64Milliseconds(fc.max_connection_idle)));
    // Each Subscribe stream holds a thread (the synchronous API): room for the fan-out of one
    // provider to hundreds of subscribers, and the unary calls beside them.
    tls::GrpcServerLimits fl;
    fl.max_threads = 512;
    tls::ApplyServerLimits(&fb, "federation", fl);
    server::NoReflection(&fb);  // peers describe the service with the published protos
    federation_server = fb.BuildAndStart();
    if (federation_server == nullptr || federation_port == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen for the federation on ", config.sharing.address));
    }
    for (const SubscriptionConfig& sub : config.sharing.subscriptions) {
      Subscriber::Options so;
      so.self = config.peer_id;
      so.provider = sub.provider;
      so.dataset = sub.dataset;
      so.contract_id = sub.contract;
      so.mirror_partitions = sub.partitions;
      const std::string endpoint = sub.endpoint, provider = sub.provider;
      auto checker = federation_checker;
      const absl::Duration keepalive = config.sharing.keepalive_time,
                           keepalive_timeout = config.sharing.keepalive_timeout;
      so.channel = [endpoint, provider, checker, federation_files, keepalive,
                    keepalive_timeout]() -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
        // Fails closed: without usable credentials the subscription is not dialled at all.
        ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> creds,
                         tls::MakeChannelCredentials(federation_files, checker, provider));
        grpc::ChannelArguments args;
        args.SetMaxReceiveMessageSize(8 << 20);
        args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
                    static_cast<int>(absl::ToInt64Milliseconds(keepalive)));
        args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                    static_cast<int>(absl::ToInt64Milliseconds(keepalive_timeout)));
        args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
        args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
        return grpc::CreateCustomChannel(endpoint, creds, args);
      };
      so.writer.producer.client = client;
      // Batches no larger than the topics' max.message.bytes (EnsureTopics sets it from these).
      so.writer.producer.max_request_bytes = limits.producer_max_request_bytes;
      so.writer.producer.batch_bytes = limits.producer_batch_bytes;
      so.writer.producer.delivery_timeout = config.delivery_timeout;
      so.writer.producer.transaction_timeout = config.transaction_timeout;
      // Each group commit flushes at once; records queue up anyway while a request is in flight.
      so.writer.producer.linger = absl::ZeroDuration();
      so.writer.producer.transactional_id =
          absl::StrCat("polder-mirror-", config.peer_id, "-", sub.provider, "-", sub.dataset);
      so.writer.consumer.client = client;
      so.writer.subscription = absl::StrCat(config.peer_id, "/", sub.provider, "/", sub.dataset);
      so.writer.mirror_topic = absl::StrCat(sub.provider, ".", sub.dataset);
      so.writer.cursors_topic = config.sharing.cursors_topic;
      so.writer.audit_topic = config.sharing.audit_topic;
      so.writer.audit_index_topic = config.sharing.audit_index_topic;
      so.writer.timeout = config.publish_timeout;
#ifdef POLDER_NODE_TEST_HOOKS
      // Only in //services/node:polder-node-test-hooks (testonly), never in polder-node: with
      // POLDER_TEST_CRASH_BEFORE_COMMIT=n the node kills itself on its n-th mirror write, after
      // the batch reached the broker and before the transaction commits.
      if (const char* crash = std::getenv("POLDER_TEST_CRASH_BEFORE_COMMIT"); crash != nullptr) {
        const int64_t at = std::atoll(crash);
        log::Warning("test hook armed: this node kills itself before committing a mirror batch",
                     {{"write", at}});
        so.writer.before_commit = [at, subscription = so.writer.subscription](int64_t write) {
          if (write != at) return;
          log::Error(
              "test hook: killing this process between producing a mirror batch and committing it",
              {{"subscription", subscription}, {"write", write}});
          std::raise(SIGKILL);
        };
      }
#endif
      ContractBook* book = contracts.get();
      const std::string contract_id = sub.contract;
      so.revoked = [book, contract_id] { return book->IsRevoked(contract_id, absl::Now()); };
      if (sub.purge_on_revocation) {
        kafka::Admin* a = admin.get();
        const std::string mirror = so.writer.mirror_topic;
        const int32_t partitions = sub.partitions;
        const absl::Duration timeout = config.kafka_request_timeout;
        so.purge = [a, mirror, partitions, timeout] {
          std::map<int32_t, int64_t> all;
          for (int32_t p = 0; p < partitions; ++p) all[p] = -1;  // up to the high watermark
          return a->DeleteRecords(mirror, all, timeout);
        };
      }
      so.start_position = sub.start;
      so.signer = receipt_signer.get();
      so.audit = audit_log.get();
      so.receipt_interval = config.sharing.receipt_interval;
      so.max_unacknowledged_bytes = config.sharing.max_unacknowledged_bytes;
      so.contract = [book, contract_id] { return book->Find(contract_id); };
      so.on_schema = [cache](int32_t id) {
        absl::StatusOr<std::shared_ptr<const CachedSchema>> s = cache->ById(id);
        // Pinned: the schema endpoint serves it (and its references) to readers of the mirror.
        absl::Status pinned = s.ok() ? cache->Pin(id) : s.status();
        if (!pinned.ok())
          log::Warning("schema of mirrored records not cached",
                       {{"schema_id", id}, {"error", std::string(pinned.message())}});
      };
      subscribers.push_back(std::make_unique<Subscriber>(so, kafka_clients));
      subscribers.back()->Start();
    }
  }

  // The node certificate's expiry for the metrics and readiness: read at start and on each
  // refresh (the file may be rotated), not on every scrape.
  std::atomic<int64_t> certificate_not_after{0};
  auto read_certificate_expiry = [&] {
    if (absl::StatusOr<std::string> pem = trust::ReadFileToString(config.cert_file); pem.ok()) {
      if (absl::StatusOr<tls::CertificateInfo> info = tls::ParseCertificate(*pem); info.ok()) {
        certificate_not_after = absl::ToUnixSeconds(info->not_after);
      }
    }
  };
  read_certificate_expiry();

  // Ops: metrics, liveness, readiness, status (common/server: plain HTTP, nothing secret, on the
  // event-loop server, so slow or idle connections hold no thread; ADR 0011).
  // Ready means this process can give correct answers: its Kafka, its producer, its schemas and
  // its certificate. A peer's or a subscription's state never makes it unready (an unready pod
  // leaves every Service: one peer's gap would take this city's ingest offline); those are on
  // /statusz and in the metrics.
  server::Readiness readiness;
  readiness.AddCheck("ingest", [&]() -> absl::Status {
    if (publisher->fenced())
      return absl::FailedPreconditionError("fenced: another instance took over ingest");
    if (!publisher->ready()) return absl::UnavailableError("the ingest producer is not ready");
    return absl::OkStatus();
  });
  readiness.AddCheck("kafka", [&]() -> absl::Status {
    return kafka_reachable ? absl::OkStatus()
                           : absl::UnavailableError("the cluster does not answer");
  });
  readiness.AddCheck("schemas", [&]() -> absl::Status {
    return schemas_ready ? absl::OkStatus()
                         : absl::UnavailableError("not every dataset's schema is known");
  });
  if (!config.development_mode) {
    readiness.AddCheck("certificate", [&]() -> absl::Status {
      if (certificate_not_after <= absl::ToUnixSeconds(absl::Now())) {
        return absl::FailedPreconditionError(
            absl::StrCat(config.cert_file, " is unreadable or expired"));
      }
      return absl::OkStatus();
    });
  }
  auto status_page = [&]() -> nlohmann::json {
    nlohmann::json subs = nlohmann::json::array();
    for (size_t i = 0; i < subscribers.size(); ++i) {
      const SubscriptionConfig& sub = config.sharing.subscriptions[i];
      Subscriber::State st = subscribers[i]->state();
      subs.push_back({{"provider", sub.provider},
                      {"dataset", sub.dataset},
                      {"contract", sub.contract},
                      {"state", st.status},
                      {"last_error", st.last_error},
                      {"records", st.records},
                      {"reconnects", st.reconnects},
                      {"gaps", st.gaps},
                      {"receipts", st.receipts}});
    }
    nlohmann::json tokens = nlohmann::json::array();
    for (const IngestAuthenticator::TokenState& t : auth->tokens()) {
      tokens.push_back({{"identity", t.identity}, {"valid", t.valid}, {"problem", t.problem}});
    }
    return {{"service", "polder-node"},
            {"peer", config.peer_id},
            {"subscriptions", subs},
            {"ingest_tokens", tokens}};
  };
  std::unique_ptr<server::OpsServer> ops;
  auto metrics_text = [&]() -> std::string {
    for (const IngestAuthenticator::TokenState& t : auth->tokens())
      metrics.SetIngestToken(t.identity, t.valid);
    metrics.SetHttpListener("ingest", http_server->stats());
    metrics.SetHttpListener("schema", schema_server->stats());
    metrics.SetHttpListener("ops", ops->stats());
    Publisher::Stats ps = publisher->stats();
    metrics.SetPublisherStats(ps.transactions, ps.failed_transactions, ps.producer_recreations,
                              ps.known_keys);
    SchemaCache::Stats cs = schemas->stats();
    metrics.SetSchemaCache(cs.schemas, cs.registry_reachable, cs.last_refresh_ok);
    metrics.SetInflightBytes(ingest.inflight_bytes());
    for (size_t i = 0; i < subscribers.size(); ++i) {
      const SubscriptionConfig& sub = config.sharing.subscriptions[i];
      Subscriber::State st = subscribers[i]->state();
      metrics.SetSubscription(sub.provider, sub.dataset,
                              {st.status, st.records, st.bytes, st.reconnects, st.gaps, st.receipts,
                               st.lag, st.lag_seconds});
    }
    if (federation_service != nullptr) {
      FederationService::Stats fs = federation_service->stats();
      for (const auto& [key, p] : fs.peers) {
        metrics.SetOffered(key.first, key.second,
                           {p.records, p.bytes, p.streams_open, p.unacknowledged_bytes});
      }
      for (const auto& [key, n] : fs.ended) metrics.SetStreamsEnded(key.first, key.second, n);
      metrics.SetReceiptsReceived(fs.receipts);
      for (const ContractBook::Listed& l : contracts->All(absl::Now())) {
        metrics.SetExpiry("contract", l.contract.id, l.contract.valid_until);
      }
      if (std::shared_ptr<const trust::Directory> d = directory->current(); d != nullptr) {
        metrics.SetExpiry("directory", d->federation, d->valid_until);
      }
      if (certificate_not_after > 0) {
        metrics.SetExpiry("certificate", config.peer_id,
                          absl::FromUnixSeconds(certificate_not_after));
      }
    }
    return metrics.Serialize();
  };
  server::OpsOptions oo;
  std::tie(oo.bind_address, oo.port) = HostPort(config.ops_address);
  ASSIGN_OR_RETURN(ops, server::OpsServer::Create(oo, &readiness, status_page, metrics_text));
  RETURN_IF_ERROR(ops->Start());
  const int ops_bound = ops->port();

  set_health(readiness.Ready());
  log::Info("polder-node serving", {{"peer", config.peer_id},
                                    {"grpc_port", grpc_port},
                                    {"http_port", http_server->port()},
                                    {"schema_port", schema_server->port()},
                                    {"ops_port", ops_bound},
                                    {"datasets", config.datasets.size()},
                                    {"tls", !config.development_mode}});
  const std::string ready_file = absl::GetFlag(FLAGS_ready_file);
  if (!ready_file.empty()) {
    std::string tmp = ready_file + ".tmp";
    std::ofstream(tmp) << nlohmann::json{{"grpc_port", grpc_port},
                                         {"http_port", http_server->port()},
                                         {"schema_port", schema_server->port()},
                                         {"ops_port", ops_bound},
                                         {"federation_port", federation_port}}
                              .dump()
                       << "\n";
    std::rename(tmp.c_str(), ready_file.c_str());
  }

  // Background: schema refresh, health, directory updates.
  std::atomic<bool> stop{false};
  std::thread background([&] {
    absl::Time next_refresh = absl::Now() + config.registry_refresh;
    absl::Time next_probe = absl::Now();
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      if (stop) break;
      if (absl::Now() >= next_probe) {
        // A metadata request to the cluster, bounded by the Kafka request timeout.
        absl::StatusOr<kafka::TopicDescription> probe =
            admin->DescribeTopic(config.keys_topic, config.kafka_request_timeout);
        if (probe.ok() != kafka_reachable.load()) {
          log::Write(probe.ok() ? log::Severity::kInfo : log::Severity::kWarning,
                     probe.ok() ? "Kafka answers again" : "Kafka does not answer",
                     {{"error", probe.ok() ? "" : std::string(probe.status().message())}});
        }
        kafka_reachable = probe.ok();
        auth->Refresh();  // a deleted or broken token file revokes its token now, not at its next
                          // use
        memory::ReturnFreeMemory();  // what a burst of connections freed goes back to the system
        next_probe = absl::Now() + absl::Seconds(2);
      }
      if (absl::Now() >= next_refresh) {
        refresh();
        next_refresh = absl::Now() + config.registry_refresh;
        read_certificate_expiry();
        if (directory != nullptr) trust::RefreshDirectory(*directory, config.trust);
      }
      set_health(readiness.Ready());
    }
  });

  int sig = 0;
  sigwait(&signals, &sig);
  log::Info("polder-node draining",
            {{"signal", sig}, {"drain_timeout", absl::FormatDuration(config.drain_timeout)}});
  stop = true;
  background.join();
  set_health(false);
  // In-flight calls finish (up to drain_timeout); then queued batches are committed.
  for (auto& sub : subscribers) sub->Stop();
  if (federation_server != nullptr)
    federation_server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc_server->Shutdown(absl::ToChronoTime(absl::Now() + config.drain_timeout));
  http_server->Stop();
  schema_server->Stop();
  publisher->Drain();
  publisher.reset();
  ops->Stop();
  log::Info("polder-node stopped");
  return absl::OkStatus();
}

}  // namespace
}  // namespace node
}  // namespace polder

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  absl::SetProgramUsageMessage("polder-node --config <node.yaml>: a city's Polder node");
  absl::ParseCommandLine(argc, argv);
  const std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) {
    std::fprintf(stderr, "polder-node: --config is required (see --help)\n");
    return 2;
  }
  absl::StatusOr<polder::node::NodeConfig> config = polder::node::LoadNodeConfig(path);
  if (!config.ok()) {
    std::fprintf(stderr, "polder-node: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  absl::Status s = polder::node::Run(*std::move(config));
  if (!s.ok()) {
    polder::log::Error("polder-node failed", {{"error", std::string(s.message())}});
    return 1;
  }
  return 0;
}
