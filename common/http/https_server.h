// Processes that run an HttpsServer must ignore SIGPIPE (TLS writes to a vanished client raise
// it); every Polder main does.
//
// HttpsServer: the HTTP(S) server behind every Polder HTTP listener (ingest, the Confluent-
// compatible registry subset, the node's schema endpoint, the plaintext ops listeners), with the
// same identity rules as gRPC.
//
//   ASSIGN_OR_RETURN(auto server, HttpsServer::Create(options, checker));
//   server->Handle("POST", R"(/v1/datasets/([a-z0-9.-]+)/records)",
//                  [](const HttpRequest& req, const tls::PeerIdentity& peer) -> HttpResponse
//                  {...});
//   RETURN_IF_ERROR(server->Start());   // port() tells where it listens
//
// Server model (ADR 0011): one event-loop thread (libevent) holds every connection — TLS
// handshakes, request heads, bodies, idle keep-alives — and a small pool of workers runs the
// handlers of complete, admitted requests. No connection holds a thread while it handshakes,
// trickles or idles. Each connection has a deadline per phase (the TLS handshake and the
// request head within head_timeout, a body read making progress within read_timeout, an idle
// keep-alive within idle_timeout); a source address holds at most max_connections_per_source
// connections; at max_connections the oldest connection that is not being answered (still in
// its handshake, head or body, or idle) is closed for the new one, so a flood of idle or slow
// connections cannot keep a legitimate client out. Request heads are bounded (max_head_bytes,
// max_headers); bodies by max_body_bytes (413 before the body is read). Handlers run on
// `workers` threads with at most max_queued_requests waiting (503 beyond).
//
// TLS: 1.2 or 1.3; the server certificate and key are read from files and re-read when they
// change, for new connections, without a restart. Client certificates per ClientAuth; a
// presented one is admitted only after IdentityChecker::Check (chain to the current anchors,
// validity, CRLs, peer id, directory thumbprint). A refused request gets 401 (the certificate
// proves no identity) or 403 (the federation does not admit that identity) with a JSON body
// {"error": {"code": "...", "message": "<reason>"}}. Handler errors map through
// HttpStatusCode (common/status). Refusals (certificate, route gate) are decided on the request
// line and headers: the body of a refused request is never read into memory or parsed (the
// connection is closed after the refusal, discarding what the client still sends for a moment so
// it can read the answer).
//
// Long-lived responses (Server-Sent Events, ADR 0019 §4): a route registered with HandleStream
// answers with a head and keeps the connection as a *stream*; whatever the application Send()s
// (from any thread) is written by the loop as HTTP/1.1 chunks when the socket is writable. A
// stream holds a socket, its TLS state and at most max_stream_buffer_bytes of queued output —
// no thread: a reader that falls that far behind, or leaves queued output unsent for
// write_timeout, is closed (slow_streams_closed), never buffered without bound. Streams have
// caps of their own (max_streams, max_streams_per_source; beyond them 503 with Retry-After) and
// do not count against the connection caps, so open streams never keep requests out.
#ifndef POLDER_COMMON_HTTP_HTTPS_SERVER_H_
#define POLDER_COMMON_HTTP_HTTPS_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/tls/grpc_tls.h"
#include "common/tls/identity.h"

