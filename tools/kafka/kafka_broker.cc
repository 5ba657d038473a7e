#include "tools/kafka/kafka_broker.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"

namespace polder {
namespace kafka_testing {
namespace {

namespace fs = std::filesystem;

std::string Errno(absl::string_view what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

absl::Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

std::string ReadTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  std::streamoff size = in.tellg();
  std::streamoff start = size > static_cast<std::streamoff>(max_bytes)
                             ? size - static_cast<std::streamoff>(max_bytes)
                             : 0;
  in.seekg(start);
  std::string out(static_cast<size_t>(size - start), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

// A KRaft cluster id: 16 random bytes, base64url without padding (what StorageTool random-uuid
// prints), made here to save a JVM start.
// An id starting with '-' would be read by StorageTool's argument parser as an option, so
// such ids are drawn again.
std::string RandomClusterId() {
  std::random_device rd;
  std::string id;
  do {
    std::string bytes(16, '\0');
    for (auto& b : bytes) b = static_cast<char>(rd() & 0xff);
    absl::WebSafeBase64Escape(bytes, &id);
  } while (id.empty() || id[0] == '-' || id[0] == '_');
  return id;
}

std::string TempRoot() {
  for (const char* var : {"TEST_TMPDIR", "TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && *v != '\0') return v;
  }
  return "/tmp";
}

// "exited with status N", "could not be executed", "was killed by signal N".
std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    if (code == 127) return "could not be executed (not installed or not on PATH?)";
    return absl::StrCat("exited with status ", code);
  }
  if (WIFSIGNALED(status)) return absl::StrCat("was killed by signal ", WTERMSIG(status));
  return absl::StrCat("ended with wait status ", status);
}

// Starts `argv` with stdout and stderr appended to `log_path`, stdin from /dev/null, in `cwd`,
// with SIGKILL as its parent-death signal and, if `own_group`, in a process group of its own.
// Everything the child needs is prepared before fork(): the caller may have other threads
// (librdkafka's), so the child makes only async-signal-safe calls before exec.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log_path,
                            const std::string& cwd, bool own_group) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const char* log = log_path.c_str();
  const char* dir = cwd.c_str();
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(Errno("fork"));
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // Do not inherit a supervisor's blocked signals.
    if (own_group) setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);  // The parent died before prctl took effect.
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
      dup2(devnull, 0);
      close(devnull);
    }
    if (chdir(dir) != 0) _exit(126);
    execvp(args[0], args.data());
    _exit(127);
  }
  if (own_group)
    setpgid(pid, pid);  // Also from the parent, so the group exists before we signal it.
  return pid;
}

// Runs `argv` to completion (see Spawn); OK if it exits with status 0.
absl::Status RunToCompletion(const std::vector<std::string>& argv, const std::string& log_path,
                             const std::string& cwd) {
  ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, log_path, cwd, /*own_group=*/false));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::InternalError(Errno("waitpid"));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(argv[0], " ", DescribeWaitStatus(status)));
}

// True if the broker at `bootstrap` answers a metadata request within `timeout` listing a
// broker and reporting `cluster_id` (so it is the broker we formatted, not another one that
// took the port).
bool BrokerServes(const std::string& bootstrap, const std::string& cluster_id,
                  absl::Duration timeout) {
  char err[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
  rd_kafka_conf_set(conf, "reconnect.backoff.ms", "50", err, sizeof err);
  rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "200", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return false;
  }
  const int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, /*all_topics=*/0, nullptr, &md, ms);
  bool ok = e == RD_KAFKA_RESP_ERR_NO_ERROR && md != nullptr && md->broker_cnt >= 1;
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  if (ok) {
    char* id = rd_kafka_clusterid(rk, ms);
    ok = id != nullptr && cluster_id == id;
    if (id != nullptr) rd_kafka_mem_free(rk, id);
  }
  rd_kafka_destroy(rk);
  return ok;
}

}  // namespace

std::string DefaultKafkaHome() {
  const char* env = std::getenv("POLDER_KAFKA_HOME");
  if (env != nullptr && *env != '\0') return env;
  return absl::StrCat("/var/cache/polder/kafka-", kPinnedKafkaVersion);
}

std::string NewClusterId() { return RandomClusterId(); }

absl::StatusOr<std::string> RunKafkaTool(const std::string& kafka_home, const std::string& java,
                                         const std::string& main_class,
                                         const std::vector<std::string>& args,
                                         const std::string& scratch_dir) {
  static std::atomic<int> counter{0};
  const std::string out = absl::StrCat(scratch_dir, "/tool-", getpid(), "-", ++counter, ".log");
  std::vector<std::string> argv = {java,
                                   "-Xmx128m",
                                   "-XX:+UseSerialGC",
                                   "-XX:TieredStopAtLevel=1",
                                   "-XX:-UsePerfData",
                                   "-cp",
                                   kafka_home + "/libs/*",
                                   main_class};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::Status s = RunToCompletion(argv, out, scratch_dir);
  std::string text = ReadTail(out, 1 << 20);
  std::error_code ec;
  fs::remove(out, ec);
  if (!s.ok()) return absl::InternalError(absl::StrCat(main_class, ": ", s.message(), "\n", text));
  return text;
}

