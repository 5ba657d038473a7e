#include "services/node/ingest/auth.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <vector>

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
    Write("s3cr3t-parking-token-0001\n");
    ASSERT_OK_AND_ASSIGN(
        auth_, IngestAuthenticator::Create({{"gateway-north", {"mobility.bike-counts"}, ""},
                                            {"parking-vendor", {"*"}, token_file_}},
                                           false));
  }
  // Writes the token file (mode 0600, a new stamp every time).
  void Write(const std::string& content) {
    std::ofstream(token_file_) << content << std::string(++writes_, ' ');
    ASSERT_EQ(chmod(token_file_.c_str(), 0600), 0);
  }
  bool TokenValid() const {
    for (const auto& t : auth_->tokens()) {
      if (t.identity == "parking-vendor") return t.valid;
    }
    return false;
  }
  std::string token_file_;
  int writes_ = 0;
  std::unique_ptr<IngestAuthenticator> auth_;
};

TEST_F(AuthTest, CertificatesAndBearerTokensIdentifyCallers) {
  EXPECT_EQ(auth_->Authenticate("gateway-north", "").value_or(""), "gateway-north");
  EXPECT_EQ(auth_->Authenticate("", "Bearer s3cr3t-parking-token-0001").value_or(""),
            "parking-vendor");
  EXPECT_THAT(auth_->Authenticate("", ""),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("client certificate")));
  EXPECT_THAT(auth_->Authenticate("", "Bearer wrong-token-000000000"),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not valid")));
  EXPECT_THAT(auth_->Authenticate("", "Basic abc"), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(auth_->Authenticate("enschede", ""),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("'enschede' is not an ingest identity")));
}

TEST_F(AuthTest, GrantsLimitDatasets) {
  EXPECT_OK(auth_->Authorize("gateway-north", "mobility.bike-counts"));
  EXPECT_THAT(auth_->Authorize("gateway-north", "parking.occupancy"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("may not publish 'parking.occupancy'")));
  EXPECT_OK(auth_->Authorize("parking-vendor", "parking.occupancy"));
}

TEST_F(AuthTest, RotatedTokenFilesAreReadWithoutARestartAndSecretsStayOutOfErrors) {
  Write("rotated-parking-token-000002\n");
  EXPECT_EQ(auth_->Authenticate("", "Bearer rotated-parking-token-000002").value_or(""),
            "parking-vendor");
  absl::StatusOr<std::string> old = auth_->Authenticate("", "Bearer s3cr3t-parking-token-0001");
  EXPECT_THAT(old, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(std::string(old.status().message()), ::testing::Not(HasSubstr("s3cr3t")));
  Write("short\n");
  EXPECT_THAT(IngestAuthenticator::Create({{"x-gateway", {"*"}, token_file_}}, false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("shorter than 16")));
}

// A certificate whose name is a token identity's gets none of its grants.
TEST_F(AuthTest, ACertificateNamedLikeATokenIdentityIsRefused) {
  EXPECT_THAT(
      auth_->Authenticate("parking-vendor", ""),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("authenticates by bearer token")));
  EXPECT_THAT(auth_->Authenticate("parking-vendor", "Bearer s3cr3t-parking-token-0001"),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

// Deleting, emptying, shortening or exposing the token file revokes the token; nothing of the
// old token is kept. A valid file restores it.
TEST_F(AuthTest, BrokenTokenFilesRevokeTheToken) {
  const std::string good = "Bearer s3cr3t-parking-token-0001";
  ASSERT_EQ(auth_->Authenticate("", good).value_or(""), "parking-vendor");
  ASSERT_TRUE(TokenValid());
  struct Case {
    const char* what;
    std::function<void()> breaks;
    const char* problem;
  };
  const std::vector<Case> cases = {
      {"deleted", [&] { std::remove(token_file_.c_str()); }, "is missing"},
      {"emptied", [&] { Write(""); }, "is empty"},
      {"too short", [&] { Write("short"); }, "shorter than 16"},
      {"readable by others",
       [&] {
         Write("s3cr3t-parking-token-0001");
         chmod(token_file_.c_str(), 0644);
       },
       "chmod 600"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    c.breaks();
    EXPECT_THAT(auth_->Authenticate("", good), StatusIs(absl::StatusCode::kUnauthenticated));
    EXPECT_FALSE(TokenValid());
    auth_->Refresh();  // the periodic check finds the same
    ASSERT_EQ(auth_->tokens().size(), 1u);
    EXPECT_THAT(auth_->tokens()[0].problem, HasSubstr(c.problem));
    Write("s3cr3t-parking-token-0001");
    auth_->Refresh();
    EXPECT_TRUE(TokenValid());
    EXPECT_EQ(auth_->Authenticate("", good).value_or(""), "parking-vendor");
  }
}

TEST_F(AuthTest, ATokenFileReadableByOthersRefusesStart) {
  Write("s3cr3t-parking-token-0001");
  chmod(token_file_.c_str(), 0604);
  EXPECT_THAT(IngestAuthenticator::Create({{"parking-vendor", {"*"}, token_file_}}, false),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("accessible to others or another group (mode 0604")));
  // Read-only by the process's own group (a Kubernetes Secret under the pod's fsGroup): taken.
  chmod(token_file_.c_str(), 0440);
  EXPECT_OK(IngestAuthenticator::Create({{"parking-vendor", {"*"}, token_file_}}, false).status());
}

}  // namespace
}  // namespace node
}  // namespace polder
