#include "services/node/federation/federation_service.h"

#include <openssl/rand.h>

#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "common/tls/grpc_tls.h"
#include "common/trust/document.h"
#include "common/wire/confluent_frame.h"
#include "services/node/federation/source_reader.h"

namespace polder {
namespace node {

namespace fv1 = ::polder::federation::v1;

namespace {

std::string NewStreamId() {
  unsigned char b[12];
  RAND_bytes(b, sizeof b);
  return absl::StrCat("stream-", absl::BytesToHexString(absl::string_view(
                                     reinterpret_cast<const char*>(b), sizeof b)));
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
      l->set_provider(options_.self);
      l->set_topic(d->second.topic);
      l->set_partitions(d->second.partitions);
      l->set_epoch(d->second.epoch);
      l->set_description(d->second.description);
      l->set_licence(d->second.licence);
      l->set_owner_contact(d->second.owner_contact);
    }
    fv1::ContractGrant* g = l->add_contracts();
    g->set_contract_id(c.id);
    g->set_contract_hash(c.Hash().value_or(""));
    for (int64_t v : c.schema_versions) g->add_schema_versions(static_cast<int32_t>(v));
    g->set_access(c.access == trust::Access::kRaw ? "raw" : "aggregate-only");
    g->set_purpose(c.purpose);
    *g->mutable_valid_until() = ToProto(c.valid_until);
    g->set_reshare(c.reshare);
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
  for (const auto& [id, live] : streams_) {
    if (!live->open) continue;
    PeerStats& p = s.peers[{live->peer, live->dataset}];
    ++p.streams_open;
    p.unacknowledged_bytes += live->unacknowledged_bytes;
  }
  return s;
}

grpc::Status FederationService::Refuse(const std::string& peer, const std::string& dataset,
                                       grpc::Status status) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int code = static_cast<int>(status.error_code());
  if (code > 0 && code <= 16) {
    absl::MutexLock lock(&mu_);
    ++stats_.ended[{peer, kNames[code]}];
    if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE ||
        status.error_code() == grpc::StatusCode::DATA_LOSS) {
      if (gaps_reported_.size() < 10000) gaps_reported_[{peer, dataset}] = Now();
    }
  }
  return status;
}

grpc::Status FederationService::Subscribe(grpc::ServerContext* context,
                                          const fv1::SubscribeRequest* request,
                                          grpc::ServerWriter<fv1::SubscribeResponse>* writer) {
  absl::StatusOr<tls::PeerIdentity> peer = tls::CallPeer(*context);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  return Refuse(peer->peer_id, request->dataset_id(),
                SubscribeAs(context, peer->peer_id, request, writer));
}

grpc::Status FederationService::SubscribeAs(grpc::ServerContext* context,
                                            const std::string& peer_id,
                                            const fv1::SubscribeRequest* request,
                                            grpc::ServerWriter<fv1::SubscribeResponse>* writer) {
  if (request->protocol_version() != fv1::PROTOCOL_VERSION_1) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("protocol version ", request->protocol_version(),
                                     " is not spoken here; this node "
                                     "speaks PROTOCOL_VERSION_1"));
  }
  auto d = options_.datasets.find(request->dataset_id());
  if (d == options_.datasets.end()) {
    return grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat("dataset '", request->dataset_id(), "' is not shared by ", options_.self));
  }
  absl::StatusOr<trust::Contract> contract = contracts_->ForSubscribe(
      peer_id, request->dataset_id(), request->contract_id(), /*raw=*/true, Now());
  if (!contract.ok()) return ToGrpcStatus(contract.status());
  {
    absl::MutexLock lock(&mu_);
    if (streams_per_peer_[peer_id] >= options_.max_streams_per_peer) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          absl::StrCat("'", peer_id, "' has ", options_.max_streams_per_peer,
                                       " streams open already (the limit)"));
    }
    ++streams_per_peer_[peer_id];
  }
  absl::Cleanup release = [this, p = peer_id] {
    absl::MutexLock lock(&mu_);
    --streams_per_peer_[p];
  };
  return ToGrpcStatus(Stream(context, peer_id, d->second, *contract, *request, writer));
}

