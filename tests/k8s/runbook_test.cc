// The runbook (k8s/README.md) as written: every shell block marked `<!-- runbook: NAME
// (verified) -->` runs here unchanged, with polderctl, buf and a real registry (on a real broker)
// — the federation's trust, a city joining with an aggregate-only contract for the national
// dashboard, and the registry's backup and restore into an empty registry (same ids, versions,
// settings). A block that fails, or a marked block this test does not run, fails the test.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/testing/commands.h"
#include "tests/registry/registry_fixture.h"

namespace polder {
namespace {

using namespace registry_testing;  // NOLINT: the fixture and its helpers
namespace fs = std::filesystem;

constexpr char kBikes[] =
    "syntax = \"proto3\";\npackage polder.datasets.mobility.v1;\nmessage BikeCount {\n"
    "  string counter_id = 1;\n  int64 count = 2;\n}\n";

std::string Runbook() {
  std::ifstream in(RunfilesPath("k8s/README.md"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The names of the blocks marked verified, in order.
std::vector<std::string> VerifiedBlocks() {
  std::vector<std::string> out;
  const std::string text = Runbook();
  std::regex marker("<!-- runbook: ([a-z-]+) \\(verified\\) -->");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), marker);
       it != std::sregex_iterator(); ++it) {
    out.push_back((*it)[1]);
  }
  return out;
}

// The ```sh block after the marker of `name`.
std::string Block(const std::string& name) {
  const std::string text = Runbook();
  const size_t at = text.find(absl::StrCat("<!-- runbook: ", name, " (verified) -->"));
  EXPECT_NE(at, std::string::npos) << name;
  if (at == std::string::npos) return "";
  const size_t open = text.find("```sh\n", at);
  const size_t close = text.find("\n```", open + 6);
  EXPECT_NE(open, std::string::npos);
  EXPECT_NE(close, std::string::npos);
  return text.substr(open + 6, close - open - 6 + 1);
}

std::set<std::string>& Ran() {
  static std::set<std::string> ran;
  return ran;
}

// Runs block `name` in `dir` with bash -euo pipefail and `env` ("K=V K=V"); its output.
std::string RunBlock(const std::string& name, const std::string& dir, const std::string& env) {
  const std::string script = absl::StrCat(dir, "/", name, ".sh");
  std::ofstream(script) << Block(name);
  std::string out;
  const int rc = testing::RunCommand(
      absl::StrCat("cd ", dir, " && env ", env, " bash -euo pipefail ", script, " 2>&1"), &out);
  EXPECT_EQ(rc, 0) << "runbook block " << name << " failed:\n" << out;
  Ran().insert(name);
  return out;
}

std::string Path() {
  return absl::StrCat(
      "PATH=", fs::path(RunfilesPath("tools/polderctl/polderctl")).parent_path().string(), ":",
      testing::NpmHome(), "/node_modules/.bin:/usr/bin:/bin");
}

class RunbookTest : public RegistryE2eTest {};

TEST_F(RunbookTest, TheFederationsTrustAndACityJoiningAsWritten) {
  const std::string work = dir_ + "/operator";
  fs::create_directories(work);
  // VIEW_HASH, as the runbook says: the view's definition from the city's rendered configuration.
  const std::string config = work + "/groningen-node.yaml";
  std::string out;
  ASSERT_EQ(
      testing::RunCommand(
          absl::StrCat(
              std::getenv("POLDER_GO_TOOLS"), "/helm template groningen ",
              RunfilesPath("k8s/charts/polder-node"), " -f ",
              RunfilesPath("k8s/values/groningen/polder-node.yaml"), " | ", testing::PipHome(),
              "/bin/python -c 'import sys, yaml\n"
              "for d in yaml.safe_load_all(sys.stdin):\n"
              "    if d and d[\"kind\"] == \"ConfigMap\": print(d[\"data\"][\"node.yaml\"])' > ",
              config, " 2>&1"),
          &out),
      0)
      << out;
  ASSERT_EQ(testing::RunCommand(absl::StrCat(RunfilesPath("services/node/polder-node"),
                                             " --config ", config, " --print_view_definitions"),
                                &out),
            0)
      << out;
  std::string hash;
  for (const json& v : json::parse(out)) {
    if (v["view"] == "quarter-municipality") hash = v["definition_hash"];
  }
  ASSERT_EQ(hash.size(), 64u) << out;

  RunBlock("operator-trust", work, Path());
  RunBlock("join-city", work, absl::StrCat(Path(), " VIEW_HASH=", hash));

  // What the blocks made: a directory signed by the operator listing the three peers, each with
  // the files the charts' Secrets are made from, and a contract both parties signed.
  json directory = json::parse(std::ifstream(work + "/directory.json"), nullptr, false);
  ASSERT_TRUE(directory.is_object());
  std::set<std::string> peers;
  for (const json& p : directory.value("directory", json::object()).value("peers", json::array()))
    peers.insert(p.value("id", ""));
  EXPECT_EQ(peers, (std::set<std::string>{"registry", "national", "groningen"}))
      << directory.dump();
  for (const char* peer : {"registry", "national", "groningen"}) {
    for (const char* f : {"tls/cert.pem", "tls/key.pem", "tls/bundle.pem", "signing.key"}) {
      EXPECT_TRUE(fs::exists(absl::StrCat(work, "/", peer, "/", f))) << peer << "/" << f;
    }
  }
  json contract =
      json::parse(std::ifstream(work + "/gr-na-quarter-municipality.json"), nullptr, false);
  ASSERT_TRUE(contract.is_object());
  EXPECT_NE(contract.dump().find(hash), std::string::npos) << "the view's hash is in the contract";
  // The checks can fail: a contract signed by one party only does not verify.
  ASSERT_EQ(testing::RunCommand(
                absl::StrCat("cd ", work, " && ", Path(), " polderctl contract propose --id x ",
                             "--federation nl-smartcity --provider groningen --consumer national ",
                             "--dataset mobility.bike-counts --schema-versions 1 --purpose p ",
                             "--out x.json && ", Path(), " polderctl contract sign --file x.json ",
                             "--peer groningen --key groningen/signing.key 2>&1"),
                &out),
            0)
      << out;
  EXPECT_NE(testing::RunCommand(absl::StrCat("cd ", work, " && ", Path(),
                                             " polderctl contract verify --file x.json "
                                             "--directory directory.json --operator-key "
                                             "operator.key.pub 2>&1"),
                                &out),
            0)
      << out;
}

TEST_F(RunbookTest, TheRegistrysBackupAndRestoreAsWritten) {
  auto a = Start("reg-a");
  auto rest = Rest(*a, "national");
  int st = 0;
  Post(*rest, "/subjects/polder.datasets.mobility.v1.BikeCount/versions", Proto(kBikes), &st);
  ASSERT_EQ(st, 200);
  Post(*rest, "/subjects/polder.datasets.parking.v1.Garage/versions",
       Proto("syntax = \"proto3\"; package polder.datasets.parking.v1; message Garage { string id "
             "= 1; }"),
       &st);
  ASSERT_EQ(st, 200);
  auto put = rest->Put("/config/polder.datasets.parking.v1.Garage",
                       json{{"compatibility", "FULL_TRANSITIVE"}}.dump(),
                       "application/vnd.schemaregistry.v1+json");
  ASSERT_TRUE(put && put->status == 200);
  // The runbook's paths: the operator's identity as national/tls/*.pem.
  const std::string work = dir_ + "/backup";
  fs::create_directories(work + "/national/tls");
  const tls::TlsFiles& f = files_["national"];
  fs::create_symlink(f.cert_path, work + "/national/tls/cert.pem");
  fs::create_symlink(f.key_path, work + "/national/tls/key.pem");
  fs::create_symlink(fed_->bundle_path(), work + "/national/tls/bundle.pem");

  RunBlock("registry-backup", work, absl::StrCat(Path(), " REGISTRY=localhost:", a->grpc_port()));
  json backup = json::parse(std::ifstream(work + "/registry-backup.json"), nullptr, false);
  ASSERT_TRUE(backup.is_object());
  ASSERT_EQ(backup["versions"].size(), 2u) << backup.dump();

  // An empty registry (its own topic), restored by the runbook's block.
  auto b = Start("reg-b", "reg-b", "", "_polder.schemas-restored");
  RunBlock("registry-restore", work, absl::StrCat(Path(), " REGISTRY=localhost:", b->grpc_port()));
  auto export_of = [&](const RegistryProcess& r) {
    grpc::ClientContext ctx;
    v1::RegistryExport e;
    EXPECT_TRUE(Grpc(r, "national")->Export(&ctx, v1::ExportRequest(), &e).ok());
    return e;
  };
  const v1::RegistryExport before = export_of(*a), after = export_of(*b);
  ASSERT_EQ(after.versions_size(), before.versions_size());
  for (int i = 0; i < before.versions_size(); ++i) {
    EXPECT_EQ(after.versions(i).subject(), before.versions(i).subject());
    EXPECT_EQ(after.versions(i).version(), before.versions(i).version());
    EXPECT_EQ(after.versions(i).id(), before.versions(i).id());
  }
  EXPECT_EQ(after.subject_compatibility().at("polder.datasets.parking.v1.Garage"),
            "FULL_TRANSITIVE");
  EXPECT_EQ(after.next_id(), before.next_id());
  // Back in READWRITE: a new schema registers with the next id.
  auto rest_b = Rest(*b, "national");
  json r = Post(*rest_b, "/subjects/polder.datasets.parking.v1.Spot/versions",
                Proto("syntax = \"proto3\"; package polder.datasets.parking.v1; message Spot { "
                      "string id = 1; }"),
                &st);
  EXPECT_EQ(st, 200) << r.dump();
}

// Every block the runbook marks verified ran (this test runs last: gtest keeps file order).
TEST_F(RunbookTest, EveryVerifiedBlockRan) {
  const std::vector<std::string> blocks = VerifiedBlocks();
  EXPECT_GE(blocks.size(), 4u);
  for (const std::string& name : blocks) {
    EXPECT_TRUE(Ran().count(name))
        << "the runbook marks '" << name << "' verified, and no test runs it";
  }
}

}  // namespace
}  // namespace polder
