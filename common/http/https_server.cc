#include "common/http/https_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <regex>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log/log.h"
#include "common/status/http_status.h"
#include "common/status/status_macros.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace http {
namespace {

std::string FileStamp(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":", st.st_size, ":", st.st_ino);
}

std::string ToPem(X509* x) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

// The client's chain as PEM, leaf first (on a server, OpenSSL's peer chain lacks the leaf).
std::string PeerChainPem(const SSL* ssl) {
  if (ssl == nullptr) return "";
  std::string pem;
  X509* leaf = SSL_get1_peer_certificate(ssl);
  if (leaf == nullptr) return "";
  pem = ToPem(leaf);
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    X509* c = sk_X509_value(chain, i);
    if (X509_cmp(c, leaf) != 0) pem += ToPem(c);
  }
  X509_free(leaf);
  return pem;
}

// Any presented certificate completes the handshake; each request is then admitted or refused
// with a reason by IdentityChecker (a handshake failure could not say why).
int AcceptChainForLaterCheck(X509_STORE_CTX*, void*) { return 1; }

// The request line and headers.
HttpRequest Head(const httplib::Request& req, const std::string& method) {
  HttpRequest r;
  r.method = method;
  r.path = req.path;
  for (const auto& [k, v] : req.params) r.query.emplace(k, v);
  for (const auto& [k, v] : req.headers) r.headers.emplace(k, v);
  return r;
}

// After a refusal on the headers: a small body (Content-Length up to kDiscardBytes) is read
// and dropped unparsed, within kDiscardTime, so the client reads the refusal and the connection
// stays in step; anything else (larger, chunked, too slow) has the connection's read side shut,
// which ends it once the refusal is written.
constexpr int64_t kDiscardBytes = 1 << 20;
constexpr absl::Duration kDiscardTime = absl::Seconds(2);

void DiscardOrShut(SSL* ssl, const httplib::Request& req) {
  const int fd = SSL_get_fd(ssl);
  if (fd < 0) return;
  int64_t left = 0;  // no Content-Length and no Transfer-Encoding: no body
  const std::string length = req.get_header_value("Content-Length");
  const bool sized = !req.has_header("Transfer-Encoding") &&
                     (length.empty() || (absl::SimpleAtoi(length, &left) && left >= 0 && left <= kDiscardBytes));
  const absl::Time deadline = absl::Now() + kDiscardTime;
  char buf[16 << 10];
  while (sized && left > 0) {
    if (SSL_pending(ssl) == 0) {
      pollfd p{fd, POLLIN, 0};
      const int wait = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (wait <= 0 || poll(&p, 1, wait) <= 0) break;
    }
    const int n = SSL_read(ssl, buf, static_cast<int>(std::min<int64_t>(left, sizeof buf)));
    if (n <= 0) break;
    left -= n;
  }
  if (!sized || left > 0) shutdown(fd, SHUT_RD);
}

}  // namespace

