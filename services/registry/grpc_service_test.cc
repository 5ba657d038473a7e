#include "services/registry/grpc_service.h"

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status/grpc_status.h"
#include "common/status/status_matchers.h"
#include "common/tls/grpc_tls.h"
#include "gmock/gmock.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/channel_arguments.h"
#include "gtest/gtest.h"
#include "services/registry/errors.h"
#include "services/registry/memory_record_log.h"
#include "services/registry/registry.h"

namespace polder {
namespace registry {
namespace {

using ::polder::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Stub = v1::SchemaRegistryService::Stub;

constexpr char kV1[] =
    "syntax = \"proto3\"; package p; message Bike { string id = 1; int64 count = 2; }";
constexpr char kV2[] =
    "syntax = \"proto3\"; package p; message Bike { string id = 1; int64 count = 2; string note = "
    "3; }";
constexpr char kBadChange[] =
    "syntax = \"proto3\"; package p; message Bike { string id = 1; string count = 2; }";
constexpr char kTree[] =
    "syntax = \"proto3\"; package polder.cities.groningen.trees.v1; message Tree { string id = 1; "
    "}";
constexpr char kTreeSubject[] = "polder.cities.groningen.trees.v1.Tree";
constexpr char kBikeCount[] =
    "syntax = \"proto3\"; package polder.datasets.mobility.v1; message BikeCount { string id = 1; "
    "}";
constexpr char kBikeCountSubject[] = "polder.datasets.mobility.v1.BikeCount";

// Test metadata naming the caller; TestPeers admits it as the peer id, as the mTLS admission
// does for a certificate.
constexpr char kPeerHeader[] = "x-polder-test-peer";

class TestPeers : public grpc::AuthMetadataProcessor {
 public:
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context, OutputMetadata*,
                       OutputMetadata*) override {
    auto it = metadata.find(kPeerHeader);
    if (it != metadata.end()) {
      context->AddProperty(tls::kPeerIdProperty, std::string(it->second.data(), it->second.size()));
    }
    return grpc::Status::OK;
  }
};

AccessPolicy Development() {
  AccessPolicy p;
  p.development = true;
  return p;
}

AccessPolicy Federation() {
  AccessPolicy p;
  p.operator_peers = {"operator"};
  return p;
}

// A Registry over an in-memory log, served by RegistryGrpcService on 127.0.0.1 (local
// credentials: the connection never leaves the host).
class ServedRegistry {
 public:
  ServedRegistry(AccessPolicy policy, RegistryOptions options)
      : registry_(&log_, options), service_(&registry_, /*store=*/nullptr, std::move(policy)) {}
  ~ServedRegistry() {
    if (server_ != nullptr) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  }

  absl::Status Start() {
    std::shared_ptr<grpc::ServerCredentials> creds =
        grpc::experimental::LocalServerCredentials(LOCAL_TCP);
    creds->SetAuthMetadataProcessor(std::make_shared<TestPeers>());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", creds, &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port == 0) return absl::UnavailableError("no server");
    port_ = port;
    return absl::OkStatus();
  }

  // Calls `rpc` as `peer` (none: a call without an identity).
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Request&,
                                                          Response*),
                                const Request& request, const std::string& peer = "") {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    if (!peer.empty()) context.AddMetadata(kPeerHeader, peer);
    Response response;
    grpc::Status s = (StubFor(peer)->*rpc)(&context, request, &response);
    if (!s.ok()) return FromGrpcStatus(s);
    return response;
  }

  absl::StatusOr<v1::RegisterSchemaResponse> Register(const std::string& subject,
                                                      const std::string& schema,
                                                      const std::string& peer = "") {
    v1::RegisterSchemaRequest req;
    req.set_subject(subject);
    req.set_schema(schema);
    return Call(&Stub::RegisterSchema, req, peer);
  }

  MemoryRecordLog& log() { return log_; }
  Registry& registry() { return registry_; }
  RegistryGrpcService& service() { return service_; }

 private:
  // A peer's identity belongs to its connection, as with mTLS: one channel per peer.
  Stub* StubFor(const std::string& peer) {
    std::unique_ptr<Stub>& stub = stubs_[peer];
    if (stub == nullptr) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      stub = v1::SchemaRegistryService::NewStub(
          grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_),
                                    grpc::experimental::LocalCredentials(LOCAL_TCP), args));
    }
    return stub.get();
  }

  MemoryRecordLog log_;
  Registry registry_;
  RegistryGrpcService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::map<std::string, std::unique_ptr<Stub>> stubs_;
};

