// mTLS between a test gRPC service and its clients over real sockets, with certificates made
// at test time: who is admitted, who is refused and why, live re-checks, rotation, TLS versions.
#include "common/tls/grpc_tls.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "common/status/status_matchers.h"
#include "common/testing/commands.h"
#include "common/tls/ca.h"
#include "common/tls/certificate.h"
#include "common/tls/identity.h"
#include "common/tls/test_federation.h"
#include "common/trust/keys.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "proto/polder/testing/v1/echo.grpc.pb.h"

namespace polder {
namespace tls {
namespace {

namespace fs = std::filesystem;
using ::polder::testing::StatusIs;
using ::polder::testing::v1::EchoRequest;
using ::polder::testing::v1::EchoResponse;
using ::polder::testing::v1::EchoService;
using ::polder::testing::v1::Tick;
using ::polder::testing::v1::TicksRequest;
using ::testing::HasSubstr;

std::string TmpDir() { return std::getenv("TEST_TMPDIR"); }

class EchoImpl final : public EchoService::Service {
 public:
  explicit EchoImpl(std::shared_ptr<const IdentityChecker> checker)
      : checker_(std::move(checker)) {}

  grpc::Status Echo(grpc::ServerContext* context, const EchoRequest* request,
                    EchoResponse* response) override {
    absl::StatusOr<PeerIdentity> peer = CallPeer(*context);
    if (!peer.ok()) return ToGrpcStatus(peer.status());
    // How many identities the connection's auth context holds (it is shared by its calls).
    const size_t identities = context->auth_context()->GetPeerIdentity().size();
    for (size_t seen = most_identities_.load();
         identities > seen && !most_identities_.compare_exchange_weak(seen, identities);) {
    }
    response->set_text(request->text());
    response->set_peer_id(peer->peer_id);
    response->set_client_cert_serial(peer->serial_hex);
    return grpc::Status::OK;
  }

  size_t most_identities() const { return most_identities_.load(); }

  grpc::Status Ticks(grpc::ServerContext* context, const TicksRequest* request,
                     grpc::ServerWriter<Tick>* writer) override {
    for (int64_t seq = 1; request->count() == 0 || seq <= request->count(); ++seq) {
      if (context->IsCancelled()) return grpc::Status::CANCELLED;
      // The peer is checked again before every tick: expiry, revocation, directory.
      absl::StatusOr<PeerIdentity> peer = RecheckCallPeer(*context, *checker_);
      if (!peer.ok()) return ToGrpcStatus(peer.status());
      Tick tick;
      tick.set_seq(seq);
      if (!writer->Write(tick)) return grpc::Status::CANCELLED;
      std::this_thread::sleep_for(std::chrono::milliseconds(request->interval_ms()));
    }
    return grpc::Status::OK;
  }

 private:
  std::shared_ptr<const IdentityChecker> checker_;
  std::atomic<size_t> most_identities_{0};
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = TmpDir() + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fed_ = std::make_unique<TestFederation>(base_);
    bundle_ = fed_->bundle_path();
    issuing_ = &fed_->issuing();
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  }

  KeyAndCert Issue(const std::string& peer_id, PeerCertOptions o = {}) {
    return fed_->Issue(peer_id, o);
  }
  void Admit(const std::string& peer_id, const KeyAndCert& kc) { fed_->Admit(peer_id, kc); }
  void Revoke(const KeyAndCert& kc) { fed_->Revoke(kc); }
  std::shared_ptr<IdentityChecker> Checker() { return fed_->Checker(); }
  TlsFiles Client(const std::string& name, const KeyAndCert& kc,
                  const std::string& chain_tail = "") {
    return fed_->WriteIdentity(name, kc, chain_tail);
  }

  void StartServer(const TlsFiles& files) {
    checker_ = Checker();
    service_ = std::make_unique<EchoImpl>(checker_);
    ASSERT_OK_AND_ASSIGN(auto creds, MakeServerCredentials(files, checker_));
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", creds, &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  std::unique_ptr<EchoService::Stub> Stub(std::shared_ptr<grpc::ChannelCredentials> creds) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // A fresh connection per channel.
    return EchoService::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("localhost:", port_), creds, args));
  }

