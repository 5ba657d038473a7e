// What every Polder server process does the same way around its listeners: the termination
// signals it drains on, libprotobuf's messages as rate-limited JSON log lines, and the ready file
// a supervisor or test reads the bound ports from.
//
//   int main(int argc, char** argv) {
//     server::TerminationSignals signals;  // before any thread starts
//     ... start the listeners ...
//     server::WriteReadyFile(path, {{"grpc_port", port}});
//     int sig = signals.Wait();
//     ... drain ...
//   }
#ifndef POLDER_COMMON_SERVER_PROCESS_H_
#define POLDER_COMMON_SERVER_PROCESS_H_

#include <signal.h>

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace server {

// Blocks SIGINT and SIGTERM in the constructing thread (and so in every thread it starts after),
// so they are taken only by Wait(); ignores SIGPIPE, so a client that disconnects mid-response
// cannot kill the process (TLS writes raise it). Construct before any thread starts.
class TerminationSignals {
 public:
  TerminationSignals();
  TerminationSignals(const TerminationSignals&) = delete;
  TerminationSignals& operator=(const TerminationSignals&) = delete;

  // Waits for SIGINT or SIGTERM and returns its number.
  int Wait();

 private:
  sigset_t signals_;
};

// Routes libprotobuf's messages (e.g. what it refused in client input: invalid UTF-8 in a string
// field) to the JSON log, at most 10 lines a second with the rest counted, so input cannot flood
// the log.
void InstallProtobufLogBridge();

// Writes `ports` as one JSON line to `path` atomically (a temporary file renamed over it), so a
// reader never sees a half-written file.
absl::Status WriteReadyFile(const std::string& path, const nlohmann::json& ports);

}  // namespace server
}  // namespace polder

#endif  // POLDER_COMMON_SERVER_PROCESS_H_
