// BootstrapSchemas against an in-process registry on loopback: registration in dependency order
// with references to the versions the imports got, idempotence, the dry run (reads only), and
// each registry error it meets, named by subject and step.
#include "tools/polderctl/commands/federation_bootstrap.h"

#include <string>
#include <vector>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/polderctl/commands/fake_registry.h"
#include "tools/polderctl/commands/loopback_server.h"

namespace polder {
namespace polderctl {
namespace {

using ::polder::testing::StatusIs;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

constexpr char kLocation[] = "polder/datasets/common/v1/location.proto";
constexpr char kBikeCount[] = "polder.datasets.mobility.v1.BikeCount";
constexpr char kLocationSource[] = "syntax = \"proto3\";\nmessage Location { double lat = 1; }\n";
constexpr char kBikeCountSource[] =
    "syntax = \"proto3\";\nimport \"polder/datasets/common/v1/location.proto\";\n"
    "message BikeCount { Location at = 1; int64 count = 2; }\n";

// An imported file, then a dataset importing it.
std::vector<datasets::StandardSchema> Schemas() {
  return {
      {kLocation, kLocationSource, kLocation, "", {}},
      {"polder/datasets/mobility/v1/bike_count.proto",
       kBikeCountSource,
       kBikeCount,
       "mobility.bike-counts",
       {kLocation}},
  };
}

class FederationBootstrapTest : public ::testing::Test {
 protected:
  absl::StatusOr<BootstrapReport> Run(bool dry_run = false,
                                      const std::string& level = "FULL_TRANSITIVE") {
    return BootstrapSchemas(Schemas(), {level, dry_run}, client_);
  }

  FakeRegistry registry_;
  LoopbackServer server_{&registry_};
  RegistryClient client_{server_.Channel(), absl::Seconds(30)};
};

TEST(ParseCompatibilityLevelTest, AcceptsTheRegistryLevelsInAnyCase) {
  EXPECT_OK(ParseCompatibilityLevel("full_transitive"));
  ASSERT_OK_AND_ASSIGN(std::string level, ParseCompatibilityLevel("Backward"));
  EXPECT_EQ(level, "BACKWARD");
  for (const char* bad : {"", "FULLTRANSITIVE", "latest", "BACKWARD "}) {
    EXPECT_THAT(ParseCompatibilityLevel(bad),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("'", bad,
                                      "' is not one of NONE, BACKWARD, BACKWARD_TRANSITIVE, "
                                      "FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE")));
  }
}

TEST_F(FederationBootstrapTest, RegistersImportsFirstAndReferencesTheVersionTheyGot) {
  // The imported file's subject already holds another version: this build's becomes version 2.
  registry_.AddVersion(kLocation, "syntax = \"proto3\";\nmessage Location {}\n");
  ASSERT_OK_AND_ASSIGN(BootstrapReport report, Run());
  ASSERT_EQ(report.subjects.size(), 2u);
  EXPECT_EQ(report.subjects[0].version, 2);
  EXPECT_TRUE(report.subjects[0].registered);
  EXPECT_EQ(report.subjects[1].version, 1);
  EXPECT_TRUE(report.subjects[1].registered);
  EXPECT_EQ(report.subjects[1].dataset_id, "mobility.bike-counts");
  EXPECT_EQ(report.changes, 4);
  ASSERT_EQ(registry_.Versions(kBikeCount).size(), 1u);
  EXPECT_THAT(registry_.Versions(kBikeCount)[0].references,
              ElementsAre(absl::StrCat(kLocation, "=", kLocation, "@2")));
  EXPECT_THAT(registry_.SubjectLevel(kLocation), Optional(std::string("FULL_TRANSITIVE")));
  EXPECT_THAT(registry_.SubjectLevel(kBikeCount), Optional(std::string("FULL_TRANSITIVE")));
  const int32_t location_id = registry_.Versions(kLocation)[1].id;
  const int32_t bike_id = registry_.Versions(kBikeCount)[0].id;
  EXPECT_THAT(
      BootstrapLines(report),
      ElementsAre(absl::StrCat(kLocation, ": registered as version 2 (schema id ", location_id,
                               "); compatibility FULL_TRANSITIVE set (was the global default)"),
                  absl::StrCat(kBikeCount, ": registered as version 1 (schema id ", bike_id,
                               "); compatibility FULL_TRANSITIVE set (was the global default)"),
                  "4 change(s) made: 2 standard schemas"));
  nlohmann::ordered_json json = BootstrapJson(report);
  EXPECT_EQ(json.dump(),
            nlohmann::ordered_json::parse(
                absl::StrCat(R"({"dry_run":false,"changes":4,"schemas":[)", R"({"subject":")",
                             kLocation, R"(","dataset":"","version":2,"id":)", location_id,
                             R"(,"registered":true,"compatibility":"FULL_TRANSITIVE",)",
                             R"("compatibility_set":true},)", R"({"subject":")", kBikeCount,
                             R"(","dataset":"mobility.bike-counts","version":1,"id":)", bike_id,
                             R"(,"registered":true,"compatibility":"FULL_TRANSITIVE",)",
                             R"("compatibility_set":true}]})"))
                .dump());
}

