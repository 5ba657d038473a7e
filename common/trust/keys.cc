#include "common/trust/keys.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status/status_macros.h"
#include "common/tls/openssl_ptr.h"

namespace polder {
namespace trust {
namespace {

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// Shared ownership of `key` (non-null), released with ssl::Deleter<EVP_PKEY>.
std::shared_ptr<EVP_PKEY> Share(ssl::UniquePtr<EVP_PKEY> key) {
  return std::shared_ptr<EVP_PKEY>(std::move(key));
}

// A read-only memory BIO over `text`, or null if `text` is too large for one.
ssl::UniquePtr<BIO> MemBuf(absl::string_view text) {
  if (text.size() > static_cast<size_t>(INT_MAX)) return nullptr;
  return ssl::UniquePtr<BIO>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string MemContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return len > 0 && data != nullptr ? std::string(data, static_cast<size_t>(len)) : std::string();
}

}  // namespace

std::string Base64UrlEncode(absl::string_view data) {
  std::string out;
  absl::WebSafeBase64Escape(data, &out);
  return out;
}

absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text) {
  for (char c : text) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("not base64url (character '", std::string(1, c), "')"));
    }
  }
  if (text.size() % 4 == 1) return absl::InvalidArgumentError("not base64url (bad length)");
  std::string out;
  if (!absl::WebSafeBase64Unescape(text, &out)) return absl::InvalidArgumentError("not base64url");
  return out;
}

std::string Sha256(absl::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read '", path, "': ", std::strerror(errno)));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view content, int mode) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create '", tmp, "': ", std::strerror(errno)));
  }
  fchmod(fd, mode);  // Not subject to the umask.
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string e = std::strerror(errno);
      close(fd);
      unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("writing '", tmp, "': ", e));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("syncing '", tmp, "': ", std::strerror(errno)));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    std::string e = std::strerror(errno);
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("renaming to '", path, "': ", e));
  }
  return absl::OkStatus();
}

// ---- PublicKey ----------------------------------------------------------------------------------

PublicKey::PublicKey(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {
  // RFC 7638: SHA-256 over {"crv":"Ed25519","kty":"OKP","x":"<x>"} (members sorted, no spaces).
  kid_ = Base64UrlEncode(
      Sha256(absl::StrCat(R"({"crv":"Ed25519","kty":"OKP","x":")", RawBase64Url(), R"("})")));
}

absl::StatusOr<PublicKey> PublicKey::FromPem(absl::string_view pem) {
  ssl::UniquePtr<BIO> bio = MemBuf(pem);
  if (bio == nullptr) return absl::InvalidArgumentError("not a PEM public key: too large");
  ssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("not a PEM public key: ", OpenSslError()));
  }
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("signing keys must be Ed25519");
  }
  return PublicKey(Share(std::move(key)));
}

absl::StatusOr<PublicKey> PublicKey::FromRaw(absl::string_view base64url) {
  ASSIGN_OR_RETURN(std::string raw, Base64UrlDecode(base64url), _.Prepend("Ed25519 public key: "));
  if (raw.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("Ed25519 public key must be 32 bytes, got ", raw.size()));
  }
  ssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw.data()), raw.size()));
  if (key == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("Ed25519 public key: ", OpenSslError()));
  return PublicKey(Share(std::move(key)));
}

absl::StatusOr<PublicKey> PublicKey::ReadFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFileToString(path));
  ASSIGN_OR_RETURN(PublicKey key, FromPem(pem), _.Prepend(absl::StrCat(path, ": ")));
  return key;
}

std::string PublicKey::RawBase64Url() const {
  unsigned char raw[32];
  size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(key_.get(), raw, &len) != 1) return "";
  return Base64UrlEncode(absl::string_view(reinterpret_cast<char*>(raw), len));
}

std::string PublicKey::Pem() const {
  ssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) {
    ERR_clear_error();
    return "";
  }
  return MemContents(bio.get());
}

