#include "services/node/federation/federation_service.h"

#include <openssl/rand.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "common/tls/grpc_tls.h"
#include "common/trust/document.h"
#include "services/node/federation/stream_audit.h"

namespace polder {
namespace node {

namespace fv1 = ::polder::federation::v1;

namespace {

// "stream-<replica>-<24 hex>" (or "stream-<24 hex>" without a replica id): unique per Subscribe,
// and naming the replica that serves it, so any replica can forward its receipts there.
std::string NewStreamId(const std::string& replica) {
  unsigned char b[12];
  RAND_bytes(b, sizeof b);
  const std::string hex =
      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(b), sizeof b));
  return replica.empty() ? absl::StrCat("stream-", hex)
                         : absl::StrCat("stream-", replica, "-", hex);
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

}  // namespace

grpc::Status FederationService::ListDatasets(grpc::ServerContext* context,
                                             const fv1::ListDatasetsRequest*,
                                             fv1::ListDatasetsResponse* response) {
  absl::StatusOr<tls::PeerIdentity> peer = tls::CallPeer(*context);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  std::map<std::string, fv1::DatasetListing*> listed;
  for (const trust::Contract& c : contracts_->ForConsumer(peer->peer_id, Now())) {
    auto d = options_.datasets.find(c.dataset);
    if (d == options_.datasets.end()) continue;
    fv1::DatasetListing*& l = listed[c.dataset];
    if (l == nullptr) {
      l = response->add_datasets();
      l->set_dataset_id(d->second.id);
      l->set_provider(options_.stream.self);
      l->set_topic(d->second.topic);
      l->set_partitions(d->second.partitions);
      l->set_epoch(d->second.epoch);
      l->set_description(d->second.description);
      l->set_licence(d->second.licence);
      l->set_owner_contact(d->second.owner_contact);
      if (options_.stream.feed_quality) {
        if (std::optional<fv1::FeedQuality> q = options_.stream.feed_quality(c.dataset);
            q.has_value()) {
          *l->mutable_feed_quality() = *std::move(q);
        }
      }
      for (auto v = options_.views.lower_bound({c.dataset, ""});
           v != options_.views.end() && v->first.first == c.dataset; ++v) {
        fv1::ViewListing* vl = l->add_views();
        vl->set_view_id(v->second.view);
        vl->set_topic(v->second.topic);
        vl->set_partitions(v->second.partitions);
        vl->set_epoch(v->second.epoch);
        vl->set_definition_hash(v->second.definition_hash);
        vl->set_definition_json(v->second.definition_json);
      }
    }
    fv1::ContractGrant* g = l->add_contracts();
    g->set_contract_id(c.id);
    g->set_contract_hash(c.Hash().value_or(""));
    for (int64_t v : c.schema_versions) g->add_schema_versions(static_cast<int32_t>(v));
    g->set_access(c.access == trust::Access::kRaw ? "raw" : "aggregate-only");
    g->set_purpose(c.purpose);
    *g->mutable_valid_until() = ToProto(c.valid_until);
    g->set_reshare(c.reshare);
    if (c.view.has_value()) {
      g->set_view_id(c.view->id);
      for (const std::string& h : c.view->definition_hashes) g->add_definition_hashes(h);
    }
  }
  return grpc::Status::OK;
}

FederationService::Stats FederationService::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s = stats_;
  for (auto& [key, p] : s.peers) {
    p.streams_open = 0;
    p.unacknowledged_bytes = 0;
  }
  for (const auto& [id, stream] : streams_) {
    if (!stream->open()) continue;
    PeerStats& p = s.peers[{stream->peer(), stream->dataset()}];
    ++p.streams_open;
    p.unacknowledged_bytes += stream->unacknowledged_bytes();
  }
  return s;
}

absl::Status FederationService::Refuse(const std::string& peer, const std::string& dataset,
                                       absl::Status status) {
  if (status.ok()) return status;
  absl::MutexLock lock(&mu_);
  ++stats_.ended[{peer, absl::StatusCodeToString(status.code())}];
  if (status.code() == absl::StatusCode::kOutOfRange ||
      status.code() == absl::StatusCode::kDataLoss) {
    if (gaps_reported_.size() < 10000) gaps_reported_[{peer, dataset}] = Now();
  }
  return status;
}

