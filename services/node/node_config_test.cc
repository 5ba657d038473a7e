#include "services/node/node_config.h"

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace node {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kValid[] = R"(node:
  peer_id: groningen
  federation: nl-smartcity
  state_dir: /var/lib/polder
kafka:
  bootstrap_servers: kafka-0:9093
  properties: {security.protocol: ssl, ssl.key.location: /etc/polder/kafka/key.pem}
registry:
  address: registry.nl-smartcity.example:7443
tls:
  cert_file: /etc/polder/tls/cert.pem
  key_file: /etc/polder/tls/key.pem
  trust_bundle_file: /etc/polder/tls/bundle.pem
  crl_dir: /etc/polder/tls/crl
trust:
  federation: nl-smartcity
  directory_file: /etc/polder/directory.json
  directory_state: /var/lib/polder/directory-state.json
  operator_keys:
    - public_key_file: /etc/polder/operator.pub
ingest:
  trust_domain: groningen-ingest
  client_ca_file: /etc/polder/ingest-ca.pem
  crl_dir: /etc/polder/ingest-crl
  max_record_bytes: 32KiB
  identities:
    - {id: gateway-north, datasets: [mobility.bike-counts]}
    - {id: parking-vendor, datasets: ["*"], token_file: /etc/polder/tokens/parking}
datasets:
  - id: mobility.bike-counts
    subject: polder.datasets.mobility.v1.BikeCount
    partitions: 6
    retention: 2160h
    description: Bicycle counts from the counting loops
    licence: CC-BY-4.0
    owner_contact: data@groningen.nl
)";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(NodeConfigTest, ParsesAFullConfiguration) {
  ASSERT_OK_AND_ASSIGN(NodeConfig c, ParseNodeConfig(kValid, "node.yaml"));
  EXPECT_EQ(c.peer_id, "groningen");
  EXPECT_EQ(c.transactional_id, "polder-node-groningen-ingest");
  EXPECT_EQ(c.max_record_bytes, 32 << 10);
  ASSERT_EQ(c.datasets.size(), 1u);
  EXPECT_EQ(c.TopicOf(c.datasets[0]), "groningen.mobility.bike-counts");
  EXPECT_EQ(c.datasets[0].partitions, 6);
  EXPECT_EQ(c.datasets[0].retention, absl::Hours(2160));
  ASSERT_EQ(c.identities.size(), 2u);
  EXPECT_EQ(c.identities[1].token_file, "/etc/polder/tokens/parking");
  EXPECT_EQ(c.transaction_spacing, absl::Milliseconds(5));
  EXPECT_EQ(c.feed_quality_interval, absl::Seconds(10));
  EXPECT_TRUE(CheckSizeLimits(c, DeriveSizeLimits(c),
                              {{"groningen.mobility.bike-counts", (1 << 20) + 1024}})
                  .empty());
}

