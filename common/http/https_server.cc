#include "common/http/https_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <regex>
#include <thread>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/http/request_head.h"
#include "common/log/log.h"
#include "common/status/http_status.h"
#include "common/status/status_macros.h"
#include "common/tls/openssl_ptr.h"
#include "common/tls/pem.h"
#include "event2/buffer.h"
#include "event2/bufferevent.h"
#include "event2/bufferevent_ssl.h"
#include "event2/event.h"
#include "event2/listener.h"
#include "event2/thread.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace http {
namespace {

std::string FileStamp(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":", st.st_size, ":", st.st_ino);
}

std::string ToPem(X509* x) { return tls::CertificateToPem(x).value_or(""); }

// The client's chain as PEM, leaf first (on a server, OpenSSL's peer chain lacks the leaf).
std::string PeerChainPem(const SSL* ssl) {
  if (ssl == nullptr) return "";
  ssl::UniquePtr<X509> leaf(SSL_get1_peer_certificate(ssl));
  if (leaf == nullptr) return "";
  std::string pem = ToPem(leaf.get());
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);  // Owned by `ssl`.
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    X509* c = sk_X509_value(chain, i);
    if (X509_cmp(c, leaf.get()) != 0) pem += ToPem(c);
  }
  return pem;
}

// Any presented certificate completes the handshake; each request is then admitted or refused
// with a reason by IdentityChecker (a handshake failure could not say why).
int AcceptChainForLaterCheck(X509_STORE_CTX*, void*) { return 1; }

const char* Reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

std::string SourceOf(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  } else {
    return "unknown";
  }
  return buf;
}

