// RegistryClient against an in-process registry on loopback: what each call sends and returns,
// NOT_FOUND as an absent answer, other errors with code and message kept, and deadlines.
#include "tools/polderctl/commands/registry_client.h"

#include <string>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tools/polderctl/commands/fake_registry.h"
#include "tools/polderctl/commands/loopback_server.h"

namespace polder {
namespace polderctl {
namespace {

using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

constexpr char kSubject[] = "polder.datasets.mobility.v1.BikeCount";
constexpr char kSchema[] = "syntax = \"proto3\";\nmessage BikeCount { int64 count = 1; }\n";

class RegistryClientTest : public ::testing::Test {
 protected:
  FakeRegistry registry_;
  LoopbackServer server_{&registry_};
  RegistryClient client_{server_.Channel(), absl::Seconds(30)};
};

TEST_F(RegistryClientTest, SetPrimaryReturnsThePrimaryTheReplicaReports) {
  ASSERT_OK_AND_ASSIGN(std::string primary, client_.SetPrimary("registry-b"));
  EXPECT_EQ(primary, "registry-b");
  EXPECT_EQ(registry_.primary(), "registry-b");
  EXPECT_THAT(registry_.calls(), ElementsAre("SetPrimary registry-b"));
}

TEST_F(RegistryClientTest, SetPrimaryRefusalKeepsCodeAndMessage) {
  EXPECT_THAT(client_.SetPrimary("registry-z"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "'registry-z' is not a replica of this registry"));
  registry_.FailOn("SetPrimary", "", grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no"));
  EXPECT_THAT(client_.SetPrimary("registry-b"),
              StatusIs(absl::StatusCode::kPermissionDenied, "no"));
  EXPECT_EQ(registry_.primary(), "registry-a");
}

TEST_F(RegistryClientTest, EveryCallHasTheClientsDeadline) {
  RegistryClient slow(server_.Channel(), absl::Seconds(90));
  ASSERT_OK(slow.SetPrimary("registry-b").status());
  EXPECT_GT(registry_.last_deadline(), absl::Seconds(80));
  // gRPC rounds the deadline it sends up, by well under a second.
  EXPECT_LE(registry_.last_deadline(), absl::Seconds(91));
  ASSERT_OK(client_.SubjectCompatibility(kSubject).status());
  EXPECT_GT(registry_.last_deadline(), absl::Seconds(20));
  EXPECT_LE(registry_.last_deadline(), absl::Seconds(31));
}

TEST_F(RegistryClientTest, SubjectCompatibilityIsAbsentWithoutALevelOfItsOwn) {
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> level, client_.SubjectCompatibility(kSubject));
  EXPECT_EQ(level, std::nullopt);
  ASSERT_OK(client_.SetSubjectCompatibility(kSubject, "FULL_TRANSITIVE"));
  ASSERT_OK_AND_ASSIGN(level, client_.SubjectCompatibility(kSubject));
  EXPECT_THAT(level, Optional(std::string("FULL_TRANSITIVE")));
  EXPECT_THAT(registry_.SubjectLevel(kSubject), Optional(std::string("FULL_TRANSITIVE")));
  registry_.FailOn("GetConfig", kSubject, grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"));
  EXPECT_THAT(client_.SubjectCompatibility(kSubject),
              StatusIs(absl::StatusCode::kUnavailable, "down"));
  EXPECT_THAT(client_.SetSubjectCompatibility(kSubject, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(RegistryClientTest, LookupFindsOnlyTheSameSchemaWithTheSameReferences) {
  SubjectSchema schema{kSubject, kSchema, {}};
  ASSERT_OK_AND_ASSIGN(std::optional<RegisteredSchema> found, client_.LookupSchema(schema));
  EXPECT_FALSE(found.has_value()) << "no such subject";
  registry_.AddVersion(kSubject, "syntax = \"proto3\";\nmessage Other {}\n");
  ASSERT_OK_AND_ASSIGN(found, client_.LookupSchema(schema));
  EXPECT_FALSE(found.has_value()) << "no such schema";
  ASSERT_OK_AND_ASSIGN(RegisteredSchema registered, client_.RegisterSchema(schema));
  EXPECT_EQ(registered.version, 2);
  ASSERT_OK_AND_ASSIGN(found, client_.LookupSchema(schema));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->version, 2);
  EXPECT_EQ(found->id, registered.id);
  schema.references.push_back(
      {"polder/datasets/common/v1/location.proto", "polder/datasets/common/v1/location.proto", 1});
  ASSERT_OK_AND_ASSIGN(found, client_.LookupSchema(schema));
  EXPECT_FALSE(found.has_value()) << "the references are part of what is looked up";
  registry_.FailOn("LookupSchema", kSubject, grpc::Status(grpc::StatusCode::INTERNAL, "broken"));
  EXPECT_THAT(client_.LookupSchema(schema), StatusIs(absl::StatusCode::kInternal, "broken"));
}

TEST_F(RegistryClientTest, RegisterSendsProtobufWithReferencesAndIsIdempotent) {
  const std::string import = "polder/datasets/common/v1/location.proto";
  SubjectSchema schema{kSubject, kSchema, {{import, import, 1}}};
  EXPECT_THAT(client_.RegisterSchema(schema),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not resolve")))
      << "the reference names a version the registry does not have";
  registry_.AddVersion(import, "syntax = \"proto3\";\nmessage Location {}\n");
  ASSERT_OK_AND_ASSIGN(RegisteredSchema first, client_.RegisterSchema(schema));
  ASSERT_OK_AND_ASSIGN(RegisteredSchema second, client_.RegisterSchema(schema));
  EXPECT_EQ(first.version, 1);
  EXPECT_EQ(second.version, 1);
  EXPECT_EQ(second.id, first.id);
  ASSERT_EQ(registry_.Versions(kSubject).size(), 1u);
  EXPECT_THAT(registry_.Versions(kSubject)[0].references,
              ElementsAre(import + "=" + import + "@1"));
}

TEST_F(RegistryClientTest, CheckCompatibilityIsAbsentForASubjectWithoutVersions) {
  SubjectSchema schema{kSubject, kSchema, {}};
  ASSERT_OK_AND_ASSIGN(std::optional<CompatibilityVerdict> verdict,
                       client_.CheckCompatibility(schema));
  EXPECT_FALSE(verdict.has_value());
  registry_.AddVersion(kSubject, "syntax = \"proto3\";\nmessage BikeCount {}\n");
  ASSERT_OK_AND_ASSIGN(verdict, client_.CheckCompatibility(schema));
  ASSERT_TRUE(verdict.has_value());
  EXPECT_TRUE(verdict->compatible);
  EXPECT_THAT(verdict->messages, ::testing::IsEmpty());
  registry_.Refuse(kSubject, {"field 1 changed type", "field 2 removed"});
  ASSERT_OK_AND_ASSIGN(verdict, client_.CheckCompatibility(schema));
  ASSERT_TRUE(verdict.has_value());
  EXPECT_FALSE(verdict->compatible);
  EXPECT_THAT(verdict->messages, ElementsAre("field 1 changed type", "field 2 removed"));
}

TEST(RegistryClientUnreachableTest, NoServerIsUnavailable) {
  std::string address;
  {
    FakeRegistry registry;
    LoopbackServer server(&registry);
    address = server.address();
  }
  std::shared_ptr<grpc::ChannelCredentials> plaintext =
      grpc::InsecureChannelCredentials();  // loopback development mode only
  RegistryClient client(grpc::CreateChannel(address, plaintext), absl::Seconds(10));
  EXPECT_THAT(client.SetPrimary("registry-b"), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace polderctl
}  // namespace polder
