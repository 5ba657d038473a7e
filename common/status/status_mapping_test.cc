#include <string>

#include "common/status/grpc_status.h"
#include "common/status/http_status.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace {

using ::polder::testing::StatusIs;

TEST(GrpcStatusTest, RoundTripsEveryCanonicalCode) {
  for (int c = 0; c <= static_cast<int>(absl::StatusCode::kUnauthenticated); ++c) {
    auto code = static_cast<absl::StatusCode>(c);
    absl::Status in(code, code == absl::StatusCode::kOk ? "" : "detail " + std::to_string(c));
    grpc::Status g = ToGrpcStatus(in);
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
    EXPECT_EQ(g.error_message(), std::string(in.message()));
    EXPECT_EQ(FromGrpcStatus(g), in);
  }
}

TEST(GrpcStatusTest, NamedCodesMatch) {
  EXPECT_EQ(ToGrpcStatus(absl::PermissionDeniedError("no contract")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("x")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(99), "odd")),
              StatusIs(absl::StatusCode::kUnknown, "odd"));
}

TEST(HttpStatusTest, ArchitectureMappingHolds) {
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kOk), 200);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kDeadlineExceeded), 504);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kInternal), 500);
}

TEST(HttpStatusTest, InverseMappingAgreesWhereUnambiguous) {
  for (auto code : {absl::StatusCode::kInvalidArgument, absl::StatusCode::kUnauthenticated,
                    absl::StatusCode::kPermissionDenied, absl::StatusCode::kNotFound,
                    absl::StatusCode::kResourceExhausted, absl::StatusCode::kUnavailable,
                    absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kUnimplemented}) {
    EXPECT_EQ(StatusCodeFromHttp(HttpStatusCode(code)), code) << static_cast<int>(code);
  }
  EXPECT_EQ(StatusCodeFromHttp(204), absl::StatusCode::kOk);
  EXPECT_EQ(StatusCodeFromHttp(502), absl::StatusCode::kInternal);
  EXPECT_EQ(StatusCodeFromHttp(418), absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace polder