grpc::Status FederationService::Subscribe(grpc::ServerContext* context,
                                          const fv1::SubscribeRequest* request,
                                          grpc::ServerWriter<fv1::SubscribeResponse>* writer) {
  absl::StatusOr<tls::PeerIdentity> peer = tls::CallPeer(*context);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  return ToGrpcStatus(Refuse(peer->peer_id, request->dataset_id(),
                             SubscribeAs(context, peer->peer_id, *request, writer)));
}

namespace {

// A stream's transport: the call's writer and context.
class GrpcStreamTransport final : public ProviderStream::Transport {
 public:
  GrpcStreamTransport(grpc::ServerContext* context,
                      grpc::ServerWriter<fv1::SubscribeResponse>* writer,
                      const tls::IdentityChecker* checker)
      : context_(context), writer_(writer), checker_(checker) {}
  bool Send(const fv1::SubscribeResponse& message) override { return writer_->Write(message); }
  bool Cancelled() override { return context_->IsCancelled(); }
  absl::Status RecheckPeer() override {
    if (checker_ == nullptr) return absl::OkStatus();
    return tls::RecheckCallPeer(*context_, *checker_).status();
  }

 private:
  grpc::ServerContext* const context_;
  grpc::ServerWriter<fv1::SubscribeResponse>* const writer_;
  const tls::IdentityChecker* const checker_;
};

}  // namespace

absl::Status FederationService::SubscribeAs(grpc::ServerContext* context,
                                            const std::string& peer_id,
                                            const fv1::SubscribeRequest& request,
                                            grpc::ServerWriter<fv1::SubscribeResponse>* writer) {
  if (request.protocol_version() != fv1::PROTOCOL_VERSION_1) {
    return absl::FailedPreconditionError(absl::StrCat("protocol version ",
                                                      request.protocol_version(),
                                                      " is not spoken here; this node "
                                                      "speaks PROTOCOL_VERSION_1"));
  }
  auto d = options_.datasets.find(request.dataset_id());
  if (d == options_.datasets.end()) {
    return absl::NotFoundError(absl::StrCat("dataset '", request.dataset_id(),
                                            "' is not shared by ", options_.stream.self));
  }
  const SharedDataset* shared = &d->second;
  trust::Contract contract;
  if (request.view_id().empty()) {
    ASSIGN_OR_RETURN(contract,
                     contracts_->ForSubscribe(peer_id, request.dataset_id(), request.contract_id(),
                                              /*raw=*/true, Now()));
  } else {
    auto v = options_.views.find({request.dataset_id(), request.view_id()});
    if (v == options_.views.end()) {
      return absl::NotFoundError(absl::StrCat("dataset '", request.dataset_id(), "' has no view '",
                                              request.view_id(), "' on ", options_.stream.self));
    }
    shared = &v->second;
    ASSIGN_OR_RETURN(contract,
                     contracts_->ForView(peer_id, request.dataset_id(), request.view_id(),
                                         shared->definition_hash, request.contract_id(), Now()));
  }
  // The peer's live streams across the node's replicas (ADR 0021 §3).
  ASSIGN_OR_RETURN(std::unique_ptr<PeerSlot> slot,
                   Admit(peer_id, "stream", options_.max_streams_per_peer));
  ASSIGN_OR_RETURN(std::shared_ptr<ProviderStream> stream,
                   ProviderStream::Open(options_.stream, fan_out_, contracts_, audit_,
                                        NewStreamId(options_.replica), peer_id, *shared,
                                        std::move(contract), request));
  stream->set_on_batch(
      [this, key = std::make_pair(peer_id, shared->id)](int64_t records, int64_t bytes) {
        absl::MutexLock lock(&mu_);
        PeerStats& st = stats_.peers[key];
        st.records += records;
        st.bytes += bytes;
        ++st.batches;
      });
  {
    absl::MutexLock lock(&mu_);
    // Forget streams that ended long ago.
    for (auto it = streams_.begin(); it != streams_.end();) {
      if (!it->second->open() && Now() - it->second->ended_at() > options_.keep_ended_streams) {
        it = streams_.erase(it);
      } else {
        ++it;
      }
    }
    streams_[stream->id()] = stream;
  }
  GrpcStreamTransport transport(context, writer, options_.checker.get());
  return stream->Run(transport);
}