absl::Status FederationService::Stream(grpc::ServerContext* context, const std::string& peer,
                                       const SharedDataset& dataset,
                                       const trust::Contract& contract,
                                       const fv1::SubscribeRequest& request,
                                       grpc::ServerWriter<fv1::SubscribeResponse>* writer) {
  // The starting cursor.
  if (!request.cursor().epoch().empty() && request.cursor().epoch() != dataset.epoch) {
    return absl::OutOfRangeError(absl::StrCat("the cursor is of epoch ", request.cursor().epoch(),
                                              ", ", dataset.topic, " is now epoch ", dataset.epoch,
                                              " (re-created): subscribe from the "
                                              "contract's start again and reconcile the mirror"));
  }
  std::map<int32_t, int64_t> start;
  std::unique_ptr<kafka::Consumer> probe;  // made when an offset must be looked up
  // The offset of `position` in partition p: earliest, latest or the first at a time.
  auto offset_of = [&](const std::string& position, int32_t p,
                       const std::string& whose) -> absl::StatusOr<int64_t> {
    if (probe == nullptr) {
      ASSIGN_OR_RETURN(probe, kafka_.NewConsumer(options_.consumer));
    }
    if (position == "earliest" || position == "latest") {
      ASSIGN_OR_RETURN(auto marks,
                       probe->QueryWatermarks(dataset.topic, p, options_.kafka_timeout));
      return position == "earliest" ? marks.first : marks.second;
    }
    absl::StatusOr<absl::Time> at = trust::ParseRfc3339(position);
    if (!at.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          whose, " start position '", position, "' is not earliest, latest or an RFC 3339 time"));
    }
    return probe->OffsetForTime(dataset.topic, p, *at, options_.kafka_timeout);
  };
  if (request.cursor().next_offsets().empty()) {
    for (int32_t p = 0; p < dataset.partitions; ++p) {
      ASSIGN_OR_RETURN(int64_t contract_start,
                       offset_of(contract.start_position, p, "the contract's"));
      int64_t requested = contract_start;
      if (!request.start_position().empty()) {
        ASSIGN_OR_RETURN(requested,
                         offset_of(request.start_position(), p, "start_position: the requested"));
      }
      start[p] = std::max(contract_start, requested);
    }
  } else {
    for (const auto& [p, o] : request.cursor().next_offsets()) {
      if (p < 0 || p >= dataset.partitions) {
        return absl::InvalidArgumentError(absl::StrCat("the cursor names partition ", p, "; ",
                                                       dataset.topic, " has partitions 0 to ",
                                                       dataset.partitions - 1));
      }
      if (o < 0)
        return absl::InvalidArgumentError(
            absl::StrCat("the cursor's offset ", o, " of partition ", p, " is negative"));
      start[p] = o;
    }
    if (static_cast<int32_t>(start.size()) != dataset.partitions) {
      return absl::FailedPreconditionError(absl::StrCat("the cursor names ", start.size(),
                                                        " partitions; ", dataset.topic, " has ",
                                                        dataset.partitions));
    }
    // A cursor never reaches before the contract's start: refused, never clamped (a silent skip
    // would be a gap nobody recorded). "earliest" bounds nothing (retention decides, and a cursor
    // below it is a gap); "latest" is bounded by the contract's valid_from, a time by that time.
    if (contract.start_position != "earliest") {
      const std::string bound =
          contract.start_position == "latest"
              ? absl::FormatTime(absl::RFC3339_sec, contract.valid_from, absl::UTCTimeZone())
              : contract.start_position;
      std::map<int32_t, int64_t> first;
      bool below = false;
      for (int32_t p = 0; p < dataset.partitions; ++p) {
        ASSIGN_OR_RETURN(first[p], offset_of(bound, p, "the contract's"));
        below |= start[p] < first[p];
      }
      if (below) {
        std::string offsets;
        for (const auto& [p, f] : first)
          absl::StrAppend(&offsets, offsets.empty() ? "" : ", ", p, ":", f);
        return absl::PermissionDeniedError(
            absl::StrCat("the cursor reaches before the start of contract ", contract.id, " (",
                         bound, "): its first offsets per partition are {", offsets, "}"));
      }
    }
  }
  BatchLimits limits;
  limits.max_records = request.max_batch_records() > 0
                           ? std::min(request.max_batch_records(), options_.max_batch_records)
                           : options_.max_batch_records;
  limits.max_bytes = request.max_batch_bytes() > 0
                         ? std::min(request.max_batch_bytes(), options_.max_batch_bytes)
                         : options_.max_batch_bytes;
  ASSIGN_OR_RETURN(std::unique_ptr<SourceReader> reader,
                   SourceReader::Create(kafka_, options_.consumer, dataset.topic, start, limits,
                                        options_.kafka_timeout));
  const std::string stream_id = NewStreamId();
  ASSIGN_OR_RETURN(std::string contract_hash, contract.Hash());
  const int64_t window =
      request.max_unacknowledged_bytes() > 0
          ? std::min(request.max_unacknowledged_bytes(), options_.max_unacknowledged_bytes)
          : options_.max_unacknowledged_bytes;
  auto live = std::make_shared<LiveStream>();
  live->peer = peer;
  live->dataset = dataset.id;
  live->head = audit::AuditChain::Genesis(stream_id);
  live->acknowledged = start;
  {
    absl::MutexLock lock(&mu_);
    // Forget streams that ended long ago.
    for (auto it = streams_.begin(); it != streams_.end();) {
      if (!it->second->open && Now() - it->second->ended > options_.keep_ended_streams) {
        it = streams_.erase(it);
      } else {
        ++it;
      }
    }
    streams_[stream_id] = live;
  }
  absl::Cleanup ended = [this, live] {
    absl::MutexLock lock(&mu_);
    live->open = false;
    live->ended = Now();
    live->unacknowledged.clear();
    live->unacknowledged_bytes = 0;
  };
  fv1::SubscribeResponse opened;
  opened.mutable_opened()->set_stream_id(stream_id);
  opened.mutable_opened()->set_protocol_version(fv1::PROTOCOL_VERSION_1);
  opened.mutable_opened()->set_epoch(dataset.epoch);
  opened.mutable_opened()->set_partitions(dataset.partitions);
  opened.mutable_opened()->set_max_unacknowledged_bytes(window);
  opened.mutable_opened()->set_max_batch_records(limits.max_records);
  opened.mutable_opened()->set_max_batch_bytes(limits.max_bytes);
  if (!writer->Write(opened)) return absl::CancelledError("the subscriber went away");
  audit::AuditChain chain(stream_id);
  // The index records where the chain ended, so receipts can be exchanged for it later.
  absl::Cleanup end_chain = [this, &chain] { audit_->EndStream(chain); };
  absl::Time next_check = Now() + options_.recheck_interval;
  absl::Time next_heartbeat = Now() + options_.heartbeat_interval;
  auto heartbeat_if_due = [&]() -> absl::Status {
    if (Now() < next_heartbeat) return absl::OkStatus();
    ASSIGN_OR_RETURN(auto marks, reader->HighWatermarks(options_.kafka_timeout));
    fv1::SubscribeResponse hb;
    for (const auto& [p, m] : marks) (*hb.mutable_heartbeat()->mutable_high_watermarks())[p] = m;
    *hb.mutable_heartbeat()->mutable_at() = ToProto(Now());
    if (!writer->Write(hb)) return absl::CancelledError("the subscriber went away");
    next_heartbeat = Now() + options_.heartbeat_interval;
    return absl::OkStatus();
  };
  std::optional<SourceBatch> batch;  // read from the source, not yet sent
  while (!context->IsCancelled()) {
    if (Now() >= next_check) {
      if (options_.checker != nullptr) {
        absl::StatusOr<tls::PeerIdentity> still = tls::RecheckCallPeer(*context, *options_.checker);
        if (!still.ok())
          return absl::PermissionDeniedError(
              absl::StrCat("stream ended: ", still.status().message()));
      }
      absl::StatusOr<trust::Contract> valid =
          contracts_->ForSubscribe(peer, dataset.id, contract.id, /*raw=*/true, Now());
      if (!valid.ok())
        return absl::PermissionDeniedError(
            absl::StrCat("stream ended: ", valid.status().message()));
      next_check = Now() + options_.recheck_interval;
    }
    if (!batch.has_value()) {
      ASSIGN_OR_RETURN(batch, reader->Next(absl::Milliseconds(200)));
      if (!batch.has_value()) {
        RETURN_IF_ERROR(heartbeat_if_due());
        continue;
      }
    }
    // Flow control: while the window is full, wait for acknowledgements (one batch always fits),
    // reading nothing more from the source; heartbeats and re-checks go on.
    bool window_full;
    {
      absl::MutexLock lock(&mu_);
      window_full =
          live->unacknowledged_bytes > 0 && live->unacknowledged_bytes + batch->bytes > window;
    }
    if (window_full) {
      RETURN_IF_ERROR(heartbeat_if_due());
      absl::SleepFor(absl::Milliseconds(50));
      continue;
    }
    fv1::SubscribeResponse out;
    fv1::RecordBatch* b = out.mutable_batch();
    b->set_partition(batch->partition);
    b->set_next_offset(batch->next_offset);
    std::set<int32_t> schema_ids;
    for (const kafka::ConsumedRecord& r : batch->records) {
      absl::StatusOr<wire::Frame> frame = wire::Decode(r.value);
      if (!frame.ok()) {
        return absl::DataLossError(
            absl::StrCat(dataset.topic, " partition ", r.partition, " offset ", r.offset,
                         ": not a Polder record: ", frame.status().message()));
      }
      if (schema_ids.insert(frame->schema_id).second && options_.schema_version) {
        absl::StatusOr<int64_t> version = options_.schema_version(dataset.id, frame->schema_id);
        if (!version.ok()) {
          return absl::FailedPreconditionError(
              absl::StrCat("stream stopped at ", dataset.topic, " partition ", r.partition,
                           " offset ", r.offset, ": ", version.status().message()));
        }
        absl::Status allowed = ContractBook::CheckSchemaVersion(contract, *version);
        if (!allowed.ok()) {
          return absl::FailedPreconditionError(absl::StrCat("stream stopped at ", dataset.topic,
                                                            " partition ", r.partition, " offset ",
                                                            r.offset, ": ", allowed.message()));
        }
      }
      fv1::Record* rec = b->add_records();
      if (r.key) rec->set_key(*r.key);
      rec->set_value(r.value);
      for (const kafka::Header& h : r.headers) {
        fv1::Header* hh = rec->add_headers();
        hh->set_key(h.key);
        hh->set_value(h.value);
      }
      rec->set_timestamp_ms(r.timestamp_ms);
      rec->set_source_offset(r.offset);
    }
    for (int32_t id : schema_ids) b->add_schema_ids(id);
    // Record before sending; refuse to send what could not be recorded.
    audit::AuditEntry entry;
    entry.transaction_id = stream_id;
    entry.direction = "offered";
    entry.contract_hash = contract_hash;
    entry.source = options_.self;
    entry.destination = peer;
    entry.dataset = dataset.id;
    entry.partition = batch->partition;
    entry.first_offset = batch->records.front().offset;
    entry.next_offset = batch->next_offset;
    entry.records = static_cast<int64_t>(batch->records.size());
    entry.bytes = batch->bytes;
    entry.at = Now();
    entry.traceparent = request.traceparent();
    entry.purpose = contract.purpose;
    ASSIGN_OR_RETURN(audit::AuditLink link, audit_->Record(chain, entry));
    b->mutable_provider_audit()->set_sequence(link.sequence);
    b->mutable_provider_audit()->set_hash(link.hash);
    {
      absl::MutexLock lock(&mu_);
      live->sequence = link.sequence;
      live->head = link.hash;
      live->unacknowledged.push_back({batch->partition, batch->next_offset, batch->bytes});
      live->unacknowledged_bytes += batch->bytes;
      PeerStats& st = stats_.peers[{peer, dataset.id}];
      st.records += entry.records;
      st.bytes += entry.bytes;
      ++st.batches;
    }
    batch.reset();
    if (!writer->Write(out)) return absl::CancelledError("the subscriber went away");
  }
  return absl::CancelledError("the subscriber ended the stream");
}

