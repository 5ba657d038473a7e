#include "services/node/ingest/transports.h"

#include <deque>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json/bounded.h"
#include "common/status/grpc_status.h"
#include "common/tls/grpc_tls.h"
#include "nlohmann/json.hpp"

namespace polder {
namespace node {
namespace {

using nlohmann::json;

Caller GrpcCaller(const grpc::ServerContext& context) {
  Caller c;
  absl::StatusOr<tls::PeerIdentity> peer = tls::CallPeer(context);
  if (peer.ok()) c.certificate_peer_id = peer->peer_id;
  auto it = context.client_metadata().find("authorization");
  if (it != context.client_metadata().end())
    c.authorization = std::string(it->second.data(), it->second.size());
  return c;
}

json ResponseJson(const v1::PublishResponse& r) {
  return {{"schema_id", r.schema_id()},
          {"records", r.records()},
          {"ce_ids", json(std::vector<std::string>(r.ce_ids().begin(), r.ce_ids().end()))},
          {"duplicate", r.duplicate()},
          {"topic", r.topic()}};
}

}  // namespace

absl::StatusOr<v1::PublishRequest> ParseHttpBody(const http::HttpRequest& req,
                                                 const std::string& dataset) {
  v1::PublishRequest out;
  std::string type = absl::AsciiStrToLower(req.HeaderValue("Content-Type"));
  type = std::string(absl::StripAsciiWhitespace(type.substr(0, type.find(';'))));
  if (type == "application/x-protobuf") {
    if (!out.ParseFromString(req.body)) {
      return absl::InvalidArgumentError(
          "the body is not a serialized polder.node.v1.PublishRequest");
    }
    if (!out.dataset().empty() && out.dataset() != dataset) {
      return absl::InvalidArgumentError(absl::StrCat("the body names dataset '", out.dataset(),
                                                     "' but the path '", dataset, "'"));
    }
  } else if (type == "application/json") {
    absl::StatusOr<json> parsed = json_input::Parse(req.body);
    if (!parsed.ok())
      return absl::InvalidArgumentError(absl::StrCat("the body ", parsed.status().message()));
    json& body = *parsed;
    if (!body.is_array())
      return absl::InvalidArgumentError("the body must be a JSON array of records");
    for (size_t i = 0; i < body.size(); ++i) {
      if (!body[i].is_object())
        return absl::InvalidArgumentError(absl::StrCat("record ", i, ": must be a JSON object"));
      out.add_records()->set_json(body[i].dump());
    }
  } else if (type == "application/x-ndjson") {
    size_t index = 0;
    for (absl::string_view line : absl::StrSplit(req.body, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (line.empty()) continue;
      out.add_records()->set_json(std::string(line));
      ++index;
    }
  } else {
    absl::Status s = absl::InvalidArgumentError(absl::StrCat(
        "unsupported Content-Type '", type,
        "': send application/json (an array), application/x-ndjson or application/x-protobuf"));
    return s;
  }
  out.set_dataset(dataset);
  std::string key = req.HeaderValue("Idempotency-Key");
  if (!key.empty()) out.set_idempotency_key(key);
  std::string schema = req.HeaderValue("Polder-Schema-Id");
  for (const auto& [k, v] : req.query) {
    if (k == "schema_id") schema = v;
  }
  if (!schema.empty()) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(schema, &id) || id <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("schema id '", schema, "' is not a positive number"));
    }
    out.set_schema_id(id);
  }
  return out;
}

