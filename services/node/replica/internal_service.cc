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

namespace {

SlotRecord FromProto(const v1::PeerSlot& s) { return SlotRecord{s.peer(), s.kind(), s.ticket()}; }

void ToProto(const SlotRecord& s, v1::PeerSlot* out) {
  out->set_peer(s.peer);
  out->set_kind(s.kind);
  out->set_ticket(s.ticket);
}

// Replicas send well-formed slots; anything else is refused, naming the field.
grpc::Status CheckSlot(const v1::PeerSlot& s) {
  if (s.peer().empty() || s.peer().size() > 256 || s.ticket().empty() || s.ticket().size() > 256 ||
      (s.kind() != "stream" && s.kind() != "audit-read")) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "slot: needs peer and ticket (at most 256 bytes) and kind stream or "
                        "audit-read");
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::Status ReplicaService::AdmitSlot(grpc::ServerContext* context,
                                       const v1::AdmitSlotRequest* request, v1::SlotResponse*) {
  if (grpc::Status s = CheckCaller(context, "slots"); !s.ok()) return s;
  ReplicaAdmission* slots = slots_.load();
  if (slots == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this replica is still starting");
  }
  if (grpc::Status s = CheckSlot(request->slot()); !s.ok()) return s;
  if (request->limit() < 1) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "limit: must be at least 1");
  }
  return ToGrpcStatus(slots->AdmitHeld(request->key_partition(), request->replica(),
                                       FromProto(request->slot()), request->limit()));
}

grpc::Status ReplicaService::RenewSlots(grpc::ServerContext* context,
                                        const v1::RenewSlotsRequest* request, v1::SlotResponse*) {
  if (grpc::Status s = CheckCaller(context, "slots"); !s.ok()) return s;
  ReplicaAdmission* slots = slots_.load();
  if (slots == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this replica is still starting");
  }
  std::vector<SlotRecord> records;
  records.reserve(request->slots_size());
  for (const v1::PeerSlot& s : request->slots()) {
    if (grpc::Status c = CheckSlot(s); !c.ok()) return c;
    records.push_back(FromProto(s));
  }
  return ToGrpcStatus(slots->RenewHeld(request->key_partition(), request->replica(), records));
}

grpc::Status ReplicaService::ReleaseSlot(grpc::ServerContext* context,
                                         const v1::ReleaseSlotRequest* request, v1::SlotResponse*) {
  if (grpc::Status s = CheckCaller(context, "slots"); !s.ok()) return s;
  ReplicaAdmission* slots = slots_.load();
  if (slots == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this replica is still starting");
  }
  if (grpc::Status s = CheckSlot(request->slot()); !s.ok()) return s;
  return ToGrpcStatus(slots->ReleaseHeld(request->key_partition(), FromProto(request->slot())));
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

absl::Status GrpcReplicaForwarder::Admit(const std::string& endpoint, int32_t partition,
                                         const std::string& replica, const SlotRecord& slot,
                                         int limit, absl::Duration timeout) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, ChannelTo(endpoint));
  v1::AdmitSlotRequest req;
  req.set_key_partition(partition);
  req.set_replica(replica);
  ToProto(slot, req.mutable_slot());
  req.set_limit(limit);
  v1::SlotResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return FromGrpcStatus(v1::Replica::NewStub(channel)->AdmitSlot(&ctx, req, &resp));
}

absl::Status GrpcReplicaForwarder::Renew(const std::string& endpoint, int32_t partition,
                                         const std::string& replica,
                                         const std::vector<SlotRecord>& slots,
                                         absl::Duration timeout) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, ChannelTo(endpoint));
  v1::RenewSlotsRequest req;
  req.set_key_partition(partition);
  req.set_replica(replica);
  for (const SlotRecord& s : slots) ToProto(s, req.add_slots());
  v1::SlotResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return FromGrpcStatus(v1::Replica::NewStub(channel)->RenewSlots(&ctx, req, &resp));
}

absl::Status GrpcReplicaForwarder::Release(const std::string& endpoint, int32_t partition,
                                           const SlotRecord& slot, absl::Duration timeout) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, ChannelTo(endpoint));
  v1::ReleaseSlotRequest req;
  req.set_key_partition(partition);
  ToProto(slot, req.mutable_slot());
  v1::SlotResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return FromGrpcStatus(v1::Replica::NewStub(channel)->ReleaseSlot(&ctx, req, &resp));
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
