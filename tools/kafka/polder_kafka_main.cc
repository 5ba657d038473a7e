// polder-kafka: runs a real Kafka broker (KRaft, free ports on --bind_address, 127.0.0.1 by
// default) in the foreground for the demo and for developers, using the same launcher as the
// tests; with --nodes=3 a production-shaped cluster (replication factor 3, min.insync.replicas 2,
// the transaction state log and offsets topic alike; ADR 0020). Prints the bootstrap addresses
// (and writes them to --ready_file) once every node serves; stops them cleanly on SIGINT or
// SIGTERM, and the nodes die with this process in any case (parent-death signal).
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tools/kafka/kafka_broker.h"
#include "tools/kafka/kafka_cluster.h"

ABSL_FLAG(std::string, name, "kafka", "Name shown in logs and the process list.");
ABSL_FLAG(std::string, work_dir, "",
          "Data/config/log folder (kept). Empty: a temp folder, removed on exit.");
ABSL_FLAG(std::string, ready_file, "",
          "If set, the bootstrap address is written here once the broker serves.");
ABSL_FLAG(std::string, kafka_home, "",
          "Kafka runtime folder; default $POLDER_KAFKA_HOME or the setup cache.");
ABSL_FLAG(std::string, heap, "512m", "JVM heap of the broker.");
ABSL_FLAG(int, start_timeout_s, 60, "Seconds to wait for the broker to serve.");
ABSL_FLAG(int, nodes, 1,
          "Nodes (combined broker and controller). 3 or more: replication factor 3 and "
          "min.insync.replicas 2 for every topic; each node's folder is <work_dir>/node-<id>.");
ABSL_FLAG(std::string, bind_address, "127.0.0.1",
          "The address every listener binds and advertises to clients: a concrete address of "
          "this host (not a wildcard, which a client cannot connect to).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Runs a local Kafka broker for the Polder demo and development.");
  absl::ParseCommandLine(argc, argv);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGCHLD);  // The broker JVM is our child: notice when it dies.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const int nodes = absl::GetFlag(FLAGS_nodes);
  const std::string bind = absl::GetFlag(FLAGS_bind_address);
  if (nodes < 1 || nodes > 9) {
    std::fprintf(stderr, "polder-kafka: --nodes=%d: from 1 to 9\n", nodes);
    return 2;
  }
  if (bind.empty() || bind == "0.0.0.0" || bind == "::" || bind == "[::]") {
    std::fprintf(stderr,
                 "polder-kafka: --bind_address=%s: the listeners advertise this address to "
                 "clients; give a concrete address of this host\n",
                 bind.c_str());
    return 2;
  }
  polder::kafka_testing::KafkaBrokerOptions options;
  options.name = absl::GetFlag(FLAGS_name);
  options.work_dir = absl::GetFlag(FLAGS_work_dir);
  options.keep_work_dir = !options.work_dir.empty();
  options.kafka_home = absl::GetFlag(FLAGS_kafka_home);
  options.heap = absl::GetFlag(FLAGS_heap);
  options.start_timeout = absl::Seconds(absl::GetFlag(FLAGS_start_timeout_s));
  options.bind_address = bind;

  // One broker, or a cluster: what runs, how it is watched and stopped.
  std::unique_ptr<polder::kafka_testing::KafkaBroker> broker;
  std::unique_ptr<polder::kafka_testing::KafkaCluster> cluster;
  std::string bootstrap;
  if (nodes == 1) {
    auto b = polder::kafka_testing::KafkaBroker::Start(options);
    if (!b.ok()) {
      std::fprintf(stderr, "polder-kafka: %s\n", b.status().ToString().c_str());
      return 1;
    }
    broker = *std::move(b);
    bootstrap = broker->bootstrap_servers();
  } else {
    polder::kafka_testing::KafkaClusterOptions co;
    co.nodes = nodes;
    co.node = options;
    auto c = polder::kafka_testing::KafkaCluster::Start(co);
    if (!c.ok()) {
      std::fprintf(stderr, "polder-kafka: %s\n", c.status().ToString().c_str());
      return 1;
    }
    cluster = *std::move(c);
    bootstrap = cluster->bootstrap_servers();
  }
  std::printf("%s\n", bootstrap.c_str());
  std::fflush(stdout);
  const std::string ready_file = absl::GetFlag(FLAGS_ready_file);
  if (!ready_file.empty()) {
    std::string tmp = ready_file + ".tmp";
    std::ofstream(tmp) << bootstrap << "\n";
    std::rename(tmp.c_str(), ready_file.c_str());
  }
  int sig = 0;
  while (true) {
    sigwait(&signals, &sig);
    if (sig != SIGCHLD) break;
    for (int id = 1; id <= nodes; ++id) {
      polder::kafka_testing::KafkaBroker& n = broker ? *broker : cluster->node(id);
      if (n.CheckExited()) {
        std::fprintf(stderr, "polder-kafka: '%s' exited unexpectedly; log tail:\n%s\n",
                     n.bootstrap_servers().c_str(), n.LogTail(4096).c_str());
        return 1;
      }
    }
  }
  absl::Status s = broker ? broker->Stop() : cluster->Stop();
  if (!s.ok()) std::fprintf(stderr, "polder-kafka: %s\n", s.ToString().c_str());
  return s.ok() ? 0 : 1;
}
