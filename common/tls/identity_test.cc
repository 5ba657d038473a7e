#include "common/tls/identity.h"

#include <cstdlib>
#include <string>

#include "common/status/status_matchers.h"
#include "common/tls/ca.h"
#include "common/tls/certificate.h"
#include "common/tls/test_federation.h"
#include "common/trust/keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace tls {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fed_ = std::make_unique<TestFederation>(
        std::string(std::getenv("TEST_TMPDIR")) + "/" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  std::string Chain(const KeyAndCert& kc) { return kc.cert_pem + fed_->issuing().cert_pem; }
  std::unique_ptr<TestFederation> fed_;
};

TEST_F(IdentityTest, AdmitsAListedPeerAndReportsItsIdentity) {
  KeyAndCert kc = fed_->Issue("groningen");
  fed_->Admit("groningen", kc);
  ASSERT_OK_AND_ASSIGN(PeerIdentity id, fed_->Checker()->Check(Chain(kc)));
  EXPECT_EQ(id.peer_id, "groningen");
  EXPECT_EQ(id.key_thumbprint, *KeyThumbprint(kc.cert_pem));
  EXPECT_EQ(id.serial_hex, ParseCertificate(kc.cert_pem)->serial_hex);
}

TEST_F(IdentityTest, PeerIdFromSubjectSerialNumberWhenConfigured) {
  PeerCertOptions o;
  o.subject_serial_number = "utrecht";
  KeyAndCert kc = fed_->Issue("groningen", o);  // SAN says groningen; serialNumber says utrecht.
  fed_->Admit("utrecht", kc);
  ASSERT_OK_AND_ASSIGN(PeerIdentity id,
                       fed_->Checker(IdentitySource::kSubjectSerialNumber)->Check(Chain(kc)));
  EXPECT_EQ(id.peer_id, "utrecht");
  KeyAndCert plain = fed_->Issue("groningen");
  EXPECT_THAT(fed_->Checker(IdentitySource::kSubjectSerialNumber)->Check(Chain(plain)),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("no subject serialNumber")));
}

TEST_F(IdentityTest, RefusesForeignFederationIdentities) {
  IdentityChecker::Options o;
  o.federation = "other-federation";
  o.trust_bundle_path = fed_->bundle_path();
  o.directory = [this] { return fed_->directory(); };
  ASSERT_OK_AND_ASSIGN(auto checker, IdentityChecker::Create(o));
  KeyAndCert kc = fed_->Issue("groningen");
  EXPECT_THAT(checker->Check(Chain(kc)),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("is not in federation 'other-federation'")));
  EXPECT_THAT(checker->Check(""),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("no client certificate")));
}

TEST_F(IdentityTest, RevocationIsPickedUpFromDiskWithoutANewChecker) {
  KeyAndCert kc = fed_->Issue("groningen");
  fed_->Admit("groningen", kc);
  auto checker = fed_->Checker();
  ASSERT_OK(checker->Check(Chain(kc)).status());
  fed_->Revoke(kc);
  EXPECT_THAT(checker->Check(Chain(kc)),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("has been revoked")));
}

TEST_F(IdentityTest, CrlFromAnotherIssuerIsIgnored) {
  KeyAndCert kc = fed_->Issue("groningen");
  fed_->Admit("groningen", kc);
  // A CRL naming the serial, signed by a CA with the issuing CA's name but another key.
  CaOptions evil;
  evil.common_name = "Polder test federation root";
  evil.organization = "Polder";
  KeyAndCert evil_root = *CreateRootCa(evil);
  evil.common_name = "Polder test issuing CA";
  KeyAndCert evil_issuing = *CreateIssuingCa(evil_root, evil);
  std::string crl = *CreateCrl(evil_issuing, {ParseCertificate(kc.cert_pem)->serial_hex}, 1,
                               absl::Now(), absl::Hours(1));
  ASSERT_OK(trust::WriteFileAtomically(fed_->crl_dir() + "/forged.pem", crl, 0644));
  EXPECT_OK(fed_->Checker()->Check(Chain(kc)).status());
}

