// The sharing contracts a node holds (files signed by both parties, and revocations), and the
// checks the federation service makes with them on every Subscribe and during streams
// (ARCHITECTURE §8): who may read which dataset, raw or aggregate-only, which schema versions.
//
//   ContractBook book(self, contracts_dir, revocations_dir, [&] { return directory->current(); });
//   ASSIGN_OR_RETURN(trust::Contract c, book.ForSubscribe("amersfoort", "mobility.bike-counts",
//                                                         "gr-am-bikes-1", /*raw=*/true,
//                                                         absl::Now()));
//   RETURN_IF_ERROR(ContractBook::CheckSchemaVersion(c, version));
//
// Files are re-read when the folders change, so a new contract or a revocation takes effect
// without a restart; every check verifies signatures and validity at the time it is made.
#ifndef POLDER_SERVICES_NODE_FEDERATION_CONTRACTS_H_
#define POLDER_SERVICES_NODE_FEDERATION_CONTRACTS_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/trust/contract.h"
#include "common/trust/directory.h"

namespace polder {
namespace node {

class ContractBook {
 public:
  using DirectorySource = std::function<std::shared_ptr<const trust::Directory>()>;

  ContractBook(std::string self, std::string contracts_dir, std::string revocations_dir,
               DirectorySource directory, absl::Duration skew = absl::Minutes(5));

  // The contract under which `consumer` may read `dataset` from this node now, or
  // PERMISSION_DENIED naming what is missing: an unknown contract id, another provider, consumer
  // or dataset, a missing or bad signature, outside its validity window, revoked (by whom, when,
  // why), or aggregate-only when `raw` data was asked for.
  //
  // The contracts and revocations folders are scanned for changes first — at every call by
  // default (a new Subscribe sees a file written just before), or only when the last scan is
  // older than `max_age` (a live stream's periodic re-check: a scan stats every file, so 342
  // streams re-checking against 342 contracts each would cost 342² stats per interval).
  absl::StatusOr<trust::Contract> ForSubscribe(const std::string& consumer,
                                               const std::string& dataset,
                                               const std::string& contract_id, bool raw,
                                               absl::Time now,
                                               absl::Duration max_age = absl::ZeroDuration());

  // The contract under which `consumer` may read view `view_id` of `dataset`, whose current
  // definition hash is `definition_hash` (ADR 0016 §12): as ForSubscribe, and PERMISSION_DENIED
  // unless the contract is aggregate-only and grants that view; FAILED_PRECONDITION naming both
  // hashes when the view's definition is not one the contract lists (a new contract is needed).
  absl::StatusOr<trust::Contract> ForView(const std::string& consumer, const std::string& dataset,
                                          const std::string& view_id,
                                          const std::string& definition_hash,
                                          const std::string& contract_id, absl::Time now,
                                          absl::Duration max_age = absl::ZeroDuration());

  // The valid contracts of this node for `consumer` (ListDatasets).
  std::vector<trust::Contract> ForConsumer(const std::string& consumer, absl::Time now);

  // Every contract this node is a party to (as provider or consumer), with whether it is valid
  // now (signatures, validity window, revocation) — for metrics and the subscriber side.
  struct Listed {
    trust::Contract contract;
    absl::Status valid;
  };
  std::vector<Listed> All(absl::Time now);
  // The contract `contract_id` this node is a party to, valid or not; nullopt if there is none.
  std::optional<trust::Contract> Find(const std::string& contract_id);
  // Whether a valid revocation of `contract_id` (signed by a party) is in force.
  bool IsRevoked(const std::string& contract_id, absl::Time now);

  // FAILED_PRECONDITION unless `contract` allows schema version `version`.
  static absl::Status CheckSchemaVersion(const trust::Contract& contract, int64_t version);

  // Files that could not be read (named with the reason), from the last reload.
  std::vector<std::string> problems();

 private:
  // Scans the folders unless the last scan is younger than `max_age`; reloads on a change.
  void ReloadIfChanged(absl::Duration max_age = absl::ZeroDuration())
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Valid(const trust::SignedContract& c, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string self_;
  const std::string contracts_dir_;
  const std::string revocations_dir_;
  const DirectorySource directory_;
  const absl::Duration skew_;
  absl::Mutex mu_;
  std::string stamp_ ABSL_GUARDED_BY(mu_);
  absl::Time last_scan_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::map<std::string, trust::SignedContract> contracts_ ABSL_GUARDED_BY(mu_);  // by id
  std::vector<trust::SignedRevocation> revocations_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> problems_ ABSL_GUARDED_BY(mu_);
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_CONTRACTS_H_