grpc::Status IngestGrpcService::Publish(grpc::ServerContext* context,
                                        const v1::PublishRequest* request,
                                        v1::PublishResponse* response) {
  absl::StatusOr<v1::PublishResponse> r = ingest_->Publish(GrpcCaller(*context), *request);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *response = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status IngestGrpcService::PublishStream(grpc::ServerContext* context,
                                              grpc::ServerReader<v1::PublishRequest>* reader,
                                              v1::PublishStreamResponse* response) {
  // Batches are submitted as they arrive (several may share a transaction) and answered in
  // order; a window bounds how many wait at once (the in-flight byte limit applies as well).
  constexpr size_t kWindow = 32;
  const Caller caller = GrpcCaller(*context);
  // Streams per caller (its certificate identity or its token), so one gateway cannot hold
  // every thread of the server.
  absl::StatusOr<std::string> identity = ingest_->Identify(caller);
  if (!identity.ok()) return ToGrpcStatus(identity.status());
  const std::string who = *identity;
  {
    absl::MutexLock lock(&mu_);
    if (streams_[who] >= max_streams_per_identity_) {
      return ToGrpcStatus(absl::ResourceExhaustedError(
          absl::StrCat("this identity has ", max_streams_per_identity_,
                       " PublishStream calls open already (the limit)")));
    }
    ++streams_[who];
  }
  struct Release {
    IngestGrpcService* s;
    std::string who;
    ~Release() {
      absl::MutexLock lock(&s->mu_);
      if (--s->streams_[who] == 0) s->streams_.erase(who);
    }
  } release{this, who};
  std::deque<std::pair<int32_t, IngestTicket>> window;
  absl::Status failure;
  int32_t failed_batch = -1;
  auto complete_front = [&] {
    auto [index, ticket] = std::move(window.front());
    window.pop_front();
    absl::StatusOr<v1::PublishResponse> r = ingest_->Complete(ticket);
    if (!r.ok()) {
      if (failure.ok()) {
        failure = r.status();
        failed_batch = index;
      }
      return;
    }
    response->set_batches(response->batches() + 1);
    response->set_records(response->records() + r->records());
    if (r->duplicate()) response->set_duplicate_batches(response->duplicate_batches() + 1);
  };
  v1::PublishRequest request;
  for (int32_t index = 0; failure.ok() && reader->Read(&request); ++index) {
    window.emplace_back(index, ingest_->Submit(caller, request));
    if (!window.back().second.refused.ok()) {
      while (window.size() > 1) complete_front();  // answer what was submitted before it
      complete_front();
      break;
    }
    while (window.size() > kWindow) complete_front();
  }
  while (!window.empty()) complete_front();
  if (!failure.ok()) {
    return ToGrpcStatus(absl::Status(
        failure.code(), absl::StrCat("batch ", failed_batch, " of the stream: ", failure.message(),
                                     " (", response->batches(),
                                     " other batches committed; retry the rest with their "
                                     "idempotency keys)")));
  }
  return grpc::Status::OK;
}

namespace {

// The transport's view of the caller. In development mode every request's peer is
// "development" (plaintext, no certificates), which is no certificate identity.
Caller HttpCaller(const http::HttpRequest& req, const tls::PeerIdentity& peer, bool development) {
  return Caller{development ? "" : peer.peer_id, req.HeaderValue("Authorization")};
}

// The dataset of a records path (/v1/datasets/{dataset}/records).
std::string PathDataset(const std::string& path) {
  std::vector<std::string> parts = absl::StrSplit(path, '/');
  return parts.size() == 5 ? parts[3] : "";
}

}  // namespace

void RegisterIngestRoutes(http::HttpsServer* server, Ingest* ingest, bool development) {
  // Credentials and the dataset grant are checked on the headers: an unauthenticated body is
  // never read, let alone parsed.
  http::HttpsServer::Gate gate = [ingest, development](const http::HttpRequest& head,
                                                       const tls::PeerIdentity& peer) {
    return ingest->Admit(HttpCaller(head, peer, development), PathDataset(head.path));
  };
  server->Handle(
      "POST", R"(/v1/datasets/([^/]+)/records)",
      [ingest, development](const http::HttpRequest& req, const tls::PeerIdentity& peer) {
        const std::string type = absl::AsciiStrToLower(req.HeaderValue("Content-Type"));
        absl::StatusOr<v1::PublishRequest> request = ParseHttpBody(req, req.path_params[0]);
        if (!request.ok()) {
          http::HttpResponse r = http::HttpResponse::Error(request.status());
          if (absl::StrContains(request.status().message(), "unsupported Content-Type"))
            r.status = 415;
          return r;
        }
        absl::StatusOr<v1::PublishResponse> r =
            ingest->Publish(HttpCaller(req, peer, development), *request);
        if (!r.ok()) return http::HttpResponse::Error(r.status());
        return http::HttpResponse::Json(200, ResponseJson(*r).dump());
      },
      gate);
}

}  // namespace node
}  // namespace polder
