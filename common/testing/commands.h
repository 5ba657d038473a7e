// Test helpers for running the command-line tools tests drive (openssl, node, buf, curl,
// polderctl) and for finding the npm tools the setup installed.
#ifndef POLDER_COMMON_TESTING_COMMANDS_H_
#define POLDER_COMMON_TESTING_COMMANDS_H_

#include <string>

namespace polder {
namespace testing {

// Runs `command` through /bin/sh with stderr merged into stdout; returns its exit status
// (-1 if it could not run or was killed by a signal) with its output in `*output`.
int RunCommand(const std::string& command, std::string* output);

// The npm tools folder: $POLDER_NPM_HOME (set by test.sh), else the newest complete install in
// the setup cache (/var/cache/polder/npm-*); "" if there is none.
std::string NpmHome();
// The Python test clients' venv (tools/setup/setup.sh): $POLDER_PIP_HOME, else the newest
// complete /var/cache/polder/pip-*; "" if none.
std::string PipHome();

}  // namespace testing
}  // namespace polder

#endif  // POLDER_COMMON_TESTING_COMMANDS_H_
