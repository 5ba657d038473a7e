#include "services/node/federation/provider_stream.h"

#include <algorithm>
#include <optional>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/audit/audit_chain.h"
#include "common/status/status_macros.h"
#include "common/views/names.h"
#include "common/wire/confluent_frame.h"
#include "services/node/federation/stream_audit.h"
#include "services/node/federation/wire_records.h"

namespace polder {
namespace node {

namespace fv1 = ::polder::federation::v1;

namespace {

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

absl::Status SubscriberWentAway() { return absl::CancelledError("the subscriber went away"); }

// How old the contract book's last scan of its folders may be for a stream's re-check: a
// revocation or a changed contract ends a live stream within recheck_interval + this.
constexpr absl::Duration kContractRescan = absl::Seconds(1);

}  // namespace

absl::StatusOr<std::shared_ptr<ProviderStream>> ProviderStream::Open(
    const Options& options, FanOut& sources, ContractBook* contracts, AuditLog* audit,
    std::string stream_id, std::string peer, const SharedDataset& dataset, trust::Contract contract,
    const fv1::SubscribeRequest& request) {
  StreamStart start;
  start.cursor_epoch = request.cursor().epoch();
  for (const auto& [p, o] : request.cursor().next_offsets()) start.cursor[p] = o;
  start.requested_position = request.start_position();
  start.contract_id = contract.id;
  start.contract_position = contract.start_position;
  start.contract_valid_from = contract.valid_from;
  BatchLimits limits;
  limits.max_records = request.max_batch_records() > 0
                           ? std::min(request.max_batch_records(), options.max_batch_records)
                           : options.max_batch_records;
  limits.max_bytes = request.max_batch_bytes() > 0
                         ? std::min(request.max_batch_bytes(), options.max_batch_bytes)
                         : options.max_batch_bytes;
  const SourceTopic source{dataset.topic, dataset.partitions, dataset.epoch};
  ASSIGN_OR_RETURN(std::unique_ptr<StreamSource> reader, sources.Open(source, start, limits));
  ASSIGN_OR_RETURN(std::string contract_hash, contract.Hash());
  const int64_t window =
      request.max_unacknowledged_bytes() > 0
          ? std::min(request.max_unacknowledged_bytes(), options.max_unacknowledged_bytes)
          : options.max_unacknowledged_bytes;
  std::map<int32_t, int64_t> positions = reader->positions();
  std::shared_ptr<ProviderStream> stream(
      new ProviderStream(options, contracts, audit, std::move(stream_id), std::move(peer), dataset,
                         std::move(contract), std::move(contract_hash), request.traceparent(),
                         std::move(reader), std::move(positions), limits, window));
  stream->resume_.set_previous_stream_id(request.previous_stream_id());
  *stream->resume_.mutable_cursor() = request.cursor();
  return stream;
}

ProviderStream::ProviderStream(const Options& options, ContractBook* contracts, AuditLog* audit,
                               std::string stream_id, std::string peer,
                               const SharedDataset& dataset, trust::Contract contract,
                               std::string contract_hash, std::string traceparent,
                               std::unique_ptr<StreamSource> source,
                               std::map<int32_t, int64_t> start, BatchLimits limits, int64_t window)
    : options_(options),
      contracts_(contracts),
      audit_(audit),
      stream_id_(std::move(stream_id)),
      peer_(std::move(peer)),
      dataset_(dataset),
      contract_(std::move(contract)),
      contract_hash_(std::move(contract_hash)),
      traceparent_(std::move(traceparent)),
      source_(std::move(source)),
      limits_(limits),
      window_(window) {
  head_.hash = audit::AuditChain::Genesis(stream_id_);
  acknowledged_ = std::move(start);
}

absl::Status ProviderStream::Run(Transport& transport) {
  absl::Cleanup ended = [this] { End(); };
  fv1::SubscribeResponse opened;
  fv1::StreamOpened* o = opened.mutable_opened();
  o->set_stream_id(stream_id_);
  o->set_protocol_version(fv1::PROTOCOL_VERSION_1);
  o->set_epoch(dataset_.epoch);
  o->set_partitions(dataset_.partitions);
  o->set_max_unacknowledged_bytes(window_);
  o->set_max_batch_records(limits_.max_records);
  o->set_max_batch_bytes(limits_.max_bytes);
  if (!transport.Send(opened)) return SubscriberWentAway();
  audit::AuditChain chain(stream_id_);
  // The index records where the chain ended, so receipts can be exchanged for it later.
  absl::Cleanup end_chain = [this, &chain] { audit_->EndStream(chain); };
  next_check_ = Now() + options_.recheck_interval;
  next_heartbeat_ = Now() + options_.heartbeat_interval;
  const StreamParties parties{options_.self,     peer_,        dataset_.id,  contract_hash_,
                              contract_.purpose, traceparent_, dataset_.view};
  std::optional<SourceBatch> batch;  // read from the source, not yet sent
  while (!transport.Cancelled()) {
    RETURN_IF_ERROR(Upkeep(transport));
    if (!batch.has_value()) {
      ASSIGN_OR_RETURN(batch, source_->Next(options_.poll_wait));
      if (!batch.has_value()) continue;
    }
    // Flow control: while the window is full, wait for acknowledgements, reading nothing more
    // from the source; heartbeats and re-checks go on between waits.
    if (!WaitForWindow(batch->bytes)) continue;
    // This batch and those ready now (other partitions', mostly) that fit the window too are
    // offered together: their audit entries are written with one wait for all. Small batches
    // (the live edge) only: together at most one batch's byte limit, so a catch-up's full
    // batches go one by one and the group holds no more memory than a batch.
    std::vector<SourceBatch> group;
    std::vector<fv1::SubscribeResponse> outs;
    int64_t group_bytes = 0;
    while (batch.has_value()) {
      absl::StatusOr<fv1::SubscribeResponse> out = Encode(*batch);
      // A batch that cannot be encoded ends the stream, after the ones before it are sent.
      if (!out.ok() && group.empty()) return out.status();
      if (!out.ok()) break;
      outs.push_back(*std::move(out));
      group_bytes += batch->bytes;
      group.push_back(*std::move(batch));
      batch.reset();
      if (group.size() >= kMaxBatchesOfferedTogether) break;
      ASSIGN_OR_RETURN(batch, source_->Next(absl::ZeroDuration()));
      if (batch.has_value() && (group_bytes + batch->bytes > limits_.max_bytes ||
                                !FitsWindow(group_bytes + batch->bytes))) {
        break;
      }
    }
    // Recorded before they are sent; what could not be recorded is not sent.
    std::vector<audit::AuditEntry> entries;
    for (const SourceBatch& b : group) {
      BatchFacts facts;
      facts.partition = b.partition;
      facts.first_offset = b.records.front().offset;
      facts.next_offset = b.next_offset;
      facts.records = static_cast<int64_t>(b.records.size());
      facts.bytes = b.bytes;
      audit::AuditEntry entry = BatchEntry(parties, AuditDirection::kOffered, facts, Now());
      entry.transaction_id = stream_id_;
      if (chain.sequence() == 0 && entries.empty()) ResumeFacts(resume_, &entry);
      entries.push_back(std::move(entry));
    }
    ASSIGN_OR_RETURN(std::vector<audit::AuditLink> links, audit_->RecordAll(chain, entries));
    for (size_t i = 0; i < group.size(); ++i) {
      outs[i].mutable_batch()->mutable_provider_audit()->set_sequence(links[i].sequence);
      outs[i].mutable_batch()->mutable_provider_audit()->set_hash(links[i].hash);
      {
        absl::MutexLock lock(&mu_);
        head_ = {links[i].sequence, links[i].hash};
        unacknowledged_.push_back({group[i].partition, group[i].next_offset, group[i].bytes});
        unacknowledged_bytes_ += group[i].bytes;
      }
      if (on_batch_) on_batch_(static_cast<int64_t>(group[i].records.size()), group[i].bytes);
    }
    for (size_t i = 0; i < outs.size(); ++i) {
      if (!transport.Send(outs[i])) return SubscriberWentAway();
    }
  }
  return absl::CancelledError("the subscriber ended the stream");
}

absl::Status ProviderStream::Upkeep(Transport& transport) {
  if (Now() >= next_check_) {
    if (absl::Status still = transport.RecheckPeer(); !still.ok()) {
      return absl::PermissionDeniedError(absl::StrCat("stream ended: ", still.message()));
    }
    // The contract folders are scanned at most once a second for all streams' re-checks.
    absl::StatusOr<trust::Contract> valid =
        dataset_.view.empty()
            ? contracts_->ForSubscribe(peer_, dataset_.id, contract_.id, /*raw=*/true, Now(),
                                       kContractRescan)
            : contracts_->ForView(peer_, dataset_.id, dataset_.view, dataset_.definition_hash,
                                  contract_.id, Now(), kContractRescan);
    if (!valid.ok()) {
      return absl::PermissionDeniedError(absl::StrCat("stream ended: ", valid.status().message()));
    }
    next_check_ = Now() + options_.recheck_interval;
  }
  if (Now() >= next_heartbeat_) {
    // Without watermarks (the source's brokers do not answer now) the heartbeat still goes:
    // it keeps the subscriber committing and acknowledging; lag is reported again later.
    absl::StatusOr<std::map<int32_t, int64_t>> marks =
        source_->HighWatermarks(options_.kafka_timeout);
    fv1::SubscribeResponse hb;
    if (marks.ok()) {
      for (const auto& [p, m] : *marks) (*hb.mutable_heartbeat()->mutable_high_watermarks())[p] = m;
    }
    *hb.mutable_heartbeat()->mutable_at() = ToProto(Now());
    if (options_.feed_quality) {
      if (std::optional<fv1::FeedQuality> q = options_.feed_quality(dataset_.id); q.has_value()) {
        *hb.mutable_heartbeat()->mutable_feed_quality() = *std::move(q);
      }
    }
    if (!transport.Send(hb)) return SubscriberWentAway();
    next_heartbeat_ = Now() + options_.heartbeat_interval;
  }
  return absl::OkStatus();
}

bool ProviderStream::FitsWindow(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  return unacknowledged_bytes_ + bytes <= window_;
}

bool ProviderStream::WaitForWindow(int64_t bytes) {
  // One batch always fits: an empty window takes any batch.
  auto fits = [this, bytes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return unacknowledged_bytes_ == 0 || unacknowledged_bytes_ + bytes <= window_;
  };
  const absl::Time now = Now();
  const absl::Duration wait =
      std::max(absl::ZeroDuration(),
               std::min({options_.poll_wait, next_check_ - now, next_heartbeat_ - now}));
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&fits), wait);
}