grpc::Status FederationService::ExchangeReceipts(grpc::ServerContext* context,
                                                 const fv1::ExchangeReceiptsRequest* request,
                                                 fv1::ExchangeReceiptsResponse* response) {
  absl::StatusOr<tls::PeerIdentity> peer = tls::CallPeer(*context);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  if (signer_ == nullptr) {
    return ToGrpcStatus(absl::FailedPreconditionError(absl::StrCat(
        options_.stream.self, " has no signing key configured: it cannot exchange receipts")));
  }
  if (!request->has_receipt()) {
    return ToGrpcStatus(
        absl::InvalidArgumentError("receipt: required (the caller's signed chain head)"));
  }
  const audit::Receipt theirs = FromProto(request->receipt());
  std::shared_ptr<ProviderStream> live;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(theirs.stream_id);
    if (it != streams_.end()) live = it->second;
  }
  absl::StatusOr<audit::Receipt> ours;
  const std::string serving = ReplicaOfStream(theirs.stream_id);
  if (live == nullptr && !serving.empty() && serving != options_.replica &&
      options_.forward_receipt) {
    // A stream another replica serves (the subscriber's new connection landed here): that
    // replica releases its window. If it has no live copy (the stream ended, the replica is
    // gone), the audit index answers below.
    absl::StatusOr<fv1::ExchangeReceiptsResponse> forwarded =
        options_.forward_receipt(serving, peer->peer_id, *request);
    if (forwarded.ok()) {
      absl::MutexLock lock(&mu_);
      ++receipts_forwarded_;
      *response = *std::move(forwarded);
      return grpc::Status::OK;
    }
    const absl::StatusCode code = forwarded.status().code();
    if (code != absl::StatusCode::kNotFound && code != absl::StatusCode::kUnavailable &&
        code != absl::StatusCode::kDeadlineExceeded &&
        code != absl::StatusCode::kFailedPrecondition) {
      return ToGrpcStatus(forwarded.status());  // the serving replica's answer (e.g. refused)
    }
  }
  if (live != nullptr) {
    ours = ExchangeLive(peer->peer_id, *live, theirs, *request);
  } else if (absl::StartsWith(theirs.stream_id, absl::StrCat("gap-", peer->peer_id, "-",
                                                             options_.stream.self, "-"))) {
    ours = NotariseGap(peer->peer_id, theirs);
  } else {
    ours = ExchangeEnded(peer->peer_id, theirs);
  }
  if (!ours.ok()) return ToGrpcStatus(ours.status());
  *response->mutable_receipt() = ToProto(*ours);
  return grpc::Status::OK;
}

absl::StatusOr<audit::Receipt> FederationService::ExchangeLive(
    const std::string& peer, ProviderStream& stream, const audit::Receipt& theirs,
    const fv1::ExchangeReceiptsRequest& request) {
  if (stream.peer() != peer) {
    return absl::PermissionDeniedError(
        absl::StrCat("stream ", theirs.stream_id, " is not a stream of '", peer, "'"));
  }
  RETURN_IF_ERROR(signer_->Verify(theirs, peer, theirs.stream_id));
  const ProviderStream::Head head = stream.head();
  if (theirs.sequence > head.sequence) {
    return absl::InvalidArgumentError(absl::StrCat("the receipt claims ", theirs.sequence,
                                                   " batches received on stream ", theirs.stream_id,
                                                   "; ", head.sequence, " were offered"));
  }
  if (stream.ReceiptAdvances(theirs.sequence)) {
    RETURN_IF_ERROR(audit_->StoreReceipt(theirs));
    stream.ReceiptKept(theirs.sequence);
    absl::MutexLock lock(&mu_);
    ++stats_.receipts;
  }
  std::map<int32_t, int64_t> committed(request.committed().next_offsets().begin(),
                                       request.committed().next_offsets().end());
  stream.Acknowledge(committed);
  return signer_->Sign(theirs.stream_id, head.sequence, head.hash, Now());
}