// A CRL past its nextUpdate cannot say what was revoked since: the issuer's certificates are
// refused (fail closed) until a current CRL is installed.
TEST_F(IdentityTest, AStaleCrlRefusesItsIssuersCertificates) {
  KeyAndCert kc = fed_->Issue("groningen");
  fed_->Admit("groningen", kc);
  auto checker = fed_->Checker();
  std::string stale =
      *CreateCrl(fed_->issuing(), {}, 7, absl::Now() - absl::Hours(2), absl::Hours(1));
  ASSERT_OK(trust::WriteFileAtomically(fed_->crl_dir() + "/issuing.crl.pem", stale, 0644));
  EXPECT_THAT(checker->Check(Chain(kc)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("past its nextUpdate")));
  std::string future =
      *CreateCrl(fed_->issuing(), {}, 8, absl::Now() + absl::Hours(2), absl::Hours(24));
  ASSERT_OK(trust::WriteFileAtomically(fed_->crl_dir() + "/issuing.crl.pem", future, 0644));
  EXPECT_THAT(checker->Check(Chain(kc)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("not yet valid")));
  std::string current = *CreateCrl(fed_->issuing(), {}, 9, absl::Now(), absl::Hours(24));
  ASSERT_OK(trust::WriteFileAtomically(fed_->crl_dir() + "/issuing.crl.pem", current, 0644));
  EXPECT_OK(checker->Check(Chain(kc)).status());
}

// An expired directory admits nobody (it used to keep admitting every listed peer).
TEST_F(IdentityTest, AnExpiredDirectoryAdmitsNobody) {
  KeyAndCert kc = fed_->Issue("groningen");
  fed_->Admit("groningen", kc);
  std::shared_ptr<const trust::Directory> d = fed_->directory();
  ASSERT_NE(d, nullptr);
  IdentityChecker::Options o;
  o.federation = kTestFederation;
  o.trust_bundle_path = fed_->bundle_path();
  o.directory = [d] { return d; };
  const absl::Time later = d->valid_until + absl::Hours(1);
  o.clock = [later] { return later; };
  ASSERT_OK_AND_ASSIGN(auto checker, IdentityChecker::Create(o));
  EXPECT_THAT(checker->Check(Chain(kc)), StatusIs(absl::StatusCode::kUnavailable,
                                                  HasSubstr("the federation directory (serial")));
  o.clock = [d] { return d->valid_until - absl::Minutes(1); };
  ASSERT_OK_AND_ASSIGN(auto in_time, IdentityChecker::Create(o));
  EXPECT_OK(in_time->Check(Chain(kc)).status());
}

TEST_F(IdentityTest, OverlappingTrustBundlesDuringRootRotation) {
  KeyAndCert old_peer = fed_->Issue("groningen");
  fed_->Admit("groningen", old_peer);
  // A second federation root, as during a rotation: its peers are admitted once the bundle
  // carries both roots, and the old root's peers stop once it is removed.
  TestFederation next(fed_->dir() + "/next");
  KeyAndCert new_peer = next.Issue("groningen");
  fed_->Admit("groningen", new_peer);
  auto checker = fed_->Checker();
  std::string new_chain = new_peer.cert_pem + next.issuing().cert_pem;
  EXPECT_THAT(checker->Check(new_chain),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("trusted federation CA")));
  ASSERT_OK(trust::WriteFileAtomically(fed_->bundle_path(),
                                       fed_->root().cert_pem + next.root().cert_pem, 0644));
  EXPECT_OK(checker->Check(new_chain).status());
  EXPECT_OK(checker->Check(Chain(old_peer)).status());
  ASSERT_OK(trust::WriteFileAtomically(fed_->bundle_path(), next.root().cert_pem, 0644));
  EXPECT_THAT(checker->Check(Chain(old_peer)),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("trusted federation CA")));
  EXPECT_OK(checker->Check(new_chain).status());
}

TEST_F(IdentityTest, NoDirectoryYetIsUnavailable) {
  IdentityChecker::Options o;
  o.federation = kTestFederation;
  o.trust_bundle_path = fed_->bundle_path();
  o.directory = [] { return std::shared_ptr<const trust::Directory>(); };
  ASSERT_OK_AND_ASSIGN(auto checker, IdentityChecker::Create(o));
  EXPECT_THAT(checker->Check(Chain(fed_->Issue("groningen"))),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no federation directory")));
  o.directory = nullptr;
  EXPECT_THAT(IdentityChecker::Create(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o.trust_bundle_path = "/nonexistent/bundle.pem";
  o.require_directory = false;
  EXPECT_THAT(IdentityChecker::Create(o),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("trust bundle")));
}

}  // namespace
}  // namespace tls
}  // namespace polder
