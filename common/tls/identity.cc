#include "common/tls/identity.h"

#include <dirent.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/tls/certificate.h"
#include "common/tls/openssl_ptr.h"
#include "common/tls/pem.h"
#include "common/trust/document.h"
#include "common/trust/keys.h"

namespace polder {
namespace tls {
namespace {

using X509Ptr = ssl::UniquePtr<X509>;
using CrlPtr = ssl::UniquePtr<X509_CRL>;

std::string ToPem(X509* x) { return CertificateToPem(x).value_or(""); }

// Names and modification times of the files the anchors come from; a change means reload.
std::string FilesFingerprint(const std::string& bundle, const std::string& crl_dir) {
  std::string fp;
  struct stat st;
  if (stat(bundle.c_str(), &st) == 0) {
    absl::StrAppend(&fp, bundle, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":", st.st_size,
                    ":", st.st_ino, ";");
  }
  if (crl_dir.empty()) return fp;
  if (DIR* d = opendir(crl_dir.c_str())) {
    std::vector<std::string> entries;
    while (dirent* e = readdir(d)) {
      std::string path = absl::StrCat(crl_dir, "/", e->d_name);
      if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        entries.push_back(absl::StrCat(e->d_name, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec,
                                       ":", st.st_size, ":", st.st_ino));
      }
    }
    closedir(d);
    std::sort(entries.begin(), entries.end());
    for (const auto& e : entries) absl::StrAppend(&fp, e, ";");
  }
  return fp;
}

}  // namespace

struct IdentityChecker::Anchors {
  std::vector<X509Ptr> roots;
  std::vector<CrlPtr> crls;
};

IdentityChecker::~IdentityChecker() = default;

absl::StatusOr<std::unique_ptr<IdentityChecker>> IdentityChecker::Create(Options options) {
  if (options.federation.empty())
    return absl::InvalidArgumentError("identity: federation is empty");
  if (options.trust_bundle_path.empty()) {
    return absl::InvalidArgumentError("identity: trust_bundle_path is empty");
  }
  if (options.require_directory && !options.directory) {
    return absl::InvalidArgumentError("identity: no federation directory source configured");
  }
  std::unique_ptr<IdentityChecker> checker(new IdentityChecker(std::move(options)));
  RETURN_IF_ERROR(checker->CurrentAnchors().status());
  return checker;
}

absl::StatusOr<std::shared_ptr<const IdentityChecker::Anchors>> IdentityChecker::CurrentAnchors()
    const {
  std::string fp = FilesFingerprint(options_.trust_bundle_path, options_.crl_dir);
  {
    absl::MutexLock lock(&mu_);
    if (anchors_ != nullptr && fp == anchors_fingerprint_) return anchors_;
  }
  // A half-written or unreadable file keeps the anchors and CRLs in force (and is retried on
  // the next check); without any, the check fails closed.
  auto KeepPrevious =
      [this](const std::string& why) -> absl::StatusOr<std::shared_ptr<const Anchors>> {
    absl::MutexLock lock(&mu_);
    if (anchors_ != nullptr) return anchors_;
    return absl::UnavailableError(why);
  };
  auto anchors = std::make_shared<Anchors>();
  ASSIGN_OR_RETURN(std::string bundle, trust::ReadFileToString(options_.trust_bundle_path),
                   _.Prepend("trust bundle: "));
  anchors->roots = ReadCertificates(bundle);
  if (anchors->roots.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("trust bundle '", options_.trust_bundle_path, "' holds no certificate"));
  }
  if (!options_.crl_dir.empty()) {
    if (DIR* d = opendir(options_.crl_dir.c_str())) {
      while (dirent* e = readdir(d)) {
        std::string path = absl::StrCat(options_.crl_dir, "/", e->d_name);
        struct stat st;
        if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        absl::StatusOr<std::string> text = trust::ReadFileToString(path);
        std::vector<CrlPtr> crls = text.ok() ? ReadCrls(*text) : std::vector<CrlPtr>();
        if (!text.ok() || (crls.empty() && !text->empty())) {
          closedir(d);
          return KeepPrevious(absl::StrCat("CRL file '", path, "' cannot be read"));
        }
        for (CrlPtr& c : crls) anchors->crls.push_back(std::move(c));
      }
      closedir(d);
    } else {
      return KeepPrevious(absl::StrCat("CRL folder '", options_.crl_dir, "' cannot be read"));
    }
  }
  absl::MutexLock lock(&mu_);
  anchors_ = anchors;
  anchors_fingerprint_ = fp;
  return anchors_;
}

