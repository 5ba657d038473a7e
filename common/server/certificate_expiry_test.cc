#include "common/server/certificate_expiry.h"

#include <cstdlib>
#include <fstream>

#include "common/status/status_matchers.h"
#include "common/tls/ca.h"
#include "gtest/gtest.h"

namespace polder {
namespace server {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

std::string WriteCa(const std::string& name, absl::Time now, absl::Duration validity) {
  tls::CaOptions o;
  o.common_name = "expiry test";
  o.now = now;
  o.validity = validity;
  absl::StatusOr<tls::KeyAndCert> ca = tls::CreateRootCa(o);
  EXPECT_TRUE(ca.ok()) << ca.status();
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << ca->cert_pem;
  return path;
}

TEST(CertificateExpiryTest, ReadsNotAfterAndChecksIt) {
  const absl::Time now = absl::FromUnixSeconds(1800000000);
  CertificateExpiry e(WriteCa("valid.pem", now, absl::Hours(2)));
  EXPECT_EQ(e.not_after(), now + absl::Hours(2));
  EXPECT_OK(e.Check(now));
  EXPECT_THAT(e.Check(now + absl::Hours(3)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("valid.pem")));
}

TEST(CertificateExpiryTest, UnreadableFileIsNotValid) {
  CertificateExpiry missing(std::string(std::getenv("TEST_TMPDIR")) + "/missing.pem");
  EXPECT_EQ(missing.not_after(), absl::InfinitePast());
  EXPECT_THAT(missing.Check(absl::Now()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("unreadable or expired")));
}

TEST(CertificateExpiryTest, RefreshPicksUpARotatedFileAndKeepsTheLastOnGarbage) {
  const absl::Time now = absl::FromUnixSeconds(1800000000);
  const std::string path = WriteCa("rotated.pem", now, absl::Hours(1));
  CertificateExpiry e(path);
  EXPECT_EQ(e.not_after(), now + absl::Hours(1));
  WriteCa("rotated.pem", now, absl::Hours(48));
  e.Refresh();
  EXPECT_EQ(e.not_after(), now + absl::Hours(48));
  std::ofstream(path) << "not a certificate";
  e.Refresh();
  EXPECT_EQ(e.not_after(), now + absl::Hours(48));
}

}  // namespace
}  // namespace server
}  // namespace polder
