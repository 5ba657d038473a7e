#include "services/registry/registry.h"

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/registry/errors.h"
#include "services/registry/memory_record_log.h"

namespace polder {
namespace registry {
namespace {

using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kV1[] =
    "syntax = \"proto3\"; package p; message Bike { string id = 1; int64 count = 2; }";
constexpr char kV2[] =
    "syntax = \"proto3\"; package p; message Bike { string id = 1; int64 count = 2; string note = "
    "3; }";
constexpr char kBadChange[] =
    "syntax = \"proto3\"; package p; message Bike { string id = 1; string count = 2; }";

RegisterRequest Req(const std::string& subject, const std::string& schema) {
  RegisterRequest r;
  r.subject = subject;
  r.schema = schema;
  return r;
}

int Code(const absl::Status& s) { return ConfluentErrorCode(s); }

class RegistryTest : public ::testing::Test {
 protected:
  MemoryRecordLog log_;
  Registry registry_{&log_, RegistryOptions{}};
};

// A log whose commits wait while the gate is closed, so a test can queue registrations behind a
// commit in progress.
class GatedLog : public RecordLog {
 public:
  absl::StatusOr<int64_t> Commit(const std::vector<StoreRecord>& records) override {
    {
      absl::MutexLock lock(&mu_);
      ++commits_;
      mu_.Await(absl::Condition(&open_));
    }
    return inner.Commit(records);
  }
  absl::Status Sync() override { return inner.Sync(); }
  void Open() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }
  // Waits until `n` commits have started.
  void AwaitCommits(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return commits_ >= n; };
    mu_.Await(absl::Condition(&reached));
  }
  MemoryRecordLog inner;