namespace polder {
namespace http {

struct HttpRequest {
  std::string method;
  std::string path;
  std::vector<std::string> path_params;  // Regex groups of the route.
  std::multimap<std::string, std::string> query;
  std::multimap<std::string, std::string> headers;  // As received (case as sent).
  std::string body;
  std::string HeaderValue(const std::string& name) const;  // Case-insensitive; "" if absent.
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Further headers (Cache-Control, Content-Disposition, …); a value with CR or LF is dropped.
  std::vector<std::pair<std::string, std::string>> headers;
  // An error response with the JSON error body and the status mapped from `status`.
  static HttpResponse Error(const absl::Status& status);
  static HttpResponse Json(int status, const std::string& json_body);
};

// One answered request, for metrics: `route` is the regex the request matched ("" when it
// matched none or was refused before routing), `status` the HTTP status sent.
struct HttpExchange {
  std::string method;
  std::string route;
  int status = 0;
  absl::Duration latency;  // from the request line to the response queued for writing
};

// Whether clients present certificates. kOptional: a presented certificate is checked as
// usual; without one the handler gets a PeerIdentity with an empty peer_id (and decides, e.g.
// by a bearer token). kNone: server-authenticated TLS only (read-only public endpoints).
enum class ClientAuth { kRequired, kOptional, kNone };

struct HttpsOptions {
  tls::TlsFiles files;  // cert_path, key_path; trust_bundle_path is the checker's business.
  std::string bind_address = "127.0.0.1";
  int port = 0;  // 0: any free port.
  // Largest request body; larger requests get 413 before the body is read.
  size_t max_body_bytes = 4 << 20;
  // A body read must make progress within read_timeout; a response must be written within
  // write_timeout.
  absl::Duration read_timeout = absl::Seconds(10);
  absl::Duration write_timeout = absl::Seconds(10);
  // The TLS handshake and the whole request head (line and headers) within head_timeout of the
  // connection's start, or of the first byte of a later request on a kept-alive connection.
  absl::Duration head_timeout = absl::Seconds(10);
  // A kept-alive connection with no request in progress is closed after idle_timeout.
  absl::Duration idle_timeout = absl::Seconds(60);
  size_t max_head_bytes = 16 << 10;
  int max_headers = 100;
  int max_connections = 4096;
  int max_connections_per_source = 256;
  // false: the per-source caps (max_connections_per_source, max_streams_per_source) are not
  // applied — for a listener behind a proxy, where every client has the proxy's address. The
  // listener-wide caps (max_connections, max_streams) still hold. A service sets it only from an
  // explicit configuration key, and logs it at start.
  bool per_source_limits = true;
  // The listener's name in log lines (e.g. "ingest-https").
  std::string listener = "https";
  int max_requests_per_connection = 10000;
  // Long-lived streams (HandleStream): at most max_streams open (and being opened) on the
  // listener, max_streams_per_source from one source address; beyond them 503 + Retry-After.
  // A stream whose queued output passes max_stream_buffer_bytes is closed.
  int max_streams = 1000;
  int max_streams_per_source = 16;
  size_t max_stream_buffer_bytes = 256 << 10;
  // Headers added to every response of this listener (e.g. Content-Security-Policy); a
  // handler's header of the same name is sent as well, so set each in one place.
  std::vector<std::pair<std::string, std::string>> response_headers;
  int workers = 16;
  int max_queued_requests = 1024;
  // Formats a refused request (401/403). Default: HttpResponse::Error. The registry answers
  // in Confluent's error format instead.
  std::function<HttpResponse(const absl::Status&)> refusal_formatter;
  ClientAuth client_auth = ClientAuth::kRequired;
  // Development only: plain HTTP, no identities; every request gets the peer id
  // "development". Never for anything reachable from another organisation.
  bool plaintext_development = false;
  // Called on the loop thread for every response written (keep it cheap: counters).
  std::function<void(const HttpExchange&)> on_response;
  // Plain HTTP without identities for the ops listeners (/metrics, /livez, /readyz, /statusz):
  // nothing secret, inside the cluster. Handlers get an empty peer id.
  bool plaintext = false;
};

// What a listener holds and has refused, since start.
struct HttpsServerStats {
  int64_t open_connections = 0;
  int64_t accepted = 0;
  int64_t refused_per_source = 0;   // over max_connections_per_source
  int64_t evicted = 0;              // closed for a newer connection at max_connections
  int64_t timed_out = 0;            // a handshake, head, body or idle deadline passed
  int64_t overloaded = 0;           // 503: max_queued_requests waiting
  int64_t open_streams = 0;         // long-lived streams open now
  int64_t refused_streams = 0;      // 503: max_streams or max_streams_per_source reached
  int64_t slow_streams_closed = 0;  // a stream's reader fell behind (buffer bound or write_timeout)
};

class HttpsServer;

// The sending end of a long-lived response (HandleStream). Thread-safe; shared by the listener
// and the application, it outlives its connection: once the connection is gone (the client
// left, the reader fell behind, the server stopped), Send returns false.
class HttpStream {
 public:
  // Queues `bytes` to be written as one chunk. False when the stream is closed, or the bytes
  // queued would pass max_stream_buffer_bytes (the stream is then closed: a reader that falls
  // behind is dropped, never buffered without bound).
  bool Send(absl::string_view bytes);
  // Ends the response (the last chunk) and closes the connection once written.
  void Close();
  bool open() const;
  // The client's address, as the per-source caps count it.
  const std::string& source() const { return source_; }