std::string HttpRequest::HeaderValue(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

HttpResponse HttpResponse::Error(const absl::Status& status) {
  HttpResponse r;
  r.status = HttpStatusCode(status.code());
  nlohmann::json body = {{"error",
                          {{"code", absl::StatusCodeToString(status.code())},
                           {"message", std::string(status.message())}}}};
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse HttpResponse::Json(int status, const std::string& json_body) {
  HttpResponse r;
  r.status = status;
  r.body = json_body;
  return r;
}

struct HttpsServer::Impl {
  explicit Impl(tls::TlsFiles f) : files(std::move(f)) {}

  // Installs the current certificate and key on `ssl`, re-reading the files if they changed.
  bool UseCurrentIdentity(SSL* ssl) {
    std::string stamp = FileStamp(files.cert_path) + "|" + FileStamp(files.key_path);
    absl::MutexLock lock(&mu);
    if (stamp != loaded_stamp) Load(stamp);
    if (cert == nullptr || key == nullptr) return false;
    return SSL_use_cert_and_key(ssl, cert, key, chain, 1) == 1;
  }

  // Reads certificate (leaf + chain) and key; keeps the previous pair if the new one is
  // incomplete (e.g. read between the two files of a non-atomic rotation).
  void Load(const std::string& stamp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    FILE* cf = fopen(files.cert_path.c_str(), "r");
    FILE* kf = fopen(files.key_path.c_str(), "r");
    X509* new_cert = cf != nullptr ? PEM_read_X509(cf, nullptr, nullptr, nullptr) : nullptr;
    STACK_OF(X509)* new_chain = sk_X509_new_null();
    while (cf != nullptr) {
      X509* extra = PEM_read_X509(cf, nullptr, nullptr, nullptr);
      if (extra == nullptr) break;
      sk_X509_push(new_chain, extra);
    }
    EVP_PKEY* new_key = kf != nullptr ? PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr) : nullptr;
    if (cf != nullptr) fclose(cf);
    if (kf != nullptr) fclose(kf);
    ERR_clear_error();
    if (new_cert == nullptr || new_key == nullptr || X509_check_private_key(new_cert, new_key) != 1) {
      ERR_clear_error();
      log::Warning("HTTPS certificate or key unreadable or mismatched; keeping the previous pair",
                   {{"cert_file", files.cert_path}, {"key_file", files.key_path}});
      X509_free(new_cert);
      EVP_PKEY_free(new_key);
      sk_X509_pop_free(new_chain, X509_free);
      return;
    }
    Release();
    cert = new_cert;
    key = new_key;
    chain = new_chain;
    loaded_stamp = stamp;
  }

  void Release() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    X509_free(cert);
    EVP_PKEY_free(key);
    if (chain != nullptr) sk_X509_pop_free(chain, X509_free);
    cert = nullptr;
    key = nullptr;
    chain = nullptr;
  }

  ~Impl() {
    server.reset();
    absl::MutexLock lock(&mu);
    Release();
  }

  static int CertCallback(SSL* ssl, void* arg) {
    return static_cast<Impl*>(arg)->UseCurrentIdentity(ssl) ? 1 : 0;
  }

  const tls::TlsFiles files;
  absl::Mutex mu;
  std::string loaded_stamp ABSL_GUARDED_BY(mu);
  X509* cert ABSL_GUARDED_BY(mu) = nullptr;
  EVP_PKEY* key ABSL_GUARDED_BY(mu) = nullptr;
  STACK_OF(X509)* chain ABSL_GUARDED_BY(mu) = nullptr;
  std::unique_ptr<httplib::Server> server;  // an httplib::SSLServer unless plaintext
};

HttpsServer::HttpsServer(HttpsOptions options, std::shared_ptr<const tls::IdentityChecker> checker)
    : options_(std::move(options)), checker_(std::move(checker)) {}

HttpsServer::~HttpsServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpsServer>> HttpsServer::Create(
    HttpsOptions options, std::shared_ptr<const tls::IdentityChecker> checker) {
  if (options.plaintext_development) {
    log::Warning("HTTP server in development mode: plaintext, no client identities",
                 {{"bind_address", options.bind_address}, {"port", options.port}});
    std::unique_ptr<HttpsServer> s(new HttpsServer(std::move(options), nullptr));
    s->impl_ = std::make_unique<Impl>(s->options_.files);
    s->impl_->server = std::make_unique<httplib::Server>();
    s->impl_->server->set_payload_max_length(s->options_.max_body_bytes);
    s->impl_->server->set_tcp_nodelay(true);
    return s;
  }
  if (checker == nullptr && options.client_auth != ClientAuth::kNone) {
    return absl::InvalidArgumentError("HTTPS server needs an identity checker");
  }
  std::unique_ptr<HttpsServer> s(new HttpsServer(std::move(options), std::move(checker)));
  s->impl_ = std::make_unique<Impl>(s->options_.files);
  {
    absl::MutexLock lock(&s->impl_->mu);
    s->impl_->Load("initial");
    if (s->impl_->cert == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "HTTPS certificate '", s->options_.files.cert_path, "' and key '",
          s->options_.files.key_path, "' cannot be read or do not match"));
    }
    s->impl_->loaded_stamp = FileStamp(s->options_.files.cert_path) + "|" +
                             FileStamp(s->options_.files.key_path);
  }
  Impl* impl = s->impl_.get();
  const ClientAuth client_auth = s->options_.client_auth;
  auto ssl_server = std::make_unique<httplib::SSLServer>([impl, client_auth](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    SSL_CTX_set_cert_cb(&ctx, &Impl::CertCallback, impl);
    if (client_auth == ClientAuth::kNone) {
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_NONE, nullptr);
    } else {
      SSL_CTX_set_verify(&ctx,
                         client_auth == ClientAuth::kRequired ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                              : SSL_VERIFY_PEER,
                         nullptr);
      SSL_CTX_set_cert_verify_callback(&ctx, &AcceptChainForLaterCheck, nullptr);
    }
    return true;
  });
  if (!ssl_server->is_valid()) return absl::InternalError("cannot set up the HTTPS server's TLS context");
  impl->server = std::move(ssl_server);
  impl->server->set_payload_max_length(s->options_.max_body_bytes);
  // Small request/response pairs on kept-alive connections: without TCP_NODELAY, Nagle and
  // delayed ACKs add ~40 ms to every exchange.
  impl->server->set_tcp_nodelay(true);
  // httplib closes a kept-alive connection after 5 requests by default; clients (httplib's own
  // among them) then fail their next write instead of reconnecting.
  impl->server->set_keep_alive_max_count(1000);
  impl->server->set_keep_alive_timeout(5);
  // Each kept-alive connection occupies a worker; more workers than httplib's default (8).
  impl->server->new_task_queue = [] { return new httplib::ThreadPool(32); };
  impl->server->set_read_timeout(std::chrono::milliseconds(absl::ToInt64Milliseconds(s->options_.read_timeout)));
  impl->server->set_write_timeout(std::chrono::milliseconds(absl::ToInt64Milliseconds(s->options_.write_timeout)));
  return s;
}

