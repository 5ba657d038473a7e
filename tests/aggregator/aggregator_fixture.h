// The polder-aggregator fixture: on top of the node fixture (broker, federation PKI, signed
// directory, registry with the standard schemas bootstrapped — NationalFigure among them), the
// cities' mirrored view topics on the suite's broker filled with view records written by the
// test as the national node's mirror writes them, the aggregator process (its config per test,
// with a view of its own so topics do not collide within a suite), and readers of the national
// topic, the API (curl over HTTPS) and the ops listener.
#ifndef POLDER_TESTS_AGGREGATOR_AGGREGATOR_FIXTURE_H_
#define POLDER_TESTS_AGGREGATOR_AGGREGATOR_FIXTURE_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/kafka/admin.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/views/names.h"
#include "common/views/times.h"
#include "common/views/window.h"
#include "common/wire/confluent_frame.h"
#include "proto/polder/national/v1/national_figure.pb.h"
#include "proto/polder/views/v1/aggregate_cell.pb.h"
#include "tests/node/federation_fixture.h"

namespace polder {
namespace aggregator_testing {

using namespace node_testing;  // NOLINT: the node and federation fixtures and their helpers
namespace natv1 = ::polder::national::v1;
namespace vv1 = ::polder::views::v1;

inline constexpr char kHash[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
inline const std::vector<std::string>& Cities() {
  static const auto* const kCities =
      new std::vector<std::string>{"amersfoort", "enschede", "groningen"};
  return *kCities;
}

// A quarter-hour window start `n` quarters after a morning four hours before the test started:
// past its deadline, within the revision horizon.
inline absl::Time Quarter(int n) {
  static const absl::Time kBase =
      absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) / 900 * 900) - absl::Hours(4);
  return kBase + absl::Minutes(15 * n);
}

class AggregatorFixture : public FederationFixture {
 protected:
  void SetUp() override {
    FederationFixture::SetUp();
    static int counter = 0;
    view_ = absl::StrCat("quarter-municipality-t", ++counter);
    changelog_ = absl::StrCat("_polder.aggregator-t", counter, ".changelog");
    kafka::RdKafkaClientFactory clients;
    auto admin = clients.NewAdmin(ClientOptions());
    ASSERT_OK(admin.status());
    for (const std::string& city : Cities()) {
      ASSERT_OK(
          (*admin)->CreateTopic({views::ViewTopic(city, kBikes, view_), 1, 1}, absl::Seconds(30)));
    }
    auto producer = clients_.NewProducer(kafka::ProducerOptions{ClientOptions()});
    ASSERT_OK(producer.status());
    producer_ = *std::move(producer);
  }

  // Moves the cities' view topics (RF 3), the writer of their cells and the aggregator onto the
  // cluster at `bootstrap` (the broker-failure soak, ADR 0020 §2).
  void UseCluster(const std::string& bootstrap) {
    aggregator_bootstrap_ = bootstrap;
    aggregator_replication_ = 3;
    kafka::RdKafkaClientFactory clients;
    auto admin = clients.NewAdmin(DataClientOptions());
    ASSERT_OK(admin.status());
    for (const std::string& city : Cities()) {
      ASSERT_OK(
          (*admin)->CreateTopic({views::ViewTopic(city, kBikes, view_), 1, 3}, absl::Seconds(30)));
    }
    auto producer = clients_.NewProducer(kafka::ProducerOptions{DataClientOptions()});
    ASSERT_OK(producer.status());
    producer_ = *std::move(producer);
  }
  // Client options for the aggregator's Kafka.
  kafka::ClientOptions DataClientOptions() const {
    kafka::ClientOptions o = ClientOptions();
    if (!aggregator_bootstrap_.empty()) o.bootstrap_servers = aggregator_bootstrap_;
    return o;
  }

  std::string NationalTopic() const { return absl::StrCat("national.", kBikes, ".view.", view_); }

  // One city's cell of a window: `count` (nullopt: withheld by the city's guard).
  void Cell(const std::string& city, int window, const std::string& municipality,
            std::optional<double> count) {
    vv1::AggregateCell c = Base(city, window);
    c.set_group_key(absl::StrCat("municipality=", municipality));
    vv1::MeasureValue* m = c.add_measures();
    m->set_name("count");
    if (count.has_value()) {
      m->set_value(*count);
      m->set_perturbed(true);
    } else {
      m->set_protection(vv1::PROTECTION_SUPPRESSED);
    }
    Write(city, c);
  }
  void Close(const std::string& city, int window, int64_t cells) {
    vv1::AggregateCell c = Base(city, window);
    c.mutable_window_close()->set_cells(cells);
    views::SetProtoTime(Quarter(window + 1), c.mutable_window_close()->mutable_closed_through());
    views::SetProtoTime(Quarter(window + 1) + absl::Minutes(1),
                        c.mutable_window_close()->mutable_watermark());
    Write(city, c);
  }
  void Flush() { ASSERT_OK(producer_->Flush(absl::Seconds(30))); }

