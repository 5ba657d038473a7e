// Connection floods against every listener of a live node, registry and national aggregator
// (ADR 0011, the targets of
// docs/security.md): 2,000 unauthenticated idle or stalled connections opened from
// 127.0.0.2–127.0.0.11, and again from 1,000 distinct loopback addresses (which no per-source cap
// stops alone). Meanwhile a legitimate client on 127.0.0.1 must be answered within 1 s (median of
// 20, asserted with 3x slack) and the node, registry and aggregator must stay under 512 MiB RSS.
// Every legitimate request opens a new connection (a new TLS handshake), the worst case.
//
// POLDER_FLOOD_CONNECTIONS raises the flood (./test.sh --soak runs 10,000, with
// POLDER_FLOOD_MAX_RSS_MIB=1024: see MaxRssMiB).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "proto/polder/registry/v1/registry.grpc.pb.h"
#include "tests/aggregator/aggregator_fixture.h"

namespace polder {
namespace node_testing {
namespace {

int FloodSize() {
  const char* n = std::getenv("POLDER_FLOOD_CONNECTIONS");
  return n != nullptr && std::atoi(n) > 0 ? std::atoi(n) : 2000;
}

// The RSS bound: 512 MiB for the 2,000-connection target. The soak's 10,000 pending gRPC TLS
// connections cost gRPC ~45 KiB each until its 10 s handshake timeout (gRPC 1.51 has no
// connection cap of its own), so the soak allows 1 GiB and reports what it saw.
int64_t MaxRssMiB() {
  const char* n = std::getenv("POLDER_FLOOD_MAX_RSS_MIB");
  return n != nullptr && std::atoi(n) > 0 ? std::atoi(n) : 512;
}

int ConnectFrom(const std::string& source, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Opens `n` connections to `port` from `sources` in turn; every third sends the start of a TLS
// ClientHello (or of an HTTP request on a plaintext port) and stalls, the rest stay silent.
std::vector<int> Flood(int port, int n, const std::vector<std::string>& sources, bool plaintext) {
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    int fd = ConnectFrom(sources[i % sources.size()], port);
    if (fd < 0) continue;  // refused (a per-source cap) is fine
    if (i % 3 == 0) {
      const std::string start =
          plaintext ? "GET /metr" : std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
      (void)!write(fd, start.data(), start.size());
    }
    fds.push_back(fd);
  }
  return fds;
}

std::vector<std::string> TenSources() {
  std::vector<std::string> s;
  for (int i = 2; i <= 11; ++i) s.push_back(absl::StrCat("127.0.0.", i));
  return s;
}

std::vector<std::string> ThousandSources() {
  std::vector<std::string> s;
  for (int i = 0; i < 1000; ++i)
    s.push_back(absl::StrCat("127.0.", 10 + i / 250, ".", 1 + i % 250));
  return s;
}

class FloodTest : public aggregator_testing::AggregatorFixture {
 protected:
  struct Listener {
    std::string name;
    int port;
    bool plaintext;
    std::function<bool()> legit;  // one request on a new connection; true if answered correctly
  };

