#include "common/server/process.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "google/protobuf/stubs/logging.h"

namespace polder {
namespace server {
namespace {

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

}  // namespace

TerminationSignals::TerminationSignals() {
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
}

int TerminationSignals::Wait() {
  int sig = 0;
  while (sigwait(&signals_, &sig) != 0) {
  }
  return sig;
}

void InstallProtobufLogBridge() { google::protobuf::SetLogHandler(&ProtobufLog); }

absl::Status WriteReadyFile(const std::string& path, const nlohmann::json& ports) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << ports.dump() << "\n";
    out.flush();
    if (!out) {
      return absl::UnavailableError(absl::StrCat("cannot write the ready file ", tmp));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot rename ", tmp, " to ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace server
}  // namespace polder