struct HttpsServer::Route {
  std::string method;
  std::regex path;
  Gate gate;
};

absl::StatusOr<tls::PeerIdentity> HttpsServer::Identify(const void* ssl_ptr) const {
  if (options_.plaintext_development) return tls::PeerIdentity{"development", "", "", "", absl::InfiniteFuture()};
  if (options_.client_auth == ClientAuth::kNone) return tls::PeerIdentity{"", "", "", "", absl::InfiniteFuture()};
  std::string chain = PeerChainPem(static_cast<const SSL*>(ssl_ptr));
  if (chain.empty() && options_.client_auth == ClientAuth::kOptional) {
    return tls::PeerIdentity{"", "", "", "", absl::InfiniteFuture()};  // no certificate: no identity
  }
  return checker_->Check(chain);
}

void HttpsServer::Handle(const std::string& method, const std::string& path_regex, Handler handler, Gate gate) {
  routes_.push_back(Route{method, std::regex(path_regex), std::move(gate)});
  // The certificate and the gate were checked before the body (see Start); the handler needs
  // the identity again (httplib passes nothing from one stage to the next).
  auto wrapped = [this, handler, method](const httplib::Request& req, httplib::Response& res) {
    HttpResponse out;
    absl::StatusOr<tls::PeerIdentity> peer = Identify(req.ssl);
    if (!peer.ok()) {
      out = Refusal(peer.status(), req.path);
    } else {
      HttpRequest r = Head(req, method);
      for (size_t i = 1; i < req.matches.size(); ++i) r.path_params.push_back(req.matches[i].str());
      r.body = req.body;
      out = handler(r, *peer);
    }
    res.status = out.status;
    res.set_content(out.body, out.content_type.c_str());
  };
  httplib::Server& s = *impl_->server;
  if (method == "GET") {
    s.Get(path_regex, wrapped);
  } else if (method == "POST") {
    s.Post(path_regex, wrapped);
  } else if (method == "PUT") {
    s.Put(path_regex, wrapped);
  } else if (method == "DELETE") {
    s.Delete(path_regex, wrapped);
  }
}

HttpResponse HttpsServer::Refusal(const absl::Status& status, const std::string& path) const {
  log::Warning("HTTPS request refused", {{"reason", std::string(status.message())}, {"path", path}});
  return options_.refusal_formatter ? options_.refusal_formatter(status) : HttpResponse::Error(status);
}

absl::Status HttpsServer::Start() {
  httplib::Server& s = *impl_->server;
  // Before the body: the client certificate and the route's gate. A refused request is answered
  // at once and its connection's read side shut, so the body is never read (nor the next
  // request on that connection parsed from it).
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const Route* route = nullptr;
    for (const Route& r : routes_) {
      if (r.method == req.method && std::regex_match(req.path, r.path)) {
        route = &r;
        break;
      }
    }
    if (route == nullptr) return httplib::Server::HandlerResponse::Unhandled;
    absl::StatusOr<tls::PeerIdentity> peer = Identify(req.ssl);
    absl::Status admitted = peer.status();
    if (peer.ok() && route->gate) admitted = route->gate(Head(req, req.method), *peer);
    if (admitted.ok()) return httplib::Server::HandlerResponse::Unhandled;
    HttpResponse out = Refusal(admitted, req.path);
    res.status = out.status;
    res.set_content(out.body, out.content_type.c_str());
    if (req.ssl != nullptr) DiscardOrShut(const_cast<SSL*>(req.ssl), req);
    return httplib::Server::HandlerResponse::Handled;
  });
  if (options_.port == 0) {
    port_ = s.bind_to_any_port(options_.bind_address);
  } else {
    port_ = s.bind_to_port(options_.bind_address, options_.port) ? options_.port : -1;
  }
  if (port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot bind HTTPS server to ", options_.bind_address,
                                               ":", options_.port));
  }
  thread_ = std::thread([&s] { s.listen_after_bind(); });
  return absl::OkStatus();
}

void HttpsServer::Stop() {
  if (impl_ != nullptr && impl_->server != nullptr) impl_->server->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace http
}  // namespace polder