TEST_F(FederationBootstrapTest, ASecondRunChangesNothing) {
  ASSERT_OK(Run().status());
  const int writes = registry_.writes();
  ASSERT_OK_AND_ASSIGN(BootstrapReport report, Run());
  EXPECT_EQ(registry_.writes(), writes);
  EXPECT_EQ(report.changes, 0);
  for (const SubjectOutcome& o : report.subjects) {
    EXPECT_FALSE(o.registered) << o.subject;
    EXPECT_FALSE(o.compatibility_set) << o.subject;
    EXPECT_EQ(o.previous_compatibility, "FULL_TRANSITIVE") << o.subject;
  }
  std::vector<std::string> lines = BootstrapLines(report);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr(": unchanged as version 1 (schema id "));
  EXPECT_THAT(lines[0], HasSubstr("; compatibility FULL_TRANSITIVE already set"));
  EXPECT_EQ(lines[2], "nothing to change: 2 standard schemas");
}

TEST_F(FederationBootstrapTest, AnotherLevelOnTheSubjectIsReplaced) {
  registry_.SetSubjectLevel(kBikeCount, "BACKWARD");
  ASSERT_OK_AND_ASSIGN(BootstrapReport report, Run(false, "FULL"));
  EXPECT_EQ(report.subjects[1].previous_compatibility, "BACKWARD");
  EXPECT_THAT(BootstrapLines(report)[1], HasSubstr("; compatibility FULL set (was BACKWARD)"));
  EXPECT_THAT(registry_.SubjectLevel(kBikeCount), Optional(std::string("FULL")));
}

TEST_F(FederationBootstrapTest, ADryRunOnlyReadsAndReportsWhatWouldChange) {
  ASSERT_OK_AND_ASSIGN(BootstrapReport report, Run(/*dry_run=*/true));
  EXPECT_EQ(registry_.writes(), 0);
  EXPECT_THAT(registry_.SubjectLevel(kLocation), std::nullopt);
  EXPECT_EQ(report.changes, 4);
  // The dataset's import would be registered first: there is no version to look it up with.
  EXPECT_THAT(registry_.calls(), ElementsAre(absl::StrCat("GetConfig ", kLocation),
                                             absl::StrCat("LookupSchema ", kLocation),
                                             absl::StrCat("CheckCompatibility ", kLocation),
                                             absl::StrCat("GetConfig ", kBikeCount)));
  EXPECT_THAT(
      BootstrapLines(report),
      ElementsAre(absl::StrCat(kLocation,
                               ": would be registered; compatibility FULL_TRANSITIVE would be "
                               "set (was the global default)"),
                  absl::StrCat(kBikeCount,
                               ": would be registered; compatibility FULL_TRANSITIVE would be "
                               "set (was the global default)"),
                  "4 change(s) to make: 2 standard schemas"));
  nlohmann::ordered_json json = BootstrapJson(report);
  EXPECT_EQ(json["dry_run"], true);
  EXPECT_EQ(json["schemas"][1]["registered"], true) << "a dry run reports what it would register";
  EXPECT_EQ(json["schemas"][1]["version"], 0);
}

