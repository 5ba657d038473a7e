// KafkaBroker: a real single-node Apache Kafka broker (KRaft, combined broker + controller) for
// tests and the demo, bound to 127.0.0.1 on free ports with its own data directory.
//
//   ASSIGN_OR_RETURN(auto broker, KafkaBroker::Start({}));
//   producer_config.bootstrap_servers = broker->bootstrap_servers();
//   ...
//   RETURN_IF_ERROR(broker->Kill());      // SIGKILL, as a crash would
//   RETURN_IF_ERROR(broker->Restart());   // same port, same data directory
//
// Start() returns once the broker answers a metadata request listing itself (no fixed sleeps);
// it fails after `start_timeout` with the tail of the broker's log in the error, and picks new
// ports when the ones it chose were taken in the meantime. The broker runs in its own process
// group with a parent-death signal (SIGKILL), so a test killed on timeout leaves no broker
// behind; the destructor stops it cleanly (SIGTERM, then SIGKILL after `stop_timeout`).
//
// The parent-death signal is tied to the *thread* that called Start()/Restart(): call them from
// a thread that outlives the broker (the test's main thread).
//
// Thread-compatible: one thread drives a broker at a time. Several brokers may run at once.
#ifndef POLDER_TOOLS_KAFKA_KAFKA_BROKER_H_
#define POLDER_TOOLS_KAFKA_KAFKA_BROKER_H_

#include <sys/types.h>

#include <functional>
#include <ios>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace polder {
namespace kafka_testing {

struct KafkaBrokerOptions {
  // Kafka runtime (a folder with libs/*.jar), as installed by tools/setup/setup.sh. Empty: the
  // environment variable POLDER_KAFKA_HOME, else /var/cache/polder/kafka-<pinned version>.
  std::string kafka_home;
  // Folder for the broker's data, config and log. Empty: a fresh folder under $TEST_TMPDIR (or
  // $TMPDIR, or /tmp), removed by the destructor unless `keep_work_dir`.
  std::string work_dir;
  bool keep_work_dir = false;
  // The java executable.
  std::string java = "java";
  // JVM heap (-Xmx); test brokers are small.
  std::string heap = "512m";
  // How long Start() and Restart() wait for the broker to serve.
  absl::Duration start_timeout = absl::Seconds(60);
  // How long Stop() waits after SIGTERM before it sends SIGKILL.
  absl::Duration stop_timeout = absl::Seconds(30);
  // Attempts with fresh ports when the chosen ports were taken before the broker bound them.
  int start_attempts = 3;
  // Extra or overriding server.properties entries.
  std::map<std::string, std::string> properties;
  // A name shown in logs and the process list (e.g. the city this broker belongs to).
  std::string name = "kafka";
  // Chooses each listener port; default PickFreePort. Tests inject a picker that returns a
  // port already taken to exercise the retry.
  std::function<absl::StatusOr<int>()> port_picker;
  // The address the listeners bind and advertise.
  std::string bind_address = "127.0.0.1";
  // An extra mutual-TLS listener (SSL, client certificate required) beside PLAINTEXT: a client
  // is the principal User:<its certificate's subject DN>, e.g. User:CN=groningen-node, as
  // Strimzi's tls users are. PEM files: `keystore_file` holds the broker's PKCS#8 key and its
  // certificate chain (its SAN must name bind_address), `truststore_file` the clients' CA.
  struct TlsListener {
    std::string keystore_file;
    std::string truststore_file;
  };
  std::optional<TlsListener> tls_listener;
  // The KRaft StandardAuthorizer: what no ACL allows is denied. The PLAINTEXT and CONTROLLER
  // listeners' principal (User:ANONYMOUS: the test's administration and the broker itself) is
  // a super user; TLS clients get what ACLs grant them.
  bool authorizer = false;
};

class KafkaCluster;

class KafkaBroker {
 public:
  // Formats a fresh data directory, starts the broker and waits until it serves.
  static absl::StatusOr<std::unique_ptr<KafkaBroker>> Start(KafkaBrokerOptions options);

