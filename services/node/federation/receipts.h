// Receipts for the federation audit trail (ARCHITECTURE §8): this node signs the head of its
// chain for a stream with its signing key (listed for it in the peer directory), and checks the
// peer's receipts against the keys the directory lists for that peer. Both sides keep the other's
// receipts in their own `_polder.audit`, so neither can later rewrite or truncate its chain
// below what it receipted without the other noticing (`polderctl audit verify`).
#ifndef POLDER_SERVICES_NODE_FEDERATION_RECEIPTS_H_
#define POLDER_SERVICES_NODE_FEDERATION_RECEIPTS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/audit/audit_chain.h"
#include "common/trust/directory.h"
#include "common/trust/keys.h"
#include "proto/polder/federation/v1/federation.pb.h"

namespace polder {
namespace node {

class ReceiptSigner {
 public:
  using DirectorySource = std::function<std::shared_ptr<const trust::Directory>()>;

  ReceiptSigner(std::string self, trust::PrivateKey key, DirectorySource directory,
                absl::Duration skew = absl::Minutes(5))
      : self_(std::move(self)),
        key_(std::move(key)),
        directory_(std::move(directory)),
        skew_(skew) {}

  // This node's signed head of `stream_id`'s chain.
  absl::StatusOr<audit::Receipt> Sign(const std::string& stream_id, uint64_t sequence,
                                      const std::string& hash, absl::Time now) const;

  // OK if `receipt` is `peer`'s, for `stream_id`, signed with a key the directory lists for `peer`
  // and valid at the receipt's time; PERMISSION_DENIED naming what is wrong otherwise.
  absl::Status Verify(const audit::Receipt& receipt, const std::string& peer,
                      const std::string& stream_id) const;

  const std::string& self() const { return self_; }

 private:
  const std::string self_;
  const trust::PrivateKey key_;
  const DirectorySource directory_;
  const absl::Duration skew_;
};

federation::v1::Receipt ToProto(const audit::Receipt& r);
audit::Receipt FromProto(const federation::v1::Receipt& r);

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_RECEIPTS_H_