timeval DeadlineIn(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  return absl::ToTimeval(d);
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

struct HttpsServer::Route {
  std::string method;
  std::string pattern;
  std::regex path;
  Handler handler;
  Gate gate;
  StreamHandler stream_handler;  // set: a long-lived response (HandleStream)
};

// One client connection, owned by the loop thread.
struct HttpsServer::Conn {
  enum class Phase { kHead, kBody, kHandling, kWriting, kIdle, kLinger, kStreaming };

  uint64_t id = 0;
  std::string source;
  bufferevent* bev = nullptr;
  event* timer = nullptr;
  Phase phase = Phase::kHead;
  std::list<Conn*>::iterator lru;  // position in Impl::order (oldest first)
  int requests = 0;
  bool close_after = false;  // close once the response is written
  bool linger = false;       // and discard input briefly before closing
  bool gone = false;         // the client left while its request was handled
  bool in_order = true;      // in Impl::order and counted in per_source (not a stream)
  // A stream request: its slot under the stream caps (from the head until closed) and its
  // sending end.
  bool stream_slot = false;
  std::shared_ptr<HttpStream> stream;

  // The request in progress.
  size_t head_bytes = 0;
  bool have_request_line = false;
  HttpRequest request;
  absl::Time started;  // the request line arrived
  std::string method;  // of the request in progress (the request itself moves to a worker)
  std::string version;
  const Route* route = nullptr;
  tls::PeerIdentity peer;
  int64_t body_left = 0;  // Content-Length framing
  bool chunked = false;
  int64_t chunk_left = -1;     // -1: expecting a chunk-size line
  bool chunk_trailer = false;  // after the last chunk: reading trailer lines
};

struct HttpsServer::Impl {
  explicit Impl(HttpsServer* s) : server(s), files(s->options_.files) {}

  // ---- TLS identity (certificate and key re-read when their files change) ----
  bool UseCurrentIdentity(SSL* ssl) {
    std::string stamp = FileStamp(files.cert_path) + "|" + FileStamp(files.key_path);
    absl::MutexLock lock(&cert_mu);
    if (stamp != loaded_stamp) Load(stamp);
    if (cert == nullptr || key == nullptr) return false;
    return SSL_use_cert_and_key(ssl, cert.get(), key.get(), chain.get(), 1) == 1;
  }

  // Reads certificate (leaf + chain) and key; keeps the previous pair if the new one is
  // incomplete (e.g. read between the two files of a non-atomic rotation).
  void Load(const std::string& stamp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(cert_mu) {
    FILE* cf = fopen(files.cert_path.c_str(), "r");
    FILE* kf = fopen(files.key_path.c_str(), "r");
    ssl::UniquePtr<X509> new_cert(cf != nullptr ? PEM_read_X509(cf, nullptr, nullptr, nullptr)
                                                : nullptr);
    ssl::UniquePtr<STACK_OF(X509)> new_chain(sk_X509_new_null());
    bool chain_complete = new_chain != nullptr;
    while (cf != nullptr && chain_complete) {
      ssl::UniquePtr<X509> extra(PEM_read_X509(cf, nullptr, nullptr, nullptr));
      if (extra == nullptr) break;
      chain_complete = sk_X509_push(new_chain.get(), extra.get()) > 0;
      if (chain_complete) extra.release();  // Owned by `new_chain` now.
    }
    ssl::UniquePtr<EVP_PKEY> new_key(
        kf != nullptr ? PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr) : nullptr);
    if (cf != nullptr) fclose(cf);
    if (kf != nullptr) fclose(kf);
    ERR_clear_error();
    if (new_cert == nullptr || new_key == nullptr || !chain_complete ||
        X509_check_private_key(new_cert.get(), new_key.get()) != 1) {
      ERR_clear_error();
      log::Warning("HTTPS certificate or key unreadable or mismatched; keeping the previous pair",
                   {{"cert_file", files.cert_path}, {"key_file", files.key_path}});
      return;
    }
    cert = std::move(new_cert);
    key = std::move(new_key);
    chain = std::move(new_chain);
    loaded_stamp = stamp;
  }

  static int CertCallback(SSL* ssl, void* arg) {
    return static_cast<Impl*>(arg)->UseCurrentIdentity(ssl) ? 1 : 0;
  }

  // ---- the loop (loop thread only, unless noted) ----
  void Run() { event_base_dispatch(base); }

  static void OnAccept(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int, void* arg) {
    static_cast<Impl*>(arg)->Accept(fd, sa);
  }

  void Accept(evutil_socket_t fd, sockaddr* sa) {
    const HttpsOptions& o = server->options_;
    std::string source = SourceOf(sa);
    auto held = per_source.find(source);
    if (stopping || (o.per_source_limits && held != per_source.end() &&
                     held->second >= o.max_connections_per_source)) {
      ++stats.refused_per_source;
      evutil_closesocket(fd);
      return;
    }
    if (static_cast<int>(conns.size()) - streaming >= o.max_connections && !EvictOldest()) {
      evutil_closesocket(fd);  // every connection is being answered: no room
      return;
    }
    ++per_source[source];
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    evutil_make_socket_nonblocking(fd);
    auto conn = std::make_unique<Conn>();
    conn->id = next_id++;
    conn->source = std::move(source);
    if (ctx != nullptr) {
      ssl::UniquePtr<SSL> ssl(SSL_new(ctx.get()));
      if (ssl != nullptr) {
        // With BEV_OPT_CLOSE_ON_FREE libevent owns the SSL from here, even if it fails.
        conn->bev = bufferevent_openssl_socket_new(
            base, fd, ssl.release(), BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
      }
      if (conn->bev != nullptr) bufferevent_openssl_set_allow_dirty_shutdown(conn->bev, 1);
    } else {
      conn->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (conn->bev == nullptr) {
      evutil_closesocket(fd);
      if (--per_source[conn->source] == 0) per_source.erase(conn->source);
      return;
    }
    Conn* c = conn.get();
    c->timer = event_new(base, -1, 0, &Impl::OnTimer, new TimerArg{this, c->id});
    bufferevent_setcb(c->bev, &Impl::OnRead, &Impl::OnWrite, &Impl::OnEvent,
                      new TimerArg{this, c->id});
    // Bound what one connection buffers before it is parsed.
    bufferevent_setwatermark(c->bev, EV_READ, 0, o.max_head_bytes + 64 * 1024);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    order.push_back(c);
    c->lru = std::prev(order.end());
    conns.emplace(c->id, std::move(conn));
    ++stats.accepted;
    ++stats.open;
    Arm(c, o.head_timeout);
  }

  // At max_connections: closes the oldest connection that is not being answered.
  bool EvictOldest() {
    for (Conn* c : order) {
      if (c->phase == Conn::Phase::kHandling || c->phase == Conn::Phase::kWriting) continue;
      ++stats.evicted;
      Close(c);
      return true;
    }
    return false;
  }

  struct TimerArg {
    Impl* impl;
    uint64_t id;
  };

  Conn* Find(uint64_t id) {
    auto it = conns.find(id);
    return it == conns.end() ? nullptr : it->second.get();
  }

  void Arm(Conn* c, absl::Duration d) {
    timeval tv = DeadlineIn(d);
    evtimer_add(c->timer, &tv);
  }

  static void OnTimer(evutil_socket_t, short, void* arg) {
    auto* a = static_cast<TimerArg*>(arg);
    Impl* impl = a->impl;
    Conn* c = impl->Find(a->id);
    if (c == nullptr) return;
    if (c->phase == Conn::Phase::kHandling) return;  // the handler's answer comes
    if (c->phase == Conn::Phase::kStreaming) {
      // A stream's queued output was not taken within write_timeout: a reader that stopped.
      if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) return;
      ++impl->stats.slow_streams_closed;
      impl->Close(c);
      return;
    }
    if (c->phase != Conn::Phase::kIdle && c->phase != Conn::Phase::kLinger) ++impl->stats.timed_out;
    impl->Close(c);
  }

  static void OnRead(bufferevent*, void* arg) {
    auto* a = static_cast<TimerArg*>(arg);
    Conn* c = a->impl->Find(a->id);
    if (c != nullptr) a->impl->Process(c);
  }

  static void OnWrite(bufferevent* bev, void* arg) {
    auto* a = static_cast<TimerArg*>(arg);
    Conn* c = a->impl->Find(a->id);
    if (c == nullptr) return;
    if (c->phase == Conn::Phase::kStreaming) {
      if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) evtimer_del(c->timer);
      return;
    }
    if (c->phase != Conn::Phase::kWriting) return;
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) return;
    a->impl->Written(c);
  }

  static void OnEvent(bufferevent*, short what, void* arg) {
    auto* a = static_cast<TimerArg*>(arg);
    Conn* c = a->impl->Find(a->id);
    if (c == nullptr) return;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
      if (c->phase == Conn::Phase::kHandling) {
        // The client went away while its request is handled: the answer has nowhere to go.
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        c->gone = true;
        return;
      }
      a->impl->Close(c);
    }
  }

  void Close(Conn* c) {
    const uint64_t id = c->id;
    if (c->in_order) {
      order.erase(c->lru);
      if (--per_source[c->source] <= 0) per_source.erase(c->source);
    } else {
      --streaming;
      --stats.open_streams;
    }
    ReleaseStream(c);
    if (c->timer != nullptr) {
      void* arg = event_get_callback_arg(c->timer);
      event_free(c->timer);
      delete static_cast<TimerArg*>(arg);
    }
    if (c->bev != nullptr) {
      void* arg = nullptr;
      bufferevent_getcb(c->bev, nullptr, nullptr, nullptr, &arg);
      bufferevent_free(c->bev);
      delete static_cast<TimerArg*>(arg);
    }
    conns.erase(id);
    --stats.open;
  }

  // Answers on the loop thread: head-stage refusals and protocol errors. `close` ends the
  // connection after the answer (lingering so the client can read it).
  void Respond(Conn* c, const HttpResponse& r, bool close) {
    if (close) {
      c->close_after = true;
      c->linger = true;
    }
    Write(c, r);
  }

  void Write(Conn* c, const HttpResponse& r) {
    if (server->options_.on_response) {
      server->options_.on_response(HttpExchange{
          c->method, c->route != nullptr ? c->route->pattern : "", r.status,
          c->started == absl::Time() ? absl::ZeroDuration() : absl::Now() - c->started});
    }
    const bool keep = !c->close_after && c->requests < server->options_.max_requests_per_connection;
    if (!keep) c->close_after = true;
    // 204 and 304 carry no body and no length (a 304's length would be the unsent body's).
    const bool bodiless = r.status == 204 || r.status == 304;
    std::string head = absl::StrCat(
        "HTTP/1.1 ", r.status, " ", Reason(r.status), "\r\nContent-Type: ", r.content_type, "\r\n",
        bodiless ? "" : absl::StrCat("Content-Length: ", r.body.size(), "\r\n"),
        "X-Content-Type-Options: nosniff\r\n");
    AppendHeaders(r, &head);
    absl::StrAppend(&head, keep ? "" : "Connection: close\r\n", "\r\n");
    evbuffer* out = bufferevent_get_output(c->bev);
    evbuffer_add(out, head.data(), head.size());
    if (!bodiless) evbuffer_add(out, r.body.data(), r.body.size());
    c->phase = Conn::Phase::kWriting;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_enable(c->bev, EV_WRITE);
    Arm(c, server->options_.write_timeout);
  }

  void AppendHeaders(const HttpResponse& r, std::string* head) const {
    using Headers = std::vector<std::pair<std::string, std::string>>;
    const Headers& listener = server->options_.response_headers;
    for (const Headers* list : std::initializer_list<const Headers*>{&listener, &r.headers}) {
      for (const auto& [name, value] : *list) {
        // Handlers set fixed names; a CR or LF in a value would split the response.
        if (value.find_first_of("\r\n") != std::string::npos) continue;
        absl::StrAppend(head, name, ": ", value, "\r\n");
      }
    }
  }

  // ---- long-lived streams (loop thread unless noted) ----

  // Any thread, under the stream's lock: the loop takes the stream's queued bytes.
  void MarkDirty(uint64_t id) {
    {
      absl::MutexLock lock(&dirty_mu);
      dirty.push_back(id);
    }
    event_active(stream_event, EV_READ, 0);
  }

  static void OnStreamWakeup(evutil_socket_t, short, void* arg) {
    Impl* impl = static_cast<Impl*>(arg);
    std::vector<uint64_t> ids;
    {
      absl::MutexLock lock(&impl->dirty_mu);
      ids.swap(impl->dirty);
    }
    for (uint64_t id : ids) {
      Conn* c = impl->Find(id);
      if (c != nullptr && c->phase == Conn::Phase::kStreaming) impl->FlushStream(c);
    }
  }

  // The handler answered 200: the head, the body as the first chunk, then what was sent.
  void StartStream(Conn* c, const HttpResponse& r) {
    if (server->options_.on_response) {
      server->options_.on_response(
          HttpExchange{c->method, c->route->pattern, r.status, absl::Now() - c->started});
    }
    std::string head = absl::StrCat("HTTP/1.1 ", r.status, " ", Reason(r.status),
                                    "\r\nContent-Type: ", r.content_type,
                                    "\r\nTransfer-Encoding: chunked\r\nX-Content-Type-Options: "
                                    "nosniff\r\n");
    AppendHeaders(r, &head);
    absl::StrAppend(&head, "\r\n");
    evbuffer* out = bufferevent_get_output(c->bev);
    evbuffer_add(out, head.data(), head.size());
    AddChunk(out, r.body);
    // From here the connection is a stream: out of the connection caps and eviction order,
    // counted under the stream caps (its slot is held since the head).
    order.erase(c->lru);
    if (--per_source[c->source] <= 0) per_source.erase(c->source);
    c->in_order = false;
    ++streaming;
    ++stats.open_streams;
    c->phase = Conn::Phase::kStreaming;
    evtimer_del(c->timer);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);  // EOF tells the client left
    FlushStream(c);
  }

  static void AddChunk(evbuffer* out, absl::string_view bytes) {
    if (bytes.empty()) return;
    const std::string size = absl::StrCat(absl::Hex(bytes.size()), "\r\n");
    evbuffer_add(out, size.data(), size.size());
    evbuffer_add(out, bytes.data(), bytes.size());
    evbuffer_add(out, "\r\n", 2);
  }

  // Writes what the application queued; closes a stream whose reader fell behind.
  void FlushStream(Conn* c) {
    std::string bytes;
    bool end = false, overflow = false;
    {
      absl::MutexLock lock(&c->stream->mu_);
      bytes.swap(c->stream->pending_);
      c->stream->scheduled_ = false;
      end = c->stream->end_;
      overflow = c->stream->overflow_;
    }
    const HttpsOptions& o = server->options_;
    evbuffer* out = bufferevent_get_output(c->bev);
    if (overflow || evbuffer_get_length(out) + bytes.size() > o.max_stream_buffer_bytes) {
      ++stats.slow_streams_closed;
      Close(c);
      return;
    }
    const bool was_empty = evbuffer_get_length(out) == 0;
    AddChunk(out, bytes);
    if (end) {
      static constexpr char kLast[] = "0\r\n\r\n";
      evbuffer_add(out, kLast, sizeof kLast - 1);
      // Written() closes the connection once the last chunk left.
      ReleaseStream(c);
      c->in_order = true;  // back under the connection accounting until closed
      order.push_back(c);
      c->lru = std::prev(order.end());
      ++per_source[c->source];
      --streaming;
      --stats.open_streams;
      c->close_after = true;
      c->phase = Conn::Phase::kWriting;
      bufferevent_disable(c->bev, EV_READ);
      Arm(c, o.write_timeout);
      if (evbuffer_get_length(out) == 0) Written(c);
      return;
    }
    // The reader must take queued bytes within write_timeout (OnWrite disarms when drained).
    if (was_empty && evbuffer_get_length(out) > 0) Arm(c, o.write_timeout);
  }

  // Gives back the stream's slot and detaches its sending end (Send returns false from here).
  void ReleaseStream(Conn* c) {
    if (c->stream_slot) {
      c->stream_slot = false;
      --stream_slots;
      if (--stream_per_source[c->source] <= 0) stream_per_source.erase(c->source);
    }
    if (c->stream != nullptr) {
      absl::MutexLock lock(&c->stream->mu_);
      c->stream->impl_ = nullptr;
    }
  }

  // The response left the buffer: next request, or close.
  void Written(Conn* c) {
    if (c->close_after) {
      if (!c->linger) {
        Close(c);
        return;
      }
      // Stop sending; read and drop what the client still sends for a moment, so closing does
      // not reset the connection before it read the answer.
      c->phase = Conn::Phase::kLinger;
      shutdown(bufferevent_getfd(c->bev), SHUT_WR);
      evbuffer_drain(bufferevent_get_input(c->bev),
                     evbuffer_get_length(bufferevent_get_input(c->bev)));
      bufferevent_enable(c->bev, EV_READ);
      Arm(c, absl::Seconds(2));
      return;
    }
    ResetRequest(c);
    c->phase = Conn::Phase::kIdle;
    // Most recently used goes last: the oldest idle connection is evicted first.
    order.erase(c->lru);
    order.push_back(c);
    c->lru = std::prev(order.end());
    bufferevent_enable(c->bev, EV_READ);
    Arm(c, server->options_.idle_timeout);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) Process(c);  // pipelined
  }

  void ResetRequest(Conn* c) {
    c->head_bytes = 0;
    c->have_request_line = false;
    c->request = HttpRequest();
    c->version.clear();
    c->started = absl::Time();
    c->method.clear();
    c->route = nullptr;
    c->peer = tls::PeerIdentity();
    c->body_left = 0;
    c->chunked = false;
    c->chunk_left = -1;
    c->chunk_trailer = false;
  }

  HttpResponse ErrorResponse(absl::Status s) { return server->Refusal(s, ""); }

  // Reads what arrived: the head, then the body.
  void Process(Conn* c) {
    evbuffer* in = bufferevent_get_input(c->bev);
    if (c->phase == Conn::Phase::kLinger || c->phase == Conn::Phase::kStreaming) {
      evbuffer_drain(in, evbuffer_get_length(in));
      return;
    }
    if (c->phase == Conn::Phase::kIdle) {
      if (evbuffer_get_length(in) == 0) return;
      c->phase = Conn::Phase::kHead;
      Arm(c, server->options_.head_timeout);
    }
    if (c->phase == Conn::Phase::kHead) ReadHead(c, in);
    if (c->phase == Conn::Phase::kBody) ReadBody(c, in);
  }

  void ReadHead(Conn* c, evbuffer* in) {
    const HttpsOptions& o = server->options_;
    while (c->phase == Conn::Phase::kHead) {
      size_t len = 0;
      char* line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
      if (line == nullptr) {
        if (c->head_bytes + evbuffer_get_length(in) > o.max_head_bytes) HeadTooLarge(c);
        return;
      }
      std::string text(line, len);
      free(line);
      c->head_bytes += len + 2;
      if (c->head_bytes > o.max_head_bytes) {
        HeadTooLarge(c);
        return;
      }
      if (!c->have_request_line) {
        if (text.empty()) continue;  // a stray CRLF before the request line
        if (!RequestLine(c, text)) return;
        c->have_request_line = true;
        continue;
      }
      if (!text.empty()) {
        if (!HeaderLine(c, text)) return;
        continue;
      }
      HeadComplete(c);
    }
  }

  void HeadTooLarge(Conn* c) {
    if (c->phase == Conn::Phase::kWriting || c->phase == Conn::Phase::kLinger) return;
    HttpResponse r = ErrorResponse(absl::ResourceExhaustedError(absl::StrCat(
        "the request head is larger than ", server->options_.max_head_bytes, " bytes")));
    r.status = 431;
    Respond(c, r, true);
  }

  bool BadRequest(Conn* c, const std::string& why, int status = 400) {
    HttpResponse r = ErrorResponse(absl::InvalidArgumentError(why));
    r.status = status;
    Respond(c, r, true);
    return false;
  }

  bool RequestLine(Conn* c, const std::string& text) {
    c->started = absl::Now();
    absl::Status s = ParseRequestLine(text, &c->request, &c->version);
    c->method = c->request.method;
    if (s.ok()) return true;
    return BadRequest(c, std::string(s.message()),
                      s.code() == absl::StatusCode::kUnimplemented ? 505 : 400);
  }

  bool HeaderLine(Conn* c, const std::string& text) {
    if (static_cast<int>(c->request.headers.size()) >= server->options_.max_headers) {
      HttpResponse r = ErrorResponse(absl::ResourceExhaustedError(
          absl::StrCat("more than ", server->options_.max_headers, " request headers")));
      r.status = 431;
      Respond(c, r, true);
      return false;
    }
    absl::Status s = ParseHeaderLine(text, &c->request);
    return s.ok() || BadRequest(c, std::string(s.message()));
  }

  // The head is complete: route, identity and gate, then the body's framing.
  void HeadComplete(Conn* c) {
    const HttpsOptions& o = server->options_;
    HttpRequest& req = c->request;
    ++c->requests;
    const std::string connection = absl::AsciiStrToLower(req.HeaderValue("Connection"));
    if (c->version == "HTTP/1.0" ? connection != "keep-alive" : connection == "close")
      c->close_after = true;
    bool path_known = false;
    for (const Route& r : server->routes_) {
      std::smatch m;
      if (!std::regex_match(req.path, m, r.path)) continue;
      path_known = true;
      if (r.method != req.method) continue;
      c->route = &r;
      for (size_t i = 1; i < m.size(); ++i) req.path_params.push_back(m[i].str());
      break;
    }
    const bool has_body =
        req.HeaderValue("Content-Length") != "" || req.HeaderValue("Transfer-Encoding") != "";
    if (c->route == nullptr) {
      HttpResponse r = server->Refusal(
          path_known ? absl::UnimplementedError(
                           absl::StrCat("method ", req.method, " is not allowed on ", req.path))
                     : absl::NotFoundError(absl::StrCat("no resource at ", req.path)),
          req.path);
      if (path_known) r.status = 405;
      Respond(c, r, has_body);
      return;
    }
    SSL* ssl = ctx != nullptr ? bufferevent_openssl_get_ssl(c->bev) : nullptr;
    absl::StatusOr<tls::PeerIdentity> peer = server->Identify(ssl);
    absl::Status admitted = peer.status();
    if (peer.ok() && c->route->gate) admitted = c->route->gate(req, *peer);
    if (!admitted.ok()) {
      Respond(c, server->Refusal(admitted, req.path), true);
      return;
    }
    c->peer = *peer;
    if (c->route->stream_handler) {
      auto held = stream_per_source.find(c->source);
      if (stream_slots >= o.max_streams ||
          (o.per_source_limits && held != stream_per_source.end() &&
           held->second >= o.max_streams_per_source)) {
        ++stats.refused_streams;
        HttpResponse r = ErrorResponse(
            absl::UnavailableError(stream_slots >= o.max_streams
                                       ? absl::StrCat("the server holds its limit of ",
                                                      o.max_streams, " live streams; retry later")
                                       : absl::StrCat("this address holds its limit of ",
                                                      o.max_streams_per_source, " live streams")));
        r.status = 503;
        r.headers.emplace_back("Retry-After", "5");
        Respond(c, r, true);
        return;
      }
      c->stream_slot = true;
      ++stream_slots;
      ++stream_per_source[c->source];
      c->stream = std::shared_ptr<HttpStream>(
          new HttpStream(this, c->id, c->source, o.max_stream_buffer_bytes));
    }
    // Body framing.
    const std::string te = absl::AsciiStrToLower(req.HeaderValue("Transfer-Encoding"));
    const std::string cl = req.HeaderValue("Content-Length");
    if (!te.empty()) {
      if (te != "chunked" || !cl.empty()) {
        BadRequest(c, "only Transfer-Encoding: chunked (without Content-Length) is accepted", 501);
        return;
      }
      c->chunked = true;
    } else if (!cl.empty()) {
      if (!absl::SimpleAtoi(cl, &c->body_left) || c->body_left < 0) {
        BadRequest(c, "malformed Content-Length");
        return;
      }
      if (static_cast<uint64_t>(c->body_left) > o.max_body_bytes) {
        HttpResponse r = ErrorResponse(absl::ResourceExhaustedError(
            absl::StrCat("the body (", c->body_left, " bytes) is over the limit of ",
                         o.max_body_bytes, " bytes")));
        r.status = 413;
        Respond(c, r, true);
        return;
      }
    }
    if ((c->chunked || c->body_left > 0) &&
        absl::EqualsIgnoreCase(req.HeaderValue("Expect"), "100-continue")) {
      static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      evbuffer_add(bufferevent_get_output(c->bev), kContinue, sizeof kContinue - 1);
    }
    c->phase = Conn::Phase::kBody;
    Arm(c, o.read_timeout);
  }

  void ReadBody(Conn* c, evbuffer* in) {
    const HttpsOptions& o = server->options_;
    std::string& body = c->request.body;
    const size_t before = body.size();
    if (!c->chunked) {
      const size_t n = std::min<size_t>(evbuffer_get_length(in), static_cast<size_t>(c->body_left));
      if (n > 0) {
        const size_t at = body.size();
        body.resize(at + n);
        evbuffer_remove(in, &body[at], n);
        c->body_left -= static_cast<int64_t>(n);
      }
      if (c->body_left > 0) {
        if (body.size() > before) Arm(c, o.read_timeout);  // progress
        return;
      }
    } else {
      while (true) {
        if (c->chunk_left < 0) {
          size_t len = 0;
          char* line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
          if (line == nullptr) {
            if (evbuffer_get_length(in) > 1024) {
              BadRequest(c, "malformed chunk");
              return;
            }
            if (body.size() > before) Arm(c, o.read_timeout);
            return;
          }
          std::string text(line, len);
          free(line);
          if (c->chunk_trailer) {
            if (!text.empty()) continue;  // trailer fields are ignored
            break;                        // the end of the body
          }
          text = text.substr(0, text.find(';'));
          uint64_t size = 0;
          if (text.empty() || text.size() > 15 || !absl::SimpleHexAtoi(text, &size)) {
            BadRequest(c, "malformed chunk size");
            return;
          }
          if (body.size() + size > o.max_body_bytes) {
            HttpResponse r = ErrorResponse(absl::ResourceExhaustedError(
                absl::StrCat("the body is over the limit of ", o.max_body_bytes, " bytes")));
            r.status = 413;
            Respond(c, r, true);
            return;
          }
          if (size == 0) {
            c->chunk_trailer = true;
            continue;
          }
          c->chunk_left = static_cast<int64_t>(size) + 2;  // data and its CRLF
        }
        const size_t n =
            std::min<size_t>(evbuffer_get_length(in), static_cast<size_t>(c->chunk_left));
        if (n == 0) {
          if (body.size() > before) Arm(c, o.read_timeout);
          return;
        }
        const size_t data = std::min<size_t>(n, std::max<int64_t>(0, c->chunk_left - 2));
        const size_t at = body.size();
        body.resize(at + data);
        evbuffer_remove(in, &body[at], data);
        evbuffer_drain(in, n - data);
        c->chunk_left -= static_cast<int64_t>(n);
        if (c->chunk_left == 0) c->chunk_left = -1;
      }
    }
    Dispatch(c);
  }

  // A complete, admitted request: to a worker.
  void Dispatch(Conn* c) {
    c->phase = Conn::Phase::kHandling;
    bufferevent_disable(c->bev, EV_READ);
    evtimer_del(c->timer);
    {
      absl::MutexLock lock(&work_mu);
      if (static_cast<int>(jobs.size()) >= server->options_.max_queued_requests) {
        ++stats.overloaded;
        HttpResponse r = ErrorResponse(absl::UnavailableError("the server is busy; retry later"));
        r.status = 503;
        c->close_after = true;
        Write(c, r);
        return;
      }
      jobs.push_back(Job{c->id, c->route, std::move(c->request), c->peer, c->stream});
      ++busy;
    }
  }

  struct Job {
    uint64_t conn;
    const Route* route;
    HttpRequest request;
    tls::PeerIdentity peer;
    std::shared_ptr<HttpStream> stream;  // a stream route's sending end
  };

  void Work() {
    while (true) {
      Job job;
      {
        absl::MutexLock lock(&work_mu);
        work_mu.Await(absl::Condition(
            +[](Impl* i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(i->work_mu) {
              return i->workers_stop || !i->jobs.empty();
            },
            this));
        if (jobs.empty()) return;  // stopping, nothing left
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      HttpResponse out;
      try {
        out = job.route->stream_handler
                  ? job.route->stream_handler(job.request, job.peer, job.stream)
                  : job.route->handler(job.request, job.peer);
      } catch (const std::exception& e) {
        log::Error("HTTP handler failed", {{"path", job.request.path}, {"error", e.what()}});
        out = HttpResponse::Error(absl::InternalError("the request could not be handled"));
      }
      {
        absl::MutexLock lock(&done_mu);
        done.emplace_back(job.conn, std::move(out));
      }
      {
        absl::MutexLock lock(&work_mu);
        --busy;
      }
      event_active(wakeup, EV_READ, 0);
    }
  }

  static void OnWakeup(evutil_socket_t, short, void* arg) {
    Impl* impl = static_cast<Impl*>(arg);
    std::deque<std::pair<uint64_t, HttpResponse>> ready;
    {
      absl::MutexLock lock(&impl->done_mu);
      ready.swap(impl->done);
    }
    for (auto& [id, response] : ready) {
      Conn* c = impl->Find(id);
      if (c == nullptr) continue;
      if (c->gone) {  // the client left meanwhile
        impl->Close(c);
        continue;
      }
      if (c->stream != nullptr) {
        bool open = false;
        {
          absl::MutexLock lock(&c->stream->mu_);
          open = c->stream->impl_ != nullptr && !c->stream->overflow_;
        }
        if (response.status == 200 && open) {
          impl->StartStream(c, response);
          continue;
        }
        impl->ReleaseStream(c);  // an ordinary answer (an error): the stream never opens
        c->close_after = true;
      }
      impl->Write(c, response);
    }
    if (impl->stopping) impl->MaybeExit();
  }

  static void OnStop(evutil_socket_t, short, void* arg) {
    Impl* impl = static_cast<Impl*>(arg);
    impl->stopping = true;
    if (impl->listener != nullptr) {
      evconnlistener_free(impl->listener);
      impl->listener = nullptr;
    }
    // Connections not being answered go now; the others once answered.
    std::vector<Conn*> idle;
    for (const auto& [id, c] : impl->conns) {
      if (c->phase != Conn::Phase::kHandling && c->phase != Conn::Phase::kWriting)
        idle.push_back(c.get());
    }
    for (Conn* c : idle) impl->Close(c);
    impl->MaybeExit();
  }

  void MaybeExit() {
    bool idle_workers;
    {
      absl::MutexLock lock(&work_mu);
      idle_workers = busy == 0 && jobs.empty();
    }
    bool answering = false;
    for (Conn* c : order) answering |= c->phase == Conn::Phase::kHandling;
    if (idle_workers && !answering) {
      // Let written answers leave, briefly.
      timeval tv = DeadlineIn(absl::Milliseconds(200));
      event_base_loopexit(base, &tv);
    }
  }

  HttpsServer* server;
  const tls::TlsFiles files;
  absl::Mutex cert_mu;
  std::string loaded_stamp ABSL_GUARDED_BY(cert_mu);
  ssl::UniquePtr<X509> cert ABSL_GUARDED_BY(cert_mu);
  ssl::UniquePtr<EVP_PKEY> key ABSL_GUARDED_BY(cert_mu);
  ssl::UniquePtr<STACK_OF(X509)> chain ABSL_GUARDED_BY(cert_mu);
  ssl::UniquePtr<SSL_CTX> ctx;  // null: plain HTTP

  event_base* base = nullptr;
  evconnlistener* listener = nullptr;
  event* wakeup = nullptr;
  event* stop_event = nullptr;
  event* stream_event = nullptr;
  std::thread loop;
  std::vector<std::thread> workers;
  bool stopping = false;  // loop thread

  // Loop thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  std::list<Conn*> order;  // oldest (least recently active) first
  std::unordered_map<std::string, int> per_source;
  int streaming = 0;     // connections that are open streams (out of order and per_source)
  int stream_slots = 0;  // stream requests from their head until closed
  std::unordered_map<std::string, int> stream_per_source;
  uint64_t next_id = 1;
  struct Counters {
    std::atomic<int64_t> open{0}, accepted{0}, refused_per_source{0}, evicted{0}, timed_out{0},
        overloaded{0}, open_streams{0}, refused_streams{0}, slow_streams_closed{0};
  } stats;

  absl::Mutex work_mu;
  std::deque<Job> jobs ABSL_GUARDED_BY(work_mu);
  int busy ABSL_GUARDED_BY(work_mu) = 0;  // queued or running
  bool workers_stop ABSL_GUARDED_BY(work_mu) = false;
  absl::Mutex done_mu;
  std::deque<std::pair<uint64_t, HttpResponse>> done ABSL_GUARDED_BY(done_mu);
  absl::Mutex dirty_mu;
  std::vector<uint64_t> dirty ABSL_GUARDED_BY(dirty_mu);  // streams with bytes queued
};

bool HttpStream::Send(absl::string_view bytes) {
  absl::MutexLock lock(&mu_);
  if (impl_ == nullptr || end_ || overflow_) return false;
  if (pending_.size() + bytes.size() > limit_) {
    overflow_ = true;  // the loop closes the stream
  } else {
    pending_.append(bytes.data(), bytes.size());
  }
  if (!scheduled_) {
    scheduled_ = true;
    static_cast<HttpsServer::Impl*>(impl_)->MarkDirty(conn_);
  }
  return !overflow_;
}

void HttpStream::Close() {
  absl::MutexLock lock(&mu_);
  if (impl_ == nullptr || end_) return;
  end_ = true;
  if (!scheduled_) {
    scheduled_ = true;
    static_cast<HttpsServer::Impl*>(impl_)->MarkDirty(conn_);
  }
}

bool HttpStream::open() const {
  absl::MutexLock lock(&mu_);
  return impl_ != nullptr && !end_ && !overflow_;
}

HttpsServer::HttpsServer(HttpsOptions options, std::shared_ptr<const tls::IdentityChecker> checker)
    : options_(std::move(options)), checker_(std::move(checker)) {}

HttpsServer::~HttpsServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpsServer>> HttpsServer::Create(
    HttpsOptions options, std::shared_ptr<const tls::IdentityChecker> checker) {
  if (options.plaintext_development) {
    log::Warning("HTTP server in development mode: plaintext, no client identities",
                 {{"bind_address", options.bind_address}, {"port", options.port}});
  }
  const bool plain = options.plaintext_development || options.plaintext;
  if (!plain && checker == nullptr && options.client_auth != ClientAuth::kNone) {
    return absl::InvalidArgumentError("HTTPS server needs an identity checker");
  }
  if (!options.per_source_limits) {
    log::Warning(
        "per-source limits are off for this listener (configured: it is behind a proxy); "
        "the listener-wide caps still hold",
        {{"listener", options.listener},
         {"max_connections", options.max_connections},
         {"max_streams", options.max_streams}});
  }
  if (options.workers < 1 || options.max_connections < 1 ||
      options.max_connections_per_source < 1) {
    return absl::InvalidArgumentError(
        "HTTP server: workers and connection limits must be at least 1");
  }
  std::unique_ptr<HttpsServer> s(
      new HttpsServer(std::move(options), plain ? nullptr : std::move(checker)));
  s->impl_ = std::make_unique<Impl>(s.get());
  if (plain) return s;
  Impl* impl = s->impl_.get();
  {
    absl::MutexLock lock(&impl->cert_mu);
    impl->Load("initial");
    if (impl->cert == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("HTTPS certificate '", s->options_.files.cert_path, "' and key '",
                       s->options_.files.key_path, "' cannot be read or do not match"));
    }
    impl->loaded_stamp =
        FileStamp(s->options_.files.cert_path) + "|" + FileStamp(s->options_.files.key_path);
  }
  impl->ctx.reset(SSL_CTX_new(TLS_server_method()));
  SSL_CTX* ctx = impl->ctx.get();
  if (ctx == nullptr) return absl::InternalError("cannot set up the HTTPS server's TLS context");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);  // idle connections hold no TLS buffers
  SSL_CTX_set_cert_cb(ctx, &Impl::CertCallback, impl);
  if (s->options_.client_auth == ClientAuth::kNone) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(ctx,
                       s->options_.client_auth == ClientAuth::kRequired
                           ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                           : SSL_VERIFY_PEER,
                       nullptr);
    SSL_CTX_set_cert_verify_callback(ctx, &AcceptChainForLaterCheck, nullptr);
  }
  return s;
}