// The error text a gRPC client sees: the registry's message and its Confluent code.
::testing::Matcher<const std::string&> Says(const std::string& what, int error_code) {
  return AllOf(HasSubstr(what), HasSubstr(absl::StrCat("(error_code ", error_code, ")")));
}

v1::GetVersionRequest Version(const std::string& subject, int32_t version) {
  v1::GetVersionRequest req;
  req.set_subject(subject);
  req.set_version(version);
  return req;
}

class GrpcServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(r_.Start()); }

  ServedRegistry r_{Development(), RegistryOptions{}};
};

TEST_F(GrpcServiceTest, RegistersLooksUpAndReadsBack) {
  ASSERT_OK_AND_ASSIGN(v1::RegisterSchemaResponse first, r_.Register("p.Bike", kV1));
  EXPECT_EQ(first.id(), 1);
  EXPECT_EQ(first.version(), 1);
  EXPECT_TRUE(first.created());
  ASSERT_OK_AND_ASSIGN(v1::RegisterSchemaResponse again, r_.Register("p.Bike", kV1));
  EXPECT_EQ(again.id(), 1);
  EXPECT_EQ(again.version(), 1);
  EXPECT_FALSE(again.created()) << "the subject already has this schema";
  ASSERT_OK_AND_ASSIGN(v1::RegisterSchemaResponse second, r_.Register("p.Bike", kV2));
  EXPECT_EQ(second.id(), 2);
  EXPECT_EQ(second.version(), 2);
  EXPECT_TRUE(second.created());
  ASSERT_OK(r_.Register("q", kV1).status());

  v1::ListSubjectsRequest subjects;
  ASSERT_OK_AND_ASSIGN(v1::ListSubjectsResponse listed, r_.Call(&Stub::ListSubjects, subjects));
  EXPECT_THAT(listed.subjects(), ElementsAre("p.Bike", "q"));
  v1::ListVersionsRequest versions;
  versions.set_subject("p.Bike");
  ASSERT_OK_AND_ASSIGN(v1::VersionsResponse listed_versions,
                       r_.Call(&Stub::ListVersions, versions));
  EXPECT_THAT(listed_versions.versions(), ElementsAre(1, 2));

  v1::GetSchemaRequest by_id;
  by_id.set_id(1);
  ASSERT_OK_AND_ASSIGN(v1::Schema schema, r_.Call(&Stub::GetSchema, by_id));
  EXPECT_EQ(schema.id(), 1);
  EXPECT_EQ(schema.schema_type(), "PROTOBUF");
  EXPECT_THAT(schema.schema(), HasSubstr("message Bike"));
  EXPECT_EQ(schema.subject(), "") << "a schema read by id belongs to no subject";
  EXPECT_EQ(schema.version(), 0);
  by_id.set_format(v1::SCHEMA_FORMAT_SERIALIZED);
  ASSERT_OK_AND_ASSIGN(v1::Schema serialized, r_.Call(&Stub::GetSchema, by_id));
  EXPECT_NE(serialized.schema(), schema.schema());
  ASSERT_OK_AND_ASSIGN(v1::RegisterSchemaResponse from_serialized,
                       r_.Register("r", serialized.schema()));
  EXPECT_EQ(from_serialized.id(), 1) << "the serialized form is the same schema";

  ASSERT_OK_AND_ASSIGN(v1::Schema latest, r_.Call(&Stub::GetVersion, Version("p.Bike", -1)));
  EXPECT_EQ(latest.id(), 2);
  EXPECT_EQ(latest.subject(), "p.Bike");
  EXPECT_EQ(latest.version(), 2);
  EXPECT_THAT(latest.schema(), HasSubstr("note = 3"));
  EXPECT_FALSE(latest.deleted());

  v1::LookupSchemaRequest lookup;
  lookup.set_subject("p.Bike");
  lookup.set_schema(kV1);
  ASSERT_OK_AND_ASSIGN(v1::Schema found, r_.Call(&Stub::LookupSchema, lookup));
  EXPECT_EQ(found.id(), 1);
  EXPECT_EQ(found.version(), 1);
  EXPECT_EQ(found.subject(), "p.Bike");
}