  // `replica`: one of several replicas (its own id, state folder and a 6 s session); "": the
  // host name's id.
  std::string WriteAggregatorConfig(const std::string& deadline = "0s",
                                    const std::string& client_auth = "none",
                                    const std::string& replica = "") {
    const tls::TlsFiles& f = files_["national"];
    const std::string suffix = replica.empty() ? "" : absl::StrCat("-", replica);
    const std::string path = absl::StrCat(dir_, "/aggregator", suffix, ".yaml");
    std::ofstream(path) << absl::StrCat(
        replica.empty() ? ""
                        : absl::StrCat("replicas:\n  id: ", replica,
                                       "\n  session_timeout: 6s\n  heartbeat_interval: 1s\n"),
        "aggregator:\n  id: national\n  federation: ", tls::kTestFederation,
        "\n  state_dir: ", dir_, "/aggregator-state", suffix, "\n  api_address: 127.0.0.1:0\n",
        "  ops_address: 127.0.0.1:0\n  commit_interval: 100ms\n  api_client_auth: ", client_auth,
        "\n", aggregator_extra_, "registry:\n  address: localhost:", registry_->grpc_port(),
        "\nkafka:\n  bootstrap_servers: ",
        aggregator_bootstrap_.empty() ? broker().bootstrap_servers() : aggregator_bootstrap_,
        "\n  replication_factor: ", aggregator_replication_,
        "\n  feed_quality_interval: 1s\n  changelog_topic: ", changelog_,
        "\n  timeout: 20s\n  request_timeout: 3s\n  transaction_timeout: 20s\n"
        "  properties:\n    log_level: \"3\"\n",
        "tls:\n  cert_file: ", f.cert_path, "\n  key_file: ", f.key_path,
        "\n  trust_bundle_file: ", f.trust_bundle_path, "\n  crl_dir: ", fed_->crl_dir(), "\n",
        "trust:\n  federation: ", tls::kTestFederation, "\n  directory_file: ", dir_,
        "/directory.json\n  directory_state: ", dir_, "/aggregator-directory.json\n",
        "  operator_keys:\n    - public_key_file: ", dir_, "/operator.pub\n",
        "national:\n  deadline: ", deadline, "\n  views:\n    - dataset: ", kBikes,
        "\n      view: ", view_, "\n      definition_hashes: [",
        absl::StrJoin(definition_hashes_, ", "), "]\n      cities: [", absl::StrJoin(cities_, ", "),
        "]\n      grace: 0s\n");
    return path;
  }

  std::unique_ptr<ServiceProcess> StartAggregator(
      const std::string& deadline = "0s", const std::string& client_auth = "none",
      const std::map<std::string, std::string>& env = {}, const std::string& replica = "") {
    auto p = std::make_unique<ServiceProcess>(
        RunfilesPath(env.empty() ? "services/aggregator/polder-aggregator"
                                 : "services/aggregator/polder-aggregator-test-hooks"),
        replica.empty() ? "aggregator" : absl::StrCat("aggregator-", replica),
        WriteAggregatorConfig(deadline, client_auth, replica));
    for (const auto& [k, v] : env) p->SetEnv(k, v);
    p->Start();
    return p;
  }

  // The national topic's figures (read_committed), in order, with the schema ids they carry.
  std::vector<natv1::NationalFigure> ReadFigures(std::set<int32_t>* schema_ids = nullptr) {
    kafka::ConsumerOptions o;
    o.client = ClientOptions();
    if (!aggregator_bootstrap_.empty()) o.client.bootstrap_servers = aggregator_bootstrap_;
    kafka::RdKafkaClientFactory clients;
    std::vector<natv1::NationalFigure> out;
    absl::Status s =
        kafka::ReadToEnd(
            clients, o, NationalTopic(), 0, 0, absl::Seconds(30),
            [&](const kafka::ConsumedRecord& r) -> absl::Status {
              absl::StatusOr<wire::Frame> f = wire::Decode(r.value);
              if (!f.ok()) return f.status();
              if (schema_ids != nullptr) schema_ids->insert(f->schema_id);
              natv1::NationalFigure figure;
              if (!figure.ParseFromArray(f->payload.data(), static_cast<int>(f->payload.size()))) {
                return absl::DataLossError("not a NationalFigure");
              }
              if (!r.key.has_value() || *r.key != figure.figure_key()) {
                return absl::DataLossError("key is not the figure key");
              }
              out.push_back(std::move(figure));
              return absl::OkStatus();
            })
            .status();
    if (!absl::IsNotFound(s)) EXPECT_OK(s);
    return out;
  }