TEST_F(FederationBootstrapTest, ADryRunAfterARealRunFindsNothingToChange) {
  ASSERT_OK(Run().status());
  const int writes = registry_.writes();
  ASSERT_OK_AND_ASSIGN(BootstrapReport report, Run(/*dry_run=*/true));
  EXPECT_EQ(report.changes, 0);
  EXPECT_EQ(registry_.writes(), writes);
  EXPECT_THAT(registry_.calls(), Not(Contains(HasSubstr("CheckCompatibility"))));
}

TEST_F(FederationBootstrapTest, ADryRunNamesASchemaTheRegistryWouldRefuse) {
  registry_.AddVersion(kLocation, "syntax = \"proto3\";\nmessage Location { string lat = 1; }\n");
  registry_.Refuse(kLocation, {"field lat changed type", "FULL_TRANSITIVE"});
  EXPECT_THAT(
      Run(/*dry_run=*/true),
      StatusIs(
          absl::StatusCode::kFailedPrecondition,
          absl::StrCat(kLocation, ": would be refused: field lat changed type; FULL_TRANSITIVE")));
  EXPECT_EQ(registry_.writes(), 0);
}

TEST(FederationBootstrapErrorTest, EachRegistryErrorNamesTheSubjectAndTheStep) {
  struct Case {
    const char* method;
    const char* subject;
    bool dry_run;
    grpc::StatusCode code;
    absl::StatusCode want;
    const char* step;
  };
  for (const Case& c : {
           Case{"GetConfig", kLocation, false, grpc::StatusCode::UNAVAILABLE,
                absl::StatusCode::kUnavailable, "reading its compatibility"},
           Case{"SetConfig", kLocation, false, grpc::StatusCode::PERMISSION_DENIED,
                absl::StatusCode::kPermissionDenied, "setting its compatibility"},
           Case{"LookupSchema", kBikeCount, false, grpc::StatusCode::INTERNAL,
                absl::StatusCode::kInternal, "looking it up"},
           Case{"RegisterSchema", kBikeCount, false, grpc::StatusCode::INVALID_ARGUMENT,
                absl::StatusCode::kInvalidArgument, "registering it"},
           Case{"CheckCompatibility", kLocation, true, grpc::StatusCode::DEADLINE_EXCEEDED,
                absl::StatusCode::kDeadlineExceeded, "checking it"},
       }) {
    FakeRegistry registry;
    LoopbackServer server(&registry);
    RegistryClient client(server.Channel(), absl::Seconds(30));
    registry.FailOn(c.method, c.subject, grpc::Status(c.code, "injected"));
    EXPECT_THAT(BootstrapSchemas(Schemas(), {"FULL_TRANSITIVE", c.dry_run}, client),
                StatusIs(c.want, absl::StrCat(c.subject, ": ", c.step, ": injected")))
        << c.method;
    if (std::string(c.subject) == kBikeCount) {
      EXPECT_EQ(registry.Versions(kLocation).size(), 1u)
          << c.method << ": the schemas before the failing one stay registered";
    }
  }
}

TEST_F(FederationBootstrapTest, TheStandardSchemasOfThisBuildRegisterAndStayRegistered) {
  ASSERT_OK_AND_ASSIGN(std::vector<datasets::StandardSchema> schemas, datasets::StandardSchemas());
  ASSERT_FALSE(schemas.empty());
  ASSERT_OK_AND_ASSIGN(BootstrapReport first,
                       BootstrapSchemas(schemas, {"FULL_TRANSITIVE", false}, client_));
  EXPECT_EQ(first.changes, 2 * static_cast<int>(schemas.size()));
  for (const datasets::StandardSchema& s : schemas) {
    EXPECT_EQ(registry_.Versions(s.subject).size(), 1u) << s.subject;
  }
  ASSERT_OK_AND_ASSIGN(BootstrapReport second,
                       BootstrapSchemas(schemas, {"FULL_TRANSITIVE", false}, client_));
  EXPECT_EQ(second.changes, 0);
  EXPECT_EQ(BootstrapLines(second).back(),
            absl::StrCat("nothing to change: ", schemas.size(), " standard schemas"));
}

}  // namespace
}  // namespace polderctl
}  // namespace polder