TEST_F(GrpcServiceTest, ReferencesAreResolvedAndReturned) {
  ASSERT_OK(
      r_.Register("loc.proto", "syntax = \"proto3\"; package loc; message L { double x = 1; }")
          .status());
  v1::RegisterSchemaRequest user;
  user.set_subject("u.U");
  user.set_schema(
      "syntax = \"proto3\"; package u; import \"loc.proto\"; message U { loc.L l = 1; }");
  v1::SchemaReference* ref = user.add_references();
  ref->set_name("loc.proto");
  ref->set_subject("loc.proto");
  ref->set_version(-1);
  ASSERT_OK_AND_ASSIGN(v1::RegisterSchemaResponse registered, r_.Call(&Stub::RegisterSchema, user));
  v1::GetSchemaRequest by_id;
  by_id.set_id(registered.id());
  ASSERT_OK_AND_ASSIGN(v1::Schema schema, r_.Call(&Stub::GetSchema, by_id));
  ASSERT_EQ(schema.references_size(), 1);
  EXPECT_EQ(schema.references(0).name(), "loc.proto");
  EXPECT_EQ(schema.references(0).subject(), "loc.proto");
  EXPECT_EQ(schema.references(0).version(), 1) << "\"latest\" is stored as the version it was";

  v1::DeleteVersionRequest referenced;
  referenced.set_subject("loc.proto");
  referenced.set_version(1);
  EXPECT_THAT(r_.Call(&Stub::DeleteVersion, referenced),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       Says("One or more references exist", kReferenceExists)));
}

TEST_F(GrpcServiceTest, UnknownSubjectsVersionsAndIdsAreNotFound) {
  ASSERT_OK(r_.Register("p.Bike", kV1).status());
  v1::GetSchemaRequest by_id;
  by_id.set_id(99);
  EXPECT_THAT(r_.Call(&Stub::GetSchema, by_id),
              StatusIs(absl::StatusCode::kNotFound, Says("Schema 99 not found", kSchemaNotFound)));
  EXPECT_THAT(
      r_.Call(&Stub::GetVersion, Version("nope", 1)),
      StatusIs(absl::StatusCode::kNotFound, Says("Subject 'nope' not found", kSubjectNotFound)));
  EXPECT_THAT(r_.Call(&Stub::GetVersion, Version("p.Bike", 9)),
              StatusIs(absl::StatusCode::kNotFound, Says("Version 9 not found", kVersionNotFound)));
  v1::ListVersionsRequest versions;
  versions.set_subject("nope");
  EXPECT_THAT(r_.Call(&Stub::ListVersions, versions),
              StatusIs(absl::StatusCode::kNotFound, Says("'nope'", kSubjectNotFound)));
  v1::LookupSchemaRequest lookup;
  lookup.set_subject("p.Bike");
  lookup.set_schema(kV2);
  EXPECT_THAT(r_.Call(&Stub::LookupSchema, lookup),
              StatusIs(absl::StatusCode::kNotFound, Says("Schema not found", kSchemaNotFound)));
  lookup.set_subject("nope");
  EXPECT_THAT(r_.Call(&Stub::LookupSchema, lookup),
              StatusIs(absl::StatusCode::kNotFound, Says("'nope'", kSubjectNotFound)));
  v1::DeleteSubjectRequest del;
  del.set_subject("nope");
  EXPECT_THAT(r_.Call(&Stub::DeleteSubject, del),
              StatusIs(absl::StatusCode::kNotFound, Says("'nope'", kSubjectNotFound)));
  v1::GetConfigRequest config;
  config.set_subject("p.Bike");
  EXPECT_THAT(r_.Call(&Stub::GetConfig, config),
              StatusIs(absl::StatusCode::kNotFound,
                       Says("does not have subject-level compatibility configured",
                            kSubjectCompatibilityNotConfigured)));
  v1::GetModeRequest mode;
  mode.set_subject("p.Bike");
  EXPECT_THAT(r_.Call(&Stub::GetMode, mode),
              StatusIs(absl::StatusCode::kNotFound,
                       Says("does not have subject-level mode", kSubjectModeNotConfigured)));
}

