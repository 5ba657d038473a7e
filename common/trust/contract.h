// Sharing contracts (ARCHITECTURE §8): a provider lets a consumer read one dataset, under stated
// terms, for a validity window. Both peers sign (detached JWS over the contract's JCS form) with
// signing keys the directory lists for them; either may revoke it with a signed revocation.
//
// File format:
//   {"contract": {"type": "polder.contract.v1", "id": "...", "federation": "...",
//                 "provider": "groningen", "consumer": "amersfoort",
//                 "dataset": "mobility.bike-counts", "schema_versions": [1, 2],
//                 "purpose": "...", "access": "raw" | "aggregate-only",
//                 "view": {"id": "quarter-municipality", "definition_hashes": ["<hex>"]},
//                 "start_position": "earliest" | "latest" | "<RFC 3339 time>",
//                 "mirror_retention": "720h", "reshare": false,
//                 "valid_from": "...", "valid_until": "..."},
//    "signatures": [{"peer": "groningen", "jws": "..."}, {"peer": "amersfoort", "jws": "..."}]}
#ifndef POLDER_COMMON_TRUST_CONTRACT_H_
#define POLDER_COMMON_TRUST_CONTRACT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/trust/directory.h"
#include "common/trust/keys.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace trust {

inline constexpr char kContractType[] = "polder.contract.v1";
inline constexpr char kContractJwsType[] = "polder-contract+jws";
inline constexpr char kRevocationType[] = "polder.contract-revocation.v1";
inline constexpr char kRevocationJwsType[] = "polder-contract-revocation+jws";

enum class Access { kRaw, kAggregateOnly };

// The aggregate view an aggregate-only contract lets the consumer read (ADR 0016 §12): the view
// of the contract's dataset, and the definition hashes it may have — a view whose definition
// changed is not covered until a new contract is signed.
struct ViewGrant {
  std::string id;
  std::vector<std::string> definition_hashes;  // hex SHA-256, at least one
};

struct Contract {
  std::string id;
  std::string federation;
  std::string provider;
  std::string consumer;
  std::string dataset;                   // "<domain>.<name>", e.g. mobility.bike-counts
  std::vector<int64_t> schema_versions;  // versions of the dataset's subject the consumer may read
  std::string purpose;
  Access access = Access::kRaw;
  // Aggregate-only: the view granted. Absent in raw contracts, and in aggregate-only contracts
  // made before views existed (which grant no stream at all).
  std::optional<ViewGrant> view;
  std::string start_position = "earliest";  // "earliest", "latest" or an RFC 3339 time
  absl::Duration mirror_retention = absl::Hours(24 * 30);
  bool reshare = false;  // may the consumer share what it mirrors
  absl::Time valid_from;
  absl::Time valid_until;

  nlohmann::json ToJson() const;
  static absl::StatusOr<Contract> FromJson(const nlohmann::json& json);
  // "sha256:<base64url>" of the contract's JCS form: what audit entries and revocations cite.
  absl::StatusOr<std::string> Hash() const;
};

struct ContractSignature {
  std::string peer;
  std::string jws;
};

struct SignedContract {
  Contract contract;
  std::vector<ContractSignature> signatures;

  std::string ToFileText() const;
  static absl::StatusOr<SignedContract> Parse(absl::string_view text);
  static absl::StatusOr<SignedContract> ReadFile(const std::string& path);
};

// Adds `peer`'s signature. INVALID_ARGUMENT if `peer` is not a party or already signed.
absl::Status SignContract(SignedContract* contract, absl::string_view peer, const PrivateKey& key,
                          absl::Time now);

// Verifies that provider and consumer both signed with signing keys the directory lists for
// them and that are valid now, that nobody else signed, that the parties are in the directory's
// federation, and that the contract is within its validity window (± skew). Each failure has its
// own reason: PERMISSION_DENIED for a missing or foreign signature or an unlisted/expired key,
// UNAUTHENTICATED for a signature that does not match the contract, FAILED_PRECONDITION for a
// contract outside its validity window, INVALID_ARGUMENT for a malformed contract.
absl::Status VerifyContract(const SignedContract& contract, const Directory& directory,
                            absl::Time now, absl::Duration skew);

struct Revocation {
  std::string contract_id;
  std::string contract_hash;
  std::string revoked_by;
  absl::Time revoked_at;
  std::string reason;

  nlohmann::json ToJson() const;
  static absl::StatusOr<Revocation> FromJson(const nlohmann::json& json);
};

struct SignedRevocation {
  Revocation revocation;
  std::string jws;

  std::string ToFileText() const;
  static absl::StatusOr<SignedRevocation> Parse(absl::string_view text);
  static absl::StatusOr<SignedRevocation> ReadFile(const std::string& path);
};

// Makes a revocation of `contract` by `peer` (a party), signed with `key`.
absl::StatusOr<SignedRevocation> RevokeContract(const Contract& contract, absl::string_view peer,
                                                const PrivateKey& key, absl::string_view reason,
                                                absl::Time now);

// OK if `revocation` revokes `contract`: it cites the contract's hash and is signed by one of
// its parties with a key the directory lists (valid at the revocation time).
absl::Status VerifyRevocation(const SignedRevocation& revocation, const Contract& contract,
                              const Directory& directory, absl::Duration skew);

}  // namespace trust
}  // namespace polder

#endif  // POLDER_COMMON_TRUST_CONTRACT_H_
