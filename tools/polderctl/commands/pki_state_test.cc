// ParsePkiState on pki.json as written and as it may be found (edited, truncated, of another
// shape): errors name the member, nothing throws; PkiStateText writes it back.
#include "tools/polderctl/commands/pki_state.h"

#include <string>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace polderctl {
namespace {

using ::polder::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(PkiStateTest, ReadsWhatPkiInitAndRevokeWrite) {
  ASSERT_OK_AND_ASSIGN(PkiState state, ParsePkiState(nlohmann::json::parse(
                                           R"({"crl_number": 3, "federation": "nl-smartcity",
                               "revoked": ["0A1B", "2C3D"]})")));
  EXPECT_EQ(state.federation, "nl-smartcity");
  EXPECT_EQ(state.crl_number, 3);
  EXPECT_THAT(state.revoked, ElementsAre("0A1B", "2C3D"));
}

TEST(PkiStateTest, TextIsTheDocumentWithTheMembersSet) {
  PkiState fresh;
  fresh.federation = "nl-smartcity";
  EXPECT_EQ(PkiStateText(fresh),
            "{\n  \"crl_number\": 1,\n  \"federation\": \"nl-smartcity\",\n  \"revoked\": []\n}\n");
  ASSERT_OK_AND_ASSIGN(
      PkiState state,
      ParsePkiState(nlohmann::json::parse(
          R"({"crl_number": 1, "federation": "x", "revoked": [], "note": "kept"})")));
  state.revoked.push_back("0A1B");
  ++state.crl_number;
  nlohmann::json written = nlohmann::json::parse(PkiStateText(state));
  EXPECT_EQ(written["crl_number"], 2);
  EXPECT_EQ(written["revoked"], nlohmann::json::array({"0A1B"}));
  EXPECT_EQ(written["note"], "kept");
}

TEST(PkiStateTest, RefusesEveryOtherShapeWithoutThrowing) {
  struct Case {
    const char* json;
    const char* member;
  };
  for (const Case& c : {
           Case{"[]", "not a JSON object"},
           Case{"null", "not a JSON object"},
           Case{R"({"crl_number": 1, "revoked": []})", "\"federation\""},
           Case{R"({"federation": 7, "crl_number": 1, "revoked": []})", "\"federation\""},
           Case{R"({"federation": "x", "revoked": []})", "\"crl_number\""},
           Case{R"({"federation": "x", "crl_number": "1", "revoked": []})", "\"crl_number\""},
           Case{R"({"federation": "x", "crl_number": 1.5, "revoked": []})", "\"crl_number\""},
           Case{R"({"federation": "x", "crl_number": 18446744073709551615, "revoked": []})",
                "\"crl_number\""},
           Case{R"({"federation": "x", "crl_number": 1})", "\"revoked\""},
           Case{R"({"federation": "x", "crl_number": 1, "revoked": "0A"})", "\"revoked\""},
           Case{R"({"federation": "x", "crl_number": 1, "revoked": ["0A", 1]})", "\"revoked\""},
       }) {
    EXPECT_THAT(ParsePkiState(nlohmann::json::parse(c.json)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.member)))
        << c.json;
  }
}

}  // namespace
}  // namespace polderctl
}  // namespace polder
