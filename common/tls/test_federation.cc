#include "common/tls/test_federation.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/trust/keys.h"
#include "gtest/gtest.h"

namespace polder {
namespace tls {

TestFederation::TestFederation(std::string dir, std::string federation)
    : dir_(std::move(dir)), federation_(std::move(federation)) {
  std::filesystem::create_directories(dir_ + "/crl");
  bundle_ = dir_ + "/bundle.pem";
  crl_dir_ = dir_ + "/crl";
  CaOptions root_opts;
  root_opts.common_name = "Polder test federation root";
  root_opts.organization = "Polder";
  absl::StatusOr<KeyAndCert> root = CreateRootCa(root_opts);
  EXPECT_TRUE(root.ok()) << root.status();
  root_ = *root;
  CaOptions issuing_opts = root_opts;
  issuing_opts.common_name = "Polder test issuing CA";
  absl::StatusOr<KeyAndCert> issuing = CreateIssuingCa(root_, issuing_opts);
  EXPECT_TRUE(issuing.ok()) << issuing.status();
  issuing_ = *issuing;
  EXPECT_TRUE(trust::WriteFileAtomically(bundle_, root_.cert_pem, 0644).ok());
  auto d = std::make_shared<trust::Directory>();
  d->federation = federation_;
  d->serial = 1;
  d->valid_from = absl::Now() - absl::Hours(1);
  d->valid_until = absl::Now() + absl::Hours(24);
  directory_ = d;
}

KeyAndCert TestFederation::Issue(const std::string& peer_id, PeerCertOptions o) {
  o.federation = federation_;
  o.peer_id = peer_id;
  if (o.dns_names.empty()) o.dns_names = {"localhost"};
  if (o.ip_addresses.empty()) o.ip_addresses = {"127.0.0.1"};
  absl::StatusOr<KeyAndCert> kc = IssuePeerCertificate(issuing_, o);
  EXPECT_TRUE(kc.ok()) << kc.status();
  return kc.ok() ? *kc : KeyAndCert{};
}

void TestFederation::Admit(const std::string& peer_id, const KeyAndCert& kc) {
  absl::StatusOr<std::string> thumbprint = KeyThumbprint(kc.cert_pem);
  EXPECT_TRUE(thumbprint.ok()) << thumbprint.status();
  absl::MutexLock lock(&mu_);
  auto d = std::make_shared<trust::Directory>(*directory_);
  trust::PeerEntry* entry = nullptr;
  for (auto& p : d->peers) {
    if (p.id == peer_id) entry = &p;
  }
  if (entry == nullptr) {
    d->peers.push_back({peer_id, peer_id + ".example:8443", {}, {}});
    entry = &d->peers.back();
  }
  entry->tls_key_thumbprints.push_back(*thumbprint);
  d->serial++;
  directory_ = d;
}

void TestFederation::Revoke(const KeyAndCert& kc) {
  absl::StatusOr<CertificateInfo> info = ParseCertificate(kc.cert_pem);
  ASSERT_TRUE(info.ok()) << info.status();
  revoked_.push_back(info->serial_hex);
  absl::StatusOr<std::string> crl =
      CreateCrl(issuing_, revoked_, ++crl_number_, absl::Now(), absl::Hours(24));
  ASSERT_TRUE(crl.ok()) << crl.status();
  ASSERT_TRUE(trust::WriteFileAtomically(crl_dir_ + "/issuing.crl.pem", *crl, 0644).ok());
}

TlsFiles TestFederation::WriteIdentity(const std::string& name, const KeyAndCert& kc,
                                       const std::string& chain_tail) {
  std::string d = absl::StrCat(dir_, "/", name);
  std::filesystem::create_directories(d);
  EXPECT_TRUE(trust::WriteFileAtomically(d + "/key.pem", kc.key_pem, 0600).ok());
  EXPECT_TRUE(trust::WriteFileAtomically(
                  d + "/cert.pem",
                  kc.cert_pem + (chain_tail.empty() ? issuing_.cert_pem : chain_tail), 0644)
                  .ok());
  TlsFiles f;
  f.cert_path = d + "/cert.pem";
  f.key_path = d + "/key.pem";
  f.trust_bundle_path = bundle_;
  f.refresh_interval = absl::Seconds(1);
  return f;
}

std::shared_ptr<const trust::Directory> TestFederation::directory() const {
  absl::MutexLock lock(&mu_);
  return directory_;
}

std::shared_ptr<IdentityChecker> TestFederation::Checker(IdentitySource source) {
  IdentityChecker::Options o;
  o.federation = federation_;
  o.source = source;
  o.trust_bundle_path = bundle_;
  o.crl_dir = crl_dir_;
  o.directory = [this] { return directory(); };
  absl::StatusOr<std::unique_ptr<IdentityChecker>> c = IdentityChecker::Create(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::shared_ptr<IdentityChecker>(std::move(*c)) : nullptr;
}

}  // namespace tls
}  // namespace polder
