// The secret of a dataset's cell keys (ADR 0016 §9): 32 random bytes per dataset, kept in the
// node's state directory with mode 0600. From it come record keys — the first 8 bytes,
// big-endian, of HMAC-SHA256(K, dataset ‖ 0x00 ‖ unit id) — and a cell's key is the sum of its
// distinct units' record keys mod 2⁶⁴, so the same cell contents draw the same noise on every
// publication, in any order.
//
//   ASSIGN_OR_RETURN(ViewKey key, ViewKey::Load(path));           // or Create on first start
//   uint64_t ck = key.RecordKey("mobility.bike-counts", "gn-herestraat-01") + ...;
//
// The key's bytes are never logged, shown or part of a definition: the class has no accessor
// for them, and errors name the file, never its content.
#ifndef POLDER_COMMON_VIEWS_VIEW_KEY_H_
#define POLDER_COMMON_VIEWS_VIEW_KEY_H_

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace polder {
namespace views {

class ViewKey {
 public:
  static constexpr size_t kSize = 32;

  // Makes a new key from OpenSSL's RNG and writes it to `path` (mode 0600, fsynced; its
  // directory is created 0700 if missing). ALREADY_EXISTS if the file exists: a key is never
  // replaced, since the same contents would then draw new noise.
  static absl::StatusOr<ViewKey> Create(const std::string& path);
  // Reads `path`. FAILED_PRECONDITION, naming the file, if it is missing, unreadable, not
  // exactly 32 bytes, not a regular file (a symlink is refused), accessible to others, or
  // accessible to a group other than read by the process's own (Kubernetes' fsGroup: 0440).
  static absl::StatusOr<ViewKey> Load(const std::string& path);
  // For tests: a key from given bytes.
  static ViewKey FromBytesForTesting(absl::string_view bytes);

  uint64_t RecordKey(absl::string_view dataset, absl::string_view unit_id) const;
  // Hex of HMAC-SHA256(K, "polder-view-key-id")[0:8]: stored in the changelog so a different
  // key is noticed rather than used.
  std::string Fingerprint() const;

 private:
  ViewKey() = default;
  std::array<unsigned char, kSize> bytes_{};
};

// The record keys of recently seen units of one dataset, so the HMAC runs once per unit rather
// than once per record. Held in memory only, like the key. Not thread-safe.
class RecordKeyCache {
 public:
  // `key` must outlive the cache. Forgets everything when `capacity` units are held.
  RecordKeyCache(const ViewKey* key, std::string dataset, size_t capacity = 1 << 16)
      : key_(key), dataset_(std::move(dataset)), capacity_(capacity) {}
  uint64_t Get(absl::string_view unit_id);

 private:
  const ViewKey* key_;
  std::string dataset_;
  size_t capacity_;
  absl::flat_hash_map<std::string, uint64_t> keys_;
};

}  // namespace views
}  // namespace polder

#endif  // POLDER_COMMON_VIEWS_VIEW_KEY_H_