TEST_F(GrpcServiceTest, IncompatibleSchemaIsAFailedPrecondition) {
  ASSERT_OK(r_.Register("p.Bike", kV1).status());
  EXPECT_THAT(r_.Register("p.Bike", kBadChange),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(Says("incompatible with an earlier schema for subject \"p.Bike\"",
                                  kIncompatibleSchema),
                             HasSubstr("field p.Bike.count (2) changed type"))));
  EXPECT_THAT(*r_.registry().ListVersions("p.Bike", true), ElementsAre(1))
      << "nothing was registered";

  v1::CheckCompatibilityRequest check;
  check.set_subject("p.Bike");
  check.set_schema(kBadChange);
  check.set_version(-1);
  ASSERT_OK_AND_ASSIGN(v1::CheckCompatibilityResponse bad,
                       r_.Call(&Stub::CheckCompatibility, check));
  EXPECT_FALSE(bad.is_compatible());
  EXPECT_THAT(bad.messages(), ElementsAre(HasSubstr("BACKWARD vs the latest version")));
  check.set_schema(kV2);
  check.set_version(0);
  ASSERT_OK_AND_ASSIGN(v1::CheckCompatibilityResponse good,
                       r_.Call(&Stub::CheckCompatibility, check));
  EXPECT_TRUE(good.is_compatible());
  EXPECT_THAT(good.messages(), IsEmpty());
  check.set_version(7);
  EXPECT_THAT(r_.Call(&Stub::CheckCompatibility, check),
              StatusIs(absl::StatusCode::kNotFound, Says("Version 7 not found", kVersionNotFound)));
  check.set_subject("nope");
  check.set_version(-1);
  EXPECT_THAT(r_.Call(&Stub::CheckCompatibility, check),
              StatusIs(absl::StatusCode::kNotFound, Says("'nope'", kSubjectNotFound)));

  v1::SetConfigRequest none;
  none.set_subject("p.Bike");
  none.set_compatibility("NONE");
  ASSERT_OK_AND_ASSIGN(v1::ConfigResponse set, r_.Call(&Stub::SetConfig, none));
  EXPECT_EQ(set.compatibility(), "NONE");
  EXPECT_OK(r_.Register("p.Bike", kBadChange).status()) << "NONE checks nothing";
}

TEST_F(GrpcServiceTest, InvalidSchemasAndArgumentsAreInvalidArguments) {
  ASSERT_OK(r_.Register("p.Bike", kV1).status());
  EXPECT_THAT(r_.Register("p.Bike", "message {"),
              StatusIs(absl::StatusCode::kInvalidArgument, Says("", kInvalidSchema)));
  EXPECT_THAT(r_.Register("p.Bike", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, Says("Empty schema", kInvalidSchema)));
  v1::RegisterSchemaRequest avro;
  avro.set_subject("x");
  avro.set_schema("{\"type\": \"record\"}");
  avro.set_schema_type("AVRO");
  EXPECT_THAT(r_.Call(&Stub::RegisterSchema, avro),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       Says("schema type 'AVRO' is not supported", kInvalidSchema)));
  EXPECT_THAT(r_.Register("a b", kV1),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       Says("subject name 'a b' contains ' '", kInvalidSubject)));
  EXPECT_THAT(r_.Register("", kV1), StatusIs(absl::StatusCode::kInvalidArgument,
                                             Says("subject name is empty", kInvalidSubject)));
  EXPECT_THAT(
      r_.Register(std::string(256, 'a'), kV1),
      StatusIs(absl::StatusCode::kInvalidArgument, Says("longer than 255 bytes", kInvalidSubject)));
  for (int32_t version : {0, -2}) {
    EXPECT_THAT(r_.Call(&Stub::GetVersion, Version("p.Bike", version)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         Says(absl::StrCat("version '", version, "' is not a valid version id"),
                              kInvalidVersion)));
  }
  v1::SetConfigRequest level;
  level.set_compatibility("SOMETIMES");
  EXPECT_THAT(r_.Call(&Stub::SetConfig, level),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       Says("Invalid compatibility level", kInvalidCompatibilityLevel)));
  v1::SetModeRequest mode;
  mode.set_mode("SLEEP");
  EXPECT_THAT(r_.Call(&Stub::SetMode, mode),
              StatusIs(absl::StatusCode::kInvalidArgument, Says("Invalid mode", kInvalidMode)));
  v1::RegisterSchemaRequest pinned;
  pinned.set_subject("p.Bike");
  pinned.set_schema(kV2);
  pinned.set_id(5);
  EXPECT_THAT(r_.Call(&Stub::RegisterSchema, pinned),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       Says("only be given in IMPORT mode", kOperationNotPermitted)));
  EXPECT_EQ(r_.log().records().size(), 3u) << "only the first registration was stored";
}

TEST(GrpcServiceLimitsTest, SchemasOverTheSizeLimitAreRefused) {
  RegistryOptions options;
  options.max_schema_bytes = 128;
  ServedRegistry r(Development(), options);
  ASSERT_OK(r.Start());
  const std::string large = absl::StrCat(kV1, "\n// ", std::string(200, 'x'));
  EXPECT_THAT(r.Register("p.Bike", large),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       Says(absl::StrCat("schema is ", large.size(), " bytes; the limit is 128"),
                            kInvalidSchema)));
  EXPECT_OK(r.Register("p.Bike", kV1).status());
}