  // Floods `l` from `sources`; measures 20 legitimate requests; checks the targets.
  void Attack(const Listener& l, const std::vector<std::string>& sources, const char* scenario) {
    SCOPED_TRACE(absl::StrCat(l.name, ", ", scenario));
    std::vector<int> fds = Flood(l.port, FloodSize(), sources, l.plaintext);
    absl::SleepFor(absl::Milliseconds(200));
    std::vector<absl::Duration> took;
    int failed = 0;
    for (int i = 0; i < 20; ++i) {
      const absl::Time start = absl::Now();
      if (!l.legit()) ++failed;
      took.push_back(absl::Now() - start);
    }
    std::sort(took.begin(), took.end());
    const absl::Duration median = (took[9] + took[10]) / 2;
    const int64_t node_rss = RssMiB(node_->pid()), registry_rss = RssMiB(registry_->pid()),
                  aggregator_rss = RssMiB(aggregator_->pid());
    std::printf(
        "flood %-16s %-24s %5zu held  legit median %7.1f ms  max %7.1f ms  node %4lld MiB  "
        "registry %4lld MiB  aggregator %4lld MiB\n",
        l.name.c_str(), scenario, fds.size(), absl::ToDoubleMilliseconds(median),
        absl::ToDoubleMilliseconds(took.back()), static_cast<long long>(node_rss),
        static_cast<long long>(registry_rss), static_cast<long long>(aggregator_rss));
    EXPECT_EQ(failed, 0);
    EXPECT_LT(median, absl::Seconds(3)) << "target 1 s, 3x slack";
    EXPECT_LT(node_rss, MaxRssMiB());
    EXPECT_LT(registry_rss, MaxRssMiB());
    EXPECT_LT(aggregator_rss, MaxRssMiB());
    for (int fd : fds) close(fd);
    // The services give what the closed connections freed back within their 2 s background
    // period; the next flood is measured on top of that.
    absl::SleepFor(absl::Milliseconds(2500));
  }

  static int64_t RssMiB(pid_t pid) { return RssKiB(pid) / 1024; }

