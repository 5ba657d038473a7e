#include "common/views/view_key.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/trust/keys.h"

namespace polder {
namespace views {
namespace {

std::string Hmac(const std::array<unsigned char, ViewKey::kSize>& key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

absl::Status Refuse(const std::string& path, absl::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat("view key '", path, "' ", why, "; views of this dataset cannot start"));
}

}  // namespace

absl::StatusOr<ViewKey> ViewKey::Create(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(absl::StrCat("view key '", path, "' exists already"));
  }
  // The directories up to the file, each created 0700 when missing.
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot create '", dir, "': ", std::strerror(errno)));
    }
  }
  ViewKey key;
  if (RAND_bytes(key.bytes_.data(), static_cast<int>(key.bytes_.size())) != 1) {
    return absl::InternalError("OpenSSL's RNG did not give a view key");
  }
  absl::Status written = trust::WriteFileAtomically(
      path, absl::string_view(reinterpret_cast<const char*>(key.bytes_.data()), kSize), 0600);
  if (!written.ok()) return written;
  return key;
}

absl::StatusOr<ViewKey> ViewKey::Load(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Refuse(path, absl::StrCat("cannot be read: ", std::strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return Refuse(path, "is not a regular file");
  }
  // Owner-only (0600, 0400); or also readable by the process's own group and nobody else
  // (0640, 0440): Kubernetes mounts a Secret so when the pod has an fsGroup, which is the
  // process's group then, and it needs one for its state volume.
  if (!trust::PrivateFileModeAllowed(st.st_mode, st.st_gid, getegid())) {
    close(fd);
    return Refuse(path, absl::StrFormat("is accessible to others or another group (mode %04o, "
                                        "group %d); it must be 0600, or 0640 with the process's "
                                        "own group",
                                        st.st_mode & 07777, static_cast<int>(st.st_gid)));
  }
  if (st.st_size != static_cast<off_t>(kSize)) {
    close(fd);
    return Refuse(path, absl::StrCat("has ", st.st_size, " bytes, not ", kSize));
  }
  ViewKey key;
  size_t got = 0;
  while (got < kSize) {
    const ssize_t n = read(fd, key.bytes_.data() + got, kSize - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return Refuse(path, "could not be read whole");
    }
    got += static_cast<size_t>(n);
  }
  close(fd);
  return key;
}

ViewKey ViewKey::FromBytesForTesting(absl::string_view bytes) {
  ViewKey key;
  for (size_t i = 0; i < kSize && i < bytes.size(); ++i) {
    key.bytes_[i] = static_cast<unsigned char>(bytes[i]);
  }
  return key;
}

uint64_t ViewKey::RecordKey(absl::string_view dataset, absl::string_view unit_id) const {
  std::string data;
  data.reserve(dataset.size() + 1 + unit_id.size());
  data.append(dataset.data(), dataset.size());
  data.push_back('\0');
  data.append(unit_id.data(), unit_id.size());
  const std::string mac = Hmac(bytes_, data);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(mac[i]);
  return v;
}

uint64_t RecordKeyCache::Get(absl::string_view unit_id) {
  auto it = keys_.find(unit_id);
  if (it != keys_.end()) return it->second;
  if (keys_.size() >= capacity_) keys_.clear();
  const uint64_t k = key_->RecordKey(dataset_, unit_id);
  keys_.emplace(std::string(unit_id), k);
  return k;
}

std::string ViewKey::Fingerprint() const {
  return absl::BytesToHexString(Hmac(bytes_, "polder-view-key-id").substr(0, 8));
}

}  // namespace views
}  // namespace polder