TEST_F(GrpcServiceTest, ModesAndSoftDeletionRefuseWhatTheyForbid) {
  ASSERT_OK(r_.Register("p.Bike", kV1).status());
  v1::SetModeRequest readonly;
  readonly.set_subject("p.Bike");
  readonly.set_mode("READONLY");
  ASSERT_OK_AND_ASSIGN(v1::ModeResponse set, r_.Call(&Stub::SetMode, readonly));
  EXPECT_EQ(set.mode(), "READONLY");
  v1::GetModeRequest get;
  get.set_subject("p.Bike");
  ASSERT_OK_AND_ASSIGN(v1::ModeResponse got, r_.Call(&Stub::GetMode, get));
  EXPECT_EQ(got.mode(), "READONLY");
  get.set_subject("other");
  get.set_default_to_global(true);
  ASSERT_OK_AND_ASSIGN(v1::ModeResponse global, r_.Call(&Stub::GetMode, get));
  EXPECT_EQ(global.mode(), "READWRITE");
  EXPECT_THAT(r_.Register("p.Bike", kV2),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       Says("Subject p.Bike is in read-only mode", kOperationNotPermitted)));
  readonly.set_mode("READWRITE");
  ASSERT_OK(r_.Call(&Stub::SetMode, readonly).status());

  v1::DeleteSubjectRequest del;
  del.set_subject("p.Bike");
  del.set_permanent(true);
  EXPECT_THAT(
      r_.Call(&Stub::DeleteSubject, del),
      StatusIs(absl::StatusCode::kNotFound, Says("was not deleted first", kSubjectNotSoftDeleted)));
  del.set_permanent(false);
  ASSERT_OK_AND_ASSIGN(v1::VersionsResponse soft, r_.Call(&Stub::DeleteSubject, del));
  EXPECT_THAT(soft.versions(), ElementsAre(1));
  EXPECT_THAT(r_.Call(&Stub::DeleteSubject, del),
              StatusIs(absl::StatusCode::kNotFound, Says("was soft deleted", kSubjectSoftDeleted)));
  EXPECT_THAT(r_.Call(&Stub::GetVersion, Version("p.Bike", 1)),
              StatusIs(absl::StatusCode::kNotFound, Says("'p.Bike'", kSubjectNotFound)));
  v1::GetVersionRequest deleted = Version("p.Bike", 1);
  deleted.set_deleted(true);
  ASSERT_OK_AND_ASSIGN(v1::Schema still, r_.Call(&Stub::GetVersion, deleted));
  EXPECT_TRUE(still.deleted());
  v1::DeleteVersionRequest version;
  version.set_subject("p.Bike");
  version.set_version(1);
  version.set_permanent(true);
  ASSERT_OK_AND_ASSIGN(v1::DeleteVersionResponse hard, r_.Call(&Stub::DeleteVersion, version));
  EXPECT_EQ(hard.version(), 1);
  EXPECT_THAT(r_.Call(&Stub::DeleteVersion, version),
              StatusIs(absl::StatusCode::kNotFound, Says("'p.Bike'", kSubjectNotFound)));
}

TEST_F(GrpcServiceTest, WritesOnAReplicaThatIsNotThePrimaryAreUnavailable) {
  ASSERT_OK(r_.Register("p.Bike", kV1).status());
  r_.log().FailCommits(RegistryError(
      kNotPrimary, "this registry replica ('reg-b') is not the primary; send writes to 'reg-a'"));
  EXPECT_THAT(r_.Register("p.Bike", kV2),
              StatusIs(absl::StatusCode::kUnavailable,
                       Says("is not the primary; send writes to 'reg-a'", kNotPrimary)));
  v1::SetConfigRequest level;
  level.set_compatibility("FULL");
  EXPECT_THAT(
      r_.Call(&Stub::SetConfig, level),
      StatusIs(absl::StatusCode::kUnavailable, Says("send writes to 'reg-a'", kNotPrimary)));
  v1::DeleteSubjectRequest del;
  del.set_subject("p.Bike");
  EXPECT_THAT(r_.Call(&Stub::DeleteSubject, del),
              StatusIs(absl::StatusCode::kUnavailable, Says("not the primary", kNotPrimary)));
  // Reads are answered from the replica's state.
  ASSERT_OK_AND_ASSIGN(v1::Schema latest, r_.Call(&Stub::GetVersion, Version("p.Bike", -1)));
  EXPECT_EQ(latest.version(), 1);
  v1::GetConfigRequest global;
  ASSERT_OK_AND_ASSIGN(v1::ConfigResponse config, r_.Call(&Stub::GetConfig, global));
  EXPECT_EQ(config.compatibility(), "BACKWARD") << "the refused write changed nothing";
  // Once the log accepts writes again, the registry first syncs with it.
  r_.log().FailCommits(absl::OkStatus());
  ASSERT_OK_AND_ASSIGN(v1::RegisterSchemaResponse second, r_.Register("p.Bike", kV2));
  EXPECT_EQ(second.version(), 2);
  EXPECT_EQ(r_.log().syncs(), 3) << "before each write that followed a failed commit";
}