absl::StatusOr<int> PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(Errno("socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string e = Errno("bind 127.0.0.1:0");
    close(fd);
    return absl::UnavailableError(e);
  }
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::string e = Errno("getsockname");
    close(fd);
    return absl::InternalError(e);
  }
  close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

KafkaBroker::KafkaBroker(KafkaBrokerOptions options) : options_(std::move(options)) {}

KafkaBroker::~KafkaBroker() {
  if (running()) {
    absl::Status s = Stop();
    if (!s.ok())
      std::fprintf(stderr, "KafkaBroker %s: %s\n", options_.name.c_str(), s.ToString().c_str());
  }
  if (owns_work_dir_ && !options_.keep_work_dir) {
    std::error_code ec;
    fs::remove_all(work_dir_, ec);
  }
}

absl::StatusOr<std::unique_ptr<KafkaBroker>> KafkaBroker::Start(KafkaBrokerOptions options) {
  std::unique_ptr<KafkaBroker> broker(new KafkaBroker(std::move(options)));
  RETURN_IF_ERROR(broker->Prepare());
  RETURN_IF_ERROR(broker->StartOnFreshPorts());
  return broker;
}

std::string KafkaBroker::bootstrap_servers() const {
  return absl::StrCat(options_.bind_address, ":", port_);
}

std::string KafkaBroker::tls_bootstrap_servers() const {
  if (!options_.tls_listener.has_value()) return "";
  return absl::StrCat(options_.bind_address, ":", tls_port_);
}

std::string KafkaBroker::LogTail(size_t max_bytes) const { return ReadTail(log_path_, max_bytes); }

absl::Status KafkaBroker::Prepare() {
  kafka_home_ = options_.kafka_home.empty() ? DefaultKafkaHome() : options_.kafka_home;
  std::error_code ec;
  if (!fs::is_directory(fs::path(kafka_home_) / "libs", ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("no Kafka runtime at ", kafka_home_,
                     "/libs: run tools/setup/setup.sh (or set POLDER_KAFKA_HOME)"));
  }
  if (options_.work_dir.empty()) {
    std::string tmpl = absl::StrCat(TempRoot(), "/polder-", options_.name, "-XXXXXX");
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) return absl::InternalError(Errno("mkdtemp " + tmpl));
    work_dir_ = buf.data();
    owns_work_dir_ = true;
  } else {
    work_dir_ = options_.work_dir;
    fs::create_directories(work_dir_, ec);
    if (ec)
      return absl::InternalError(absl::StrCat("cannot create ", work_dir_, ": ", ec.message()));
  }
  log_path_ = work_dir_ + "/broker.log";
  config_path_ = work_dir_ + "/server.properties";
  // Console logging at INFO for Kafka's own start/stop lines, WARN for the chatty rest.
  return WriteFile(work_dir_ + "/log4j2.properties",
                   "status = warn\n"
                   "appender.out.type = Console\n"
                   "appender.out.name = OUT\n"
                   "appender.out.layout.type = PatternLayout\n"
                   "appender.out.layout.pattern = [%d] %p %m (%c)%n\n"
                   "rootLogger.level = WARN\n"
                   "rootLogger.appenderRef.out.ref = OUT\n"
                   "logger.server.name = kafka.server\n"
                   "logger.server.level = INFO\n"
                   "logger.raft.name = kafka.server.KafkaRaftServer\n"
                   "logger.raft.level = INFO\n");
}

