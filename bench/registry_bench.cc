// Registry benchmark: get-by-id and register throughput and latency over gRPC and REST, beside a
// plain gRPC unary echo (same process, same mTLS, same payload size) as the baseline.
//
//   bazel run -c opt //bench:registry_bench -- --runs=3 --seconds=5 --threads=4
//
// Everything runs on this machine: a real Kafka broker (the test launcher), the registry
// (in-process: Registry + Kafka store + gRPC service + REST server) and the clients. Each
// workload runs `runs` times for `seconds`; the table reports medians.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/bench_stats.h"
#include "common/http/https_server.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/status/grpc_status.h"
#include "common/tls/grpc_tls.h"
#include "common/tls/test_federation.h"
#include "grpcpp/grpcpp.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "proto/polder/registry/v1/registry.grpc.pb.h"
#include "proto/polder/testing/v1/echo.grpc.pb.h"
#include "services/registry/access.h"
#include "services/registry/grpc_service.h"
#include "services/registry/kafka_store.h"
#include "services/registry/registry.h"
#include "services/registry/rest_api.h"
#include "tools/kafka/kafka_broker.h"

ABSL_FLAG(int, runs, 3, "Runs per workload (the median is reported).");
ABSL_FLAG(int, seconds, 5, "Seconds per run.");
ABSL_FLAG(int, threads, 4, "Concurrent client threads.");
ABSL_FLAG(std::string, only, "",
          "Run only the workloads whose name contains this text (and the baseline).");

namespace polder {
namespace {

using nlohmann::json;

std::string SchemaText(int n) {
  return absl::StrCat(
      "syntax = \"proto3\"; package polder.datasets.bench.v1; message M", n,
      " { string counter_id = 1; int64 count = 2; double lat = 3; double lon = 4; }");
}

struct Result {
  double ops_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int64_t errors = 0;
};

// Runs `op` from `threads` threads for `seconds`; op(thread, i) returns true on success.
Result Measure(int threads, int seconds, const std::function<bool(int, int64_t)>& op) {
  std::vector<std::vector<double>> lat(threads);
  std::atomic<int64_t> errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  absl::Time start = absl::Now();
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int64_t i = 0; !stop; ++i) {
        absl::Time a = absl::Now();
        bool ok = op(t, i);
        lat[t].push_back(absl::ToDoubleMilliseconds(absl::Now() - a));
        if (!ok) ++errors;
      }
    });
  }
  absl::SleepFor(absl::Seconds(seconds));
  stop = true;
  for (auto& th : ts) th.join();
  double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  Result r;
  r.errors = errors;
  if (all.empty()) return r;
  r.ops_per_s = all.size() / elapsed;
  r.p50_ms = all[all.size() / 2];
  r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return r;
}

