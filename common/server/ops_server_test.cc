#include "common/server/ops_server.h"

#include <atomic>
#include <string>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace polder {
namespace server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ReadinessTest, ReadyOnlyWhenEveryCheckAndReportIsOk) {
  Readiness r;
  EXPECT_TRUE(r.Ready()) << "nothing registered: nothing to wait for";
  std::atomic<bool> kafka{true};
  r.AddCheck("kafka", [&] {
    return kafka ? absl::OkStatus() : absl::UnavailableError("the cluster does not answer");
  });
  r.Expect("store");
  EXPECT_THAT(r.Problems(), ElementsAre("store: not reported yet"));
  r.Report("store", absl::OkStatus());
  EXPECT_TRUE(r.Ready());
  kafka = false;
  EXPECT_THAT(r.Problems(), ElementsAre("kafka: the cluster does not answer"));
  r.Report("store", absl::FailedPreconditionError("fenced: another instance took over"));
  EXPECT_THAT(r.Problems(), ElementsAre("kafka: the cluster does not answer",
                                        "store: fenced: another instance took over"));
  nlohmann::json checks = r.Checks();
  EXPECT_EQ(checks["kafka"]["ok"], false);
  EXPECT_EQ(checks["store"]["message"], "fenced: another instance took over");
  EXPECT_TRUE(checks["store"]["since"].is_string());
  kafka = true;
  r.Report("store", absl::OkStatus());
  EXPECT_TRUE(r.Ready());
}

class OpsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    readiness_.AddCheck("schemas", [this] {
      return schemas_ok_ ? absl::OkStatus()
                         : absl::UnavailableError("not every dataset's schema is known");
    });
    auto ops = OpsServer::Create(
        OpsOptions{}, &readiness_,
        [] {
          return nlohmann::json{{"role", "primary"}, {"epoch", 3}};
        },
        [] { return std::string("# TYPE polder_up gauge\npolder_up 1\n"); });
    ASSERT_OK(ops.status());
    ops_ = *std::move(ops);
    ASSERT_OK(ops_->Start());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", ops_->port());
  }
  void TearDown() override {
    if (ops_ != nullptr) ops_->Stop();
  }

  Readiness readiness_;
  std::atomic<bool> schemas_ok_{true};
  std::unique_ptr<OpsServer> ops_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(OpsServerTest, ServesLivenessReadinessStatusAndMetrics) {
  auto live = client_->Get("/livez");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  auto ready = client_->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(nlohmann::json::parse(ready->body)["ready"], true);

  schemas_ok_ = false;
  ready = client_->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(nlohmann::json::parse(ready->body)["problems"],
            nlohmann::json::array({"schemas: not every dataset's schema is known"}));
  auto live_anyway = client_->Get("/livez");
  ASSERT_TRUE(live_anyway);
  EXPECT_EQ(live_anyway->status, 200) << "unready is not dead";

  auto status = client_->Get("/statusz");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->status, 200);
  nlohmann::json doc = nlohmann::json::parse(status->body);
  EXPECT_EQ(doc["role"], "primary") << "the service's own fields";
  EXPECT_EQ(doc["epoch"], 3);
  EXPECT_EQ(doc["ready"], false);
  EXPECT_EQ(doc["checks"]["schemas"]["ok"], false);

  auto metrics = client_->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->get_header_value("Content-Type"), HasSubstr("version=0.0.4"));
  EXPECT_THAT(metrics->body, HasSubstr("polder_up 1"));
}

TEST_F(OpsServerTest, UnknownPathsAndMethodsAreRefused) {
  auto missing = client_->Get("/debug/pprof");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto post = client_->Post("/readyz", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_TRUE(post->status == 405 || post->status == 413) << post->status;
}

TEST(OpsServerListenTest, ListensOnTheConfiguredAddressAndNamesAMalformedOne) {
  Readiness readiness;
  auto status = [] { return nlohmann::json::object(); };
  auto metrics = [] { return std::string(); };
  EXPECT_THAT(OpsServer::Listen("no-port", "node.ops_address", &readiness, status, metrics),
              polder::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("node.ops_address: expected host:port")));
  absl::StatusOr<std::unique_ptr<OpsServer>> ops =
      OpsServer::Listen("127.0.0.1:0", "node.ops_address", &readiness, status, metrics);
  ASSERT_TRUE(ops.ok()) << ops.status();
  httplib::Client client("127.0.0.1", (*ops)->port());
  auto live = client.Get("/livez");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  (*ops)->Stop();
}

}  // namespace
}  // namespace server
}  // namespace polder
