#include "common/server/certificate_expiry.h"

#include "absl/strings/str_cat.h"
#include "common/tls/certificate.h"
#include "common/trust/keys.h"

namespace polder {
namespace server {

CertificateExpiry::CertificateExpiry(std::string cert_file) : cert_file_(std::move(cert_file)) {
  Refresh();
}

void CertificateExpiry::Refresh() {
  absl::StatusOr<std::string> pem = trust::ReadFileToString(cert_file_);
  if (!pem.ok()) return;
  absl::StatusOr<tls::CertificateInfo> info = tls::ParseCertificate(*pem);
  if (!info.ok()) return;
  not_after_unix_ = absl::ToUnixSeconds(info->not_after);
}

absl::Time CertificateExpiry::not_after() const {
  const int64_t t = not_after_unix_;
  return t == 0 ? absl::InfinitePast() : absl::FromUnixSeconds(t);
}

absl::Status CertificateExpiry::Check(absl::Time now) const {
  if (not_after() <= now) {
    return absl::FailedPreconditionError(absl::StrCat(cert_file_, " is unreadable or expired"));
  }
  return absl::OkStatus();
}

}  // namespace server
}  // namespace polder
