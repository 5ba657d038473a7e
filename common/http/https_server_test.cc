// The HTTPS server over real sockets: client-certificate identity, refusals with reasons,
// certificate rotation without a restart, TLS versions seen from outside.
#include "common/http/https_server.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "common/testing/commands.h"
#include "common/tls/ca.h"
#include "common/tls/certificate.h"
#include "common/tls/test_federation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace http {
namespace {

using ::testing::HasSubstr;
using tls::KeyAndCert;
using tls::TlsFiles;

// Output of `cmd` (stderr included), whatever its exit status.
std::string RunCommand(const std::string& cmd) {
  std::string out;
  testing::RunCommand(cmd, &out);
  return out;
}

class HttpsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fed_ = std::make_unique<tls::TestFederation>(
        std::string(std::getenv("TEST_TMPDIR")) + "/" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }

  void Start(const TlsFiles& files, ClientAuth client_auth = ClientAuth::kRequired) {
    HttpsOptions o;
    o.files = files;
    o.client_auth = client_auth;
    o.max_body_bytes = 1024;
    auto server = HttpsServer::Create(o, fed_->Checker());
    ASSERT_OK(server.status());
    server_ = std::move(*server);
    server_->Handle("GET", "/whoami", [](const HttpRequest&, const tls::PeerIdentity& peer) {
      return HttpResponse::Json(
          200, nlohmann::json{{"peer", peer.peer_id}, {"serial", peer.serial_hex}}.dump());
    });
    server_->Handle(
        "POST", R"(/v1/datasets/([a-z0-9.-]+)/records)",
        [](const HttpRequest& req, const tls::PeerIdentity& peer) {
          if (req.body.empty())
            return HttpResponse::Error(absl::InvalidArgumentError("empty body"));
          return HttpResponse::Json(
              200, nlohmann::json{{"dataset", req.path_params.at(0)}, {"bytes", req.body.size()}}
                       .dump());
        });
    ASSERT_OK(server_->Start());
  }

  // curl is not assumed; httplib's own client with the given identity.
  httplib::Result Get(const TlsFiles* client, const std::string& path) {
    std::unique_ptr<httplib::SSLClient> c =
        client != nullptr ? std::make_unique<httplib::SSLClient>(
                                "127.0.0.1", server_->port(), client->cert_path, client->key_path)
                          : std::make_unique<httplib::SSLClient>("127.0.0.1", server_->port());
    // Present the whole chain (leaf + issuing CA), as curl or a JVM client does with cert.pem.
    if (client != nullptr)
      SSL_CTX_use_certificate_chain_file(c->ssl_context(), client->cert_path.c_str());
    c->set_ca_cert_path(fed_->bundle_path().c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(std::chrono::seconds(5));
    return c->Get(path.c_str());
  }

  std::string ServedSerial() {
    std::string out = RunCommand(
        absl::StrCat("openssl s_client -connect 127.0.0.1:", server_->port(), " -CAfile ",
                     fed_->bundle_path(), " </dev/null | openssl x509 -noout -serial"));
    auto pos = out.find("serial=");
    if (pos == std::string::npos) return out;
    std::string s = out.substr(pos + 7);
    s.erase(s.find_last_not_of("\r\n") + 1);
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    s.erase(0, s.find_first_not_of('0'));
    return s;
  }

  std::unique_ptr<tls::TestFederation> fed_;
  std::unique_ptr<HttpsServer> server_;
};

TEST_F(HttpsServerTest, AdmitsListedPeersAndRefusesOthersWithReasons) {
  KeyAndCert server = fed_->Issue("groningen");
  Start(fed_->WriteIdentity("groningen", server));
  KeyAndCert amersfoort = fed_->Issue("amersfoort");
  KeyAndCert revoked = fed_->Issue("amersfoort");
  KeyAndCert unlisted = fed_->Issue("amersfoort");
  KeyAndCert enschede = fed_->Issue("enschede");
  fed_->Admit("amersfoort", amersfoort);
  fed_->Admit("amersfoort", revoked);
  fed_->Revoke(revoked);
  tls::TestFederation foreign(fed_->dir() + "/foreign");
  KeyAndCert stranger = foreign.Issue("amersfoort");

  TlsFiles ok_files = fed_->WriteIdentity("amersfoort", amersfoort);
  auto ok = Get(&ok_files, "/whoami");
  ASSERT_TRUE(ok) << httplib::to_string(ok.error());
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(nlohmann::json::parse(ok->body)["peer"], "amersfoort");

  struct Case {
    const char* name;
    TlsFiles files;
    int status;
    const char* reason;
  } cases[] = {
      {"revoked", fed_->WriteIdentity("revoked", revoked), 401, "has been revoked"},
      {"unlisted", fed_->WriteIdentity("unlisted", unlisted), 403, "is not one the directory"},
      {"enschede", fed_->WriteIdentity("enschede", enschede), 403,
       "'enschede' is not in the federation directory"},
      {"foreign", foreign.WriteIdentity("stranger", stranger), 401,
       "not issued by a trusted federation CA"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = Get(&c.files, "/whoami");
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, c.status);
    auto body = nlohmann::json::parse(r->body);
    EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr(c.reason));
  }
  // Without a client certificate the TLS handshake itself fails.
  auto none = Get(nullptr, "/whoami");
  EXPECT_FALSE(none) << "a request without a client certificate must not get an answer";
}

