#include "services/aggregator/national_config.h"

#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace aggregator {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kHash[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

absl::StatusOr<std::vector<NationalViewSpec>> Read(const std::string& text) {
  absl::StatusOr<config::Document> doc = config::Document::FromString(text, "a.yaml");
  if (!doc.ok()) return doc.status();
  std::vector<NationalViewSpec> views;
  config::ObjectReader root = doc->root();
  ReadNationalSection(root, &views);
  return doc->Finish(views);
}

std::string Valid() {
  return absl::StrReplaceAll(R"(national:
  deadline: 20m
  views:
    - dataset: mobility.bike-counts
      view: quarter-municipality
      definition_hashes: [HASH]
      cities: [groningen, amersfoort]
      grace: 2m
    - dataset: mobility.bike-counts
      view: hour-municipality
      definition_hashes: [HASH]
      cities: [groningen]
      deadline: 1h
)",
                             {{"HASH", kHash}});
}

TEST(NationalConfigTest, ReadsViewsWithTheirDefaults) {
  ASSERT_OK_AND_ASSIGN(std::vector<NationalViewSpec> views, Read(Valid()));
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[0].dataset, "mobility.bike-counts");
  EXPECT_EQ(views[0].view, "quarter-municipality");
  EXPECT_THAT(views[0].cities, ::testing::ElementsAre("amersfoort", "groningen"));
  EXPECT_EQ(views[0].definition_hashes.count(kHash), 1u);
  EXPECT_EQ(views[0].grace, absl::Minutes(2));
  EXPECT_EQ(views[0].deadline, absl::Minutes(20)) << "the section's deadline";
  EXPECT_EQ(views[0].revision_horizon, absl::Hours(24 * 7));
  EXPECT_EQ(views[1].grace, absl::Minutes(5));
  EXPECT_EQ(views[1].deadline, absl::Hours(1)) << "its own";
}

TEST(NationalConfigTest, MistakesAreNamedWithTheirKey) {
  struct Case {
    std::string from, to, says;
  };
  const std::vector<Case> cases = {
      {"mobility.bike-counts\n      view: quarter", "bikes\n      view: quarter",
       "national.views[0].dataset"},
      {"view: quarter-municipality", "view: Quarter", "national.views[0].view"},
      {std::string("[") + kHash + "]\n      cities: [groningen, amersfoort]",
       "[abc]\n      cities: [groningen, amersfoort]", "not a definition hash"},
      {"cities: [groningen, amersfoort]", "cities: [groningen, groningen]", "listed twice"},
      {"cities: [groningen, amersfoort]", "cities: [Groningen]", "not a peer id"},
      {"cities: [groningen, amersfoort]", "cities: []", "list the cities"},
      {"grace: 2m", "grace: -1m", "national.views[0].grace"},
      {"deadline: 20m", "deadline: 25h", "national.deadline"},
      {"deadline: 20m", "revision_horizon: 10m", "national.revision_horizon"},
      {"view: hour-municipality", "view: quarter-municipality", "configured twice"},
      {"grace: 2m", "graze: 2m", "graze"},
  };
  for (const Case& c : cases) {
    const std::string text = absl::StrReplaceAll(Valid(), {{c.from, c.to}});
    ASSERT_NE(text, Valid()) << c.from;
    EXPECT_THAT(Read(text), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.says)))
        << c.to;
  }
  EXPECT_THAT(Read("other: 1\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("national")));
  EXPECT_THAT(Read("national:\n  views: []\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least one")));
}

}  // namespace
}  // namespace aggregator
}  // namespace polder