absl::StatusOr<fv1::ExchangeReceiptsResponse> FederationService::ExchangeForwarded(
    const std::string& peer, const fv1::ExchangeReceiptsRequest& request) {
  if (signer_ == nullptr || !request.has_receipt()) {
    return absl::InvalidArgumentError("receipt: required (the caller's signed chain head)");
  }
  const audit::Receipt theirs = FromProto(request.receipt());
  std::shared_ptr<ProviderStream> live;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(theirs.stream_id);
    if (it != streams_.end() && it->second->open()) live = it->second;
  }
  if (live == nullptr) {
    return absl::NotFoundError(absl::StrCat("stream ", theirs.stream_id,
                                            " is not live on replica '", options_.replica, "'"));
  }
  ASSIGN_OR_RETURN(audit::Receipt ours, ExchangeLive(peer, *live, theirs, request));
  fv1::ExchangeReceiptsResponse response;
  *response.mutable_receipt() = ToProto(ours);
  return response;
}

std::string FederationService::ReplicaOfStream(const std::string& stream_id) {
  // "stream-<replica>-<24 hex>"; replica ids may contain '-'.
  constexpr absl::string_view kPrefix = "stream-";
  if (!absl::StartsWith(stream_id, kPrefix)) return "";
  const size_t dash = stream_id.rfind('-');
  if (dash == std::string::npos || dash < kPrefix.size()) return "";
  return stream_id.substr(kPrefix.size(), dash - kPrefix.size());
}

int64_t FederationService::receipts_forwarded() const {
  absl::MutexLock lock(&mu_);
  return receipts_forwarded_;
}

absl::StatusOr<std::unique_ptr<PeerSlot>> FederationService::Admit(const std::string& peer,
                                                                   const std::string& kind,
                                                                   int limit) {
  PeerAdmission* admission = options_.admission != nullptr ? options_.admission : &local_admission_;
  return admission->Admit(peer, kind, limit);
}

absl::StatusOr<audit::Receipt> FederationService::ExchangeEnded(const std::string& peer,
                                                                const audit::Receipt& theirs) {
  // The stream's parties and head from the audit index (its parties checked before anything
  // else is read; the same per-peer bound as GetAuditEntries).
  ASSIGN_OR_RETURN(std::unique_ptr<PeerSlot> slot,
                   Admit(peer, "audit-read", options_.max_audit_reads_per_peer));
  absl::StatusOr<AuditLog::StreamHead> head =
      audit_->Head(theirs.stream_id, options_.stream.kafka_timeout, peer);
  if (!head.ok()) {
    if (head.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(
          absl::StrCat("stream ", theirs.stream_id, " is not known to ", options_.stream.self));
    }
    return head.status();
  }
  if (head->direction != DirectionName(AuditDirection::kOffered) ||
      head->source != options_.stream.self) {
    return absl::PermissionDeniedError(absl::StrCat("stream ", theirs.stream_id,
                                                    " is not a stream ", options_.stream.self,
                                                    " offered to '", peer, "'"));
  }
  RETURN_IF_ERROR(signer_->Verify(theirs, peer, theirs.stream_id));
  if (theirs.sequence > head->sequence) {
    return absl::InvalidArgumentError(absl::StrCat("the receipt claims ", theirs.sequence,
                                                   " batches received on stream ", theirs.stream_id,
                                                   "; ", head->sequence, " were offered"));
  }
  auto held = head->receipted.find(peer);
  if (held == head->receipted.end() || theirs.sequence > held->second) {
    RETURN_IF_ERROR(audit_->StoreReceipt(theirs));
    absl::MutexLock lock(&mu_);
    ++stats_.receipts;
  }
  return signer_->Sign(theirs.stream_id, head->sequence, head->hash, Now());
}

