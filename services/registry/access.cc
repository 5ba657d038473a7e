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

absl::Status AccessPolicy::CheckSubjectWrite(const std::string& peer,
                                             const std::string& subject) const {
  if (IsOperator(peer)) return absl::OkStatus();
  const std::string prefix = absl::StrReplaceAll(city_subject_prefix, {{"{peer}", peer}});
  if (!prefix.empty() && absl::StartsWith(subject, prefix)) return absl::OkStatus();
  return RegistryError(kForbidden,
                       absl::StrCat("peer '", peer, "' may not write subject '", subject,
                                    "': a city writes only subjects under '", prefix,
                                    "'; standard datasets are the federation operator's"));
}

absl::Status AccessPolicy::CheckOperator(const std::string& peer, const std::string& what) const {
  if (IsOperator(peer)) return absl::OkStatus();
  return RegistryError(kForbidden, absl::StrCat("peer '", peer, "' may not ", what,
                                                ": only the federation operator may"));
}

std::string AccessPolicy::Namespace(const std::string& peer) const {
  if (IsOperator(peer)) return "";
  std::string prefix = absl::StrReplaceAll(city_subject_prefix, {{"{peer}", peer}});
  if (absl::EndsWith(prefix, ".")) prefix.pop_back();
  return prefix;
}

std::string AccessPolicy::NamespaceOfSubject(const std::string& subject) const {
  // The prefix around "{peer}": a subject "<before><peer><after>..." belongs to <peer>.
  const size_t at = city_subject_prefix.find("{peer}");
  if (at == std::string::npos) return "";
  const std::string before = city_subject_prefix.substr(0, at);
  const std::string after = city_subject_prefix.substr(at + 6);
  if (!absl::StartsWith(subject, before)) return "";
  const size_t end = after.empty() ? std::string::npos : subject.find(after, before.size());
  if (end == std::string::npos || end == before.size()) return "";
  return Namespace(subject.substr(before.size(), end - before.size()));
}

}  // namespace registry
}  // namespace polder
