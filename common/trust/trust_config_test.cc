#include "common/trust/trust_config.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "common/trust/document.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace trust {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

std::string Tmp(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

absl::StatusOr<TrustConfig> Parse(const std::string& yaml) {
  auto doc = config::Document::FromString(yaml, "node.yaml");
  if (!doc.ok()) return doc.status();
  TrustConfig c;
  config::ObjectReader section = doc->root().Object("trust", config::kRequired);
  ReadTrustConfig(section, &c);
  return doc->Finish(c);
}

TEST(TrustConfigTest, LoadsPinsAndInstallsTheSignedDirectory) {
  PrivateKey op = *PrivateKey::Generate();
  ASSERT_OK(trust::WriteFileAtomically(Tmp("op.pub"), op.public_key().Pem(), 0644));
  SignedDirectory d;
  d.directory.federation = "nl-smartcity";
  d.directory.serial = 3;
  d.directory.issued_at = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  d.directory.valid_from = d.directory.issued_at - absl::Hours(1);
  d.directory.valid_until = d.directory.issued_at + absl::Hours(24 * 30);
  ASSERT_OK(SignDirectory(&d, op, absl::Now()));
  ASSERT_OK(trust::WriteFileAtomically(Tmp("directory.json"), d.ToFileText(), 0644));
  ASSERT_OK_AND_ASSIGN(
      TrustConfig c,
      Parse(absl::StrCat("trust:\n  federation: nl-smartcity\n  directory_file: ",
                         Tmp("directory.json"), "\n  directory_state: ", Tmp("state.json"),
                         "\n  operator_keys:\n    - public_key_file: ", Tmp("op.pub"),
                         "\n      valid_until: 2099-01-01T00:00:00Z\n")));
  ASSERT_OK_AND_ASSIGN(auto store, OpenDirectoryStore(c));
  ASSERT_NE(store->current(), nullptr);
  EXPECT_EQ(store->current()->serial, 3);
  EXPECT_OK(store->CheckExpiry());
}

TEST(TrustConfigTest, ErrorsNameTheKey) {
  EXPECT_THAT(
      Parse("trust:\n  federation: NL\n  operator_keys:\n    - valid_from: soon\n"),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          ::testing::AllOf(
              HasSubstr("trust.federation (line 2): must be a lowercase name"),
              HasSubstr("trust.operator_keys[0].public_key_file"),
              HasSubstr("trust.operator_keys[0].valid_from (line 4): must be an RFC 3339 time"))));
  TrustConfig c;
  c.federation = "nl-smartcity";
  c.operator_keys = {{"/nonexistent/op.pub", "", ""}};
  EXPECT_THAT(LoadPinnedKeys(c),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("trust.operator_keys[0]")));
}

}  // namespace
}  // namespace trust
}  // namespace polder