grpc::Status FederationService::ExchangeReceipts(grpc::ServerContext* context,
                                                 const fv1::ExchangeReceiptsRequest* request,
                                                 fv1::ExchangeReceiptsResponse* response) {
  absl::StatusOr<tls::PeerIdentity> peer = tls::CallPeer(*context);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  if (signer_ == nullptr) {
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat(options_.self, " has no signing key configured: it cannot exchange receipts"));
  }
  if (!request->has_receipt()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "receipt: required (the caller's signed chain head)");
  }
  const audit::Receipt theirs = FromProto(request->receipt());
  std::shared_ptr<LiveStream> live;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(theirs.stream_id);
    if (it != streams_.end()) live = it->second;
  }
  if (live == nullptr) {
    if (absl::StartsWith(theirs.stream_id,
                         absl::StrCat("gap-", peer->peer_id, "-", options_.self, "-"))) {
      return NotariseGap(peer->peer_id, theirs, response);
    }
    return ExchangeEnded(peer->peer_id, theirs, response);
  }
  if (live->peer != peer->peer_id) {
    return grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        absl::StrCat("stream ", theirs.stream_id, " is not a stream of '", peer->peer_id, "'"));
  }
  absl::Status verified = signer_->Verify(theirs, peer->peer_id, theirs.stream_id);
  if (!verified.ok()) return ToGrpcStatus(verified);
  uint64_t sequence;
  std::string head;
  {
    absl::MutexLock lock(&mu_);
    sequence = live->sequence;
    head = live->head;
  }
  if (theirs.sequence > sequence) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("the receipt claims ", theirs.sequence, " batches received on stream ",
                     theirs.stream_id, "; ", sequence, " were offered"));
  }
  bool advances;
  {
    absl::MutexLock lock(&mu_);
    advances = !live->any_receipt_stored || theirs.sequence > live->stored_receipt;
  }
  if (advances) {
    absl::Status stored = audit_->StoreReceipt(theirs);
    if (!stored.ok()) return ToGrpcStatus(stored);
  }
  {
    absl::MutexLock lock(&mu_);
    if (advances) {
      live->stored_receipt = std::max(live->stored_receipt, theirs.sequence);
      live->any_receipt_stored = true;
      ++stats_.receipts;
    }
    for (const auto& [p, o] : request->committed().next_offsets()) {
      int64_t& acked = live->acknowledged[p];
      acked = std::max(acked, o);
    }
    for (auto it = live->unacknowledged.begin(); it != live->unacknowledged.end();) {
      auto a = live->acknowledged.find(it->partition);
      if (a != live->acknowledged.end() && it->next_offset <= a->second) {
        live->unacknowledged_bytes -= it->bytes;
        it = live->unacknowledged.erase(it);
      } else {
        ++it;
      }
    }
  }
  absl::StatusOr<audit::Receipt> ours = signer_->Sign(theirs.stream_id, sequence, head, Now());
  if (!ours.ok()) return ToGrpcStatus(ours.status());
  *response->mutable_receipt() = ToProto(*ours);
  return grpc::Status::OK;
}

