// `polderctl federation bootstrap` against a polder-registry process (real Kafka, mTLS): the
// standard datasets are registered under FULL_TRANSITIVE, a second run writes nothing, and every
// dataset then evolves once compatibly and once incompatibly through gRPC and through REST.
#include <regex>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "proto/polder/datasets/common/v1/options.pb.h"
#include "proto/polder/datasets/standard_sources.h"
#include "tests/registry/registry_fixture.h"

namespace polder {
namespace {

using namespace registry_testing;  // NOLINT: the fixture and its helpers
using ::testing::HasSubstr;
namespace pb = ::google::protobuf;

class DatasetsBootstrapTest : public RegistryE2eTest {
 protected:
  // Records in the registry's topic (uncommitted ones too: a write is a write).
  size_t TopicRecords() { return ReadRecords(topic_, 1, 1 << 20, absl::Seconds(3), false).size(); }
};

// The dataset message's source with `field` inserted as its first member.
std::string AddField(const std::string& source, const std::string& message,
                     const std::string& field) {
  std::string opening = absl::StrCat("message ", message, " {\n");
  size_t at = source.find(opening);
  EXPECT_NE(at, std::string::npos) << opening;
  std::string out = source;
  out.insert(at + opening.size(), absl::StrCat("  ", field, "\n"));
  return out;
}

// The source with the entity-id field retyped from string to int64.
std::string RetypeEntityId(const std::string& source, const pb::Descriptor* d, std::string* where) {
  const pb::FieldDescriptor* id = nullptr;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->options().GetExtension(datasets::common::v1::entity_id)) id = d->field(i);
  }
  EXPECT_NE(id, nullptr) << d->full_name() << " has no entity id";
  if (id == nullptr) return source;
  EXPECT_EQ(id->type(), pb::FieldDescriptor::TYPE_STRING) << d->full_name();
  *where = absl::StrCat(d->full_name(), ".", id->name(), " (", id->number(), ")");
  std::regex field(absl::StrCat("\\bstring(\\s+", id->name(), "\\s*=\\s*", id->number(), "\\b)"));
  std::string out =
      std::regex_replace(source, field, "int64$1", std::regex_constants::format_first_only);
  EXPECT_NE(out, source) << "no `string " << id->name() << " = " << id->number()
                         << "` in the source";
  return out;
}