 private:
  absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
  int commits_ ABSL_GUARDED_BY(mu_) = 0;
};

// Registrations arriving while a commit is in progress share the next transaction (group
// commit), each decided exactly as it would be alone: ids in arrival order, one commit for the
// group; a registration that depends on one in the group (same subject, same schema) waits for
// the group after it.
class GroupCommitTest : public ::testing::Test {
 protected:
  // Starts `first` (its commit held at the gate), then the others one at a time — each queued
  // behind it before the next starts, so they queue in the order given — opens the gate and
  // returns every result in that order.
  std::vector<absl::StatusOr<RegisterResult>> RegisterBehindACommit(
      const RegisterRequest& first, const std::vector<RegisterRequest>& others) {
    std::vector<absl::StatusOr<RegisterResult>> results(others.size() + 1,
                                                        absl::UnknownError("not run"));
    std::vector<std::thread> threads;
    threads.emplace_back([&] { results[0] = registry_.Register(first); });
    log_.AwaitCommits(1);
    for (size_t i = 0; i < others.size(); ++i) {
      threads.emplace_back([&, i] { results[i + 1] = registry_.Register(others[i]); });
      while (registry_.WaitingRegistrations() < static_cast<int64_t>(i + 1)) {
        absl::SleepFor(absl::Milliseconds(1));
      }
    }
    log_.Open();
    for (std::thread& t : threads) t.join();
    return results;
  }
  GatedLog log_;
  Registry registry_{&log_, RegistryOptions{}};
};

TEST_F(GroupCommitTest, ConcurrentRegistrationsShareOneTransaction) {
  std::vector<RegisterRequest> others;
  for (int i = 0; i < 4; ++i) {
    others.push_back(
        Req(absl::StrCat("s", i),
            absl::StrCat("syntax = \"proto3\"; package p; message M", i, " { string id = 1; }")));
  }
  auto results = RegisterBehindACommit(Req("first", kV1), others);
  std::set<int32_t> ids;
  for (const auto& r : results) {
    ASSERT_OK(r.status());
    EXPECT_TRUE(r->created);
    EXPECT_EQ(r->version, 1);
    ids.insert(r->id);
  }
  EXPECT_THAT(ids, ElementsAre(1, 2, 3, 4, 5)) << "distinct, dense ids";
  EXPECT_EQ(results[0]->id, 1);
  Registry::RegistrationCounts counts = registry_.registrations();
  EXPECT_EQ(counts.created, 5);
  EXPECT_EQ(counts.commits, 2) << "the first alone, the four queued behind it together";
  // Every schema is readable under its id, and a new registry reading the log agrees.
  for (size_t i = 0; i < others.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(auto versions, registry_.ListVersions(others[i].subject, false));
    EXPECT_THAT(versions, ElementsAre(1));
  }
  Registry replay(&log_.inner, RegistryOptions{});
  std::vector<StoreRecord> records = log_.inner.records();
  for (size_t i = 0; i < records.size(); ++i) ASSERT_OK(replay.ApplyFromLog(records[i], i));
  EXPECT_EQ(replay.next_id(), 6);
}

TEST_F(GroupCommitTest, ARegistrationDependingOnOneInTheGroupWaitsForTheNextGroup) {
  const std::vector<RegisterRequest> others = {
      Req("bikes", kV1),  // new id
      Req("bikes", kV2),  // same subject: version 2, after the first is committed
      Req("copy", kV1),   // same schema under another subject: the same id
  };
  auto results = RegisterBehindACommit(Req("first", kBadChange), others);
  for (const auto& r : results) ASSERT_OK(r.status());
  EXPECT_EQ(results[1]->version, 1);
  EXPECT_EQ(results[2]->version, 2);
  EXPECT_NE(results[2]->id, results[1]->id);
  EXPECT_EQ(results[3]->id, results[1]->id) << "one id per schema";
  EXPECT_EQ(results[3]->version, 1);
  EXPECT_EQ(registry_.registrations().commits, 3) << "first; bikes v1; bikes v2 and copy";
}

TEST_F(GroupCommitTest, AFailedGroupCommitFailsEveryMemberAndStoresNothing) {
  log_.inner.FailCommits(absl::UnavailableError("broker gone"));
  std::vector<RegisterRequest> others = {Req("a", kV1), Req("b", kBadChange)};
  auto results = RegisterBehindACommit(Req("first", kV2), others);
  for (const auto& r : results) EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(log_.inner.records().empty());
  log_.inner.FailCommits(absl::OkStatus());
  ASSERT_OK_AND_ASSIGN(RegisterResult after, registry_.Register(Req("a", kV1)));
  EXPECT_EQ(after.id, 1) << "nothing of the failed group was applied";
}

// A city registers only in its namespace and names each subject after its record: a schema that
// declares a standard dataset's message under the city's prefix is refused (the impersonation
// of a standard dataset, finding 5 of the security review).
TEST_F(RegistryTest, ACitysSchemasLieInItsNamespaceAndAreNamedAfterTheirRecord) {
  auto city = [](const std::string& subject, const std::string& schema) {
    RegisterRequest r = Req(subject, schema);
    r.writer_namespace = "polder.cities.groningen";
    return r;
  };
  EXPECT_OK(registry_
                .Register(city("polder.cities.groningen.trees.v1.Tree",
                               "syntax = \"proto3\"; package polder.cities.groningen.trees.v1; "
                               "message Tree { string id = 1; }"))
                .status());
  const std::string rogue =
      "syntax = \"proto3\"; package polder.datasets.mobility.v1; message BikeCount { string id = "
      "1; int64 x = 9; }";
  absl::StatusOr<RegisterResult> r =
      registry_.Register(city("polder.cities.groningen.rogue-bikes", rogue));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kPermissionDenied,
                          HasSubstr("outside the writer's namespace")));
  r = registry_.Register(city("polder.cities.groningen.trees.v1.Other",
                              "syntax = \"proto3\"; package polder.cities.groningen.trees.v1; "
                              "message Tree { string id = 1; }"));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr("a subject is named after its record")));
  r = registry_.Register(
      city("polder.cities.groningenx.A",
           "syntax = \"proto3\"; package polder.cities.groningenx; message A {}"));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kPermissionDenied))
      << "a namespace is a package prefix, not a string prefix";
  // Import paths need no record; the operator (no namespace) is not restricted.
  EXPECT_OK(registry_
                .Register(city(
                    "polder/cities/groningen/common.proto",
                    "syntax = \"proto3\"; package polder.cities.groningen.common; message Id {}"))
                .status());
  EXPECT_OK(registry_.Register(Req("curl.bikes", rogue)).status());
  // Offenders registered before the rules are reported.
  std::vector<std::string> offenders = registry_.NamespaceOffenders([](const std::string& subject) {
    return subject == "curl.bikes" ? std::string("polder.cities.curl") : std::string();
  });
  ASSERT_EQ(offenders.size(), 1u);
  EXPECT_THAT(offenders[0], HasSubstr("curl.bikes version 1"));
}