TEST_F(GrpcServiceTest, StoreFailuresKeepTheirCanonicalCode) {
  r_.log().FailCommits(absl::UnavailableError("broker connection refused"));
  EXPECT_THAT(r_.Register("p.Bike", kV1), StatusIs(absl::StatusCode::kUnavailable,
                                                   Says("broker connection refused", kStoreError)));
  r_.log().FailCommits(RegistryError(kOperationTimeout, "commit timed out after 30s"));
  r_.log().FailSyncs(RegistryError(kOperationTimeout, "registry did not read the topic"));
  EXPECT_THAT(r_.Register("p.Bike", kV1),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       Says("could not confirm the outcome of an earlier write: registry did not "
                            "read the topic",
                            kOperationTimeout)));
  r_.log().FailSyncs(absl::OkStatus());
  EXPECT_THAT(r_.Register("p.Bike", kV1),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       Says("commit timed out after 30s", kOperationTimeout)));
  r_.log().FailCommits(RegistryError(kStoreError, "transaction aborted"));
  EXPECT_THAT(r_.Register("p.Bike", kV1),
              StatusIs(absl::StatusCode::kInternal, Says("transaction aborted", kStoreError)));
  r_.log().FailCommits(absl::OkStatus());
  EXPECT_OK(r_.Register("p.Bike", kV1).status());
}

TEST_F(GrpcServiceTest, SetPrimaryWithoutAKafkaStoreIsUnimplemented) {
  v1::SetPrimaryRequest req;
  req.set_replica("reg-a");
  EXPECT_THAT(r_.Call(&Stub::SetPrimary, req),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("no Kafka store")));
}

TEST_F(GrpcServiceTest, ExportAndImportCarryIdsVersionsAndSettings) {
  ASSERT_OK(r_.Register("gone", "syntax = \"proto3\"; message Gone { bool g = 1; }").status());
  ASSERT_OK(r_.registry().DeleteSubject("gone", false).status());
  ASSERT_OK(r_.registry().DeleteSubject("gone", true).status());
  ASSERT_OK(r_.Register("p.Bike", kV1).status());
  ASSERT_OK(r_.Register("p.Bike", kV2).status());
  ASSERT_OK(r_.registry().DeleteVersion("p.Bike", 1, false).status());
  ASSERT_OK(r_.registry().SetCompatibility("p.Bike", "FULL").status());
  ASSERT_OK_AND_ASSIGN(v1::RegistryExport exported, r_.Call(&Stub::Export, v1::ExportRequest()));
  ASSERT_EQ(exported.versions_size(), 2);
  EXPECT_EQ(exported.versions(0).subject(), "p.Bike");
  EXPECT_TRUE(exported.versions(0).deleted());
  EXPECT_EQ(exported.versions(1).id(), 3);
  ASSERT_EQ(exported.orphan_schemas_size(), 1);
  EXPECT_EQ(exported.orphan_schemas(0).id(), 1);
  EXPECT_EQ(exported.global_compatibility(), "BACKWARD");
  EXPECT_EQ(exported.subject_compatibility().at("p.Bike"), "FULL");
  EXPECT_EQ(exported.next_id(), 4);

  ServedRegistry fresh(Development(), RegistryOptions{});
  ASSERT_OK(fresh.Start());
  EXPECT_THAT(fresh.Call(&Stub::Import, exported),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       Says("import needs the global mode IMPORT", kOperationNotPermitted)));
  v1::SetModeRequest import_mode;
  import_mode.set_mode("IMPORT");
  ASSERT_OK(fresh.Call(&Stub::SetMode, import_mode).status());
  ASSERT_OK_AND_ASSIGN(v1::ImportResponse imported, fresh.Call(&Stub::Import, exported));
  EXPECT_EQ(imported.versions(), 2);
  ASSERT_OK_AND_ASSIGN(v1::RegistryExport back, fresh.Call(&Stub::Export, v1::ExportRequest()));
  EXPECT_EQ(back.SerializeAsString(), exported.SerializeAsString());
}