TEST_F(DatasetsBootstrapTest, BootstrapIsIdempotentAndEveryDatasetEvolvesUnderFullTransitive) {
  auto reg = Start("reg-a");
  ASSERT_OK_AND_ASSIGN(std::vector<datasets::StandardSchema> schemas, datasets::StandardSchemas());

  // A dry run on the empty registry (its topic holds only the primary's record) changes nothing
  // and says what it would do.
  const size_t initial = TopicRecords();
  json dry = Bootstrap(*reg, "--dry-run");
  ASSERT_TRUE(dry.is_object()) << dry;
  EXPECT_EQ(dry["changes"], 2 * schemas.size());
  EXPECT_EQ(TopicRecords(), initial) << "a dry run wrote to the registry";

  json first = Bootstrap(*reg);
  ASSERT_TRUE(first.is_object()) << first;
  EXPECT_EQ(first["changes"], 2 * schemas.size()) << first.dump(2);
  ASSERT_EQ(first["schemas"].size(), schemas.size());
  for (const json& s : first["schemas"]) {
    EXPECT_EQ(s["registered"], true) << s;
    EXPECT_EQ(s["version"], 1) << s;
    EXPECT_EQ(s["compatibility_set"], true) << s;
  }
  const size_t records = TopicRecords();
  EXPECT_GE(records, initial + 2 * schemas.size())
      << "at least a config and a schema record per subject";

  json second = Bootstrap(*reg);
  ASSERT_TRUE(second.is_object()) << second;
  EXPECT_EQ(second["changes"], 0) << second.dump(2);
  for (size_t i = 0; i < schemas.size(); ++i) {
    EXPECT_EQ(second["schemas"][i]["registered"], false) << second["schemas"][i];
    EXPECT_EQ(second["schemas"][i]["id"], first["schemas"][i]["id"]) << "same schema, same id";
  }
  EXPECT_EQ(TopicRecords(), records) << "the second bootstrap wrote to the registry";

  auto grpc = Grpc(*reg, "national");
  auto rest = Rest(*reg, "national");
  int evolved = 0;
  for (const datasets::StandardSchema& s : schemas) {
    if (s.dataset_id.empty()) continue;
    SCOPED_TRACE(s.subject);
    const pb::Descriptor* d =
        pb::DescriptorPool::generated_pool()->FindMessageTypeByName(s.subject);
    ASSERT_NE(d, nullptr);
    int st = 0;
    json level = Get(*rest, absl::StrCat("/config/", s.subject), &st);
    EXPECT_EQ(level["compatibilityLevel"], "FULL_TRANSITIVE") << level;
    json refs = json::array();
    for (const std::string& import : s.imports)
      refs.push_back({{"name", import}, {"subject", import}, {"version", 1}});
    auto grpc_request = [&](const std::string& source) {
      v1::RegisterSchemaRequest req;
      req.set_subject(s.subject);
      req.set_schema(source);
      req.set_schema_type("PROTOBUF");
      for (const std::string& import : s.imports) {
        auto* r = req.add_references();
        r->set_name(import);
        r->set_subject(import);
        r->set_version(1);
      }
      return req;
    };

    // gRPC, compatible: a new field, readable both ways (older readers skip it).
    const std::string v2 = AddField(s.source, d->name(), "string evolution_note = 1901;");
    {
      grpc::ClientContext ctx;
      v1::RegisterSchemaResponse resp;
      grpc::Status status = grpc->RegisterSchema(&ctx, grpc_request(v2), &resp);
      ASSERT_TRUE(status.ok()) << status.error_message();
      EXPECT_EQ(resp.version(), 2);
      EXPECT_TRUE(resp.created());
    }
    // gRPC, incompatible: the entity id changes type.
    std::string where;
    const std::string retyped = RetypeEntityId(v2, d, &where);
    {
      grpc::ClientContext ctx;
      v1::RegisterSchemaResponse resp;
      grpc::Status status = grpc->RegisterSchema(&ctx, grpc_request(retyped), &resp);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
          << status.error_message();
      EXPECT_THAT(
          status.error_message(),
          HasSubstr(absl::StrCat("field ", where, " changed type between string and int64")));
    }

    // REST, compatible: another field, checked (verbose) and then registered as version 3.
    const std::string v3 = AddField(v2, d->name(), "int32 evolution_level = 1902;");
    json body = {{"schemaType", "PROTOBUF"}, {"schema", v3}, {"references", refs}};
    const std::string subject_path = absl::StrCat("/subjects/", s.subject, "/versions");
    json check = Post(*rest, absl::StrCat("/compatibility", subject_path, "/latest?verbose=true"),
                      body, &st);
    EXPECT_EQ(st, 200) << check;
    EXPECT_EQ(check["is_compatible"], true) << check;
    json created = Post(*rest, subject_path, body, &st);
    EXPECT_EQ(st, 200) << created;
    EXPECT_TRUE(created.contains("id")) << created;
    EXPECT_EQ(Get(*rest, subject_path, &st), json::array({1, 2, 3}));

    // REST, incompatible: the field added over gRPC is deleted without reserving it.
    const std::string dropped =
        std::regex_replace(v3, std::regex("  string evolution_note = 1901;\n"), "");
    ASSERT_NE(dropped, v3);
    json dropped_body = {{"schemaType", "PROTOBUF"}, {"schema", dropped}, {"references", refs}};
    json verdict = Post(*rest, absl::StrCat("/compatibility", subject_path, "/latest?verbose=true"),
                        dropped_body, &st);
    EXPECT_EQ(st, 200) << verdict;
    EXPECT_EQ(verdict["is_compatible"], false) << verdict;
    EXPECT_THAT(
        verdict.dump(),
        HasSubstr("evolution_note (1901) was deleted without reserving its number and name"));
    json refused = Post(*rest, subject_path, dropped_body, &st);
    EXPECT_EQ(st, 409) << refused;
    EXPECT_EQ(refused["error_code"], 409) << refused;
    EXPECT_THAT(
        Msg(refused),
        HasSubstr("evolution_note (1901) was deleted without reserving its number and name"));
    EXPECT_EQ(Get(*rest, subject_path, &st), json::array({1, 2, 3}))
        << "nothing stored for a refused schema";
    ++evolved;
  }
  EXPECT_EQ(evolved, 7);

  // Bootstrapping again after the evolution: this build's schemas are older versions now, found
  // under their subjects; nothing is written.
  const size_t after_evolution = TopicRecords();
  json third = Bootstrap(*reg);
  EXPECT_EQ(third["changes"], 0) << third.dump(2);
  EXPECT_EQ(TopicRecords(), after_evolution);
}

}  // namespace
}  // namespace polder