Result Median(std::vector<Result> rs) {
  auto med = [&](auto field) {
    std::vector<double> v;
    for (const Result& r : rs) v.push_back(field(r));
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  Result m;
  m.ops_per_s = med([](const Result& r) { return r.ops_per_s; });
  m.p50_ms = med([](const Result& r) { return r.p50_ms; });
  m.p99_ms = med([](const Result& r) { return r.p99_ms; });
  for (const Result& r : rs) m.errors += r.errors;
  return m;
}

class EchoImpl final : public polder::testing::v1::EchoService::Service {
  grpc::Status Echo(grpc::ServerContext*, const polder::testing::v1::EchoRequest* req,
                    polder::testing::v1::EchoResponse* resp) override {
    resp->set_text(req->text());
    return grpc::Status::OK;
  }
};

int Main() {
  signal(SIGPIPE, SIG_IGN);
  const int runs = absl::GetFlag(FLAGS_runs), seconds = absl::GetFlag(FLAGS_seconds),
            threads = absl::GetFlag(FLAGS_threads);
  std::string dir =
      std::filesystem::temp_directory_path() / absl::StrCat("polder-bench-", getpid());
  std::filesystem::create_directories(dir);

  kafka_testing::KafkaBrokerOptions bo;
  bo.name = "bench";
  auto broker = kafka_testing::KafkaBroker::Start(bo);
  if (!broker.ok()) {
    std::fprintf(stderr, "broker: %s\n", broker.status().ToString().c_str());
    return 1;
  }
  tls::TestFederation fed(dir);
  tls::KeyAndCert server = fed.Issue("registry"), client = fed.Issue("national");
  fed.Admit("registry", server);
  fed.Admit("national", client);
  tls::TlsFiles server_files = fed.WriteIdentity("registry", server);
  tls::TlsFiles client_files = fed.WriteIdentity("national", client);
  auto checker = fed.Checker();

  registry::KafkaSchemaStore::Options so;
  so.client.bootstrap_servers = (*broker)->bootstrap_servers();
  so.client.properties["log_level"] = "3";
  so.topic = "_polder.schemas";
  so.replica_id = "reg-a";
  so.federation = "bench";
  so.initial_primary = "reg-a";
  static kafka::RdKafkaClientFactory kafka_clients;
  auto store = *registry::KafkaSchemaStore::Create(so, kafka_clients);
  auto reg = std::make_unique<registry::Registry>(store.get(), registry::RegistryOptions{});
  store->Attach(reg.get());
  if (absl::Status s = store->Start(); !s.ok()) {
    std::fprintf(stderr, "store: %s\n", s.ToString().c_str());
    return 1;
  }
  registry::AccessPolicy policy;
  policy.operator_peers = {"national"};
  registry::RegistryGrpcService service(reg.get(), store.get(), policy);
  EchoImpl echo;
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort("127.0.0.1:0", *tls::MakeServerCredentials(server_files, checker),
                           &grpc_port);
  builder.RegisterService(&service);
  builder.RegisterService(&echo);
  auto grpc_server = builder.BuildAndStart();
  http::HttpsOptions ho;
  ho.files = server_files;
  auto http_server = *http::HttpsServer::Create(ho, checker);
  registry::RegisterRestRoutes(http_server.get(), reg.get(), policy);
  if (!http_server->Start().ok()) return 1;

  // Preloaded schemas for the reads.
  constexpr int kPreloaded = 100;
  for (int i = 0; i < kPreloaded; ++i) {
    registry::RegisterRequest r;
    r.subject = absl::StrCat("polder.datasets.bench.v1.M", i);
    r.schema = SchemaText(i);
    if (!reg->Register(r).ok()) return 1;
  }
  const std::string payload = SchemaText(0);  // the echo carries as many bytes as a schema

  auto creds = *tls::MakeChannelCredentials(client_files, checker, "registry");
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::vector<std::unique_ptr<registry::v1::SchemaRegistryService::Stub>> reg_stubs;
  std::vector<std::unique_ptr<polder::testing::v1::EchoService::Stub>> echo_stubs;
  std::vector<std::unique_ptr<httplib::SSLClient>> rest;
  for (int t = 0; t < threads; ++t) {
    auto ch = grpc::CreateCustomChannel(absl::StrCat("localhost:", grpc_port), creds, args);
    reg_stubs.push_back(registry::v1::SchemaRegistryService::NewStub(ch));
    echo_stubs.push_back(polder::testing::v1::EchoService::NewStub(ch));
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", http_server->port(),
                                                  client_files.cert_path, client_files.key_path);
    SSL_CTX_use_certificate_chain_file(c->ssl_context(), client_files.cert_path.c_str());
    c->set_ca_cert_path(fed.bundle_path().c_str());
    c->enable_server_certificate_verification(true);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);
    rest.push_back(std::move(c));
  }
  std::atomic<int64_t> next_schema{1000};

  struct Workload {
    const char* name;
    std::function<bool(int, int64_t)> op;
  };
  std::vector<Workload> workloads = {
      {"baseline: gRPC unary echo (same payload)",
       [&](int t, int64_t) {
         grpc::ClientContext ctx;
         polder::testing::v1::EchoRequest req;
         req.set_text(payload);
         polder::testing::v1::EchoResponse resp;
         return echo_stubs[t]->Echo(&ctx, req, &resp).ok();
       }},
      {"get schema by id, gRPC",
       [&](int t, int64_t i) {
         grpc::ClientContext ctx;
         registry::v1::GetSchemaRequest req;
         req.set_id(1 + (i * 7 + t) % kPreloaded);
         registry::v1::Schema resp;
         return reg_stubs[t]->GetSchema(&ctx, req, &resp).ok();
       }},
      {"get schema by id, REST",
       [&](int t, int64_t i) {
         auto r = rest[t]->Get(absl::StrCat("/schemas/ids/", 1 + (i * 7 + t) % kPreloaded).c_str());
         return r && r->status == 200;
       }},
      {"register new schema, gRPC",
       [&](int t, int64_t) {
         int n = next_schema++;
         grpc::ClientContext ctx;
         registry::v1::RegisterSchemaRequest req;
         req.set_subject(absl::StrCat("polder.datasets.bench.v1.M", n));
         req.set_schema(SchemaText(n));
         registry::v1::RegisterSchemaResponse resp;
         return reg_stubs[t]->RegisterSchema(&ctx, req, &resp).ok();
       }},
      {"register new schema, REST",
       [&](int t, int64_t) {
         int n = next_schema++;
         auto r = rest[t]->Post(
             absl::StrCat("/subjects/polder.datasets.bench.v1.M", n, "/versions").c_str(),
             json{{"schemaType", "PROTOBUF"}, {"schema", SchemaText(n)}}.dump(),
             "application/vnd.schemaregistry.v1+json");
         if (!r || r->status != 200) {
           std::fprintf(stderr, "register over REST failed: %s\n",
                        r ? r->body.c_str() : httplib::to_string(r.error()).c_str());
           return false;
         }
         return true;
       }},
  };
  std::printf(
      "| workload | ops/s | p50 ms | p99 ms | vs baseline (ops/s) | errors "
      "|\n|---|---:|---:|---:|---:|---:|\n");
  double baseline = 0;
  for (const Workload& w : workloads) {
    const std::string only = absl::GetFlag(FLAGS_only);
    if (!only.empty() && baseline != 0 && std::string(w.name).find(only) == std::string::npos)
      continue;
    std::vector<Result> rs;
    for (int i = 0; i < runs; ++i) rs.push_back(Measure(threads, seconds, w.op));
    Result m = Median(rs);
    if (baseline == 0) baseline = m.ops_per_s;
    std::printf("| %s | %.0f | %.2f | %.2f | %.2f | %lld |\n", w.name, m.ops_per_s, m.p50_ms,
                m.p99_ms, m.ops_per_s / baseline, static_cast<long long>(m.errors));
    std::fflush(stdout);
  }
  const registry::Registry::RegistrationCounts counts = reg->registrations();
  std::printf(
      "\nregistrations: %lld created in %lld transactions (%.2f per transaction, group commit)\n"
      "peak RSS of this process (registry, its Kafka clients, the load clients): %.0f MiB\n",
      static_cast<long long>(counts.created), static_cast<long long>(counts.commits),
      counts.commits > 0 ? static_cast<double>(counts.created) / counts.commits : 0.0,
      bench::PeakRssMiB(getpid()));
  http_server->Stop();
  grpc_server->Shutdown();
  store.reset();
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace polder

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return polder::Main();
}
