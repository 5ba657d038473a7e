// The ingest operation over gRPC (polder.node.v1.IngestService) and HTTP
// (POST /v1/datasets/{dataset}/records).
//
// HTTP bodies: application/json — a JSON array of records (each the dataset message in the
// proto3 JSON mapping); application/x-ndjson — one such record per line; application/x-protobuf
// — a serialized polder.node.v1.PublishRequest (its dataset empty or equal to the path's).
// Headers: Authorization: Bearer <token> (unless a client certificate identifies the caller),
// Idempotency-Key, Polder-Schema-Id (or ?schema_id=). Answer 200 with
// {"schema_id", "records", "ce_ids", "duplicate", "topic"}; errors as {"error": {...}} with
// 400/401/403/404/409/413/415/429/503.
#ifndef POLDER_SERVICES_NODE_INGEST_TRANSPORTS_H_
#define POLDER_SERVICES_NODE_INGEST_TRANSPORTS_H_

#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/http/https_server.h"
#include "proto/polder/node/v1/ingest.grpc.pb.h"
#include "services/node/ingest/ingest.h"

namespace polder {
namespace node {

class IngestGrpcService final : public v1::IngestService::Service {
 public:
  // `max_streams_per_identity`: PublishStream calls one ingest identity may hold open at once
  // (more are refused with RESOURCE_EXHAUSTED).
  explicit IngestGrpcService(Ingest* ingest, int max_streams_per_identity = 16)
      : ingest_(ingest), max_streams_per_identity_(max_streams_per_identity) {}
  grpc::Status Publish(grpc::ServerContext* context, const v1::PublishRequest* request,
                       v1::PublishResponse* response) override;
  grpc::Status PublishStream(grpc::ServerContext* context,
                             grpc::ServerReader<v1::PublishRequest>* reader,
                             v1::PublishStreamResponse* response) override;

 private:
  Ingest* ingest_;
  const int max_streams_per_identity_;
  absl::Mutex mu_;
  std::map<std::string, int> streams_ ABSL_GUARDED_BY(mu_);  // open PublishStreams per caller
};

// `development`: the server is the plaintext development listener (no caller has a certificate).
void RegisterIngestRoutes(http::HttpsServer* server, Ingest* ingest, bool development);

// The PublishRequest of an HTTP body, by Content-Type (see above); INVALID_ARGUMENT naming what
// is wrong ("unsupported Content-Type" for a media type it does not take). Exposed for the fuzz
// target of the HTTP ingest path.
absl::StatusOr<v1::PublishRequest> ParseHttpBody(const http::HttpRequest& req,
                                                 const std::string& dataset);

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_INGEST_TRANSPORTS_H_
