// A root CA, an issuing CA and one peer certificate made at test time, for the tests of
// certificate reading and of the CA.
#ifndef POLDER_COMMON_TLS_CA_TESTING_H_
#define POLDER_COMMON_TLS_CA_TESTING_H_

#include <string>

#include "common/status/status_matchers.h"
#include "common/tls/ca.h"
#include "gtest/gtest.h"

namespace polder {
namespace tls {
namespace testing {

struct Chain {
  KeyAndCert root;
  KeyAndCert issuing;
  KeyAndCert peer;
};

inline CaOptions RootOptions() {
  CaOptions options;
  options.common_name = "Polder federation root";
  options.organization = "Polder";
  return options;
}

inline CaOptions IssuingOptions() {
  CaOptions options;
  options.common_name = "Polder issuing CA";
  options.organization = "Polder";
  return options;
}

// A peer of federation nl-smartcity with SANs localhost, 127.0.0.1 and ::1.
inline PeerCertOptions PeerOptions(const std::string& peer_id) {
  PeerCertOptions options;
  options.federation = "nl-smartcity";
  options.peer_id = peer_id;
  options.dns_names = {"localhost"};
  options.ip_addresses = {"127.0.0.1", "::1"};
  return options;
}

// Root → issuing CA → `peer_id`'s certificate (use with ASSERT_NO_FATAL_FAILURE).
inline void MakeChain(const std::string& peer_id, Chain* chain) {
  ASSERT_OK_AND_ASSIGN(chain->root, CreateRootCa(RootOptions()));
  ASSERT_OK_AND_ASSIGN(chain->issuing, CreateIssuingCa(chain->root, IssuingOptions()));
  ASSERT_OK_AND_ASSIGN(chain->peer, IssuePeerCertificate(chain->issuing, PeerOptions(peer_id)));
}

}  // namespace testing
}  // namespace tls
}  // namespace polder

#endif  // POLDER_COMMON_TLS_CA_TESTING_H_