  absl::StatusOr<EchoResponse> CallAs(const TlsFiles& files, std::string* server_serial = nullptr) {
    ASSIGN_OR_RETURN(auto creds, MakeChannelCredentials(files, Checker(), "groningen"));
    auto stub = Stub(creds);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    EchoRequest req;
    req.set_text("hallo");
    EchoResponse resp;
    grpc::Status s = stub->Echo(&ctx, req, &resp);
    if (!s.ok()) return FromGrpcStatus(s);
    if (server_serial != nullptr && ctx.auth_context() != nullptr) {
      absl::StatusOr<CertificateInfo> info = ParseCertificate(PeerChainPem(*ctx.auth_context()));
      if (info.ok()) *server_serial = info->serial_hex;
    }
    return resp;
  }

  // A server for groningen.
  void StartGroningen() {
    KeyAndCert server = Issue("groningen");
    Admit("groningen", server);
    StartServer(Client("groningen", server));
  }

  std::string base_;
  std::string bundle_;
  std::unique_ptr<TestFederation> fed_;
  const KeyAndCert* issuing_ = nullptr;
  std::shared_ptr<IdentityChecker> checker_;
  std::unique_ptr<EchoImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(TlsTest, ListedPeerIsAdmittedWithItsIdentity) {
  StartGroningen();
  KeyAndCert amersfoort = Issue("amersfoort");
  Admit("amersfoort", amersfoort);
  ASSERT_OK_AND_ASSIGN(EchoResponse r, CallAs(Client("amersfoort", amersfoort)));
  EXPECT_EQ(r.text(), "hallo");
  EXPECT_EQ(r.peer_id(), "amersfoort");
  EXPECT_EQ(r.client_cert_serial(), ParseCertificate(amersfoort.cert_pem)->serial_hex);
}

// gRPC gives the admission the connection's auth context, shared by all its calls, and admits
// concurrent calls of one connection on several threads: the identity is added once (not three
// properties per call, racing with the other calls' reads — which crashed a node under a flood
// of streams), and every call still sees it.
TEST_F(TlsTest, ConcurrentCallsOnOneConnectionShareOneAdmittedIdentity) {
  StartGroningen();
  KeyAndCert amersfoort = Issue("amersfoort");
  Admit("amersfoort", amersfoort);
  ASSERT_OK_AND_ASSIGN(
      auto creds, MakeChannelCredentials(Client("amersfoort", amersfoort), Checker(), "groningen"));
  auto stub = Stub(creds);  // one channel: one connection for every call below
  std::atomic<int> ok{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
        EchoRequest req;
        req.set_text("hallo");
        EchoResponse resp;
        if (stub->Echo(&ctx, req, &resp).ok()) {
          ++(resp.peer_id() == "amersfoort" ? ok : wrong);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(service_->most_identities(), 1u) << "one identity per connection, however many calls";
}

TEST_F(TlsTest, HandshakeRefusesCertificatesThatDoNotChainOrAreOutOfDate) {
  StartGroningen();
  KeyAndCert amersfoort = Issue("amersfoort");
  Admit("amersfoort", amersfoort);
  std::shared_ptr<IdentityChecker> checker = Checker();

  // A foreign federation's CA (same key as the admitted certificate: only the CA differs).
  KeyAndCert foreign_root = *CreateRootCa({"Foreign root", "Elsewhere"});
  KeyAndCert foreign_issuing = *CreateIssuingCa(foreign_root, {"Foreign issuing CA", "Elsewhere"});
  PeerCertOptions same_key;
  same_key.federation = kTestFederation;
  same_key.peer_id = "amersfoort";
  same_key.dns_names = {"localhost"};
  same_key.key_pem = amersfoort.key_pem;
  KeyAndCert foreign = *IssuePeerCertificate(foreign_issuing, same_key);
  // An "evil CA": the genuine CAs' names, other keys.
  KeyAndCert evil_root = *CreateRootCa({"Polder test federation root", "Polder"});
  KeyAndCert evil_issuing = *CreateIssuingCa(evil_root, {"Polder test issuing CA", "Polder"});
  KeyAndCert evil = *IssuePeerCertificate(evil_issuing, same_key);
  // Expired an hour ago, and valid only from an hour from now.
  PeerCertOptions old_opts = same_key;
  old_opts.now = absl::Now() - absl::Hours(2);
  old_opts.validity = absl::Hours(1);
  KeyAndCert expired = *IssuePeerCertificate(*issuing_, old_opts);
  PeerCertOptions future_opts = same_key;
  future_opts.now = absl::Now() + absl::Hours(1);
  future_opts.backdate = absl::ZeroDuration();
  KeyAndCert future = *IssuePeerCertificate(*issuing_, future_opts);

  struct Case {
    const char* name;
    KeyAndCert kc;
    std::string chain_tail;
    const char* reason;
  } cases[] = {
      {"foreign", foreign, foreign_issuing.cert_pem, "not issued by a trusted federation CA"},
      {"evil", evil, evil_issuing.cert_pem, "not issued by a trusted federation CA"},
      {"expired", expired, issuing_->cert_pem, "expired at"},
      {"future", future, issuing_->cert_pem, "is not valid before"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(CallAs(Client(c.name, c.kc, c.chain_tail)),
                StatusIs(absl::StatusCode::kUnavailable));
    // The reason the handshake refused it, as the identity checker states it.
    EXPECT_THAT(checker->Check(c.kc.cert_pem + c.chain_tail),
                StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr(c.reason)));
  }
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefused) {
  StartGroningen();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(bundle_, 1);
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  auto stub = Stub(grpc::experimental::TlsCredentials(options));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  EchoRequest req;
  EchoResponse resp;
  grpc::Status s = stub->Echo(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(TlsTest, AdmissionRefusesRevokedUnlistedKeysAndUnknownPeersWithReasons) {
  StartGroningen();
  KeyAndCert amersfoort = Issue("amersfoort");
  KeyAndCert revoked = Issue("amersfoort");
  Admit("amersfoort", amersfoort);
  Admit("amersfoort", revoked);
  KeyAndCert unlisted_key = Issue("amersfoort");  // Valid certificate, key not in the directory.
  KeyAndCert enschede = Issue("enschede");        // Not in the directory at all.
  Revoke(revoked);

  EXPECT_THAT(CallAs(Client("revoked", revoked)),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("has been revoked")));
  EXPECT_THAT(
      CallAs(Client("unlisted", unlisted_key)),
      StatusIs(absl::StatusCode::kPermissionDenied,
               HasSubstr("is not one the directory (serial 4) lists for peer 'amersfoort'")));
  EXPECT_THAT(CallAs(Client("enschede", enschede)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("peer 'enschede' is not in the federation directory")));
  EXPECT_OK(CallAs(Client("amersfoort", amersfoort)).status()) << "the others are unaffected";
}

TEST_F(TlsTest, LiveStreamEndsWhenItsPeerIsRevoked) {
  StartGroningen();
  KeyAndCert amersfoort = Issue("amersfoort");
  Admit("amersfoort", amersfoort);
  ASSERT_OK_AND_ASSIGN(
      auto creds, MakeChannelCredentials(Client("amersfoort", amersfoort), Checker(), "groningen"));
  auto stub = Stub(creds);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  TicksRequest req;
  req.set_interval_ms(50);
  auto reader = stub->Ticks(&ctx, req);
  Tick tick;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(reader->Read(&tick));
  Revoke(amersfoort);
  int after = 0;
  while (reader->Read(&tick)) ++after;  // Ends once the server's re-check sees the CRL.
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("has been revoked"));
  EXPECT_LT(after, 20) << "the stream must end within a few ticks of the revocation";
}

TEST_F(TlsTest, RotatedCertificatesArePickedUpWhileStreamsContinue) {
  // Key and certificate live in a versioned folder behind a symlink, swapped atomically.
  auto install = [&](const std::string& who, const std::string& version, const KeyAndCert& kc) {
    fed_->WriteIdentity(absl::StrCat(who, "-", version), kc);
    std::string link = absl::StrCat(base_, "/", who);
    std::string tmp = link + ".new";
    fs::remove(tmp);
    fs::create_directory_symlink(absl::StrCat(base_, "/", who, "-", version), tmp);
    fs::rename(tmp, link);
  };
  auto files = [&](const std::string& who) {
    TlsFiles f;
    f.cert_path = absl::StrCat(base_, "/", who, "/cert.pem");
    f.key_path = absl::StrCat(base_, "/", who, "/key.pem");
    f.trust_bundle_path = bundle_;
    f.refresh_interval = absl::Seconds(1);
    return f;
  };
  KeyAndCert server_v1 = Issue("groningen"), server_v2 = Issue("groningen");
  KeyAndCert client_v1 = Issue("amersfoort"), client_v2 = Issue("amersfoort");
  for (const auto* kc : {&server_v1, &server_v2}) Admit("groningen", *kc);
  for (const auto* kc : {&client_v1, &client_v2}) Admit("amersfoort", *kc);
  install("groningen", "v1", server_v1);
  install("amersfoort", "v1", client_v1);
  StartServer(files("groningen"));
  const std::string s1 = ParseCertificate(server_v1.cert_pem)->serial_hex;
  const std::string s2 = ParseCertificate(server_v2.cert_pem)->serial_hex;
  const std::string c1 = ParseCertificate(client_v1.cert_pem)->serial_hex;
  const std::string c2 = ParseCertificate(client_v2.cert_pem)->serial_hex;

  // One long-lived channel with a running stream, from the client whose files rotate too.
  ASSERT_OK_AND_ASSIGN(auto creds,
                       MakeChannelCredentials(files("amersfoort"), Checker(), "groningen"));
  auto stream_stub = Stub(creds);
  grpc::ClientContext stream_ctx;
  stream_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(90)));
  TicksRequest req;
  req.set_interval_ms(20);
  auto reader = stream_stub->Ticks(&stream_ctx, req);
  Tick tick;
  ASSERT_TRUE(reader->Read(&tick));
  std::string server_serial;
  ASSERT_OK_AND_ASSIGN(EchoResponse before, CallAs(files("amersfoort"), &server_serial));
  EXPECT_EQ(server_serial, s1);
  EXPECT_EQ(before.client_cert_serial(), c1);
  const pid_t pid = getpid();

  install("groningen", "v2", server_v2);
  install("amersfoort", "v2", client_v2);
  // New handshakes present the new certificates once the watchers have seen the files
  // (refresh interval 1 s; bounded wait).
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  EchoResponse after;
  do {
    absl::SleepFor(absl::Milliseconds(200));
    absl::StatusOr<EchoResponse> r = CallAs(files("amersfoort"), &server_serial);
    ASSERT_OK(r.status());
    after = *r;
  } while ((server_serial != s2 || after.client_cert_serial() != c2) && absl::Now() < deadline);
  EXPECT_EQ(server_serial, s2);
  EXPECT_EQ(after.client_cert_serial(), c2);
  EXPECT_EQ(getpid(), pid) << "same process: no restart";

  // The stream opened before the rotation still runs.
  int64_t last = tick.seq();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(reader->Read(&tick)) << "stream broke after rotation";
    EXPECT_GT(tick.seq(), last);
    last = tick.seq();
  }
  stream_ctx.TryCancel();
  reader->Finish();
}

// Runs openssl s_client against the server with one TLS version and returns its output.
std::string SClient(int port, const std::string& version, const TlsFiles& client) {
  std::string cmd =
      absl::StrCat("openssl s_client -connect 127.0.0.1:", port, " ", version,
                   " -alpn h2 -brief -cert ", client.cert_path, " -cert_chain ", client.cert_path,
                   " -key ", client.key_path, " -CAfile ", client.trust_bundle_path, " </dev/null");
  std::string out;
  polder::testing::RunCommand(cmd, &out);
  return out;
}

TEST_F(TlsTest, NegotiatesTls12AndTls13AsSeenFromOutside) {
  StartGroningen();
  KeyAndCert amersfoort = Issue("amersfoort");
  Admit("amersfoort", amersfoort);
  TlsFiles client = Client("amersfoort", amersfoort);
  EXPECT_THAT(SClient(port_, "-tls1_2", client), HasSubstr("Protocol version: TLSv1.2"));
  EXPECT_THAT(SClient(port_, "-tls1_3", client), HasSubstr("Protocol version: TLSv1.3"));
}

}  // namespace
}  // namespace tls
}  // namespace polder