  KafkaBroker(const KafkaBroker&) = delete;
  KafkaBroker& operator=(const KafkaBroker&) = delete;
  // Stops the broker (see Stop) and removes a work dir it created.
  ~KafkaBroker();

  // "<bind address>:<port>", for bootstrap.servers.
  std::string bootstrap_servers() const;
  // The TLS listener's host:port (empty without options.tls_listener).
  std::string tls_bootstrap_servers() const;
  int port() const { return port_; }
  int controller_port() const { return controller_port_; }
  const std::string& work_dir() const { return work_dir_; }
  const std::string& log_path() const { return log_path_; }
  // Process id of the running broker JVM, or -1.
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // Reaps the broker if it died on its own (crash, OOM kill); then returns true and running()
  // becomes false. For supervisors such as polder-kafka.
  bool CheckExited();
  // The KRaft cluster id this broker was formatted with; readiness requires the broker on our
  // port to report it, so a foreign broker that took the port is never mistaken for ours.
  const std::string& cluster_id() const { return cluster_id_; }
  bool paused() const { return paused_; }

  // Clean shutdown: SIGTERM (and SIGCONT if paused), waits up to stop_timeout, then SIGKILL.
  absl::Status Stop();
  // SIGKILL to the broker's process group, as a crash would; reaps it.
  absl::Status Kill();
  // SIGSTOP / SIGCONT: the broker stops answering but keeps its sockets open.
  absl::Status Pause();
  absl::Status Resume();
  // Starts the broker again on the same ports and data directory (after Stop or Kill) and
  // waits until it serves. FAILED_PRECONDITION if it is running.
  absl::Status Restart();

  // The last `max_bytes` of the broker's log.
  std::string LogTail(size_t max_bytes = 4096) const;

 private:
  friend class KafkaCluster;
  explicit KafkaBroker(KafkaBrokerOptions options);
  absl::Status Prepare();
  absl::Status WriteConfig();
  absl::Status Format();
  absl::Status Launch();
  absl::Status WaitUntilServing();
  absl::Status StartOnFreshPorts();
  // Reaps the child if it exited; returns true if it is gone.
  bool ReapIfExited(int* wait_status);
  // The log written since the last Launch (start-up errors of this attempt only).
  std::string LogSinceLaunch() const;

  KafkaBrokerOptions options_;
  std::string kafka_home_;
  std::string work_dir_;
  bool owns_work_dir_ = false;
  std::string log_path_;
  std::string config_path_;
  int port_ = 0;
  int tls_port_ = 0;
  int controller_port_ = 0;
  std::string cluster_id_;
  // A node of a KafkaCluster: its id and the cluster's static controller quorum
  // ("1@host:port,2@host:port,…"); empty for a single broker (a standalone quorum).
  int node_id_ = 1;
  std::string quorum_voters_;
  // Size of the log file when the current process was launched.
  std::streamoff log_offset_at_launch_ = 0;
  pid_t pid_ = -1;
  bool paused_ = false;
};

// The Kafka runtime folder KafkaBroker uses when options.kafka_home is empty.
std::string DefaultKafkaHome();

// The Kafka version setup installs (tools/setup/versions.sh POLDER_KAFKA_VERSION): its folders
// under /var/cache/polder are named after it.
inline constexpr char kPinnedKafkaVersion[] = "4.1.1";

// A fresh KRaft cluster id (16 random bytes, URL-safe base64).
std::string NewClusterId();

// Runs a Kafka tool's main class from `kafka_home` (e.g. org.apache.kafka.tools.
// MetadataQuorumCommand) with `args`; its output (stdout and stderr) once it exited 0, else the
// error with the output. `scratch_dir` holds the output file.
absl::StatusOr<std::string> RunKafkaTool(const std::string& kafka_home, const std::string& java,
                                         const std::string& main_class,
                                         const std::vector<std::string>& args,
                                         const std::string& scratch_dir);

// Reserves-and-releases a free TCP port on 127.0.0.1 (the OS picks it). Racy by nature: the
// broker launcher retries when a port was taken in between.
absl::StatusOr<int> PickFreePort();

}  // namespace kafka_testing
}  // namespace polder

#endif  // POLDER_TOOLS_KAFKA_KAFKA_BROKER_H_
