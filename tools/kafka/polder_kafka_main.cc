// polder-kafka: runs one real Kafka broker (KRaft, 127.0.0.1, free ports) in the foreground for
// the demo and for developers, using the same launcher as the tests. Prints the bootstrap
// address (and writes it to --ready_file) once the broker serves; stops it cleanly on SIGINT or
// SIGTERM, and the broker dies with this process in any case (parent-death signal).
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "tools/kafka/kafka_broker.h"

ABSL_FLAG(std::string, name, "kafka", "Name shown in logs and the process list.");
ABSL_FLAG(std::string, work_dir, "",
          "Data/config/log folder (kept). Empty: a temp folder, removed on exit.");
ABSL_FLAG(std::string, ready_file, "",
          "If set, the bootstrap address is written here once the broker serves.");
ABSL_FLAG(std::string, kafka_home, "",
          "Kafka runtime folder; default $POLDER_KAFKA_HOME or the setup cache.");
ABSL_FLAG(std::string, heap, "512m", "JVM heap of the broker.");
ABSL_FLAG(int, start_timeout_s, 60, "Seconds to wait for the broker to serve.");

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

  polder::kafka_testing::KafkaBrokerOptions options;
  options.name = absl::GetFlag(FLAGS_name);
  options.work_dir = absl::GetFlag(FLAGS_work_dir);
  options.keep_work_dir = !options.work_dir.empty();
  options.kafka_home = absl::GetFlag(FLAGS_kafka_home);
  options.heap = absl::GetFlag(FLAGS_heap);
  options.start_timeout = absl::Seconds(absl::GetFlag(FLAGS_start_timeout_s));
  auto broker = polder::kafka_testing::KafkaBroker::Start(options);
  if (!broker.ok()) {
    std::fprintf(stderr, "polder-kafka: %s\n", broker.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", (*broker)->bootstrap_servers().c_str());
  std::fflush(stdout);
  const std::string ready_file = absl::GetFlag(FLAGS_ready_file);
  if (!ready_file.empty()) {
    std::string tmp = ready_file + ".tmp";
    std::ofstream(tmp) << (*broker)->bootstrap_servers() << "\n";
    std::rename(tmp.c_str(), ready_file.c_str());
  }
  int sig = 0;
  while (true) {
    sigwait(&signals, &sig);
    if (sig != SIGCHLD) break;
    if ((*broker)->CheckExited()) {
      std::fprintf(stderr, "polder-kafka: broker '%s' exited unexpectedly; log tail:\n%s\n",
                   options.name.c_str(), (*broker)->LogTail(4096).c_str());
      return 1;
    }
  }
  absl::Status s = (*broker)->Stop();
  if (!s.ok()) std::fprintf(stderr, "polder-kafka: %s\n", s.ToString().c_str());
  return s.ok() ? 0 : 1;
}
