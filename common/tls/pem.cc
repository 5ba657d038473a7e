#include "common/tls/pem.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <climits>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace polder {
namespace tls {
namespace {

// Never prompts: encrypted keys fail instead of reading a passphrase from the terminal.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return -1; }

// A read-only memory BIO, or null if `text` is too large for one.
ssl::UniquePtr<BIO> MemBuf(absl::string_view text) {
  if (text.size() > static_cast<size_t>(INT_MAX)) return nullptr;
  return ssl::UniquePtr<BIO>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

}  // namespace

std::string DrainOpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    absl::StrAppend(&out, out.empty() ? "" : "; ", buf);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

absl::Status OpenSslError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", DrainOpenSslErrors()));
}

std::string QuoteForError(absl::string_view text) {
  constexpr size_t kMax = 80;
  return absl::StrCat("'", absl::CHexEscape(text.substr(0, kMax)),
                      text.size() > kMax ? "'..." : "'");
}

absl::StatusOr<ssl::UniquePtr<BIO>> ReadOnlyBio(absl::string_view text, absl::string_view what) {
  if (text.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is too large"));
  }
  ssl::UniquePtr<BIO> bio = MemBuf(text);
  if (bio == nullptr) return OpenSslError("BIO_new_mem_buf");
  return bio;
}

absl::StatusOr<ssl::UniquePtr<BIO>> WritableBio() {
  ssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) return OpenSslError("BIO_new");
  return bio;
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return len > 0 && data != nullptr ? std::string(data, static_cast<size_t>(len)) : std::string();
}

std::vector<std::string> PemLabels(absl::string_view text) {
  constexpr absl::string_view kBegin = "-----BEGIN ";
  std::vector<std::string> labels;
  size_t pos = 0;
  while ((pos = text.find(kBegin, pos)) != absl::string_view::npos) {
    pos += kBegin.size();
    size_t end = text.find("-----", pos);
    if (end == absl::string_view::npos) break;
    absl::string_view label = text.substr(pos, end - pos);
    if (label.find('\n') == absl::string_view::npos) labels.emplace_back(label);
    pos = end;
  }
  return labels;
}

bool IsPrivateKeyLabel(absl::string_view label) {
  return label == "PRIVATE KEY" || label == "EC PRIVATE KEY" || label == "RSA PRIVATE KEY" ||
         label == "ENCRYPTED PRIVATE KEY";
}

absl::StatusOr<ssl::UniquePtr<X509>> LoadCertificate(absl::string_view pem,
                                                     absl::string_view what) {
  ASSIGN_OR_RETURN(ssl::UniquePtr<BIO> bio, ReadOnlyBio(pem, what));
  ssl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a PEM certificate: ", DrainOpenSslErrors()));
  }
  if ((X509_get_extension_flags(cert.get()) & EXFLAG_INVALID) != 0) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(what, " has malformed or duplicate extensions"));
  }
  return cert;
}

absl::StatusOr<ssl::UniquePtr<EVP_PKEY>> LoadPrivateKey(absl::string_view pem,
                                                        absl::string_view what) {
  bool found = false;
  for (const std::string& label : PemLabels(pem)) {
    if (label == "ENCRYPTED PRIVATE KEY") {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " is encrypted; encrypted private keys are not supported"));
    }
    if (IsPrivateKeyLabel(label)) found = true;
  }
  if (!found) return absl::InvalidArgumentError(absl::StrCat(what, " is not a PEM private key"));
  if (absl::StrContains(pem, "Proc-Type: 4,ENCRYPTED")) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is encrypted; encrypted private keys are not supported"));
  }
  ASSIGN_OR_RETURN(ssl::UniquePtr<BIO> bio, ReadOnlyBio(pem, what));
  ssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a valid PEM private key"));
  }
  return key;
}

absl::StatusOr<ssl::UniquePtr<EVP_PKEY>> LoadAnyPublicKey(absl::string_view pem) {
  std::vector<std::string> labels = PemLabels(pem);
  auto it = labels.begin();
  // `openssl ecparam -genkey` writes EC PARAMETERS before the key.
  while (it != labels.end() && *it == "EC PARAMETERS") ++it;
  if (it == labels.end()) {
    return absl::InvalidArgumentError("not PEM: expected a certificate, public key or private key");
  }
  if (*it == "CERTIFICATE") {
    ASSIGN_OR_RETURN(ssl::UniquePtr<X509> cert, LoadCertificate(pem, "certificate"));
    ssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(cert.get()));  // A counted reference.
    if (key == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("certificate public key cannot be decoded: ", DrainOpenSslErrors()));
    }
    return key;
  }
  if (*it == "PUBLIC KEY") {
    ASSIGN_OR_RETURN(ssl::UniquePtr<BIO> bio, ReadOnlyBio(pem, "public key"));
    ssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
    if (key == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("not a valid PEM public key: ", DrainOpenSslErrors()));
    }
    return key;
  }
  if (IsPrivateKeyLabel(*it)) return LoadPrivateKey(pem, "private key");
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported PEM block ", QuoteForError(*it),
                   "; expected a certificate, public key or private key"));
}

std::vector<ssl::UniquePtr<X509>> ReadCertificates(absl::string_view pem) {
  std::vector<ssl::UniquePtr<X509>> out;
  ssl::UniquePtr<BIO> bio = MemBuf(pem);
  if (bio == nullptr) return out;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) {
    out.emplace_back(x);
  }
  ERR_clear_error();
  return out;
}

std::vector<ssl::UniquePtr<X509_CRL>> ReadCrls(absl::string_view pem) {
  std::vector<ssl::UniquePtr<X509_CRL>> out;
  ssl::UniquePtr<BIO> bio = MemBuf(pem);
  if (bio == nullptr) return out;
  while (X509_CRL* c = PEM_read_bio_X509_CRL(bio.get(), nullptr, NoPassphrase, nullptr)) {
    out.emplace_back(c);
  }
  ERR_clear_error();
  return out;
}

absl::StatusOr<std::string> CertificateToPem(X509* cert) {
  ASSIGN_OR_RETURN(ssl::UniquePtr<BIO> bio, WritableBio());
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return OpenSslError("encoding the certificate");
  return BioContents(bio.get());
}

}  // namespace tls
}  // namespace polder