// kOptional: no certificate reaches the handler without an identity; a presented one is still
// checked. kNone: server-authenticated TLS, no identity asked for.
TEST_F(HttpsServerTest, OptionalAndNoClientCertificates) {
  KeyAndCert server = fed_->Issue("groningen");
  Start(fed_->WriteIdentity("groningen", server), ClientAuth::kOptional);
  auto anonymous = Get(nullptr, "/whoami");
  ASSERT_TRUE(anonymous) << httplib::to_string(anonymous.error());
  EXPECT_EQ(anonymous->status, 200);
  EXPECT_EQ(nlohmann::json::parse(anonymous->body)["peer"], "");
  KeyAndCert amersfoort = fed_->Issue("amersfoort");
  fed_->Admit("amersfoort", amersfoort);
  TlsFiles listed = fed_->WriteIdentity("amersfoort", amersfoort);
  auto known = Get(&listed, "/whoami");
  ASSERT_TRUE(known);
  EXPECT_EQ(nlohmann::json::parse(known->body)["peer"], "amersfoort");
  TlsFiles unlisted = fed_->WriteIdentity("enschede", fed_->Issue("enschede"));
  auto refused = Get(&unlisted, "/whoami");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403) << "a presented certificate is checked even when optional";
  server_->Stop();
  server_.reset();

  HttpsOptions o;
  o.files = fed_->WriteIdentity("groningen-2", fed_->Issue("groningen"));
  o.client_auth = ClientAuth::kNone;
  ASSERT_OK_AND_ASSIGN(server_, HttpsServer::Create(o, nullptr));
  server_->Handle("GET", "/whoami", [](const HttpRequest&, const tls::PeerIdentity& peer) {
    HttpResponse r = HttpResponse::Json(200, nlohmann::json{{"peer", peer.peer_id}}.dump());
    r.headers = {{"Cache-Control", "no-cache"}, {"X-Split", "a\r\nSet-Cookie: x=1"}};
    return r;
  });
  ASSERT_OK(server_->Start());
  auto open = Get(nullptr, "/whoami");
  ASSERT_TRUE(open) << httplib::to_string(open.error());
  EXPECT_EQ(nlohmann::json::parse(open->body)["peer"], "");
  EXPECT_EQ(open->get_header_value("Cache-Control"), "no-cache") << "a handler's own header";
  EXPECT_FALSE(open->has_header("X-Split")) << "a value with CR LF is dropped";
  EXPECT_FALSE(open->has_header("Set-Cookie")) << "so it cannot split the response";
}

TEST_F(HttpsServerTest, RoutesParametersLimitsAndHandlerErrors) {
  KeyAndCert server = fed_->Issue("groningen");
  Start(fed_->WriteIdentity("groningen", server));
  KeyAndCert amersfoort = fed_->Issue("amersfoort");
  fed_->Admit("amersfoort", amersfoort);
  TlsFiles files = fed_->WriteIdentity("amersfoort", amersfoort);
  httplib::SSLClient c("127.0.0.1", server_->port(), files.cert_path, files.key_path);
  SSL_CTX_use_certificate_chain_file(c.ssl_context(), files.cert_path.c_str());
  c.set_ca_cert_path(fed_->bundle_path().c_str());
  c.enable_server_certificate_verification(true);
  auto r = c.Post("/v1/datasets/mobility.bike-counts/records", "[{}]", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(nlohmann::json::parse(r->body)["dataset"], "mobility.bike-counts");
  auto empty = c.Post("/v1/datasets/x.y/records", "", "application/json");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 400);
  EXPECT_EQ(nlohmann::json::parse(empty->body)["error"]["code"], "INVALID_ARGUMENT");
  auto big = c.Post("/v1/datasets/x.y/records", std::string(4096, 'x'), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413) << "bodies over max_body_bytes are refused";
}

TEST_F(HttpsServerTest, RotatedServerCertificateIsServedWithoutRestart) {
  KeyAndCert v1 = fed_->Issue("groningen");
  KeyAndCert v2 = fed_->Issue("groningen");
  TlsFiles files = fed_->WriteIdentity("groningen", v1);
  Start(files);
  EXPECT_EQ(ServedSerial(), tls::ParseCertificate(v1.cert_pem)->serial_hex);
  // Replace key and certificate (each file atomically).
  fed_->WriteIdentity("groningen", v2);
  EXPECT_EQ(ServedSerial(), tls::ParseCertificate(v2.cert_pem)->serial_hex)
      << "a new connection gets the new certificate";
}

TEST_F(HttpsServerTest, NegotiatesTls12AndTls13) {
  KeyAndCert server = fed_->Issue("groningen");
  Start(fed_->WriteIdentity("groningen", server));
  KeyAndCert amersfoort = fed_->Issue("amersfoort");
  TlsFiles c = fed_->WriteIdentity("amersfoort", amersfoort);
  for (const char* v : {"1.2", "1.3"}) {
    std::string out = RunCommand(absl::StrCat(
        "openssl s_client -connect 127.0.0.1:", server_->port(), " -tls",
        std::string(v) == "1.2" ? "1_2" : "1_3", " -brief -cert ", c.cert_path, " -cert_chain ",
        c.cert_path, " -key ", c.key_path, " -CAfile ", fed_->bundle_path(), " </dev/null"));
    EXPECT_THAT(out, HasSubstr(absl::StrCat("Protocol version: TLSv", v)));
  }
  std::string old = RunCommand(absl::StrCat("openssl s_client -connect 127.0.0.1:", server_->port(),
                                            " -tls1_1 -cipher DEFAULT@SECLEVEL=0 -brief -CAfile ",
                                            fed_->bundle_path(), " </dev/null"));
  EXPECT_THAT(old, ::testing::Not(HasSubstr("Protocol version: TLSv1.1"))) << old;
}

}  // namespace
}  // namespace http
}  // namespace polder