absl::StatusOr<std::string> IdentityChecker::PeerIdOf(absl::string_view leaf_pem) const {
  ASSIGN_OR_RETURN(CertificateInfo info, ParseCertificate(leaf_pem),
                   _.Prepend("peer certificate: "));
  if (options_.source == IdentitySource::kSubjectSerialNumber) {
    if (info.subject_serial_number.empty()) {
      return absl::UnauthenticatedError(
          absl::StrCat("certificate '", info.subject, "' has no subject serialNumber"));
    }
    if (!trust::IsValidPeerId(info.subject_serial_number)) {
      return absl::UnauthenticatedError(
          absl::StrCat("subject serialNumber '", info.subject_serial_number, "' is not a peer id"));
    }
    return info.subject_serial_number;
  }
  const std::string prefix = absl::StrCat("spiffe://", options_.federation, "/peer/");
  std::string id;
  std::string foreign;
  for (const std::string& uri : info.uris) {
    if (absl::StartsWith(uri, prefix)) {
      if (!id.empty()) {
        return absl::UnauthenticatedError("certificate names more than one Polder peer");
      }
      id = uri.substr(prefix.size());
    } else if (absl::StartsWith(uri, "spiffe://")) {
      foreign = uri;
    }
  }
  if (id.empty()) {
    if (!foreign.empty()) {
      return absl::UnauthenticatedError(absl::StrCat(
          "certificate identity ", foreign, " is not in federation '", options_.federation, "'"));
    }
    return absl::UnauthenticatedError(
        absl::StrCat("certificate '", info.subject, "' has no SAN URI ", prefix, "<peer-id>"));
  }
  if (!trust::IsValidPeerId(id)) {
    return absl::UnauthenticatedError(
        absl::StrCat("'", id, "' in the certificate is not a peer id"));
  }
  return id;
}

absl::StatusOr<PeerIdentity> IdentityChecker::Check(absl::string_view chain_pem) const {
  // One snapshot of anchors, CRLs and directory decides, and the cache entry records which, so
  // a cached admission is used only while exactly that snapshot is in force.
  ASSIGN_OR_RETURN(std::shared_ptr<const Anchors> anchors, CurrentAnchors());
  std::shared_ptr<const trust::Directory> directory =
      options_.require_directory ? options_.directory() : nullptr;
  const absl::Time now = Now();
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = cache_.find(std::string(chain_pem));
    if (it != cache_.end() && it->second.anchors == anchors && it->second.directory == directory &&
        now >= it->second.not_before && now <= it->second.not_after) {
      return it->second.identity;
    }
  }
  absl::Time not_before, not_after;
  absl::StatusOr<PeerIdentity> checked =
      CheckWith(chain_pem, anchors, directory, &not_before, &not_after);
  if (checked.ok()) {
    absl::MutexLock lock(&cache_mu_);
    if (cache_.size() >= 4096) cache_.clear();
    cache_[std::string(chain_pem)] = Cached{*checked, anchors, directory, not_before, not_after};
  }
  return checked;
}

absl::StatusOr<PeerIdentity> IdentityChecker::CheckUncached(absl::string_view chain_pem) const {
  ASSIGN_OR_RETURN(std::shared_ptr<const Anchors> anchors, CurrentAnchors());
  absl::Time nb, na;
  return CheckWith(chain_pem, anchors, options_.require_directory ? options_.directory() : nullptr,
                   &nb, &na);
}