TEST_F(GrpcServiceTest, ImportRefusesUnknownCompatibilityLevelsBeforeWriting) {
  v1::SetModeRequest import_mode;
  import_mode.set_mode("IMPORT");
  ASSERT_OK(r_.Call(&Stub::SetMode, import_mode).status());
  const size_t stored = r_.log().records().size();
  v1::RegistryExport data;
  v1::ExportedVersion* v = data.add_versions();
  v->set_subject("p.Bike");
  v->set_version(1);
  v->set_id(1);
  v->set_schema(kV1);
  data.set_global_compatibility("SOMETIMES");
  EXPECT_THAT(r_.Call(&Stub::Import, data),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       Says("'SOMETIMES'", kInvalidCompatibilityLevel)));
  data.set_global_compatibility("FULL");
  (*data.mutable_subject_compatibility())["p.Bike"] = "backward";
  EXPECT_THAT(
      r_.Call(&Stub::Import, data),
      StatusIs(absl::StatusCode::kInvalidArgument, Says("'backward'", kInvalidCompatibilityLevel)));
  (*data.mutable_subject_compatibility())["p.Bike"] = "BACKWARD";
  (*data.mutable_subject_compatibility())["a b"] = "NONE";
  EXPECT_THAT(r_.Call(&Stub::Import, data),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       Says("import: subject name 'a b' contains ' '", kInvalidSubject)));
  data.mutable_subject_compatibility()->erase("a b");
  v1::ExportedSchema* orphan = data.add_orphan_schemas();
  orphan->set_id(0);
  orphan->set_schema(kV2);
  orphan->set_hash("00");
  EXPECT_THAT(r_.Call(&Stub::Import, data),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       Says("import: schema id 0 is not valid", kInvalidSchema)));
  data.clear_orphan_schemas();
  EXPECT_EQ(r_.log().records().size(), stored) << "a refused import writes nothing";
  EXPECT_THAT(r_.registry().ListSubjects(true), IsEmpty());
  ASSERT_OK(r_.Call(&Stub::Import, data).status());
  EXPECT_EQ(*r_.registry().GetCompatibility("", false), "FULL");
}

// A federation: the operator's peers write anything, a city only under its own prefix and in
// its own Protobuf namespace; everyone admitted reads.
class GrpcAccessTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(r_.Start()); }

  ServedRegistry r_{Federation(), RegistryOptions{}};
};

TEST_F(GrpcAccessTest, ACityWritesOnlyItsOwnSubjects) {
  ASSERT_OK_AND_ASSIGN(v1::RegisterSchemaResponse own,
                       r_.Register(kTreeSubject, kTree, "groningen"));
  EXPECT_TRUE(own.created());
  EXPECT_THAT(r_.Register(kBikeCountSubject, kBikeCount, "groningen"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       Says("peer 'groningen' may not write subject "
                            "'polder.datasets.mobility.v1.BikeCount': a city writes only subjects "
                            "under 'polder.cities.groningen.'",
                            kForbidden)));
  EXPECT_THAT(r_.Register(kTreeSubject, kTree, "amersfoort"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       Says("only subjects under 'polder.cities.amersfoort.'", kForbidden)));
  // Under its prefix, but declaring a standard dataset's package.
  const std::string rogue =
      "syntax = \"proto3\"; package polder.datasets.mobility.v1; message Tree { string id = 1; }";
  EXPECT_THAT(
      r_.Register("polder.cities.groningen.rogue", rogue, "groningen"),
      StatusIs(absl::StatusCode::kPermissionDenied,
               Says("lies outside the writer's namespace 'polder.cities.groningen'", kForbidden)));
  EXPECT_THAT(r_.registry().ListSubjects(true), ElementsAre(kTreeSubject));

  ASSERT_OK(r_.Register(kBikeCountSubject, kBikeCount, "operator").status());
  v1::DeleteSubjectRequest del;
  del.set_subject(kBikeCountSubject);
  EXPECT_THAT(r_.Call(&Stub::DeleteSubject, del, "groningen"),
              StatusIs(absl::StatusCode::kPermissionDenied, Says("may not write", kForbidden)));
  v1::DeleteVersionRequest del_version;
  del_version.set_subject(kBikeCountSubject);
  del_version.set_version(1);
  EXPECT_THAT(r_.Call(&Stub::DeleteVersion, del_version, "groningen"),
              StatusIs(absl::StatusCode::kPermissionDenied, Says("may not write", kForbidden)));
  v1::SetConfigRequest other_config;
  other_config.set_subject(kBikeCountSubject);
  other_config.set_compatibility("NONE");
  EXPECT_THAT(r_.Call(&Stub::SetConfig, other_config, "groningen"),
              StatusIs(absl::StatusCode::kPermissionDenied, Says("may not write", kForbidden)));
  v1::SetConfigRequest own_config;
  own_config.set_subject(kTreeSubject);
  own_config.set_compatibility("FULL");
  EXPECT_OK(r_.Call(&Stub::SetConfig, own_config, "groningen").status());
  del.set_subject(kTreeSubject);
  EXPECT_OK(r_.Call(&Stub::DeleteSubject, del, "groningen").status());

  // Every admitted peer reads.
  v1::GetSchemaRequest by_id;
  by_id.set_id(2);
  ASSERT_OK_AND_ASSIGN(v1::Schema read, r_.Call(&Stub::GetSchema, by_id, "amersfoort"));
  EXPECT_THAT(read.schema(), HasSubstr("message BikeCount"));
}

