// Who may do what in the registry (ARCHITECTURE §6): every peer admitted by the trust layer may
// read; the federation operator's peers may write anything (standard datasets under
// `polder.datasets.`, configuration, modes, import, the primary role); a city may register and
// delete subjects under its own prefix `polder.cities.<peer-id>.` (configurable).
#ifndef POLDER_SERVICES_REGISTRY_ACCESS_H_
#define POLDER_SERVICES_REGISTRY_ACCESS_H_

#include <set>
#include <string>

#include "absl/status/status.h"

namespace polder {
namespace registry {

struct AccessPolicy {
  std::set<std::string> operator_peers;
  // "{peer}" is replaced by the caller's peer id.
  std::string city_subject_prefix = "polder.cities.{peer}.";
  // Development mode: every caller is an operator (plaintext, no identities).
  bool development = false;

  bool IsOperator(const std::string& peer) const;
  // OK if `peer` may register, delete or configure `subject`; PERMISSION_DENIED naming the
  // prefix it may use otherwise.
  absl::Status CheckSubjectWrite(const std::string& peer, const std::string& subject) const;
  // OK if `peer` may change global settings, import or move the primary.
  absl::Status CheckOperator(const std::string& peer, const std::string& what) const;
  // The Protobuf namespace a peer's schemas must lie in: its subject prefix without the final
  // dot (polder.cities.groningen); "" for the operator (no restriction).
  std::string Namespace(const std::string& peer) const;
  // The namespace of the city that may write `subject` ("" for subjects outside every city's
  // prefix), for the start-up report of registered offenders.
  std::string NamespaceOfSubject(const std::string& subject) const;
};

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_ACCESS_H_
