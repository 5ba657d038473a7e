// Every city's stream of every standard dataset validates against the registered schema (the
// node's validator), keeps its entity ids, is deterministic, and follows its daily rhythm.
#include "tools/generator/generator.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/polder/datasets/standard_parsed.h"
#include "proto/polder/datasets/standard_sources.h"
#include "services/node/ingest/validator.h"

namespace polder {
namespace generator {
namespace {

using nlohmann::json;

// 2026-11-17 is a Tuesday; 2026-11-21 a Saturday. Local time is UTC+1 in November.
absl::Time Utc(int day, int hour, int minute = 0) {
  return absl::FromCivil(absl::CivilSecond(2026, 11, day, hour, minute, 0), absl::UTCTimeZone());
}

class GeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto parsed = datasets::ParseStandardSchemas();
    ASSERT_OK(parsed.status());
    parsed_ = *parsed;
    ASSERT_OK_AND_ASSIGN(standard_, datasets::StandardSchemas());
  }

  node::IngestTarget Target(const std::string& dataset) {
    for (const datasets::StandardSchema& s : standard_) {
      if (s.dataset_id != dataset) continue;
      node::IngestTarget t;
      t.peer_id = "test";
      t.dataset_id = dataset;
      t.topic = "test." + dataset;
      t.schema_id = 1;
      t.schema = parsed_[s.subject];
      t.layout =
          *schema::RecordLayoutOf(t.schema->file()->pool()->FindMessageTypeByName(s.subject));
      t.message_indexes = *t.schema->IndexesOf(s.subject);
      return t;
    }
    ADD_FAILURE() << "no dataset " << dataset;
    return {};
  }

  // Sum of a numeric JSON field over one interval's records.
  double Sum(const std::string& city, const std::string& dataset, absl::Time t,
             const std::string& field) {
    double sum = 0;
    absl::StatusOr<std::vector<GeneratedRecord>> records = Generate(city, dataset, t, 7);
    EXPECT_OK(records.status());
    for (const GeneratedRecord& r : *records) {
      json j = json::parse(r.json);
      const json& v = j[field];
      sum += v.is_string()    ? std::stod(v.get<std::string>())
             : v.is_boolean() ? (v.get<bool>() ? 1.0 : 0.0)
                              : v.get<double>();
    }
    return sum;
  }

  std::map<std::string, std::shared_ptr<const schema::ParsedSchema>> parsed_;
  std::vector<datasets::StandardSchema> standard_;
};

TEST_F(GeneratorTest, EveryCityAndDatasetValidatesAgainstItsSchemaWithStableIds) {
  ASSERT_EQ(Cities().size(), 4u);
  ASSERT_EQ(DatasetIds().size(), 7u);
  for (const City& city : Cities()) {
    for (const std::string& dataset : DatasetIds()) {
      SCOPED_TRACE(absl::StrCat(city.peer_id, " ", dataset));
      node::IngestTarget target = Target(dataset);
      ASSERT_OK_AND_ASSIGN(std::vector<std::string> ids, EntityIds(city.peer_id, dataset));
      for (int step = 0; step < 7 * 24; step += 5) {  // a week, every 5 hours
        const absl::Time t = Utc(17, 0) + absl::Hours(step) + absl::Minutes(7);
        ASSERT_OK_AND_ASSIGN(std::vector<GeneratedRecord> records,
                             Generate(city.peer_id, dataset, t, 7));
        ASSERT_FALSE(records.empty());
        std::vector<node::IncomingRecord> in;
        std::set<std::string> seen;
        for (const GeneratedRecord& r : records) {
          EXPECT_LE(r.event_time, t);
          EXPECT_GT(r.event_time, t - Interval(dataset));
          in.push_back({node::IncomingRecord::Format::kJson, r.json, ""});
          seen.insert(r.entity_id);
        }
        EXPECT_EQ(seen, std::set<std::string>(ids.begin(), ids.end()));
        node::IngestLimits limits;
        absl::StatusOr<std::vector<kafka::ProducerRecord>> ok =
            node::BatchValidator(limits).Validate(target, in, t + absl::Minutes(1), "");
        ASSERT_OK(ok.status()) << records[0].json;
        EXPECT_EQ((*ok)[0].key, records[0].entity_id);
      }
      // Deterministic.
      EXPECT_EQ((*Generate(city.peer_id, dataset, Utc(18, 9), 7))[0].json,
                (*Generate(city.peer_id, dataset, Utc(18, 9), 7))[0].json);
    }
  }
  EXPECT_THAT(Generate("utrecht", "mobility.bike-counts", Utc(17, 8), 7),
              polder::testing::StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(GeneratorTest, DailyAndWeeklyRhythms) {
  // Tuesday: the 08:00 (local) commuter peak over 03:00.
  EXPECT_GT(Sum("groningen", "mobility.bike-counts", Utc(17, 7, 15), "count"),
            4 * Sum("groningen", "mobility.bike-counts", Utc(17, 2, 15), "count"));
  // Parking fuller at 13:30 than at 04:00; footfall on Saturday afternoon over Tuesday night.
  EXPECT_GT(Sum("amersfoort", "parking.occupancy", Utc(17, 12, 30), "occupancyPercent"),
            2 * Sum("amersfoort", "parking.occupancy", Utc(17, 3, 0), "occupancyPercent"));
  EXPECT_GT(Sum("enschede", "economy.footfall", Utc(21, 13, 15), "count"),
            10 * Sum("enschede", "economy.footfall", Utc(17, 22, 15), "count"));
  // Street lights on at 23:00 local, off at 13:00; shuttles stopped at night.
  EXPECT_EQ(Sum("amersfoort", "energy.streetlights", Utc(17, 22, 0), "powerOn"), 24);
  EXPECT_EQ(Sum("amersfoort", "energy.streetlights", Utc(17, 12, 0), "powerOn"), 0);
  EXPECT_EQ(Sum("ede-wageningen", "mobility.shuttle-telemetry", Utc(17, 2, 0), "speedKmh"), 0);
  EXPECT_GT(Sum("ede-wageningen", "mobility.shuttle-telemetry", Utc(17, 9, 3), "speedKmh") +
                Sum("ede-wageningen", "mobility.shuttle-telemetry", Utc(17, 9, 8), "speedKmh"),
            0);
  // Energy meters only count up.
  EXPECT_GT(Sum("amersfoort", "energy.streetlights", Utc(18, 12, 0), "energyImportKwh"),
            Sum("amersfoort", "energy.streetlights", Utc(17, 12, 0), "energyImportKwh"));
}

}  // namespace
}  // namespace generator
}  // namespace polder