absl::Status KafkaBroker::WriteConfig() {
  const std::string& host = options_.bind_address;
  std::map<std::string, std::string> p = {
      {"process.roles", "broker,controller"},
      {"node.id", std::to_string(node_id_)},
      {"listeners", absl::StrCat("PLAINTEXT://", host, ":", port_, ",CONTROLLER://", host, ":",
                                 controller_port_)},
      {"advertised.listeners", absl::StrCat("PLAINTEXT://", host, ":", port_)},
      {"controller.listener.names", "CONTROLLER"},
      {"inter.broker.listener.name", "PLAINTEXT"},
      {"listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"},
      {"log.dirs", work_dir_ + "/data"},
      {"num.partitions", "1"},
      {"auto.create.topics.enable", "false"},
      {"offsets.topic.replication.factor", "1"},
      {"offsets.topic.num.partitions", "1"},
      {"transaction.state.log.replication.factor", "1"},
      {"transaction.state.log.min.isr", "1"},
      {"transaction.state.log.num.partitions", "1"},
      {"share.coordinator.state.topic.replication.factor", "1"},
      {"share.coordinator.state.topic.min.isr", "1"},
      {"share.coordinator.state.topic.num.partitions", "1"},
      {"group.initial.rebalance.delay.ms", "0"},
      // Abort transactions of crashed producers quickly, so read_committed readers move on.
      {"transaction.abort.timed.out.transaction.cleanup.interval.ms", "2000"},
      {"transaction.remove.expired.transaction.cleanup.interval.ms", "60000"},
      {"transaction.max.timeout.ms", "900000"},
  };
  if (quorum_voters_.empty()) {
    p["controller.quorum.bootstrap.servers"] = absl::StrCat(host, ":", controller_port_);
  } else {
    p["controller.quorum.voters"] = quorum_voters_;
  }
  if (options_.tls_listener.has_value()) {
    const KafkaBrokerOptions::TlsListener& t = *options_.tls_listener;
    p["listeners"] = absl::StrCat("PLAINTEXT://", host, ":", port_, ",SSL://", host, ":", tls_port_,
                                  ",CONTROLLER://", host, ":", controller_port_);
    p["advertised.listeners"] =
        absl::StrCat("PLAINTEXT://", host, ":", port_, ",SSL://", host, ":", tls_port_);
    p["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT";
    p["listener.name.ssl.ssl.client.auth"] = "required";
    p["listener.name.ssl.ssl.keystore.type"] = "PEM";
    p["listener.name.ssl.ssl.keystore.location"] = t.keystore_file;
    p["listener.name.ssl.ssl.truststore.type"] = "PEM";
    p["listener.name.ssl.ssl.truststore.location"] = t.truststore_file;
  }
  if (options_.authorizer) {
    p["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
    p["super.users"] = "User:ANONYMOUS";
    p["allow.everyone.if.no.acl.found"] = "false";
  }
  for (const auto& [k, v] : options_.properties) p[k] = v;
  std::string text = "# Written by polder KafkaBroker; regenerated on every start.\n";
  for (const auto& [k, v] : p) absl::StrAppend(&text, k, "=", v, "\n");
  return WriteFile(config_path_, text);
}

absl::Status KafkaBroker::Format() {
  if (quorum_voters_.empty()) cluster_id_ = RandomClusterId();  // a cluster's node has its id
  std::vector<std::string> argv = {
      options_.java,
      "-Xmx256m",
      "-XX:+UseSerialGC",
      "-XX:TieredStopAtLevel=1",
      "-XX:-UsePerfData",
      absl::StrCat("-Dlog4j2.configurationFile=", work_dir_, "/log4j2.properties"),
      "-cp",
      kafka_home_ + "/libs/*",
      "kafka.tools.StorageTool",
      "format",
      "-t",
      cluster_id_,
      "-c",
      config_path_};
  // A single broker is its own quorum; a cluster's nodes know theirs from controller.quorum.voters.
  if (quorum_voters_.empty()) argv.insert(argv.begin() + 10, "--standalone");
  absl::Status s = RunToCompletion(argv, log_path_, work_dir_);
  if (!s.ok()) {
    return absl::InternalError(absl::StrCat("formatting the KRaft data dir failed (", s.message(),
                                            "); log tail:\n", LogTail()));
  }
  return absl::OkStatus();
}

absl::Status KafkaBroker::Launch() {
  std::vector<std::string> argv = {
      options_.java, absl::StrCat("-Xmx", options_.heap), "-Xms64m", "-XX:+UseSerialGC",
      "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-Djava.awt.headless=true",
      absl::StrCat("-Dlog4j2.configurationFile=", work_dir_, "/log4j2.properties"),
      // Marker that lets test.sh find leftover brokers.
      absl::StrCat("-Dpolder.kafka.broker=", options_.name), "-cp", kafka_home_ + "/libs/*",
      "kafka.Kafka", config_path_};
  {
    std::ifstream log(log_path_, std::ios::binary | std::ios::ate);
    log_offset_at_launch_ = log ? static_cast<std::streamoff>(log.tellg()) : 0;
  }
  ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, log_path_, work_dir_, /*own_group=*/true));
  pid_ = pid;
  paused_ = false;
  std::ofstream(work_dir_ + "/broker.pid", std::ios::trunc) << pid << "\n";
  return absl::OkStatus();
}

bool KafkaBroker::ReapIfExited(int* wait_status) {
  if (pid_ <= 0) return true;
  pid_t r = waitpid(pid_, wait_status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    pid_ = -1;
    return true;
  }
  return false;
}

