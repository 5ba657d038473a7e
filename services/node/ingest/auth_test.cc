#include "services/node/ingest/auth.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace node {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    token_file_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/parking.token");
    std::ofstream(token_file_) << "s3cr3t-parking-token-0001\n";
    ASSERT_OK_AND_ASSIGN(auth_, IngestAuthenticator::Create(
                                    {{"gateway-north", {"mobility.bike-counts"}, ""},
                                     {"parking-vendor", {"*"}, token_file_}},
                                    false));
  }
  std::string token_file_;
  std::unique_ptr<IngestAuthenticator> auth_;
};

TEST_F(AuthTest, CertificatesAndBearerTokensIdentifyCallers) {
  EXPECT_EQ(auth_->Authenticate("gateway-north", "").value_or(""), "gateway-north");
  EXPECT_EQ(auth_->Authenticate("", "Bearer s3cr3t-parking-token-0001").value_or(""), "parking-vendor");
  EXPECT_THAT(auth_->Authenticate("", ""), StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("client certificate")));
  EXPECT_THAT(auth_->Authenticate("", "Bearer wrong-token-000000000"),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not valid")));
  EXPECT_THAT(auth_->Authenticate("", "Basic abc"), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(auth_->Authenticate("enschede", ""),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("'enschede' is not an ingest identity")));
}

TEST_F(AuthTest, GrantsLimitDatasets) {
  EXPECT_OK(auth_->Authorize("gateway-north", "mobility.bike-counts"));
  EXPECT_THAT(auth_->Authorize("gateway-north", "parking.occupancy"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("may not publish 'parking.occupancy'")));
  EXPECT_OK(auth_->Authorize("parking-vendor", "parking.occupancy"));
}

TEST_F(AuthTest, RotatedTokenFilesAreReadWithoutARestartAndSecretsStayOutOfErrors) {
  std::ofstream(token_file_) << "rotated-parking-token-000002\n";
  // Make sure the stamp changes even on coarse file-system clocks.
  std::ofstream(token_file_, std::ios::app) << "\n";
  EXPECT_EQ(auth_->Authenticate("", "Bearer rotated-parking-token-000002").value_or(""), "parking-vendor");
  absl::StatusOr<std::string> old = auth_->Authenticate("", "Bearer s3cr3t-parking-token-0001");
  EXPECT_THAT(old, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(std::string(old.status().message()), ::testing::Not(HasSubstr("s3cr3t")));
  std::ofstream(token_file_) << "short\n";
  EXPECT_THAT(IngestAuthenticator::Create({{"x-gateway", {"*"}, token_file_}}, false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("shorter than 16")));
}

}  // namespace
}  // namespace node
}  // namespace polder
