// polder-aggregator's configuration: a full file read with its defaults, and each mistake named
// with its key.
#include "services/aggregator/aggregator_config.h"

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

constexpr char kValid[] = R"(aggregator:
  id: nl
  federation: nl-smartcity
  state_dir: /var/lib/polder-aggregator
  api_address: 0.0.0.0:8444
  ops_address: 127.0.0.1:9467
registry:
  address: registry.nl-smartcity.example:7443
kafka:
  bootstrap_servers: kafka-national:9092
  replication_factor: 3
tls:
  cert_file: /etc/polder/aggregator.pem
  key_file: /etc/polder/aggregator.key
  trust_bundle_file: /etc/polder/federation-ca.pem
  crl_dir: /etc/polder/crl
trust:
  federation: nl-smartcity
  directory_file: /etc/polder/directory.json
  directory_state: /var/lib/polder-aggregator/directory-state.json
  operator_keys:
    - public_key_file: /etc/polder/operator.pub
national:
  deadline: 15m
  views:
    - dataset: mobility.bike-counts
      view: quarter-municipality
      definition_hashes: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]
      cities: [groningen, amersfoort, enschede]
)";

TEST(AggregatorConfigTest, ReadsAFullFileWithItsDefaults) {
  ASSERT_OK_AND_ASSIGN(AggregatorConfig c, ParseAggregatorConfig(kValid, "a.yaml"));
  EXPECT_EQ(c.id, "nl");
  EXPECT_EQ(c.api_client_auth, "none") << "public and read-only by default";
  EXPECT_EQ(c.registry_peer, "registry");
  EXPECT_EQ(c.commit_interval, absl::Seconds(1));
  EXPECT_EQ(c.feed_quality_interval, absl::Seconds(5));
  EXPECT_EQ(c.api_max_connections_per_source, 64);
  EXPECT_EQ(c.api_max_streams, 1000);
  EXPECT_EQ(c.api_max_streams_per_source, 16);
  EXPECT_EQ(c.api_push_interval, absl::Seconds(1));
  EXPECT_EQ(c.api_heartbeat_interval, absl::Seconds(15));
  EXPECT_TRUE(c.dashboard);
  EXPECT_EQ(c.crl_dir, "/etc/polder/crl");
  EXPECT_EQ(c.trust.federation, "nl-smartcity");
  ASSERT_EQ(c.views.size(), 1u);
  EXPECT_EQ(c.views[0].cities.size(), 3u);
}

// The API may present the dashboard's own certificate; without one, the federation identity.
TEST(AggregatorConfigTest, ApiCertificateIsAPairOrTheFederationIdentity) {
  ASSERT_OK_AND_ASSIGN(AggregatorConfig plain, ParseAggregatorConfig(kValid, "a.yaml"));
  EXPECT_EQ(plain.ApiCertFile(), "/etc/polder/aggregator.pem");
  EXPECT_EQ(plain.ApiKeyFile(), "/etc/polder/aggregator.key");
  ASSERT_OK_AND_ASSIGN(
      AggregatorConfig own,
      ParseAggregatorConfig(absl::StrReplaceAll(kValid, {{"api_address: 0.0.0.0:8444",
                                                          "api_address: 0.0.0.0:8444\n"
                                                          "  api_cert_file: /etc/d/tls.crt\n"
                                                          "  api_key_file: /etc/d/tls.key"}}),
                            "a.yaml"));
  EXPECT_EQ(own.ApiCertFile(), "/etc/d/tls.crt");
  EXPECT_EQ(own.ApiKeyFile(), "/etc/d/tls.key");
}

TEST(AggregatorConfigTest, MistakesAreNamedWithTheirKey) {
  struct Case {
    std::string from, to, says;
  };
  const std::vector<Case> cases = {
      {"id: nl", "id: NL", "aggregator.id"},
      {"  state_dir: /var/lib/polder-aggregator\n", "", "state_dir"},
      {"api_address: 0.0.0.0:8444", "api_address: 8444", "aggregator.api_address"},
      {"ops_address: 127.0.0.1:9467", "ops_address: x", "aggregator.ops_address"},
      {"api_address: 0.0.0.0:8444", "api_address: 0.0.0.0:8444\n  api_client_auth: optional",
       "must be none (public, read-only) or required"},
      {"api_address: 0.0.0.0:8444", "api_address: 0.0.0.0:8444\n  commit_interval: 2m",
       "commit_interval"},
      {"api_address: 0.0.0.0:8444",
       "api_address: 0.0.0.0:8444\n  api_max_connections: 10\n  api_max_connections_per_source: 11",
       "api_max_connections_per_source"},
      {"api_address: 0.0.0.0:8444", "api_address: 0.0.0.0:8444\n  api_max_streams: 0",
       "api_max_streams"},
      {"api_address: 0.0.0.0:8444",
       "api_address: 0.0.0.0:8444\n  api_max_streams: 10\n  api_max_streams_per_source: 11",
       "api_max_streams_per_source"},
      {"api_address: 0.0.0.0:8444", "api_address: 0.0.0.0:8444\n  api_push_interval: 10ms",
       "api_push_interval"},
      {"api_address: 0.0.0.0:8444", "api_address: 0.0.0.0:8444\n  api_heartbeat_interval: 1h",
       "api_heartbeat_interval"},
      {"api_address: 0.0.0.0:8444", "api_address: 0.0.0.0:8444\n  development_mode: true",
       "development_mode listens only on loopback"},
      {"address: registry.nl-smartcity.example:7443", "address: registry", "registry.address"},
      {"replication_factor: 3", "replication_factor: 0", "kafka.replication_factor"},
      {"replication_factor: 3", "replication_factor: 3\n  feed_quality_interval: 500ms",
       "kafka.feed_quality_interval"},
      {"replication_factor: 3", "replication_factor: 3\n  changelog_topic: national-log",
       "kafka.changelog_topic"},
      {"  crl_dir: /etc/polder/crl\n", "", "crl_dir"},
      {"cities: [groningen, amersfoort, enschede]", "cities: []", "list the cities"},
      {"api_address: 0.0.0.0:8444", "api_adress: 0.0.0.0:8444", "api_adress"},
      {"api_address: 0.0.0.0:8444", "api_address: 0.0.0.0:8444\n  api_cert_file: /etc/d/tls.crt",
       "aggregator.api_key_file: set api_cert_file and api_key_file together"},
      {"api_address: 0.0.0.0:8444", "api_address: 0.0.0.0:8444\n  api_key_file: /etc/d/tls.key",
       "aggregator.api_cert_file"},
  };
  for (const Case& c : cases) {
    const std::string text = absl::StrReplaceAll(kValid, {{c.from, c.to}});
    ASSERT_NE(text, kValid) << c.from;
    EXPECT_THAT(ParseAggregatorConfig(text, "a.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.says)))
        << c.to;
  }
  // Without tls and trust only in the development mode, and that only on loopback.
  const std::string bare = absl::StrReplaceAll(
      kValid, {{"tls:\n  cert_file: /etc/polder/aggregator.pem\n  key_file: "
                "/etc/polder/aggregator.key\n  trust_bundle_file: /etc/polder/federation-ca.pem\n  "
                "crl_dir: /etc/polder/crl\n",
                ""}});
  ASSERT_NE(bare, kValid);
  EXPECT_THAT(ParseAggregatorConfig(bare, "a.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tls")));
}

}  // namespace
}  // namespace aggregator
}  // namespace polder
