#include "services/node/replica/internal_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/server/host_port.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace polder {
namespace node {

v1::ForwardPublishRequest ToForwardRequest(int32_t partition, const PublishBatch& batch) {
  v1::ForwardPublishRequest req;
  req.set_key_partition(partition);
  req.set_identity(batch.identity);
  req.set_idempotency_key(batch.idempotency_key);
  req.set_content_hash(batch.content_hash);
  req.set_dataset_id(batch.dataset_id);
  req.set_schema_id(batch.schema_id);
  for (const kafka::ProducerRecord& r : batch.records) {
    v1::ForwardedRecord* f = req.add_records();
    f->set_topic(r.topic);
    f->set_partition(r.partition);
    f->set_has_key(r.key.has_value());
    if (r.key) f->set_key(*r.key);
    f->set_value(r.value);
    f->set_tombstone(r.tombstone);
    f->set_timestamp_ms(r.timestamp_ms);
    for (const kafka::Header& h : r.headers) {
      v1::ForwardedHeader* fh = f->add_headers();
      fh->set_key(h.key);
      fh->set_value(h.value);
    }
  }
  return req;
}

PublishBatch FromForwardRequest(const v1::ForwardPublishRequest& req) {
  PublishBatch b;
  b.identity = req.identity();
  b.idempotency_key = req.idempotency_key();
  b.content_hash = req.content_hash();
  b.dataset_id = req.dataset_id();
  b.schema_id = req.schema_id();
  b.records.reserve(req.records_size());
  for (const v1::ForwardedRecord& f : req.records()) {
    kafka::ProducerRecord r;
    r.topic = f.topic();
    r.partition = f.partition();
    if (f.has_key()) r.key = f.key();
    r.value = f.value();
    r.tombstone = f.tombstone();
    r.timestamp_ms = f.timestamp_ms();
    for (const v1::ForwardedHeader& h : f.headers()) r.headers.push_back({h.key(), h.value()});
    b.records.push_back(std::move(r));
  }
  return b;
}

grpc::Status ReplicaService::CheckCaller(grpc::ServerContext* context, const char* what) const {
  if (self_.empty()) return grpc::Status::OK;  // development mode: loopback only
  absl::StatusOr<tls::PeerIdentity> peer = tls::CallPeer(*context);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  if (peer->peer_id != self_) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("only replicas of '", self_, "' may forward ", what));
  }
  return grpc::Status::OK;
}

grpc::Status ReplicaService::ForwardReceipt(grpc::ServerContext* context,
                                            const v1::ForwardReceiptRequest* request,
                                            federation::v1::ExchangeReceiptsResponse* response) {
  if (grpc::Status s = CheckCaller(context, "receipts"); !s.ok()) return s;
  if (request->peer_id().empty() || !request->has_request()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "peer_id and request: required (the subscriber and its receipt)");
  }
  ReceiptHandler handler;
  {
    absl::MutexLock lock(&mu_);
    handler = receipts_;
  }
  if (!handler) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "this replica serves no federation streams");
  }
  absl::StatusOr<federation::v1::ExchangeReceiptsResponse> r =
      handler(request->peer_id(), request->request());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *response = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status ReplicaService::ForwardPublish(grpc::ServerContext* context,
                                            const v1::ForwardPublishRequest* request,
                                            v1::ForwardPublishResponse* response) {
  // The auth filter admitted only this node's own peer id; checked again here, so a listener
  // built without it can never take a batch from another organisation.
  if (grpc::Status s = CheckCaller(context, "batches"); !s.ok()) return s;
  KeyedPublisher* keyed = keyed_.load();
  if (keyed == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this replica is still starting");
  }
  if (request->key_partition() < -1) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("key_partition ", request->key_partition(), " is invalid"));
  }
  absl::StatusOr<PublishOutcome> r =
      keyed->PublishHeld(request->key_partition(), FromForwardRequest(*request));
  if (!r.ok()) return ToGrpcStatus(r.status());
  response->set_records(r->records);
  response->set_schema_id(r->schema_id);
  response->set_duplicate(r->duplicate);
  return grpc::Status::OK;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> GrpcReplicaForwarder::ChannelTo(
    const std::string& endpoint) {
  absl::MutexLock lock(&mu_);
  auto it = channels_.find(endpoint);
  if (it != channels_.end()) return it->second;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options_.development_mode) {
    // The endpoint comes from the replica directory in Kafka: plaintext only to this machine.
    absl::StatusOr<server::HostPort> hp = server::ParseHostPort(endpoint);
    if (!hp.ok() || !server::IsLoopbackHost(hp->host)) {
      return absl::FailedPreconditionError(
          absl::StrCat("development mode forwards only to loopback replicas; refusing ", endpoint));
    }
    creds = grpc::InsecureChannelCredentials();  // loopback development mode only
  } else {
    ASSIGN_OR_RETURN(creds, tls::MakeChannelCredentials(options_.files, options_.checker,
                                                        options_.self_peer_id));
  }
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(options_.max_message_bytes);
  args.SetMaxReceiveMessageSize(1 << 20);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(endpoint, creds, args);
  channels_[endpoint] = channel;
  return channel;
}

absl::StatusOr<PublishOutcome> GrpcReplicaForwarder::ForwardPublish(const std::string& endpoint,
                                                                    int32_t partition,
                                                                    const PublishBatch& batch,
                                                                    absl::Duration timeout) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, ChannelTo(endpoint));
  v1::ForwardPublishRequest req = ToForwardRequest(partition, batch);
  req.set_from_replica(options_.self_replica);
  v1::ForwardPublishResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::Status s = v1::Replica::NewStub(channel)->ForwardPublish(&ctx, req, &resp);
  if (!s.ok()) {
    absl::Status e = FromGrpcStatus(s);
    return absl::Status(e.code(),
                        absl::StrCat("forwarding to the replica at ", endpoint, ": ", e.message()));
  }
  return PublishOutcome{resp.records(), resp.schema_id(), resp.duplicate()};
}

absl::StatusOr<federation::v1::ExchangeReceiptsResponse> GrpcReplicaForwarder::ForwardReceipt(
    const std::string& endpoint, const std::string& peer,
    const federation::v1::ExchangeReceiptsRequest& request, absl::Duration timeout) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, ChannelTo(endpoint));
  v1::ForwardReceiptRequest req;
  req.set_peer_id(peer);
  *req.mutable_request() = request;
  req.set_from_replica(options_.self_replica);
  federation::v1::ExchangeReceiptsResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::Status s = v1::Replica::NewStub(channel)->ForwardReceipt(&ctx, req, &resp);
  if (!s.ok()) {
    absl::Status e = FromGrpcStatus(s);
    return absl::Status(e.code(), absl::StrCat("forwarding a receipt to the replica at ", endpoint,
                                               ": ", e.message()));
  }
  return resp;
}

}  // namespace node
}  // namespace polder
