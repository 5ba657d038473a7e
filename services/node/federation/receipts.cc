#include "services/node/federation/receipts.h"

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace polder {
namespace node {

absl::StatusOr<audit::Receipt> ReceiptSigner::Sign(const std::string& stream_id, uint64_t sequence,
                                                   const std::string& hash, absl::Time now) const {
  return audit::MakeReceipt(stream_id, self_, sequence, hash, key_, now);
}

absl::Status ReceiptSigner::Verify(const audit::Receipt& receipt, const std::string& peer,
                                   const std::string& stream_id) const {
  if (receipt.peer != peer) {
    return absl::PermissionDeniedError(
        absl::StrCat("the receipt names peer '", receipt.peer, "', the caller is '", peer, "'"));
  }
  if (receipt.stream_id != stream_id) {
    return absl::PermissionDeniedError(
        absl::StrCat("the receipt is for stream ", receipt.stream_id, ", not ", stream_id));
  }
  std::shared_ptr<const trust::Directory> directory = directory_();
  if (directory == nullptr)
    return absl::UnavailableError("no peer directory loaded: cannot check receipts");
  ASSIGN_OR_RETURN(std::string kid, audit::ReceiptSigner(receipt));
  absl::StatusOr<trust::PublicKey> key = directory->SigningKey(peer, kid, receipt.at, skew_);
  if (!key.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("receipt of ", peer, ": ", key.status().message()));
  }
  return audit::VerifyReceiptSignature(receipt, *key);
}

federation::v1::Receipt ToProto(const audit::Receipt& r) {
  federation::v1::Receipt p;
  p.set_stream_id(r.stream_id);
  p.set_peer(r.peer);
  p.set_sequence(r.sequence);
  p.set_hash(r.hash);
  p.mutable_at()->set_seconds(absl::ToUnixSeconds(r.at));
  p.set_jws(r.jws);
  return p;
}

audit::Receipt FromProto(const federation::v1::Receipt& r) {
  return audit::Receipt{
      r.stream_id(), r.peer(), r.sequence(), r.hash(), absl::FromUnixSeconds(r.at().seconds()),
      r.jws()};
}

}  // namespace node
}  // namespace polder
