// The aggregator's feed-quality series: freshness per city and dataset, and entities reporting
// only while a value is published — a window the city withheld removes the series (never a
// stale number, never 0).
#include "services/aggregator/aggregator_metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace aggregator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(AggregatorMetricsTest, EntitiesReportingIsShownWhilePublishedAndRemovedWhenWithheld) {
  AggregatorMetrics metrics;
  const char* kSeries =
      "polder_aggregator_city_entities_reporting{city=\"ede\",dataset=\"mobility.bike-counts\","
      "window=\"hour\"} 27";
  nlohmann::json q = {{"freshness_seconds", 12.5},
                      {"entities_hour", {{"value", 27.0}, {"withheld", false}}},
                      {"entities_day", nullptr}};
  metrics.SetFeedQuality({{"ede/mobility.bike-counts", q}});
  std::string text = metrics.Serialize();
  EXPECT_THAT(text, HasSubstr(kSeries));
  EXPECT_THAT(text, HasSubstr("polder_aggregator_city_freshness_seconds{city=\"ede\","
                              "dataset=\"mobility.bike-counts\"} 12.5"));
  EXPECT_THAT(text, Not(HasSubstr("window=\"day\""))) << "no day closed yet";

  q["entities_hour"] = {{"value", nullptr}, {"withheld", true}};
  metrics.SetFeedQuality({{"ede/mobility.bike-counts", q}});
  text = metrics.Serialize();
  EXPECT_THAT(text, Not(HasSubstr("polder_aggregator_city_entities_reporting{city=\"ede\"")))
      << "withheld: the series is gone";
  EXPECT_THAT(text, HasSubstr("polder_aggregator_city_freshness_seconds{city=\"ede\""));
}

}  // namespace
}  // namespace aggregator
}  // namespace polder