absl::Status KafkaBroker::WaitUntilServing() {
  absl::Time deadline = absl::Now() + options_.start_timeout;
  absl::Duration backoff = absl::Milliseconds(100);
  while (absl::Now() < deadline) {
    int ws = 0;
    if (ReapIfExited(&ws)) {
      std::string since = LogSinceLaunch();
      std::string reason =
          absl::StrCat("broker '", options_.name, "' ", DescribeWaitStatus(ws), " during start-up");
      if (absl::StrContains(since, "Address already in use") ||
          absl::StrContains(since, "BindException")) {
        return absl::AlreadyExistsError(
            absl::StrCat(reason, ": port taken; log tail:\n", LogTail(8192)));
      }
      return absl::InternalError(absl::StrCat(reason, "; log tail:\n", LogTail(8192)));
    }
    if (BrokerServes(bootstrap_servers(), cluster_id_, absl::Milliseconds(1000))) {
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
    backoff = std::min(backoff * 2, absl::Milliseconds(500));
  }
  std::string tail = LogTail(8192);
  (void)Kill();
  return absl::DeadlineExceededError(absl::StrCat(
      "broker '", options_.name, "' did not serve on ", bootstrap_servers(), " within ",
      absl::FormatDuration(options_.start_timeout), "; log tail:\n", tail));
}

std::string KafkaBroker::LogSinceLaunch() const {
  std::ifstream in(log_path_, std::ios::binary);
  if (!in) return "";
  in.seekg(log_offset_at_launch_);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

bool KafkaBroker::CheckExited() {
  int ws = 0;
  if (pid_ <= 0) return true;
  return ReapIfExited(&ws);
}

absl::Status KafkaBroker::StartOnFreshPorts() {
  absl::Status last = absl::InternalError("broker start was not attempted");
  for (int attempt = 0; attempt < std::max(1, options_.start_attempts); ++attempt) {
    auto pick = options_.port_picker ? options_.port_picker : PickFreePort;
    ASSIGN_OR_RETURN(port_, pick());
    ASSIGN_OR_RETURN(controller_port_, pick());
    if (controller_port_ == port_) {
      last = absl::AlreadyExistsError("picked the same port twice");
      continue;
    }
    if (options_.tls_listener.has_value()) {
      ASSIGN_OR_RETURN(tls_port_, pick());
      if (tls_port_ == port_ || tls_port_ == controller_port_) {
        last = absl::AlreadyExistsError("picked the same port twice");
        continue;
      }
    }
    std::error_code ec;
    fs::remove_all(work_dir_ + "/data", ec);
    RETURN_IF_ERROR(WriteConfig());
    RETURN_IF_ERROR(Format());
    RETURN_IF_ERROR(Launch());
    last = WaitUntilServing();
    if (last.ok()) return last;
    if (!absl::IsAlreadyExists(last)) return last;  // Only a port race is worth another try.
  }
  return last;
}

absl::Status KafkaBroker::Restart() {
  if (running() && !CheckExited()) {
    return absl::FailedPreconditionError(absl::StrCat("broker '", options_.name, "' is running"));
  }
  // The same port: a port taken by someone else meanwhile is an error here, since clients
  // already hold this address. The previous process may still be releasing it; retry briefly.
  absl::Status last;
  for (int attempt = 0; attempt < std::max(1, options_.start_attempts); ++attempt) {
    RETURN_IF_ERROR(Launch());
    last = WaitUntilServing();
    if (!absl::IsAlreadyExists(last)) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return last;
}

absl::Status KafkaBroker::Pause() {
  if (!running()) return absl::FailedPreconditionError("broker is not running");
  if (kill(-pid_, SIGSTOP) != 0) return absl::InternalError(Errno("SIGSTOP"));
  paused_ = true;
  return absl::OkStatus();
}

absl::Status KafkaBroker::Resume() {
  if (!running()) return absl::FailedPreconditionError("broker is not running");
  if (kill(-pid_, SIGCONT) != 0) return absl::InternalError(Errno("SIGCONT"));
  paused_ = false;
  return absl::OkStatus();
}

absl::Status KafkaBroker::Kill() {
  if (!running()) return absl::OkStatus();
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  int ws = 0;
  while (waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  paused_ = false;
  return absl::OkStatus();
}

absl::Status KafkaBroker::Stop() {
  if (!running()) return absl::OkStatus();
  kill(-pid_, SIGTERM);
  if (paused_) kill(-pid_, SIGCONT);
  absl::Time deadline = absl::Now() + options_.stop_timeout;
  int ws = 0;
  while (absl::Now() < deadline) {
    if (ReapIfExited(&ws)) {
      paused_ = false;
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  pid_t pid = pid_;
  RETURN_IF_ERROR(Kill());
  return absl::DeadlineExceededError(
      absl::StrCat("broker '", options_.name, "' (pid ", pid, ") ignored SIGTERM for ",
                   absl::FormatDuration(options_.stop_timeout), "; killed"));
}

}  // namespace kafka_testing
}  // namespace polder