absl::Status PublicKey::Verify(absl::string_view data, absl::string_view signature) const {
  ssl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    return absl::InternalError(absl::StrCat("verify init: ", OpenSslError()));
  }
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                            data.size());
  ERR_clear_error();
  if (rc != 1) {
    return absl::InvalidArgumentError(absl::StrCat("signature does not verify with key ", kid_));
  }
  return absl::OkStatus();
}

// ---- PrivateKey ---------------------------------------------------------------------------------

PrivateKey::PrivateKey(std::shared_ptr<EVP_PKEY> key, PublicKey public_key)
    : key_(std::move(key)), public_key_(std::move(public_key)) {}

absl::StatusOr<PrivateKey> PrivateKey::Generate() {
  ssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (key == nullptr) return absl::InternalError(absl::StrCat("Ed25519 keygen: ", OpenSslError()));
  unsigned char raw[32];
  size_t len = sizeof raw;
  EVP_PKEY_get_raw_public_key(key.get(), raw, &len);
  ASSIGN_OR_RETURN(
      PublicKey pub,
      PublicKey::FromRaw(Base64UrlEncode(absl::string_view(reinterpret_cast<char*>(raw), len))));
  return PrivateKey(Share(std::move(key)), std::move(pub));
}

absl::StatusOr<PrivateKey> PrivateKey::FromPem(absl::string_view pem) {
  ssl::UniquePtr<BIO> bio = MemBuf(pem);
  ssl::UniquePtr<EVP_PKEY> key(
      bio != nullptr ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "not a PEM private key");  // No OpenSSL detail: may echo input.
  }
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("signing keys must be Ed25519");
  }
  unsigned char raw[32];
  size_t len = sizeof raw;
  EVP_PKEY_get_raw_public_key(key.get(), raw, &len);
  ASSIGN_OR_RETURN(
      PublicKey pub,
      PublicKey::FromRaw(Base64UrlEncode(absl::string_view(reinterpret_cast<char*>(raw), len))));
  return PrivateKey(Share(std::move(key)), std::move(pub));
}

bool PrivateFileModeAllowed(mode_t mode, gid_t file_group, gid_t process_group) {
  const bool own_group_reads_only = (mode & 070) == 040 && file_group == process_group;
  return (mode & 007) == 0 && ((mode & 070) == 0 || own_group_reads_only);
}

absl::Status CheckPrivateFile(const std::string& path, absl::string_view what) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", what, " '", path, "': ", std::strerror(errno)));
  }
  if (!PrivateFileModeAllowed(st.st_mode, st.st_gid, getegid())) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s '%s' is accessible to others or another group (mode %04o, group %d); run chmod 600 "
        "on it (0440 with the process's own group, as Kubernetes mounts a Secret, is accepted)",
        what, path, st.st_mode & 07777, static_cast<int>(st.st_gid)));
  }
  return absl::OkStatus();
}

absl::StatusOr<PrivateKey> PrivateKey::ReadFile(const std::string& path) {
  RETURN_IF_ERROR(CheckPrivateFile(path, "private key"));
  ASSIGN_OR_RETURN(std::string pem, ReadFileToString(path));
  ASSIGN_OR_RETURN(PrivateKey key, FromPem(pem), _.Prepend(absl::StrCat(path, ": ")));
  return key;
}

std::string PrivateKey::PemForFile() const {
  ssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    ERR_clear_error();
    return "";
  }
  return MemContents(bio.get());
}

absl::Status PrivateKey::WriteFile(const std::string& path) const {
  if (access(path.c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("'", path, "' exists; refusing to overwrite a key"));
  }
  const std::string pem = PemForFile();
  if (pem.empty()) return absl::InternalError("encoding the private key as PEM failed");
  return WriteFileAtomically(path, pem, 0600);
}

absl::StatusOr<std::string> PrivateKey::Sign(absl::string_view data) const {
  ssl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    return absl::InternalError(absl::StrCat("sign init: ", OpenSslError()));
  }
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    return absl::InternalError(absl::StrCat("sign: ", OpenSslError()));
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return absl::InternalError(absl::StrCat("sign: ", OpenSslError()));
  }
  sig.resize(len);
  return sig;
}

}  // namespace trust
}  // namespace polder