  // Waits until the national topic holds at least `n` figures (up to `timeout`).
  std::vector<natv1::NationalFigure> WaitForFigures(size_t n,
                                                    absl::Duration timeout = absl::Seconds(60)) {
    std::vector<natv1::NationalFigure> figures;
    for (absl::Time until = absl::Now() + timeout; absl::Now() < until;) {
      figures = ReadFigures();
      if (figures.size() >= n) break;
      absl::SleepFor(absl::Milliseconds(500));
    }
    return figures;
  }

  // GET on the API over HTTPS (server-authenticated; `identity`: a client certificate); returns
  // (HTTP status, body). Status 0: no HTTP answer (e.g. the TLS handshake was refused).
  std::pair<int, std::string> Api(const ServiceProcess& aggregator, const std::string& path,
                                  const std::string& identity = "") {
    std::string cmd = absl::StrCat("curl -sS --cacert ", fed_->bundle_path());
    if (!identity.empty()) {
      absl::StrAppend(&cmd, " --cert ", files_[identity].cert_path, " --key ",
                      files_[identity].key_path);
    }
    absl::StrAppend(&cmd, " -w '\\n%{http_code}' 'https://localhost:", aggregator.port("api_port"),
                    path, "'");
    std::string out;
    testing::RunCommand(cmd, &out);
    const size_t nl = out.rfind('\n');
    const int status = nl == std::string::npos ? 0 : std::atoi(out.substr(nl + 1).c_str());
    return {status, out.substr(0, nl == std::string::npos ? 0 : nl)};
  }
  json ApiJson(const ServiceProcess& aggregator, const std::string& path) {
    auto [status, body] = Api(aggregator, path);
    EXPECT_EQ(status, 200) << path << ": " << body;
    return json::parse(body, nullptr, false);
  }
  std::string FigureKeyOf(int window) const {
    return absl::StrCat(kBikes, "/", view_, "/", views::FormatInstant(Quarter(window)));
  }
  std::string FiguresPath() const {
    return absl::StrCat("/api/v1/views/", kBikes, "/", view_, "/figures");
  }

  std::string Ops(const ServiceProcess& aggregator, const std::string& path) {
    std::string out;
    testing::RunCommand(
        absl::StrCat("curl -sS -m 10 http://127.0.0.1:", aggregator.port("ops_port"), path), &out);
    return out;
  }

  std::string view_;
  std::string changelog_;
  // The aggregator's Kafka (default: the suite's broker), the definitions and cities its view
  // accepts.
  std::string aggregator_bootstrap_;
  int aggregator_replication_ = 1;
  std::vector<std::string> definition_hashes_ = {kHash};
  std::vector<std::string> cities_ = Cities();
  // More `aggregator:` keys, each line "  key: value\n".
  std::string aggregator_extra_;

 private:
  vv1::AggregateCell Base(const std::string& city, int window) const {
    vv1::AggregateCell c;
    views::SetProtoTime(Quarter(window), c.mutable_window_start());
    views::SetProtoTime(Quarter(window + 1), c.mutable_window_end());
    c.set_dataset_id(kBikes);
    c.set_view_id(view_);
    c.set_definition_hash(kHash);
    c.set_source_peer(city);
    return c;
  }
  void Write(const std::string& city, const vv1::AggregateCell& c) {
    kafka::ProducerRecord r;
    r.topic = views::ViewTopic(city, kBikes, view_);
    r.partition = 0;
    r.key = c.group_key();
    r.value = wire::Encode(1, {0}, c.SerializeAsString());
    producer_->Send(std::move(r),
                    [](absl::StatusOr<kafka::RecordMetadata> m) { EXPECT_OK(m.status()); });
  }

  kafka::RdKafkaClientFactory clients_;
  std::unique_ptr<kafka::Producer> producer_;
};

}  // namespace aggregator_testing
}  // namespace polder

#endif  // POLDER_TESTS_AGGREGATOR_AGGREGATOR_FIXTURE_H_