absl::StatusOr<tls::PeerIdentity> HttpsServer::Identify(const void* ssl_ptr) const {
  if (options_.plaintext_development)
    return tls::PeerIdentity{"development", "", "", "", absl::InfiniteFuture()};
  if (options_.plaintext || options_.client_auth == ClientAuth::kNone) {
    return tls::PeerIdentity{"", "", "", "", absl::InfiniteFuture()};
  }
  std::string chain = PeerChainPem(static_cast<const SSL*>(ssl_ptr));
  if (chain.empty() && options_.client_auth == ClientAuth::kOptional) {
    return tls::PeerIdentity{"", "", "", "",
                             absl::InfiniteFuture()};  // no certificate: no identity
  }
  return checker_->Check(chain);
}

HttpResponse HttpsServer::Refusal(const absl::Status& status, const std::string& path) const {
  if (status.code() == absl::StatusCode::kUnauthenticated ||
      status.code() == absl::StatusCode::kPermissionDenied) {
    // Refusals are what a flood consists of: logged at most 10 a second, the rest counted.
    static log::RateLimit limit(10);
    if (int64_t suppressed = 0; limit.Allow(&suppressed)) {
      log::Warning("HTTPS request refused", {{"reason", std::string(status.message())},
                                             {"path", path},
                                             {"suppressed_before", suppressed}});
    }
  }
  return options_.refusal_formatter ? options_.refusal_formatter(status)
                                    : HttpResponse::Error(status);
}

