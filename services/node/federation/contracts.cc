#include "services/node/federation/contracts.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"
#include "common/trust/document.h"

namespace polder {
namespace node {

namespace fs = std::filesystem;

namespace {

// Names, sizes and times of the files in `dir`: changes when any file is added, removed or
// rewritten.
std::string Stamp(const std::string& dir) {
  std::string s;
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return s;
  std::vector<std::string> parts;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec)) continue;
    parts.push_back(absl::StrCat(e.path().filename().string(), ":", e.file_size(ec), ":",
                                 e.last_write_time(ec).time_since_epoch().count()));
  }
  std::sort(parts.begin(), parts.end());
  return absl::StrJoin(parts, "|");
}

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec) && e.path().extension() == ".json") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

ContractBook::ContractBook(std::string self, std::string contracts_dir, std::string revocations_dir,
                           DirectorySource directory, absl::Duration skew)
    : self_(std::move(self)),
      contracts_dir_(std::move(contracts_dir)),
      revocations_dir_(std::move(revocations_dir)),
      directory_(std::move(directory)),
      skew_(skew) {}

void ContractBook::ReloadIfChanged(absl::Duration max_age) {
  const absl::Time scanned = absl::Now();
  if (max_age > absl::ZeroDuration() && scanned - last_scan_ < max_age) return;
  last_scan_ = scanned;
  const std::string stamp = Stamp(contracts_dir_) + "#" + Stamp(revocations_dir_);
  if (stamp == stamp_) return;
  stamp_ = stamp;
  contracts_.clear();
  revocations_.clear();
  problems_.clear();
  for (const std::string& path : Files(contracts_dir_)) {
    absl::StatusOr<trust::SignedContract> c = trust::SignedContract::ReadFile(path);
    if (!c.ok()) {
      problems_.push_back(absl::StrCat(path, ": ", c.status().message()));
      continue;
    }
    const std::string id = c->contract.id;
    if (contracts_.count(id)) {
      problems_.push_back(absl::StrCat(path, ": contract id '", id, "' is in another file too"));
      continue;
    }
    contracts_.emplace(id, *std::move(c));
  }
  for (const std::string& path : Files(revocations_dir_)) {
    absl::StatusOr<trust::SignedRevocation> r = trust::SignedRevocation::ReadFile(path);
    if (!r.ok()) {
      problems_.push_back(absl::StrCat(path, ": ", r.status().message()));
      continue;
    }
    revocations_.push_back(*std::move(r));
  }
  for (const std::string& p : problems_) log::Warning("contract file not used", {{"problem", p}});
  log::Info("contracts loaded",
            {{"contracts", contracts_.size()}, {"revocations", revocations_.size()}});
}

absl::Status ContractBook::Valid(const trust::SignedContract& c, absl::Time now) {
  std::shared_ptr<const trust::Directory> directory = directory_();
  if (directory == nullptr)
    return absl::PermissionDeniedError("no verified peer directory is in force");
  absl::Status verified = trust::VerifyContract(c, *directory, now, skew_);
  if (!verified.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("contract ", c.contract.id, ": ", verified.message()));
  }
  for (const trust::SignedRevocation& r : revocations_) {
    if (r.revocation.contract_id != c.contract.id) continue;
    if (!trust::VerifyRevocation(r, c.contract, *directory, skew_).ok())
      continue;  // not a valid revocation of it
    if (r.revocation.revoked_at > now + skew_) continue;
    return absl::PermissionDeniedError(
        absl::StrCat("contract ", c.contract.id, " was revoked by '", r.revocation.revoked_by,
                     "' at ", trust::FormatRfc3339(r.revocation.revoked_at),
                     r.revocation.reason.empty() ? "" : absl::StrCat(": ", r.revocation.reason)));
  }
  return absl::OkStatus();
}