 private:
  friend class HttpsServer;
  HttpStream(void* impl, uint64_t conn, std::string source, size_t limit)
      : impl_(impl), conn_(conn), source_(std::move(source)), limit_(limit) {}

  mutable absl::Mutex mu_;
  void* impl_ ABSL_GUARDED_BY(mu_);  // HttpsServer::Impl; null once the connection is gone
  const uint64_t conn_;
  const std::string source_;
  const size_t limit_;
  std::string pending_ ABSL_GUARDED_BY(mu_);  // not yet handed to the connection
  bool scheduled_ ABSL_GUARDED_BY(mu_) = false;
  bool end_ ABSL_GUARDED_BY(mu_) = false;       // Close() was called
  bool overflow_ ABSL_GUARDED_BY(mu_) = false;  // Send passed the bound
};

class HttpsServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&, const tls::PeerIdentity&)>;
  // Admits a request from its request line and headers alone (`head.body` is empty), before
  // the body is read: e.g. a bearer token. A refusal is answered with `refusal_formatter`, the
  // connection is closed and the body is never read or parsed.
  using Gate = std::function<absl::Status(const HttpRequest& head, const tls::PeerIdentity&)>;
  // Answers a stream request on a worker: a 200 response keeps the connection as `stream` (its
  // body, if any, is the first chunk; what the handler Send()s meanwhile follows it), any other
  // status is an ordinary response and the stream is closed. Keep `stream` to send later.
  using StreamHandler = std::function<HttpResponse(const HttpRequest&, const tls::PeerIdentity&,
                                                   const std::shared_ptr<HttpStream>& stream)>;

  // `checker` may be null only with plaintext_development or ClientAuth::kNone.
  static absl::StatusOr<std::unique_ptr<HttpsServer>> Create(
      HttpsOptions options, std::shared_ptr<const tls::IdentityChecker> checker);
  ~HttpsServer();
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  // Routes `method` requests whose path matches `path_regex` (whole path) to `handler`, after
  // `gate` (if any) admitted the request's head. Call before Start. The client certificate is
  // checked before the body is read, for every route.
  void Handle(const std::string& method, const std::string& path_regex, Handler handler,
              Gate gate = nullptr);
  // Routes long-lived responses (Server-Sent Events) under the stream caps.
  void HandleStream(const std::string& method, const std::string& path_regex, StreamHandler handler,
                    Gate gate = nullptr);

  // Binds and serves on a background thread. UNAVAILABLE if the address cannot be bound.
  absl::Status Start();
  // Stops accepting, lets handlers in progress finish and answer, closes every connection.
  void Stop();
  int port() const { return port_; }
  HttpsServerStats stats() const;

 private:
  friend class HttpStream;
  struct Impl;
  struct Route;
  struct Conn;
  HttpsServer(HttpsOptions options, std::shared_ptr<const tls::IdentityChecker> checker);
  absl::StatusOr<tls::PeerIdentity> Identify(const void* ssl) const;
  HttpResponse Refusal(const absl::Status& status, const std::string& path) const;

  HttpsOptions options_;
  std::shared_ptr<const tls::IdentityChecker> checker_;
  std::vector<Route> routes_;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace http
}  // namespace polder

#endif  // POLDER_COMMON_HTTP_HTTPS_SERVER_H_