TEST_F(RegistryTest, SubjectNamesAreMessageNamesOrImportPaths) {
  for (const char* bad : {"polder.cities.groningen./..%2Fx", "a b", "../etc/passwd", "/abs", "a//b",
                          "a/./b", "x?y", ".hidden"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(registry_.Register(Req(bad, kV1)), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_OK(registry_.Register(Req("p.Bike", kV1)).status());
  EXPECT_OK(registry_.Register(Req("tests/registry/interop/common.proto", kV1)).status());
}

TEST_F(RegistryTest, RegistersWithGlobalIdsAndPerSubjectVersions) {
  ASSERT_OK_AND_ASSIGN(RegisterResult a, registry_.Register(Req("p.Bike", kV1)));
  EXPECT_EQ(a.id, 1);
  EXPECT_EQ(a.version, 1);
  EXPECT_TRUE(a.created);
  ASSERT_OK_AND_ASSIGN(RegisterResult again, registry_.Register(Req("p.Bike", kV1)));
  EXPECT_EQ(again.id, 1);
  EXPECT_FALSE(again.created) << "idempotent";
  ASSERT_OK_AND_ASSIGN(RegisterResult other_subject, registry_.Register(Req("other", kV1)));
  EXPECT_EQ(other_subject.id, 1) << "same canonical schema, same id, in any subject";
  EXPECT_EQ(other_subject.version, 1);
  ASSERT_OK_AND_ASSIGN(RegisterResult b, registry_.Register(Req("p.Bike", kV2)));
  EXPECT_EQ(b.id, 2);
  EXPECT_EQ(b.version, 2);
  EXPECT_THAT(*registry_.ListVersions("p.Bike", false), ElementsAre(1, 2));
  EXPECT_THAT(registry_.ListSubjects(false), ElementsAre("other", "p.Bike"));
  ASSERT_OK_AND_ASSIGN(SchemaView latest,
                       registry_.GetVersion("p.Bike", -1, false, SchemaFormat::kDefault));
  EXPECT_EQ(latest.id, 2);
  EXPECT_THAT(latest.schema, HasSubstr("string note = 3;"));
  ASSERT_OK_AND_ASSIGN(SchemaView by_id, registry_.GetById(1, "", SchemaFormat::kSerialized));
  ASSERT_OK_AND_ASSIGN(RegisterResult from_b64, registry_.Register(Req("third", by_id.schema)));
  EXPECT_EQ(from_b64.id, 1) << "the serialized form is the same schema";
  ASSERT_OK_AND_ASSIGN(SchemaView found, registry_.Lookup(Req("p.Bike", kV1), false));
  EXPECT_EQ(found.version, 1);
}

TEST_F(RegistryTest, ErrorsCarryConfluentCodes) {
  ASSERT_OK(registry_.Register(Req("p.Bike", kV1)).status());
  EXPECT_EQ(Code(registry_.GetVersion("nope", 1, false, SchemaFormat::kDefault).status()),
            kSubjectNotFound);
  EXPECT_EQ(Code(registry_.GetVersion("p.Bike", 9, false, SchemaFormat::kDefault).status()),
            kVersionNotFound);
  EXPECT_EQ(Code(registry_.GetVersion("p.Bike", 0, false, SchemaFormat::kDefault).status()),
            kInvalidVersion);
  EXPECT_EQ(Code(registry_.GetById(99, "", SchemaFormat::kDefault).status()), kSchemaNotFound);
  EXPECT_EQ(Code(registry_.Lookup(Req("p.Bike", kV2), false).status()), kSchemaNotFound);
  EXPECT_EQ(Code(registry_.Register(Req("p.Bike", "message {")).status()), kInvalidSchema);
  EXPECT_EQ(Code(registry_.Register(Req("", kV1)).status()), kInvalidSubject);
  RegisterRequest avro = Req("x", "{\"type\":\"record\"}");
  avro.schema_type = "AVRO";
  EXPECT_THAT(registry_.Register(avro),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not supported")));
  RegisterRequest missing_ref =
      Req("x", "syntax = \"proto3\"; import \"a.proto\"; message M { A a = 1; }");
  missing_ref.references = {{"a.proto", "a", 1}};
  EXPECT_THAT(registry_.Register(missing_ref),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("subject 'a' not found")));
  EXPECT_EQ(HttpStatusForErrorCode(kSubjectNotFound), 404);
  EXPECT_EQ(HttpStatusForErrorCode(kInvalidSchema), 422);
  EXPECT_EQ(HttpStatusForErrorCode(kIncompatibleSchema), 409);
  EXPECT_EQ(log_.records().size(), 3u)
      << "failed requests store nothing (schema, hwm, version of the one success)";
}

TEST_F(RegistryTest, SoftAndHardDeletionFollowConfluent) {
  ASSERT_OK(registry_.Register(Req("p.Bike", kV1)).status());
  ASSERT_OK(registry_.Register(Req("p.Bike", kV2)).status());
  EXPECT_EQ(Code(registry_.DeleteVersion("p.Bike", 1, true).status()), kVersionNotSoftDeleted);
  ASSERT_OK_AND_ASSIGN(int32_t deleted, registry_.DeleteVersion("p.Bike", 1, false));
  EXPECT_EQ(deleted, 1);
  EXPECT_EQ(Code(registry_.DeleteVersion("p.Bike", 1, false).status()), kVersionSoftDeleted);
  EXPECT_THAT(*registry_.ListVersions("p.Bike", false), ElementsAre(2));
  EXPECT_THAT(*registry_.ListVersions("p.Bike", true), ElementsAre(1, 2));
  EXPECT_OK(registry_.GetVersion("p.Bike", 1, true, SchemaFormat::kDefault).status());
  EXPECT_EQ(Code(registry_.DeleteSubject("p.Bike", true).status()), kSubjectNotSoftDeleted);
  ASSERT_OK_AND_ASSIGN(auto versions, registry_.DeleteSubject("p.Bike", false));
  EXPECT_THAT(versions, ElementsAre(2));
  EXPECT_EQ(Code(registry_.DeleteSubject("p.Bike", false).status()), kSubjectSoftDeleted);
  EXPECT_EQ(Code(registry_.ListVersions("p.Bike", false).status()), kSubjectNotFound);
  ASSERT_OK(registry_.DeleteSubject("p.Bike", true).status());
  EXPECT_EQ(Code(registry_.ListVersions("p.Bike", true).status()), kSubjectNotFound);
  // Ids are never reused after a hard delete; the schema stays readable by id.
  EXPECT_OK(registry_.GetById(2, "", SchemaFormat::kDefault).status());
  constexpr char kV3[] = "syntax = \"proto3\"; package p; message Other { string x = 1; }";
  ASSERT_OK_AND_ASSIGN(RegisterResult r, registry_.Register(Req("p.Bike", kV3)));
  EXPECT_EQ(r.id, 3);
  EXPECT_EQ(r.version, 1) << "a hard-deleted subject starts again at version 1";
}

TEST_F(RegistryTest, CompatibilityConfigAndModes) {
  ASSERT_OK(registry_.Register(Req("p.Bike", kV1)).status());
  EXPECT_EQ(*registry_.GetCompatibility("", true), "BACKWARD");
  absl::Status incompatible = registry_.Register(Req("p.Bike", kBadChange)).status();
  EXPECT_EQ(Code(incompatible), kIncompatibleSchema);
  EXPECT_THAT(std::string(incompatible.message()),
              HasSubstr("BACKWARD vs the latest version: field p.Bike.count (2) changed type "
                        "between int64 and string"));
  EXPECT_THAT(*registry_.TestCompatibility(Req("p.Bike", kBadChange), -1), ::testing::SizeIs(1));
  EXPECT_EQ(Code(registry_.GetCompatibility("p.Bike", false).status()),
            kSubjectCompatibilityNotConfigured);
  ASSERT_OK(registry_.SetCompatibility("p.Bike", "NONE").status());
  EXPECT_EQ(*registry_.GetCompatibility("p.Bike", false), "NONE");
  EXPECT_OK(registry_.Register(Req("p.Bike", kBadChange)).status());
  EXPECT_EQ(Code(registry_.SetCompatibility("", "SOMETIMES").status()), kInvalidCompatibilityLevel);
  ASSERT_OK(registry_.SetMode("", "READONLY", false).status());
  EXPECT_EQ(Code(registry_.Register(Req("p.Bike", kV2)).status()), kOperationNotPermitted);
  EXPECT_EQ(Code(registry_.SetMode("", "IMPORT", false).status()), kOperationNotPermitted)
      << "IMPORT needs an empty registry";
  EXPECT_EQ(Code(registry_.SetMode("", "SLEEP", false).status()), kInvalidMode);
}

TEST_F(RegistryTest, CompatibilityLevelsAndTransitivity) {
  constexpr char kA[] = "syntax = \"proto3\"; package p; message M { string a = 1; int32 b = 2; }";
  constexpr char kB[] =
      "syntax = \"proto3\"; package p; message M { string a = 1; reserved 2; reserved \"b\"; }";
  constexpr char kReuse[] =
      "syntax = \"proto3\"; package p; message M { string a = 1; string b = 2; }";
  ASSERT_OK(registry_.Register(Req("s", kA)).status());
  ASSERT_OK(registry_.Register(Req("s", kB)).status())
      << "removing b with number and name reserved";
  // Reusing number 2 with another type: the latest version reserved it; the first typed it.
  ASSERT_OK_AND_ASSIGN(auto latest_only, registry_.TestCompatibility(Req("s", kReuse), 0));
  for (const std::string& r : latest_only) EXPECT_THAT(r, HasSubstr("vs the latest version")) << r;
  ASSERT_OK(registry_.SetCompatibility("s", "BACKWARD_TRANSITIVE").status());
  absl::Status transitive = registry_.Register(Req("s", kReuse)).status();
  EXPECT_EQ(Code(transitive), kIncompatibleSchema);
  EXPECT_THAT(
      std::string(transitive.message()),
      HasSubstr(
          "version #1 of the history: field p.M.b (2) changed type between int32 and string"));
  // FORWARD: the latest must read the candidate's records. An added field is skipped by older
  // readers (ADR 0007); a field whose type changed is not readable.
  constexpr char kAdd[] =
      "syntax = \"proto3\"; package p; message M { string a = 1; int64 c = 3; reserved 2; reserved "
      "\"b\"; }";
  constexpr char kRetype[] =
      "syntax = \"proto3\"; package p; message M { bytes a = 1; reserved 2; reserved \"b\"; }";
  ASSERT_OK(registry_.SetCompatibility("s", "FORWARD").status());
  EXPECT_THAT(*registry_.TestCompatibility(Req("s", kAdd), -1), ::testing::IsEmpty());
  EXPECT_THAT(*registry_.TestCompatibility(Req("s", kRetype), -1),
              ::testing::ElementsAre(
                  HasSubstr("FORWARD vs the latest version: field p.M.a (1) changed type")));
  ASSERT_OK(registry_.SetCompatibility("s", "BACKWARD").status());
  EXPECT_THAT(*registry_.TestCompatibility(Req("s", kAdd), -1), ::testing::IsEmpty());
  // FORWARD_TRANSITIVE: re-adding a deleted number with another type is readable by the latest
  // (which reserves nothing for it here) but not by the first version, which typed it.
  constexpr char kDropped[] = "syntax = \"proto3\"; package p; message M { string a = 1; }";
  constexpr char kReadded[] =
      "syntax = \"proto3\"; package p; message M { string a = 1; string x = 2; }";
  ASSERT_OK(registry_.SetCompatibility("f", "FORWARD_TRANSITIVE").status());
  ASSERT_OK(registry_.Register(Req("f", kA)).status());
  ASSERT_OK(registry_.Register(Req("f", kDropped)).status()) << "older readers see the default";
  absl::Status forward = registry_.Register(Req("f", kReadded)).status();
  EXPECT_EQ(Code(forward), kIncompatibleSchema);
  EXPECT_THAT(std::string(forward.message()),
              HasSubstr("FORWARD vs version #1 of the history: field p.M.x (2)"));
  EXPECT_THAT(std::string(forward.message()), ::testing::Not(HasSubstr("latest")));
}

TEST_F(RegistryTest, ReferencesResolveAndProtectTheirTargets) {
  constexpr char kLoc[] =
      "syntax = \"proto3\"; package polder.common.v1; message Location { double lat = 1; double "
      "lon = 2; }";
  constexpr char kGarage[] =
      "syntax = \"proto3\"; package parking; import \"polder/common/v1/location.proto\"; message "
      "Garage { polder.common.v1.Location at = 1; }";
  ASSERT_OK(registry_.Register(Req("polder/common/v1/location.proto", kLoc)).status());
  RegisterRequest g = Req("parking.Garage", kGarage);
  g.references = {{"polder/common/v1/location.proto", "polder/common/v1/location.proto", 1}};
  ASSERT_OK_AND_ASSIGN(RegisterResult r, registry_.Register(g));
  ASSERT_OK_AND_ASSIGN(SchemaView view, registry_.GetById(r.id, "", SchemaFormat::kDefault));
  ASSERT_EQ(view.references.size(), 1u);
  EXPECT_EQ(view.references[0].version, 1);
  EXPECT_EQ(Code(registry_.DeleteVersion("polder/common/v1/location.proto", 1, false).status()),
            kReferenceExists);
}

TEST_F(RegistryTest, ReviewedEdgeCasesAreRefused) {
  // A version number is only accepted in IMPORT mode.
  RegisterRequest pinned = Req("p.Bike", kV1);
  pinned.version = 7;
  EXPECT_EQ(Code(registry_.Register(pinned).status()), kOperationNotPermitted);
  // A reference to a soft-deleted version is refused; a referenced subject cannot be hard-deleted.
  constexpr char kLoc[] = "syntax = \"proto3\"; package loc; message L { double x = 1; }";
  constexpr char kUser[] =
      "syntax = \"proto3\"; package u; import \"loc.proto\"; message U { loc.L l = 1; }";
  ASSERT_OK(registry_.Register(Req("loc.proto", kLoc)).status());
  RegisterRequest user = Req("u.U", kUser);
  user.references = {{"loc.proto", "loc.proto", 1}};
  ASSERT_OK(registry_.Register(user).status());
  ASSERT_OK(registry_.DeleteSubject("u.U", false).status());
  ASSERT_OK(registry_.DeleteSubject("u.U", true).status());
  // u.U is gone, but its schema record (decodable by id) still references loc.proto v1.
  ASSERT_OK(registry_.SetCompatibility("loc.proto", "NONE").status());
  EXPECT_EQ(Code(registry_.DeleteVersion("loc.proto", 1, false).status()), kReferenceExists);
  ASSERT_OK(registry_.Register(Req("loc2.proto", kLoc)).status());
  ASSERT_OK(registry_.DeleteVersion("loc2.proto", 1, false).status());
  RegisterRequest to_deleted = Req("u.V", kUser);
  to_deleted.references = {{"loc.proto", "loc2.proto", 1}};
  EXPECT_THAT(registry_.Register(to_deleted),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not found")));
}

TEST_F(RegistryTest, FailedCommitChangesNothing) {
  log_.FailCommits(RegistryError(kNotPrimary, "not the primary; the primary is reg-b"));
  EXPECT_EQ(Code(registry_.Register(Req("p.Bike", kV1)).status()), kNotPrimary);
  EXPECT_EQ(Code(registry_.ListVersions("p.Bike", true).status()), kSubjectNotFound);
  EXPECT_EQ(registry_.next_id(), 1);
}

TEST_F(RegistryTest, ReplicaRebuildsTheSameStateFromTheLog) {
  ASSERT_OK(registry_.Register(Req("p.Bike", kV1)).status());
  ASSERT_OK(registry_.Register(Req("p.Bike", kV2)).status());
  ASSERT_OK(registry_.DeleteVersion("p.Bike", 1, false).status());
  ASSERT_OK(registry_.SetCompatibility("p.Bike", "FULL").status());
  ASSERT_OK(registry_.Register(Req("q", kBadChange)).status());
  ASSERT_OK(registry_.DeleteSubject("q", false).status());
  ASSERT_OK(registry_.DeleteSubject("q", true).status());
  MemoryRecordLog unused;
  Registry replica(&unused, RegistryOptions{});
  const std::vector<StoreRecord> records = log_.records();
  for (size_t i = 0; i < records.size(); ++i) ASSERT_OK(replica.ApplyFromLog(records[i], i));
  // Records the primary applied itself are skipped when the log delivers them again.
  for (size_t i = 0; i < records.size(); ++i) ASSERT_OK(registry_.ApplyFromLog(records[i], i));
  EXPECT_EQ(registry_.applied_offset(), static_cast<int64_t>(records.size()) - 1);
  Export a = registry_.ExportAll(), b = replica.ExportAll();
  ASSERT_EQ(a.versions.size(), b.versions.size());
  for (size_t i = 0; i < a.versions.size(); ++i) {
    EXPECT_EQ(a.versions[i].subject, b.versions[i].subject);
    EXPECT_EQ(a.versions[i].id, b.versions[i].id);
    EXPECT_EQ(a.versions[i].deleted, b.versions[i].deleted);
  }
  EXPECT_EQ(a.subject_compatibility, b.subject_compatibility);
  EXPECT_EQ(replica.next_id(), registry_.next_id());
  EXPECT_EQ(replica.next_id(), 4) << "id 3 was used by the hard-deleted subject";
}

TEST_F(RegistryTest, ExportImportRestoresIdsVersionsAndConfig) {
  ASSERT_OK(registry_.Register(Req("gone", "syntax = \"proto3\"; message Gone { bool g = 1; }"))
                .status());
  ASSERT_OK(registry_.DeleteSubject("gone", false).status());
  ASSERT_OK(registry_.DeleteSubject("gone", true).status());
  ASSERT_OK(registry_.Register(Req("a", kV1)).status());
  ASSERT_OK(registry_.Register(Req("b", kBadChange)).status());
  ASSERT_OK(registry_.Register(Req("a", kV2)).status());
  ASSERT_OK(registry_.SetCompatibility("a", "FULL_TRANSITIVE").status());
  ASSERT_OK(registry_.DeleteVersion("a", 1, false).status());
  Export e = registry_.ExportAll();
  MemoryRecordLog fresh_log;
  Registry fresh(&fresh_log, RegistryOptions{});
  EXPECT_EQ(Code(fresh.Import(e)), kOperationNotPermitted) << "needs IMPORT mode";
  ASSERT_OK(fresh.SetMode("", "IMPORT", false).status());
  ASSERT_OK(fresh.Import(e));
  ASSERT_OK(fresh.SetMode("", "READWRITE", false).status());
  Export back = fresh.ExportAll();
  ASSERT_EQ(back.versions.size(), e.versions.size());
  for (size_t i = 0; i < e.versions.size(); ++i) {
    EXPECT_EQ(back.versions[i].subject, e.versions[i].subject);
    EXPECT_EQ(back.versions[i].version, e.versions[i].version);
    EXPECT_EQ(back.versions[i].id, e.versions[i].id);
    EXPECT_EQ(back.versions[i].deleted, e.versions[i].deleted);
  }
  EXPECT_EQ(back.subject_compatibility, e.subject_compatibility);
  EXPECT_EQ(fresh.next_id(), registry_.next_id());
  ASSERT_EQ(e.orphan_schemas.size(), 1u);
  EXPECT_OK(fresh.GetById(1, "", SchemaFormat::kDefault).status())
      << "a schema whose versions were hard-deleted is restored with its id";
  ASSERT_OK_AND_ASSIGN(RegisterResult n,
                       fresh.Register(Req("c", "syntax = \"proto3\"; message N { bool b = 1; }")));
  EXPECT_EQ(n.id, registry_.next_id()) << "new ids continue after the imported ones";
}

}  // namespace
}  // namespace registry
}  // namespace polder