void HttpsServer::Handle(const std::string& method, const std::string& path_regex, Handler handler,
                         Gate gate) {
  routes_.push_back(Route{method, path_regex, std::regex(path_regex), std::move(handler),
                          std::move(gate), nullptr});
}

void HttpsServer::HandleStream(const std::string& method, const std::string& path_regex,
                               StreamHandler handler, Gate gate) {
  routes_.push_back(Route{method, path_regex, std::regex(path_regex), nullptr, std::move(gate),
                          std::move(handler)});
}

absl::Status HttpsServer::Start() {
  static std::once_flag process_once;
  std::call_once(process_once, [] {
    evthread_use_pthreads();
    // Every held connection is a descriptor: allow as many as the hard limit does.
    rlimit nofile{};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
    }
  });
  Impl* impl = impl_.get();
  impl->base = event_base_new();
  if (impl->base == nullptr)
    return absl::InternalError("cannot create the HTTP server's event loop");
  const std::string spec = absl::StrCat(options_.bind_address, ":", options_.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string host = options_.bind_address.empty() ? "0.0.0.0" : options_.bind_address;
  if (getaddrinfo(host.c_str(), std::to_string(options_.port).c_str(), &hints, &found) != 0 ||
      found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve the HTTP listen address ", spec));
  }
  sockaddr_storage ss{};
  std::memcpy(&ss, found->ai_addr, found->ai_addrlen);
  const int len = static_cast<int>(found->ai_addrlen);
  freeaddrinfo(found);
  impl->listener =
      evconnlistener_new_bind(impl->base, &Impl::OnAccept, impl,
                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                              4096, reinterpret_cast<sockaddr*>(&ss), len);
  if (impl->listener == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot bind HTTP server to ", spec));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  getsockname(evconnlistener_get_fd(impl->listener), reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  impl->wakeup = event_new(impl->base, -1, EV_PERSIST, &Impl::OnWakeup, impl);
  impl->stop_event = event_new(impl->base, -1, 0, &Impl::OnStop, impl);
  impl->stream_event = event_new(impl->base, -1, EV_PERSIST, &Impl::OnStreamWakeup, impl);
  event_add(impl->wakeup, nullptr);
  event_add(impl->stream_event, nullptr);
  for (int i = 0; i < options_.workers; ++i) impl->workers.emplace_back([impl] { impl->Work(); });
  impl->loop = std::thread([impl] { impl->Run(); });
  return absl::OkStatus();
}

void HttpsServer::Stop() {
  if (impl_ == nullptr || impl_->base == nullptr) return;
  Impl* impl = impl_.get();
  if (impl->loop.joinable()) {
    event_active(impl->stop_event, EV_READ, 0);
    impl->loop.join();
  }
  {
    absl::MutexLock lock(&impl->work_mu);
    impl->workers_stop = true;
  }
  for (std::thread& t : impl->workers) t.join();
  impl->workers.clear();
  std::vector<Conn*> left;
  for (const auto& [id, c] : impl->conns) left.push_back(c.get());
  for (Conn* c : left) impl->Close(c);
  if (impl->listener != nullptr) evconnlistener_free(impl->listener);
  impl->listener = nullptr;
  if (impl->wakeup != nullptr) event_free(impl->wakeup);
  if (impl->stop_event != nullptr) event_free(impl->stop_event);
  if (impl->stream_event != nullptr) event_free(impl->stream_event);
  impl->wakeup = impl->stop_event = impl->stream_event = nullptr;
  event_base_free(impl->base);
  impl->base = nullptr;
}

HttpsServerStats HttpsServer::stats() const {
  const Impl::Counters& c = impl_->stats;
  return HttpsServerStats{
      c.open.load(),         c.accepted.load(),        c.refused_per_source.load(),
      c.evicted.load(),      c.timed_out.load(),       c.overloaded.load(),
      c.open_streams.load(), c.refused_streams.load(), c.slow_streams_closed.load()};
}

}  // namespace http
}  // namespace polder