grpc::Status FederationService::ExchangeEnded(const std::string& peer, const audit::Receipt& theirs,
                                              fv1::ExchangeReceiptsResponse* response) {
  // The stream's parties and head from the audit index (its parties checked before anything
  // else is read; the same per-peer bound as GetAuditEntries).
  bool admitted;
  {
    absl::MutexLock lock(&mu_);
    admitted = audit_reads_[peer] < options_.max_audit_reads_per_peer;
    if (admitted) ++audit_reads_[peer];
  }
  if (!admitted) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("'", peer, "' has ", options_.max_audit_reads_per_peer,
                                     " audit reads in progress (the limit)"));
  }
  absl::Cleanup release = [this, peer] {
    absl::MutexLock lock(&mu_);
    if (--audit_reads_[peer] == 0) audit_reads_.erase(peer);
  };
  absl::StatusOr<AuditLog::StreamHead> head =
      audit_->Head(theirs.stream_id, options_.kafka_timeout, peer);
  if (!head.ok()) {
    if (head.status().code() == absl::StatusCode::kNotFound) {
      return grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("stream ", theirs.stream_id, " is not known to ", options_.self));
    }
    return ToGrpcStatus(head.status());
  }
  if (head->direction != "offered" || head->source != options_.self) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("stream ", theirs.stream_id, " is not a stream ",
                                     options_.self, " offered to '", peer, "'"));
  }
  absl::Status verified = signer_->Verify(theirs, peer, theirs.stream_id);
  if (!verified.ok()) return ToGrpcStatus(verified);
  if (theirs.sequence > head->sequence) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("the receipt claims ", theirs.sequence, " batches received on stream ",
                     theirs.stream_id, "; ", head->sequence, " were offered"));
  }
  auto held = head->receipted.find(peer);
  if (held == head->receipted.end() || theirs.sequence > held->second) {
    absl::Status stored = audit_->StoreReceipt(theirs);
    if (!stored.ok()) return ToGrpcStatus(stored);
    absl::MutexLock lock(&mu_);
    ++stats_.receipts;
  }
  absl::StatusOr<audit::Receipt> ours =
      signer_->Sign(theirs.stream_id, head->sequence, head->hash, Now());
  if (!ours.ok()) return ToGrpcStatus(ours.status());
  *response->mutable_receipt() = ToProto(*ours);
  return grpc::Status::OK;
}

