#include "services/registry/access.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "services/registry/errors.h"

namespace polder {
namespace registry {

bool AccessPolicy::IsOperator(const std::string& peer) const {
  return development || operator_peers.count(peer) > 0;
}

absl::Status AccessPolicy::CheckSubjectWrite(const std::string& peer, const std::string& subject) const {
  if (IsOperator(peer)) return absl::OkStatus();
  const std::string prefix = absl::StrReplaceAll(city_subject_prefix, {{"{peer}", peer}});
  if (!prefix.empty() && absl::StartsWith(subject, prefix)) return absl::OkStatus();
  return RegistryError(kForbidden, absl::StrCat("peer '", peer, "' may not write subject '", subject,
                                                "': a city writes only subjects under '", prefix,
                                                "'; standard datasets are the federation operator's"));
}

absl::Status AccessPolicy::CheckOperator(const std::string& peer, const std::string& what) const {
  if (IsOperator(peer)) return absl::OkStatus();
  return RegistryError(kForbidden, absl::StrCat("peer '", peer, "' may not ", what,
                                                ": only the federation operator may"));
}

}  // namespace registry
}  // namespace polder