absl::StatusOr<fv1::SubscribeResponse> ProviderStream::Encode(const SourceBatch& batch) {
  fv1::SubscribeResponse out;
  fv1::RecordBatch* b = out.mutable_batch();
  b->set_partition(batch.partition);
  b->set_next_offset(batch.next_offset);
  b->mutable_records()->Reserve(static_cast<int>(batch.records.size()));
  std::set<int32_t> schema_ids;
  for (const kafka::ConsumedRecord& r : batch.records) {
    absl::StatusOr<wire::Frame> frame = wire::Decode(r.value);
    if (!frame.ok()) {
      return absl::DataLossError(absl::StrCat(dataset_.topic, " partition ", r.partition,
                                              " offset ", r.offset,
                                              ": not a Polder record: ", frame.status().message()));
    }
    if (!dataset_.view.empty()) {
      // Every cell names the definition that computed it: one the contract does not list stops
      // the stream — never skipped — until a new contract is signed.
      std::string definition;
      for (const kafka::Header& h : r.headers) {
        if (h.key == views::kViewDefinitionHeader) definition = h.value;
      }
      const std::vector<std::string>& allowed = contract_.view->definition_hashes;
      if (std::find(allowed.begin(), allowed.end(), definition) == allowed.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "stream stopped at ", dataset_.topic, " partition ", r.partition, " offset ", r.offset,
            ": a cell of view definition '", definition, "', which contract ", contract_.id,
            " does not allow; a new contract must be signed"));
      }
    }
    if (schema_ids.insert(frame->schema_id).second && options_.schema_version) {
      absl::StatusOr<int64_t> version = options_.schema_version(
          dataset_.view.empty() ? dataset_.id : views::kAggregateCellSubject, frame->schema_id);
      absl::Status allowed =
          version.ok() ? ContractBook::CheckSchemaVersion(contract_, *version) : version.status();
      if (!allowed.ok()) {
        return absl::FailedPreconditionError(absl::StrCat("stream stopped at ", dataset_.topic,
                                                          " partition ", r.partition, " offset ",
                                                          r.offset, ": ", allowed.message()));
      }
    }
    ToWireRecord(r, b->add_records());
  }
  for (int32_t id : schema_ids) b->add_schema_ids(id);
  return out;
}