grpc::Status FederationService::NotariseGap(const std::string& peer, const audit::Receipt& theirs,
                                            fv1::ExchangeReceiptsResponse* response) {
  // "gap-<peer>-<self>-<dataset>-<unix ms>": a one-entry chain the subscriber wrote when this
  // node told it of a gap. This node cannot check the entry (it never saw it), but it keeps the
  // subscriber's signed head of it and countersigns that head: neither side can later delete
  // the gap entry without the other's copy showing it.
  const std::string rest =
      theirs.stream_id.substr(absl::StrCat("gap-", peer, "-", options_.self, "-").size());
  const size_t dash = rest.rfind('-');
  const std::string dataset = dash == std::string::npos ? "" : rest.substr(0, dash);
  if (theirs.sequence != 1) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("a gap chain has one entry; the receipt of ", theirs.stream_id,
                                     " claims ", theirs.sequence));
  }
  absl::Status verified = signer_->Verify(theirs, peer, theirs.stream_id);
  if (!verified.ok()) return ToGrpcStatus(verified);
  {
    absl::MutexLock lock(&mu_);
    auto it = gaps_reported_.find({peer, dataset});
    if (it == gaps_reported_.end()) {
      return grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat(options_.self, " has reported no gap of '", dataset, "' to '", peer,
                       "' that is not notarised yet: subscribe again to have it reported"));
    }
    gaps_reported_.erase(it);
  }
  absl::Status stored = audit_->StoreReceipt(theirs);
  if (!stored.ok()) return ToGrpcStatus(stored);
  {
    absl::MutexLock lock(&mu_);
    ++stats_.receipts;
  }
  absl::StatusOr<audit::Receipt> ours =
      signer_->Sign(theirs.stream_id, theirs.sequence, theirs.hash, Now());
  if (!ours.ok()) return ToGrpcStatus(ours.status());
  *response->mutable_receipt() = ToProto(*ours);
  return grpc::Status::OK;
}