TEST(NodeConfigTest, ErrorsNameTheKey) {
  EXPECT_THAT(
      ParseNodeConfig(Replace(kValid, "  partitions: 6", "  partitions: 6\n    colour: blue"),
                      "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("datasets[0].colour")));
  EXPECT_THAT(
      ParseNodeConfig(Replace(kValid, "  - id: mobility.bike-counts", "  - id: Bikes"), "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("datasets[0].id")));
  EXPECT_THAT(
      ParseNodeConfig(Replace(kValid, "[mobility.bike-counts]", "[parking.occupancy]"), "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("identity 'gateway-north' is granted 'parking.occupancy', which is not in "
                         "datasets")));
  EXPECT_THAT(ParseNodeConfig(Replace(kValid, "max_record_bytes: 32KiB", "max_record_bytes: 2MiB"),
                              "n.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ingest.max_record_bytes")));
  EXPECT_THAT(ParseNodeConfig(Replace(kValid, "max_record_bytes: 32KiB", "max_batch_bytes: 5MiB"),
                              "n.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("gRPC's 4MiB message limit")));
  EXPECT_THAT(ParseNodeConfig(Replace(kValid, "ssl.key.location: /etc/polder/kafka/key.pem",
                                      "ssl.key.password: hunter2"),
                              "n.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("secrets are never written in configuration")));
  EXPECT_THAT(ParseNodeConfig(Replace(kValid, "  client_ca_file: /etc/polder/ingest-ca.pem\n", ""),
                              "n.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ingest.client_ca_file")));
  EXPECT_THAT(
      ParseNodeConfig(Replace(kValid, "  bootstrap_servers: kafka-0:9093",
                              "  bootstrap_servers: kafka-0:9093\n  feed_quality_interval: 0s"),
                      "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kafka.feed_quality_interval")));
  EXPECT_THAT(ParseNodeConfig(Replace(kValid, "  peer_id: groningen\n", ""), "n.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("node.peer_id")));
  EXPECT_THAT(ParseNodeConfig(Replace(kValid, "  state_dir: /var/lib/polder",
                                      "  state_dir: /var/lib/polder\n  development_mode: true"),
                              "n.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("development_mode listens only on loopback")));
  // No CRL folder, no revocation could ever be seen: refused, for the federation and for
  // certificate ingest identities; development mode reaches the registry only on loopback.
  EXPECT_THAT(ParseNodeConfig(Replace(kValid, "  crl_dir: /etc/polder/tls/crl\n", ""), "n.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tls.crl_dir")));
  EXPECT_THAT(ParseNodeConfig(Replace(kValid, "  crl_dir: /etc/polder/ingest-crl\n", ""), "n.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ingest.crl_dir")));
  EXPECT_THAT(
      ParseNodeConfig(Replace(Replace(kValid, "  state_dir: /var/lib/polder",
                                      "  state_dir: /var/lib/polder\n  development_mode: true\n"
                                      "  grpc_address: 127.0.0.1:0\n  http_address: 127.0.0.1:0\n"
                                      "  schema_address: 127.0.0.1:0"),
                              "registry.nl-smartcity.example:7443", "registry.example:7443"),
                      "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("reaches the registry only on loopback")));
}

// The city-facing listeners may present a certificate of their own (cert-manager's, for the
// city's public name); without one they present the federation identity. Both files or neither.
TEST(NodeConfigTest, IngestServerCertificateIsAPairOrTheFederationIdentity) {
  ASSERT_OK_AND_ASSIGN(NodeConfig plain, ParseNodeConfig(kValid, "node.yaml"));
  EXPECT_EQ(plain.IngestCertFile(), plain.cert_file);
  EXPECT_EQ(plain.IngestKeyFile(), plain.key_file);
  const std::string own = Replace(kValid, "  crl_dir: /etc/polder/ingest-crl\n",
                                  "  crl_dir: /etc/polder/ingest-crl\n"
                                  "  cert_file: /etc/polder/ingest-tls/tls.crt\n"
                                  "  key_file: /etc/polder/ingest-tls/tls.key\n");
  ASSERT_OK_AND_ASSIGN(NodeConfig c, ParseNodeConfig(own, "node.yaml"));
  EXPECT_EQ(c.IngestCertFile(), "/etc/polder/ingest-tls/tls.crt");
  EXPECT_EQ(c.IngestKeyFile(), "/etc/polder/ingest-tls/tls.key");
  EXPECT_NE(c.cert_file, c.IngestCertFile());
  // Per-source limits stay on unless a listener is declared behind a proxy.
  EXPECT_TRUE(c.http_per_source_limits);
  EXPECT_TRUE(c.schema_per_source_limits);
  ASSERT_OK_AND_ASSIGN(
      NodeConfig proxied,
      ParseNodeConfig(Replace(kValid, "  state_dir: /var/lib/polder",
                              "  state_dir: /var/lib/polder\n  http_per_source_limits: false"),
                      "node.yaml"));
  EXPECT_FALSE(proxied.http_per_source_limits);
  EXPECT_TRUE(proxied.schema_per_source_limits);
  EXPECT_THAT(
      ParseNodeConfig(Replace(own, "  key_file: /etc/polder/ingest-tls/tls.key\n", ""), "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("ingest.key_file: set cert_file and key_file together")));
  EXPECT_THAT(
      ParseNodeConfig(Replace(own, "  cert_file: /etc/polder/ingest-tls/tls.crt\n", ""), "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ingest.cert_file")));
}

// The internal port's own identity: cert, key and CA together, or none (the federation's).
TEST(NodeConfigTest, ReplicasOwnCaIsAllThreeFilesOrNone) {
  ASSERT_OK_AND_ASSIGN(NodeConfig plain, ParseNodeConfig(kValid, "node.yaml"));
  EXPECT_FALSE(plain.ReplicaTls());
  EXPECT_EQ(plain.InternalPeer(), "groningen");
  const std::string own = absl::StrCat(
      kValid,
      "replicas:\n  cert_file: /etc/polder/replica/tls.crt\n"
      "  key_file: /etc/polder/replica/tls.key\n  ca_file: /etc/polder/replica/ca.crt\n");
  ASSERT_OK_AND_ASSIGN(NodeConfig c, ParseNodeConfig(own, "node.yaml"));
  EXPECT_TRUE(c.ReplicaTls());
  EXPECT_EQ(c.InternalPeer(), "replica");
  EXPECT_EQ(c.replica_trust_domain, "groningen-replicas");
  EXPECT_THAT(
      ParseNodeConfig(Replace(own, "  ca_file: /etc/polder/replica/ca.crt\n", ""), "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("replicas.ca_file: set cert_file, key_file and ca_file together")));
  EXPECT_THAT(
      ParseNodeConfig(Replace(own, "  key_file: /etc/polder/replica/tls.key\n", ""), "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("replicas.key_file")));
}

TEST(NodeConfigTest, DevelopmentModeKeepsTheInternalPortOnLoopback) {
  const std::string dev =
      Replace(Replace(kValid, "  state_dir: /var/lib/polder",
                      "  state_dir: /var/lib/polder\n  development_mode: true\n"
                      "  grpc_address: 127.0.0.1:0\n  http_address: 127.0.0.1:0\n"
                      "  schema_address: 127.0.0.1:0"),
              "registry.nl-smartcity.example:7443", "127.0.0.1:7443");
  ASSERT_OK_AND_ASSIGN(NodeConfig c, ParseNodeConfig(dev, "n.yaml"));
  EXPECT_EQ(c.internal_address, "127.0.0.1:0") << "the development default";
  EXPECT_THAT(ParseNodeConfig(dev + "replicas:\n  internal_address: 0.0.0.0:7444\n", "n.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("replicas.internal_address")));
  EXPECT_THAT(
      ParseNodeConfig(dev + "replicas:\n  internal_advertise: node-1.example:7444\n", "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("replicas.internal_advertise")));
  ASSERT_OK_AND_ASSIGN(c, ParseNodeConfig(kValid, "n.yaml"));
  EXPECT_EQ(c.internal_address, "0.0.0.0:7444") << "TLS outside development mode";
}

TEST(NodeConfigTest, TransactionSpacingIsBounded) {
  const std::string kafka = "  bootstrap_servers: kafka-0:9093\n";
  ASSERT_OK_AND_ASSIGN(
      NodeConfig c,
      ParseNodeConfig(Replace(kValid, kafka, kafka + "  transaction_spacing: 0s\n"), "n.yaml"));
  EXPECT_EQ(c.transaction_spacing, absl::ZeroDuration());
  ASSERT_OK_AND_ASSIGN(
      c,
      ParseNodeConfig(Replace(kValid, kafka, kafka + "  transaction_spacing: 12ms\n"), "n.yaml"));
  EXPECT_EQ(c.transaction_spacing, absl::Milliseconds(12));
  EXPECT_THAT(
      ParseNodeConfig(Replace(kValid, kafka, kafka + "  transaction_spacing: 2s\n"), "n.yaml"),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          HasSubstr("kafka.transaction_spacing (line 7): must be between 0s and 1s, got '2s'")));
  for (const char* bad : {"-5ms", "soon"}) {
    EXPECT_THAT(
        ParseNodeConfig(
            Replace(kValid, kafka, absl::StrCat(kafka, "  transaction_spacing: ", bad, "\n")),
            "n.yaml"),
        StatusIs(absl::StatusCode::kInvalidArgument,
                 HasSubstr(absl::StrCat("kafka.transaction_spacing (line 7): expected a duration "
                                        "such as '250ms', '5s' or '1h30m', got '",
                                        bad, "'"))))
        << bad;
  }
}

TEST(NodeConfigTest, FederationSection) {
  const std::string with =
      std::string(kValid) +
      "federation:\n  contracts_dir: /etc/polder/contracts\n  signing_key_file: "
      "/etc/polder/signing.key\n  max_unacknowledged_bytes: 4MiB\n  subscriptions:\n"
      "    - {provider: amersfoort, endpoint: \"amersfoort.example:7445\", dataset: air.quality, "
      "contract: am-gr-air-1, partitions: 3, purge_on_revocation: true}\n";
  ASSERT_OK_AND_ASSIGN(NodeConfig c, ParseNodeConfig(with, "n.yaml"));
  EXPECT_TRUE(c.sharing.enabled);
  EXPECT_EQ(c.sharing.max_unacknowledged_bytes, 4 << 20);
  EXPECT_EQ(c.sharing.max_connection_age, absl::Hours(1));
  ASSERT_EQ(c.sharing.subscriptions.size(), 1u);
  EXPECT_TRUE(c.sharing.subscriptions[0].purge_on_revocation);
  EXPECT_EQ(c.datasets[0].epoch, "1");
  EXPECT_THAT(
      ParseNodeConfig(Replace(with, "  signing_key_file: /etc/polder/signing.key\n", ""), "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("federation.signing_key_file")));
  EXPECT_THAT(
      ParseNodeConfig(
          Replace(with, "max_unacknowledged_bytes: 4MiB", "max_unacknowledged_bytes: 64KiB"),
          "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("one batch must fit the window")));
  EXPECT_EQ(c.sharing.source_prefetch_bytes, 8 << 20);
  ASSERT_OK_AND_ASSIGN(NodeConfig small,
                       ParseNodeConfig(Replace(with, "max_unacknowledged_bytes: 4MiB",
                                               "source_prefetch_bytes: 2MiB"),
                                       "n.yaml"));
  EXPECT_EQ(small.sharing.source_prefetch_bytes, 2 << 20);
  EXPECT_THAT(
      ParseNodeConfig(
          Replace(with, "max_unacknowledged_bytes: 4MiB", "source_prefetch_bytes: 64KiB"),
          "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("a batch must fit the prefetch")));
  EXPECT_THAT(ParseNodeConfig(Replace(with, "max_unacknowledged_bytes: 4MiB", "keepalive_time: 1s"),
                              "n.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("federation.keepalive_time")));
  EXPECT_THAT(
      ParseNodeConfig(
          Replace(with, "partitions: 3, purge", "partitions: 3, start: yesterday, purge"),
          "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("federation.subscriptions[0].start")));
  EXPECT_OK(ParseNodeConfig(Replace(with, "partitions: 3, purge",
                                    "partitions: 3, start: \"2026-01-01T00:00:00Z\", purge"),
                            "n.yaml")
                .status());
  EXPECT_THAT(
      ParseNodeConfig(Replace(with, "partitions: 3, purge", "partitions: 0, purge"), "n.yaml"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("federation.subscriptions[0].partitions")));
}

TEST(NodeConfigTest, SizeLimitsAreCheckedAgainstTopics) {
  ASSERT_OK_AND_ASSIGN(NodeConfig c, ParseNodeConfig(kValid, "node.yaml"));
  std::vector<std::string> problems =
      CheckSizeLimits(c, DeriveSizeLimits(c), {{"groningen.mobility.bike-counts", 500000}});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0],
              HasSubstr("max.message.bytes=500000, below the producer's batch.size (1048576)"));
}

TEST(NodeConfigTest, ViewSetsOfOwnDatasetsWithTheirDefaultsAndMistakesNamed) {
  const std::string views = std::string(kValid) + R"(views:
  - dataset: mobility.bike-counts
    grace: 10m
    guard: {k: 10}
    views:
      - id: quarter-municipality
        window: 15m
        group_by: [municipality, direction]
        measures: [count]
      - id: day-city
        window: 1d
        measures: [count]
)";
  ASSERT_OK_AND_ASSIGN(NodeConfig c, ParseNodeConfig(views, "node.yaml"));
  ASSERT_EQ(c.views.size(), 1u);
  const views::ViewSetSpec& set = c.views[0];
  EXPECT_EQ(set.grace, absl::Minutes(10));
  EXPECT_EQ(set.idle_timeout, absl::Minutes(30)) << "defaults kept";
  EXPECT_EQ(set.guard.k, 10);
  EXPECT_EQ(set.guard.ptable.d, 6);
  ASSERT_EQ(set.views.size(), 4u) << "the two declared and feed quality's entities views";
  EXPECT_EQ(set.views[0].group_by.size(), 2u);
  EXPECT_EQ(set.views[1].window, views::WindowSize::kDay);
  EXPECT_EQ(set.views[1].epoch, "1");
  EXPECT_EQ(set.views[2].id, "entities-hour");
  EXPECT_EQ(set.views[2].window, views::WindowSize::kHour);
  EXPECT_EQ(set.views[3].id, "entities-day");
  EXPECT_EQ(set.views[3].window, views::WindowSize::kDay);
  for (int v : {2, 3}) {
    EXPECT_TRUE(set.views[v].group_by.empty());
    ASSERT_EQ(set.views[v].measures.size(), 1u);
    EXPECT_EQ(set.views[v].measures[0].Name(), "entities");
  }

  auto refused = [&](const std::string& from, const std::string& to, const std::string& why) {
    EXPECT_THAT(ParseNodeConfig(Replace(views, from, to), "node.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(why)))
        << why;
  };
  refused("window: 15m", "window: 5m", "views[0].views[0].window");
  refused("[municipality, direction]", "[municipality, grid:2km]", "grid:100m");
  refused("measures: [count]\n      - id: day", "measures: [median:count]\n      - id: day",
          "not count");
  refused("- dataset: mobility.bike-counts", "- dataset: parking.occupancy", "own datasets only");
  refused("guard: {k: 10}", "guard: {k: 2}", "guard.k must be at least 3");
  refused("guard: {k: 10}", "guard: {v: 1.5}", "cannot be reached");
  refused("id: day-city", "id: quarter-municipality", "declared twice");
  refused("    grace: 10m", "    grace: 10m\n    colour: blue", "views[0].colour");
  refused("id: day-city", "id: entities-day", "view id 'entities-day' is reserved");
  refused("measures: [count]\n      - id: day", "measures: [count, entities]\n      - id: day",
          "entities counts distinct units");
}

}  // namespace
}  // namespace node
}  // namespace polder
