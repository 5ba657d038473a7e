// polder-node: a city's node: authenticated, validated, durable publishing of the city's
// datasets into its own Kafka (ingest), sharing them with peer cities and mirroring theirs
// (federation), the read-only schema endpoint, health, status and metrics.
//
//   polder-node --config node.yaml [--ready_file ports.json] [--internal_advertise host:port]
//   polder-node --config node.yaml --print_kafka_needs   # topics, transactional ids, groups
//   polder-node --config node.yaml --print_view_definitions   # views' definition hashes
//
// Listeners: gRPC ingest (polder.node.v1.IngestService, grpc.health.v1.Health), HTTPS ingest
// (POST /v1/datasets/{dataset}/records), the Confluent schema endpoint (server TLS), the
// federation (mutual TLS, when configured), and the plain-HTTP ops listener (/metrics, /livez,
// /readyz, /statusz). Every listener authenticates before it parses and bounds what an
// unauthenticated connection costs (ADR 0011). SIGTERM/SIGINT: stop taking requests, finish
// those in flight (drain_timeout), commit what is queued, exit 0 (see server/node_server.h).
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/log/log.h"
#include "common/server/host_port.h"
#include "common/server/process.h"
#include "common/views/spec.h"
#include "nlohmann/json.hpp"
#include "services/node/node_config.h"
#include "services/node/server/node_server.h"
#include "services/node/topics.h"

ABSL_FLAG(std::string, config, "", "Path of the YAML configuration (required).");
ABSL_FLAG(std::string, ready_file, "", "Written with the listening ports once the node serves.");
ABSL_FLAG(bool, print_kafka_needs, false,
          "Print what this configuration needs of Kafka (its topics with their settings, its "
          "transactional ids and consumer groups) as JSON, and exit: what a Kubernetes chart's "
          "KafkaTopics and KafkaUser ACLs must provide. Reads only the configuration.");
ABSL_FLAG(bool, print_view_definitions, false,
          "Print each configured view's dataset, id and definition hash (what an aggregate-only "
          "contract and the national aggregator's definition_hashes name) as JSON, and exit. "
          "Reads only the configuration.");
ABSL_FLAG(std::string, internal_advertise, "",
          "Overrides replicas.internal_advertise (host:port): how the other replicas reach this "
          "one's internal port. On Kubernetes the pod's own DNS name, e.g. "
          "--internal_advertise=$(POD_NAME).groningen-node:7444, which one ConfigMap cannot "
          "carry for every pod.");