  std::unique_ptr<ServiceProcess> node_;
  std::unique_ptr<ServiceProcess> aggregator_;
};

TEST_F(FloodTest, EveryListenerServesALegitimateClientThroughAFlood) {
  WriteContract("gr-am-bikes-1");
  node_ = StartGroningen();
  aggregator_ = StartAggregator();
  const std::string bikes = absl::StrCat("[", BikeJson("gn-flood", 1), "]");
  auto https = [this](int port, const tls::TlsFiles* cert) {
    auto c = cert != nullptr ? std::make_unique<httplib::SSLClient>("127.0.0.1", port,
                                                                    cert->cert_path, cert->key_path)
                             : std::make_unique<httplib::SSLClient>("127.0.0.1", port);
    if (cert != nullptr)
      SSL_CTX_use_certificate_chain_file(c->ssl_context(), cert->cert_path.c_str());
    c->set_ca_cert_path(fed_->bundle_path().c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(std::chrono::seconds(10));
    c->set_read_timeout(std::chrono::seconds(10));
    return c;
  };
  // A fresh channel (its own subchannel, a new handshake) per call.
  auto channel = [this](const tls::TlsFiles& files, const std::string& peer, int port) {
    auto creds = tls::MakeChannelCredentials(files, fed_->Checker(), peer);
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(absl::StrCat("localhost:", port), *creds, args);
  };
  const int gn_http = node_->http_port(), gn_schema = node_->port("schema_port"),
            gn_ops = node_->port("ops_port");
  const int gn_grpc = node_->grpc_port(), gn_fed = node_->port("federation_port");
  const int reg_http = registry_->http_port(), reg_grpc = registry_->grpc_port();
  const int reg_ops = registry_->port("ops_port");
  const int agg_api = aggregator_->port("api_port"), agg_ops = aggregator_->port("ops_port");
  std::vector<Listener> listeners = {
      {"aggregator-api", agg_api, false,
       [&] {
         auto r = https(agg_api, nullptr)->Get("/api/v1/views");
         return r && r->status == 200 && absl::StrContains(r->body, "\"views\"");
       }},
      {"aggregator-ops", agg_ops, true,
       [&] {
         httplib::Client c("127.0.0.1", agg_ops);
         c.set_connection_timeout(std::chrono::seconds(10));
         auto r = c.Get("/readyz");
         return r && r->status == 200;
       }},
      {"ingest-https", gn_http, false,
       [&] {
         auto c = https(gn_http, nullptr);
         auto r = c->Post("/v1/datasets/mobility.bike-counts/records",
                          {{"Authorization", absl::StrCat("Bearer ", kToken)}}, bikes,
                          "application/json");
         return r && r->status == 200;
       }},
      {"schema-https", gn_schema, false,
       [&] {
         auto r = https(gn_schema, nullptr)
                      ->Get("/subjects/polder.datasets.mobility.v1.BikeCount/versions/latest");
         return r && r->status == 200;
       }},
      {"ops-http", gn_ops, true,
       [&] {
         httplib::Client c("127.0.0.1", gn_ops);
         c.set_connection_timeout(std::chrono::seconds(10));
         auto r = c.Get("/livez");
         return r && r->status == 200;
       }},
      {"registry-ops", reg_ops, true,
       [&] {
         httplib::Client c("127.0.0.1", reg_ops);
         c.set_connection_timeout(std::chrono::seconds(10));
         auto r = c.Get("/readyz");
         return r && r->status == 200;
       }},
      {"registry-rest", reg_http, false,
       [&] {
         auto r = https(reg_http, &files_["national"])->Get("/subjects");
         return r && r->status == 200;
       }},
      {"ingest-grpc", gn_grpc, false,
       [&] {
         auto stub = nv1::IngestService::NewStub(channel(gateway_, "groningen", gn_grpc));
         nv1::PublishRequest req;
         req.set_dataset(kBikes);
         req.add_records()->set_json(BikeJson("gn-flood-grpc", 2));
         grpc::ClientContext ctx;
         ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
         nv1::PublishResponse resp;
         return stub->Publish(&ctx, req, &resp).ok();
       }},
      {"federation-grpc", gn_fed, false,
       [&] {
         auto stub =
             fv1::FederationService::NewStub(channel(files_["amersfoort"], "groningen", gn_fed));
         grpc::ClientContext ctx;
         ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
         fv1::ListDatasetsRequest req;
         fv1::ListDatasetsResponse resp;
         return stub->ListDatasets(&ctx, req, &resp).ok() && resp.datasets_size() == 1;
       }},
      {"registry-grpc", reg_grpc, false,
       [&] {
         auto stub = registry::v1::SchemaRegistryService::NewStub(
             channel(files_["groningen"], "registry", reg_grpc));
         grpc::ClientContext ctx;
         ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
         registry::v1::ListSubjectsRequest req;
         registry::v1::ListSubjectsResponse resp;
         return stub->ListSubjects(&ctx, req, &resp).ok() && resp.subjects_size() > 0;
       }},
  };
  // POLDER_FLOOD_LISTENERS (comma-separated names) narrows the run, e.g. to reproduce one.
  const char* only = std::getenv("POLDER_FLOOD_LISTENERS");
  for (const Listener& l : listeners) {
    if (only != nullptr &&
        !absl::StrContains(absl::StrCat(",", only, ","), absl::StrCat(",", l.name, ",")))
      continue;
    ASSERT_TRUE(l.legit()) << l.name << " does not answer before the flood";
    Attack(l, TenSources(), "10 sources");
    Attack(l, ThousandSources(), "1,000 sources");
  }
  // Nothing the legitimate clients published was lost: 41 HTTP and 41 gRPC bike counts.
  if (only == nullptr) {
    EXPECT_EQ(CeIdsInTopic(Topic(), 3, 82).size(), 82u);
  }
  // The listeners' connection metrics saw the floods (promtool-valid with the rest). Each flood
  // opens FloodSize() connections at once; beyond the listen backlog (4,096) the kernel may
  // complete a client's handshake and drop it from a full accept queue before the server
  // accepts it (the soak's 10,000 did: 12,602 of 20,000 accepted), so the count is bounded
  // below by what the backlog guarantees.
  if (only == nullptr) {
    EXPECT_GE(
        Metric(*node_, "polder_http_connections_total{listener=\"ops\",outcome=\"accepted\"}"),
        2 * std::min(FloodSize(), 4096));
    ExpectPromtoolPasses(*node_, "flooded");
  }
}

}  // namespace
}  // namespace node_testing
}  // namespace polder