TEST_F(GrpcAccessTest, GlobalSettingsImportExportAndThePrimaryAreTheOperators) {
  v1::SetConfigRequest global;
  global.set_compatibility("NONE");
  EXPECT_THAT(r_.Call(&Stub::SetConfig, global, "groningen"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       Says("peer 'groningen' may not change the global compatibility: only the "
                            "federation operator may",
                            kForbidden)));
  v1::SetModeRequest mode;
  mode.set_subject(kTreeSubject);
  mode.set_mode("READONLY");
  EXPECT_THAT(
      r_.Call(&Stub::SetMode, mode, "groningen"),
      StatusIs(absl::StatusCode::kPermissionDenied, Says("may not change modes", kForbidden)));
  EXPECT_THAT(r_.Call(&Stub::Export, v1::ExportRequest(), "groningen"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       Says("may not export the registry", kForbidden)));
  EXPECT_THAT(r_.Call(&Stub::Import, v1::RegistryExport(), "groningen"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       Says("may not import into the registry", kForbidden)));
  v1::SetPrimaryRequest primary;
  primary.set_replica("reg-b");
  EXPECT_THAT(r_.Call(&Stub::SetPrimary, primary, "groningen"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       Says("may not move the primary role", kForbidden)));
  EXPECT_THAT(r_.log().records(), IsEmpty());

  ASSERT_OK_AND_ASSIGN(v1::ConfigResponse set, r_.Call(&Stub::SetConfig, global, "operator"));
  EXPECT_EQ(set.compatibility(), "NONE");
  EXPECT_OK(r_.Call(&Stub::SetMode, mode, "operator").status());
  EXPECT_OK(r_.Call(&Stub::Export, v1::ExportRequest(), "operator").status());
}

TEST_F(GrpcAccessTest, CallsWithoutAnAdmittedPeerAreUnauthenticated) {
  EXPECT_THAT(r_.Register(kBikeCountSubject, kBikeCount),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       Says("call's peer was not admitted", kUnauthorized)));
  v1::GetSchemaRequest by_id;
  by_id.set_id(1);
  EXPECT_THAT(r_.Call(&Stub::GetSchema, by_id),
              StatusIs(absl::StatusCode::kUnauthenticated, Says("not admitted", kUnauthorized)));
  // Called directly, outside any connection: no TLS peer at all.
  grpc::ServerContext context;
  v1::ListSubjectsRequest req;
  v1::ListSubjectsResponse resp;
  grpc::Status s = r_.service().ListSubjects(&context, &req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(), "call has no TLS peer (error_code 40101)");
  EXPECT_THAT(r_.log().records(), IsEmpty());
}

TEST(GrpcServiceDirectTest, HandlersAnswerWhenCalledWithoutAServer) {
  MemoryRecordLog log;
  Registry registry(&log, RegistryOptions{});
  RegistryGrpcService service(&registry, nullptr, Development());
  grpc::ServerContext context;
  v1::RegisterSchemaRequest req;
  req.set_subject("p.Bike");
  req.set_schema(kV1);
  v1::RegisterSchemaResponse resp;
  ASSERT_TRUE(service.RegisterSchema(&context, &req, &resp).ok());
  EXPECT_EQ(resp.id(), 1);
  v1::GetSchemaRequest by_id;
  by_id.set_id(2);
  v1::Schema schema;
  grpc::Status missing = service.GetSchema(&context, &by_id, &schema);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(missing.error_message(), "Schema 2 not found (error_code 40403)");
}

}  // namespace
}  // namespace registry
}  // namespace polder