grpc::Status FederationService::GetAuditEntries(grpc::ServerContext* context,
                                                const fv1::GetAuditEntriesRequest* request,
                                                fv1::GetAuditEntriesResponse* response) {
  absl::StatusOr<tls::PeerIdentity> peer = tls::CallPeer(*context);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  if (request->stream_id().empty())
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "stream_id: required");
  const int max = request->max_entries() > 0 ? std::min(request->max_entries(), 1000) : 1000;
  // A bounded number of reads per peer at once; each reads through the audit index (the
  // stream's parties are checked there before anything is read) with a small prefetch.
  bool admitted;
  {
    absl::MutexLock lock(&mu_);
    admitted = audit_reads_[peer->peer_id] < options_.max_audit_reads_per_peer;
    if (admitted) ++audit_reads_[peer->peer_id];
  }
  if (!admitted) {
    return grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("'", peer->peer_id, "' has ", options_.max_audit_reads_per_peer,
                     " GetAuditEntries calls in progress (the limit)"));
  }
  absl::Cleanup release = [this, p = peer->peer_id] {
    absl::MutexLock lock(&mu_);
    if (--audit_reads_[p] == 0) audit_reads_.erase(p);
  };
  absl::StatusOr<std::vector<audit::AuditLink>> links =
      audit_->Read(request->stream_id(), std::max<uint64_t>(1, request->from_sequence()), max,
                   options_.kafka_timeout, peer->peer_id);
  if (!links.ok()) return ToGrpcStatus(links.status());
  if (links->empty()) {
    return grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat(options_.self, " has no audit entries of stream ", request->stream_id(),
                     " from sequence ", request->from_sequence()));
  }
  for (const audit::AuditLink& l : *links) {
    absl::StatusOr<audit::AuditEntry> e = audit::ParseEntry(l.canonical_json);
    if (!e.ok() || e->destination != peer->peer_id) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("stream ", request->stream_id(), " is not a stream of '",
                                       peer->peer_id, "'"));
    }
    fv1::AuditEntryView* v = response->add_entries();
    v->set_sequence(l.sequence);
    v->set_hash(l.hash);
    v->set_canonical_json(l.canonical_json);
  }
  return grpc::Status::OK;
}

}  // namespace node
}  // namespace polder
