// The one mapping between absl::Status and grpc::Status.
//
// Canonical codes are numerically identical in both libraries, so the mapping keeps code and
// message. The gRPC adapters of every service call ToGrpcStatus() on the way out; clients call
// FromGrpcStatus() on the way in. Domain code includes only absl.
#ifndef POLDER_COMMON_STATUS_GRPC_STATUS_H_
#define POLDER_COMMON_STATUS_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace polder {

// Converts an absl::Status to the grpc::Status sent to a client. Code and message are kept.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Converts a grpc::Status received from a server to an absl::Status. Code and message are kept;
// an out-of-range code becomes kUnknown.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace polder

#endif  // POLDER_COMMON_STATUS_GRPC_STATUS_H_