namespace polder {
namespace node {
namespace {

NodeServer::Hooks TestHooks() {
  NodeServer::Hooks hooks;
#ifdef POLDER_NODE_TEST_HOOKS
  // Only in //services/node:polder-node-test-hooks (testonly), never in polder-node: with
  // POLDER_TEST_CRASH_BEFORE_COMMIT=n the node kills itself on its n-th mirror write, after
  // the batch reached the broker and before the transaction commits.
  if (const char* crash = std::getenv("POLDER_TEST_CRASH_BEFORE_COMMIT"); crash != nullptr) {
    const int64_t at = std::atoll(crash);
    log::Warning("test hook armed: this node kills itself before committing a mirror batch",
                 {{"write", at}});
    hooks.before_mirror_commit = [at](const std::string& subscription, int64_t write) {
      if (write != at) return;
      log::Error(
          "test hook: killing this process between producing a mirror batch and "
          "committing it",
          {{"subscription", subscription}, {"write", write}});
      std::raise(SIGKILL);
    };
  }
  // POLDER_TEST_CRASH_VIEW_COMMIT=n: likewise on the n-th commit of a view job, after its cells
  // and changelog entries reached the broker and before the transaction commits.
  if (const char* crash = std::getenv("POLDER_TEST_CRASH_VIEW_COMMIT"); crash != nullptr) {
    const int64_t at = std::atoll(crash);
    log::Warning("test hook armed: this node kills itself before committing a view transaction",
                 {{"commit", at}});
    hooks.before_view_commit = [at](const std::string& dataset, int64_t commit) {
      if (commit != at) return;
      log::Error("test hook: killing this process between producing view cells and committing them",
                 {{"dataset", dataset}, {"commit", commit}});
      std::raise(SIGKILL);
    };
  }
#endif
  return hooks;
}

// Only in the test-hooks build: POLDER_TEST_MAX_CONNECTION_AGE (and _GRACE), a duration such as
// "5s", replace the federation listener's connection age, which the configuration keeps at one
// minute or more — so a test can force subscribers to re-establish their connections mid-stream
// (ADR 0021 §4).
void ApplyTestOverrides(NodeConfig* config) {
#ifdef POLDER_NODE_TEST_HOOKS
  absl::Duration d;
  if (const char* age = std::getenv("POLDER_TEST_MAX_CONNECTION_AGE");
      age != nullptr && absl::ParseDuration(age, &d)) {
    log::Warning("test hook armed: short federation connection age", {{"age", age}});
    config->sharing.max_connection_age = d;
  }
  if (const char* grace = std::getenv("POLDER_TEST_MAX_CONNECTION_AGE_GRACE");
      grace != nullptr && absl::ParseDuration(grace, &d)) {
    config->sharing.max_connection_age_grace = d;
  }
#else
  (void)config;
#endif
}

int Main(NodeConfig config, server::TerminationSignals& signals) {
  log::SetComponent("polder-node");
  ApplyTestOverrides(&config);
  server::InstallProtobufLogBridge();
  const absl::Duration drain_timeout = config.drain_timeout;
  // The one place the node names an implementation: every Kafka client comes from here.
  kafka::RdKafkaClientFactory kafka_clients;
  absl::StatusOr<std::unique_ptr<NodeServer>> node =
      NodeServer::Start(std::move(config), kafka_clients, TestHooks());
  if (!node.ok()) {
    log::Error("polder-node failed", {{"error", std::string(node.status().message())}});
    return 1;
  }
  if (const std::string ready = absl::GetFlag(FLAGS_ready_file); !ready.empty()) {
    if (absl::Status s = server::WriteReadyFile(ready, (*node)->ports().ToJson()); !s.ok())
      log::Error("ready file", {{"error", std::string(s.message())}});
  }
  const int sig = signals.Wait();
  log::Info("polder-node draining",
            {{"signal", sig}, {"drain_timeout", absl::FormatDuration(drain_timeout)}});
  (*node)->Drain();
  node->reset();
  log::Info("polder-node stopped");
  return 0;
}

}  // namespace
}  // namespace node
}  // namespace polder

int main(int argc, char** argv) {
  polder::server::TerminationSignals signals;  // before any thread starts
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
  if (absl::GetFlag(FLAGS_print_view_definitions)) {
    nlohmann::json out = nlohmann::json::array();
    for (const polder::views::ViewSetSpec& set : config->views) {
      for (const polder::views::ViewSpec& v : set.views) {
        out.push_back({{"dataset", set.dataset},
                       {"view", v.id},
                       {"definition_hash", polder::views::DefinitionHash(set, v)}});
      }
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  if (absl::GetFlag(FLAGS_print_kafka_needs)) {
    std::printf("%s\n", polder::node::KafkaNeedsJson(polder::node::KafkaNeedsOf(*config)).c_str());
    return 0;
  }
  if (const std::string advertise = absl::GetFlag(FLAGS_internal_advertise); !advertise.empty()) {
    absl::StatusOr<polder::server::HostPort> hp =
        polder::server::ParseHostPort(advertise, "--internal_advertise");
    if (!hp.ok() || hp->port == 0) {
      std::fprintf(stderr, "polder-node: %s\n",
                   hp.ok() ? "--internal_advertise: port 0 cannot be reached by other replicas"
                           : std::string(hp.status().message()).c_str());
      return 2;
    }
    config->internal_advertise = advertise;
  }
  return polder::node::Main(*std::move(config), signals);
}