absl::StatusOr<audit::Receipt> FederationService::NotariseGap(const std::string& peer,
                                                              const audit::Receipt& theirs) {
  // "gap-<peer>-<self>-<dataset>-<unix ms>": a one-entry chain the subscriber wrote when this
  // node told it of a gap. This node cannot check the entry (it never saw it), but it keeps the
  // subscriber's signed head of it and countersigns that head: neither side can later delete
  // the gap entry without the other's copy showing it.
  const std::string rest =
      theirs.stream_id.substr(absl::StrCat("gap-", peer, "-", options_.stream.self, "-").size());
  const size_t dash = rest.rfind('-');
  const std::string dataset = dash == std::string::npos ? "" : rest.substr(0, dash);
  if (theirs.sequence != 1) {
    return absl::InvalidArgumentError(absl::StrCat("a gap chain has one entry; the receipt of ",
                                                   theirs.stream_id, " claims ", theirs.sequence));
  }
  RETURN_IF_ERROR(signer_->Verify(theirs, peer, theirs.stream_id));
  {
    absl::MutexLock lock(&mu_);
    auto it = gaps_reported_.find({peer, dataset});
    if (it == gaps_reported_.end()) {
      return absl::NotFoundError(
          absl::StrCat(options_.stream.self, " has reported no gap of '", dataset, "' to '", peer,
                       "' that is not notarised yet: subscribe again to have it reported"));
    }
    gaps_reported_.erase(it);
  }
  RETURN_IF_ERROR(audit_->StoreReceipt(theirs));
  {
    absl::MutexLock lock(&mu_);
    ++stats_.receipts;
  }
  return signer_->Sign(theirs.stream_id, theirs.sequence, theirs.hash, Now());
}

grpc::Status FederationService::GetAuditEntries(grpc::ServerContext* context,
                                                const fv1::GetAuditEntriesRequest* request,
                                                fv1::GetAuditEntriesResponse* response) {
  absl::StatusOr<tls::PeerIdentity> peer = tls::CallPeer(*context);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  absl::StatusOr<std::vector<audit::AuditLink>> links = ReadAudit(peer->peer_id, *request);
  if (!links.ok()) return ToGrpcStatus(links.status());
  // A page within the listener's largest message: the caller asks again from the next sequence.
  size_t bytes = 0;
  for (const audit::AuditLink& l : *links) {
    const size_t entry = l.hash.size() + l.canonical_json.size() + 32;
    if (response->entries_size() > 0 &&
        bytes + entry > static_cast<size_t>(options_.max_response_bytes)) {
      break;
    }
    bytes += entry;
    fv1::AuditEntryView* v = response->add_entries();
    v->set_sequence(l.sequence);
    v->set_hash(l.hash);
    v->set_canonical_json(l.canonical_json);
  }
  return grpc::Status::OK;
}

absl::StatusOr<std::vector<audit::AuditLink>> FederationService::ReadAudit(
    const std::string& peer, const fv1::GetAuditEntriesRequest& request) {
  if (request.stream_id().empty()) return absl::InvalidArgumentError("stream_id: required");
  const int max = request.max_entries() > 0 ? std::min(request.max_entries(), 1000) : 1000;
  // A bounded number of reads per peer at once; each reads through the audit index (the
  // stream's parties are checked there before anything is read) with a small prefetch.
  ASSIGN_OR_RETURN(std::unique_ptr<PeerSlot> slot,
                   Admit(peer, "audit-read", options_.max_audit_reads_per_peer));
  ASSIGN_OR_RETURN(std::vector<audit::AuditLink> links,
                   audit_->Read(request.stream_id(), std::max<uint64_t>(1, request.from_sequence()),
                                max, options_.stream.kafka_timeout, peer));
  if (links.empty()) {
    return absl::NotFoundError(absl::StrCat(options_.stream.self,
                                            " has no audit entries of stream ", request.stream_id(),
                                            " from sequence ", request.from_sequence()));
  }
  for (const audit::AuditLink& l : links) {
    absl::StatusOr<audit::AuditEntry> e = audit::ParseEntry(l.canonical_json);
    if (!e.ok() || e->destination != peer) {
      return absl::PermissionDeniedError(
          absl::StrCat("stream ", request.stream_id(), " is not a stream of '", peer, "'"));
    }
  }
  return links;
}

}  // namespace node
}  // namespace polder