void ProviderStream::End() {
  source_.reset();  // Run's thread: returns a catch-up reader, or the stream's hold on a tail
  absl::MutexLock lock(&mu_);
  open_ = false;
  ended_at_ = Now();
  unacknowledged_.clear();
  unacknowledged_bytes_ = 0;
}

void ProviderStream::Acknowledge(const std::map<int32_t, int64_t>& committed) {
  absl::MutexLock lock(&mu_);
  for (const auto& [p, o] : committed) {
    int64_t& acked = acknowledged_[p];
    acked = std::max(acked, o);
  }
  for (auto it = unacknowledged_.begin(); it != unacknowledged_.end();) {
    auto a = acknowledged_.find(it->partition);
    if (a != acknowledged_.end() && it->next_offset <= a->second) {
      unacknowledged_bytes_ -= it->bytes;
      it = unacknowledged_.erase(it);
    } else {
      ++it;
    }
  }
}

ProviderStream::Head ProviderStream::head() const {
  absl::MutexLock lock(&mu_);
  return head_;
}

bool ProviderStream::open() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

absl::Time ProviderStream::ended_at() const {
  absl::MutexLock lock(&mu_);
  return ended_at_;
}

int64_t ProviderStream::unacknowledged_bytes() const {
  absl::MutexLock lock(&mu_);
  return unacknowledged_bytes_;
}

bool ProviderStream::ReceiptAdvances(uint64_t sequence) const {
  absl::MutexLock lock(&mu_);
  return !any_receipt_kept_ || sequence > kept_receipt_;
}

void ProviderStream::ReceiptKept(uint64_t sequence) {
  absl::MutexLock lock(&mu_);
  kept_receipt_ = std::max(kept_receipt_, sequence);
  any_receipt_kept_ = true;
}

}  // namespace node
}  // namespace polder