absl::StatusOr<PeerIdentity> IdentityChecker::CheckWith(
    absl::string_view chain_pem, const std::shared_ptr<const Anchors>& anchors,
    const std::shared_ptr<const trust::Directory>& directory, absl::Time* chain_not_before,
    absl::Time* chain_not_after) const {
  std::vector<X509Ptr> chain = ReadCertificates(chain_pem);
  if (chain.empty()) return absl::UnauthenticatedError("no client certificate presented");
  ASSIGN_OR_RETURN(CertificateInfo info, ParseCertificate(ToPem(chain[0].get())),
                   _.Prepend("peer certificate: "));

  // 1 + 2: chain and validity, at the clock's time.
  ssl::UniquePtr<X509_STORE> store(X509_STORE_new());
  ssl::UniquePtr<STACK_OF(X509)> untrusted(sk_X509_new_null());
  ssl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (store == nullptr || untrusted == nullptr || ctx == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot set up certificate verification: ", DrainOpenSslErrors()));
  }
  for (const X509Ptr& root : anchors->roots) X509_STORE_add_cert(store.get(), root.get());
  for (size_t i = 1; i < chain.size(); ++i) {
    if (X509_add_cert(untrusted.get(), chain[i].get(), X509_ADD_FLAG_UP_REF) != 1) {
      return absl::InternalError(
          absl::StrCat("cannot set up certificate verification: ", DrainOpenSslErrors()));
    }
  }
  X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get());
  X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(absl::ToUnixSeconds(Now())));
  int ok = X509_verify_cert(ctx.get());
  int err = X509_STORE_CTX_get_error(ctx.get());
  // The verified chain, to find each certificate's issuer for the CRL check.
  std::vector<X509*> verified;
  *chain_not_before = absl::InfinitePast();
  *chain_not_after = absl::InfiniteFuture();
  if (ok == 1) {
    STACK_OF(X509)* vc = X509_STORE_CTX_get0_chain(ctx.get());
    for (int i = 0; i < sk_X509_num(vc); ++i) {
      X509* c = sk_X509_value(vc, i);
      verified.push_back(c);
      time_t t = 0;
      ssl::UniquePtr<ASN1_TIME> unix_epoch(ASN1_TIME_set(nullptr, 0));
      int days = 0, secs = 0;
      if (ASN1_TIME_diff(&days, &secs, unix_epoch.get(), X509_get0_notAfter(c)) == 1) {
        t = static_cast<time_t>(days) * 86400 + secs;
        *chain_not_after = std::min(*chain_not_after, absl::FromTimeT(t));
      }
      if (ASN1_TIME_diff(&days, &secs, unix_epoch.get(), X509_get0_notBefore(c)) == 1) {
        t = static_cast<time_t>(days) * 86400 + secs;
        *chain_not_before = std::max(*chain_not_before, absl::FromTimeT(t));
      }
    }
  }
  if (ok != 1) {
    ERR_clear_error();
    const std::string who =
        absl::StrCat("certificate '", info.subject, "' (serial ", info.serial_hex, ")");
    if (err == X509_V_ERR_CERT_HAS_EXPIRED) {
      return absl::UnauthenticatedError(
          absl::StrCat(who, " expired at ", trust::FormatRfc3339(info.not_after)));
    }
    if (err == X509_V_ERR_CERT_NOT_YET_VALID) {
      return absl::UnauthenticatedError(
          absl::StrCat(who, " is not valid before ", trust::FormatRfc3339(info.not_before)));
    }
    return absl::UnauthenticatedError(absl::StrCat(
        who, " is not issued by a trusted federation CA: ", X509_verify_cert_error_string(err)));
  }

  // 3: revocation, for every certificate in the verified chain below its issuer.
  for (size_t i = 0; i + 1 < verified.size(); ++i) {
    X509* cert = verified[i];
    X509* issuer = verified[i + 1];
    EVP_PKEY* issuer_key = X509_get0_pubkey(issuer);
    for (const CrlPtr& crl : anchors->crls) {
      if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(issuer)) != 0)
        continue;
      if (X509_CRL_verify(crl.get(), issuer_key) != 1) continue;  // Not really the issuer's.
      // A CRL past its nextUpdate (or not yet in force) says nothing reliable about what was
      // revoked since: the issuer's certificates are refused until a current CRL is installed.
      const time_t now_t = static_cast<time_t>(absl::ToUnixSeconds(Now()));
      const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
      const ASN1_TIME* last = X509_CRL_get0_lastUpdate(crl.get());
      const bool stale = next != nullptr && X509_cmp_time(next, const_cast<time_t*>(&now_t)) < 0;
      const time_t skewed = now_t + 300;
      const bool early = last != nullptr && X509_cmp_time(last, const_cast<time_t*>(&skewed)) > 0;
      if (stale || early) {
        ERR_clear_error();
        absl::StatusOr<CertificateInfo> ii = ParseCertificate(ToPem(issuer));
        return absl::UnavailableError(
            absl::StrCat("the CRL of '", ii.ok() ? ii->subject : std::string("?"), "' is ",
                         stale ? "past its nextUpdate" : "not yet valid (thisUpdate in the future)",
                         ": its certificates are refused until a current CRL is installed"));
      }
      X509_REVOKED* revoked = nullptr;
      if (X509_CRL_get0_by_cert(crl.get(), &revoked, cert) == 1) {
        ERR_clear_error();
        absl::StatusOr<CertificateInfo> ci = ParseCertificate(ToPem(cert));
        return absl::UnauthenticatedError(
            absl::StrCat("certificate '", ci.ok() ? ci->subject : std::string("?"), "' (serial ",
                         ci.ok() ? ci->serial_hex : std::string("?"), ") has been revoked"));
      }
    }
  }
  ERR_clear_error();

  // 4: identity.
  ASSIGN_OR_RETURN(std::string peer_id, PeerIdOf(ToPem(chain[0].get())));
  PeerIdentity identity{peer_id, info.key_thumbprint, info.serial_hex, info.subject,
                        info.not_after};

  // 5: admission by the directory.
  if (options_.require_directory) {
    if (directory == nullptr) {
      return absl::UnavailableError("no federation directory is installed yet");
    }
    // An expired directory admits nobody: who belongs to the federation is no longer known.
    if (Now() > directory->valid_until + absl::Minutes(5)) {
      return absl::UnavailableError(
          absl::StrCat("the federation directory (serial ", directory->serial, ") expired at ",
                       trust::FormatRfc3339(directory->valid_until),
                       ": no peer is admitted until a current one is installed"));
    }
    RETURN_IF_ERROR(directory->CheckTlsKey(peer_id, info.key_thumbprint));
  }
  return identity;
}

}  // namespace tls
}  // namespace polder
