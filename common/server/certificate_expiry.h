// A service's own certificate expiry, for its readiness and its metrics: read from the
// certificate file at start and on each Refresh() (the file may be rotated), not on every probe.
#ifndef POLDER_COMMON_SERVER_CERTIFICATE_EXPIRY_H_
#define POLDER_COMMON_SERVER_CERTIFICATE_EXPIRY_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace polder {
namespace server {

class CertificateExpiry {
 public:
  // Reads `cert_file` (PEM, leaf first) now.
  explicit CertificateExpiry(std::string cert_file);

  // Reads the file again; an unreadable file keeps the last expiry read.
  void Refresh();
  // The leaf's notAfter; InfinitePast until the file has been read once.
  absl::Time not_after() const;
  // OK while the certificate is valid at `now`; FAILED_PRECONDITION "<file> is unreadable or
  // expired" otherwise.
  absl::Status Check(absl::Time now) const;

 private:
  const std::string cert_file_;
  std::atomic<int64_t> not_after_unix_{0};  // 0: never read
};

}  // namespace server
}  // namespace polder

#endif  // POLDER_COMMON_SERVER_CERTIFICATE_EXPIRY_H_