absl::StatusOr<trust::Contract> ContractBook::ForSubscribe(const std::string& consumer,
                                                           const std::string& dataset,
                                                           const std::string& contract_id, bool raw,
                                                           absl::Time now, absl::Duration max_age) {
  absl::MutexLock lock(&mu_);
  ReloadIfChanged(max_age);
  auto it = contracts_.find(contract_id);
  if (it == contracts_.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("no contract '", contract_id, "' is known to '", self_, "'; '", consumer,
                     "' needs a contract signed by both parties for ", dataset));
  }
  const trust::Contract& c = it->second.contract;
  if (c.provider != self_) {
    return absl::PermissionDeniedError(absl::StrCat("contract ", c.id, " is provided by '",
                                                    c.provider, "', not by '", self_, "'"));
  }
  if (c.consumer != consumer) {
    return absl::PermissionDeniedError(absl::StrCat("contract ", c.id, " is for consumer '",
                                                    c.consumer, "', not '", consumer, "'"));
  }
  if (c.dataset != dataset) {
    return absl::PermissionDeniedError(
        absl::StrCat("contract ", c.id, " covers dataset ", c.dataset, ", not ", dataset));
  }
  if (absl::Status valid = Valid(it->second, now); !valid.ok()) return valid;
  if (raw && c.access == trust::Access::kAggregateOnly) {
    return absl::PermissionDeniedError(
        absl::StrCat("contract ", c.id, " allows aggregates only; a raw Subscribe is refused"));
  }
  return c;
}

absl::StatusOr<trust::Contract> ContractBook::ForView(const std::string& consumer,
                                                      const std::string& dataset,
                                                      const std::string& view_id,
                                                      const std::string& definition_hash,
                                                      const std::string& contract_id,
                                                      absl::Time now, absl::Duration max_age) {
  ASSIGN_OR_RETURN(trust::Contract c,
                   ForSubscribe(consumer, dataset, contract_id, /*raw=*/false, now, max_age));
  if (c.access != trust::Access::kAggregateOnly || !c.view.has_value()) {
    return absl::PermissionDeniedError(
        absl::StrCat("contract ", c.id, " grants no view; reading view '", view_id, "' of ",
                     dataset, " needs an aggregate-only contract naming it"));
  }
  if (c.view->id != view_id) {
    return absl::PermissionDeniedError(
        absl::StrCat("contract ", c.id, " grants view '", c.view->id, "', not '", view_id, "'"));
  }
  if (std::find(c.view->definition_hashes.begin(), c.view->definition_hashes.end(),
                definition_hash) == c.view->definition_hashes.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the definition of view '", view_id, "' is ", definition_hash, "; contract ",
                     c.id, " allows ", absl::StrJoin(c.view->definition_hashes, ", "),
                     " — a new contract must be signed for the changed view"));
  }
  return c;
}

std::vector<trust::Contract> ContractBook::ForConsumer(const std::string& consumer,
                                                       absl::Time now) {
  absl::MutexLock lock(&mu_);
  ReloadIfChanged();
  std::vector<trust::Contract> out;
  for (const auto& [id, c] : contracts_) {
    if (c.contract.provider == self_ && c.contract.consumer == consumer && Valid(c, now).ok())
      out.push_back(c.contract);
  }
  return out;
}

std::optional<trust::Contract> ContractBook::Find(const std::string& contract_id) {
  absl::MutexLock lock(&mu_);
  ReloadIfChanged();
  auto it = contracts_.find(contract_id);
  if (it == contracts_.end()) return std::nullopt;
  const trust::Contract& c = it->second.contract;
  if (c.provider != self_ && c.consumer != self_) return std::nullopt;
  return c;
}

bool ContractBook::IsRevoked(const std::string& contract_id, absl::Time now) {
  absl::MutexLock lock(&mu_);
  ReloadIfChanged();
  auto it = contracts_.find(contract_id);
  std::shared_ptr<const trust::Directory> directory = directory_();
  if (it == contracts_.end() || directory == nullptr) return false;
  for (const trust::SignedRevocation& r : revocations_) {
    if (r.revocation.contract_id != contract_id) continue;
    if (!trust::VerifyRevocation(r, it->second.contract, *directory, skew_).ok()) continue;
    if (r.revocation.revoked_at <= now + skew_) return true;
  }
  return false;
}

std::vector<ContractBook::Listed> ContractBook::All(absl::Time now) {
  absl::MutexLock lock(&mu_);
  ReloadIfChanged();
  std::vector<Listed> out;
  for (const auto& [id, c] : contracts_) {
    if (c.contract.provider == self_ || c.contract.consumer == self_)
      out.push_back({c.contract, Valid(c, now)});
  }
  return out;
}

absl::Status ContractBook::CheckSchemaVersion(const trust::Contract& c, int64_t version) {
  for (int64_t v : c.schema_versions) {
    if (v == version) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("schema version ", version, " of ", c.dataset, " is not allowed by contract ",
                   c.id, " (allowed: ", absl::StrJoin(c.schema_versions, ", "), ")"));
}

std::vector<std::string> ContractBook::problems() {
  absl::MutexLock lock(&mu_);
  ReloadIfChanged();
  return problems_;
}

}  // namespace node
}  // namespace polder
