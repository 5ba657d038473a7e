#include "services/node/ingest/ingest.h"

#include <openssl/sha.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace polder {
namespace node {
namespace {

IngestLimits LimitsOf(const NodeConfig& c) {
  IngestLimits l;
  l.max_record_bytes = c.max_record_bytes;
  l.max_batch_bytes = c.max_batch_bytes;
  l.max_batch_records = c.max_batch_records;
  l.max_event_age = c.max_event_age;
  l.max_event_lead = c.max_event_lead;
  return l;
}

// Identifies a batch's content: the same idempotency key with other content is refused.
std::string ContentHash(const v1::PublishRequest& r, int32_t schema_id) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  auto add = [&ctx](absl::string_view s) {
    const uint64_t n = s.size();
    SHA256_Update(&ctx, &n, sizeof(n));
    SHA256_Update(&ctx, s.data(), s.size());
  };
  add(r.dataset());
  add(std::to_string(schema_id));
  for (const v1::Record& rec : r.records()) {
    add(rec.has_binary() ? "b" : "j");
    add(rec.has_binary() ? rec.binary() : rec.json());
    add(rec.ce_id());
  }
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256_Final(d, &ctx);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(d), sizeof(d)));
}

}  // namespace

int64_t RequestBytes(const v1::PublishRequest& request) {
  int64_t n = 0;
  for (const v1::Record& r : request.records()) {
    n += static_cast<int64_t>((r.has_binary() ? r.binary().size() : r.json().size()) +
                              r.ce_id().size());
  }
  return n;
}

Ingest::Ingest(const NodeConfig& config, SchemaCache* schemas, Submitter submit,
               IngestAuthenticator* auth, NodeMetrics* metrics)
    : config_(config),
      schemas_(schemas),
      submit_(std::move(submit)),
      auth_(auth),
      metrics_(metrics),
      validator_(LimitsOf(config)) {}

absl::StatusOr<std::shared_ptr<const IngestTarget>> Ingest::Target(const DatasetConfig& dataset,
                                                                   int32_t schema_id) {
  int32_t id = schema_id;
  if (id == 0) {
    absl::StatusOr<int32_t> latest = schemas_->IdOf(dataset.subject, -1);
    if (!latest.ok()) {
      if (latest.status().code() == absl::StatusCode::kNotFound) {
        return absl::FailedPreconditionError(absl::StrCat(
            "no schema is registered under ", dataset.subject, " (dataset ", dataset.id, ") yet"));
      }
      return absl::UnavailableError(absl::StrCat("the schema of ", dataset.id,
                                                 " is not known yet and the registry is ",
                                                 "unreachable: ", latest.status().message()));
    }
    id = *latest;
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = targets_.find({dataset.id, id});
    if (it != targets_.end()) return it->second;
  }
  // A named schema must be registered under the dataset's own subject: a schema under another
  // subject (a city's own prefix, say) that declares the same message is not the dataset's.
  if (absl::StatusOr<int32_t> version = schemas_->VersionUnder(dataset.subject, id);
      !version.ok()) {
    if (version.status().code() == absl::StatusCode::kNotFound) {
      return absl::InvalidArgumentError(
          absl::StrCat("schema_id ", id, " is not a registered version of ", dataset.subject,
                       " (dataset ", dataset.id, ")"));
    }
    return absl::UnavailableError(
        absl::StrCat("the versions of ", dataset.subject, " are not cached and the ",
                     "registry is unreachable: ", version.status().message()));
  }
  absl::StatusOr<std::shared_ptr<const CachedSchema>> schema = schemas_->ById(id);
  if (!schema.ok()) {
    if (schema.status().code() == absl::StatusCode::kNotFound) {
      return absl::InvalidArgumentError(absl::StrCat("schema_id ", id, " is not registered"));
    }
    return absl::UnavailableError(absl::StrCat(
        "schema ", id,
        " is not cached and the registry is unreachable: ", schema.status().message()));
  }
  auto target = std::make_shared<IngestTarget>();
  target->peer_id = config_.peer_id;
  target->federation = config_.federation;
  target->dataset_id = dataset.id;
  target->topic = config_.TopicOf(dataset);
  target->schema_id = id;
  target->schema = (*schema)->parsed;
  absl::StatusOr<std::vector<int32_t>> indexes = target->schema->IndexesOf(dataset.subject);
  if (!indexes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("schema_id ", id, " does not define ",
                                                   dataset.subject, ", the message of dataset ",
                                                   dataset.id));
  }
  target->message_indexes = *indexes;
  const auto* message = target->schema->file()->pool()->FindMessageTypeByName(dataset.subject);
  absl::StatusOr<schema::RecordLayout> layout = schema::RecordLayoutOf(message);
  if (!layout.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("schema ", id, " cannot be ingested: ", layout.status().message()));
  }
  target->layout = *layout;
  absl::MutexLock lock(&mu_);
  targets_[{dataset.id, id}] = target;
  return std::shared_ptr<const IngestTarget>(target);
}

absl::StatusOr<v1::PublishResponse> Ingest::Publish(const Caller& caller,
                                                    const v1::PublishRequest& request) {
  IngestTicket ticket = Submit(caller, request);
  return Complete(ticket);
}

absl::Status Ingest::Admit(const Caller& caller, const std::string& dataset) {
  absl::StatusOr<std::string> identity =
      auth_->Authenticate(caller.certificate_peer_id, caller.authorization);
  absl::Status admitted = identity.status();
  if (identity.ok() && config_.FindDataset(dataset) != nullptr)
    admitted = auth_->Authorize(*identity, dataset);
  if (!admitted.ok()) {
    metrics_->Record(config_.FindDataset(dataset) != nullptr ? dataset : "unknown", admitted, false,
                     0, 0, absl::ZeroDuration());
  }
  return admitted;
}

absl::StatusOr<std::string> Ingest::Identify(const Caller& caller) {
  return auth_->Authenticate(caller.certificate_peer_id, caller.authorization);
}

IngestTicket Ingest::Submit(const Caller& caller, const v1::PublishRequest& request) {
  IngestTicket t;
  t.start = absl::Now();
  t.bytes = RequestBytes(request);
  t.records = request.records_size();
  // Metrics are labelled only with configured datasets (no unbounded label values).
  t.dataset_label =
      config_.FindDataset(request.dataset()) != nullptr ? request.dataset() : "unknown";
  absl::StatusOr<std::string> identity =
      auth_->Authenticate(caller.certificate_peer_id, caller.authorization);
  t.refused = identity.ok() ? SubmitAuthenticated(*identity, request, &t) : identity.status();
  return t;
}

absl::StatusOr<v1::PublishResponse> Ingest::Complete(IngestTicket& t) {
  absl::StatusOr<v1::PublishResponse> result = absl::UnknownError("not completed");
  if (!t.refused.ok()) {
    result = t.refused;
  } else {
    absl::StatusOr<PublishOutcome> outcome = t.ticket.Wait();
    if (outcome.ok()) {
      v1::PublishResponse response = t.response;
      response.set_records(outcome->records);
      response.set_duplicate(outcome->duplicate);
      if (outcome->duplicate) response.set_schema_id(outcome->schema_id);
      result = std::move(response);
    } else {
      result = outcome.status();
    }
  }
  t.reservation.reset();
  metrics_->Record(t.dataset_label, result.status(), result.ok() && result->duplicate(), t.records,
                   t.bytes, absl::Now() - t.start);
  if (feed_quality_ != nullptr && !t.dataset.empty()) {
    if (result.ok() && !result->duplicate()) {
      feed_quality_->Accepted(t.dataset, result->records(), t.newest_event);
    } else if (absl::IsInvalidArgument(result.status())) {
      feed_quality_->Rejected(t.dataset, t.records);
    }
  }
  return result;
}

absl::Status Ingest::SubmitAuthenticated(const std::string& identity,
                                         const v1::PublishRequest& request, IngestTicket* ticket) {
  const DatasetConfig* dataset = config_.FindDataset(request.dataset());
  if (dataset == nullptr) {
    std::vector<std::string> ids;
    for (const DatasetConfig& d : config_.datasets) ids.push_back(d.id);
    return absl::NotFoundError(absl::StrCat("dataset '", request.dataset(),
                                            "' is not published by this node (", config_.peer_id,
                                            "); it publishes: ", absl::StrJoin(ids, ", ")));
  }
  if (absl::Status allowed = auth_->Authorize(identity, dataset->id); !allowed.ok()) return allowed;
  ticket->dataset = dataset->id;
  if (request.idempotency_key().size() > 200) {
    return absl::InvalidArgumentError("idempotency_key: longer than 200 bytes");
  }
  if (request.schema_id() < 0) return absl::InvalidArgumentError("schema_id: must not be negative");
  // Bound the memory held by requests in progress; released when the ticket completes.
  const int64_t bytes = ticket->bytes;
  const int64_t before = inflight_bytes_.fetch_add(bytes);
  ticket->reservation = std::shared_ptr<void>(nullptr, [this, bytes](void*) {
    metrics_->SetInflightBytes(inflight_bytes_.fetch_sub(bytes) - bytes);
  });
  metrics_->SetInflightBytes(before + bytes);
  if (before + bytes > config_.max_inflight_bytes && before > 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the node holds ", before, " bytes of requests in progress (limit ",
                     config_.max_inflight_bytes, "); retry shortly"));
  }
  absl::StatusOr<std::shared_ptr<const IngestTarget>> target =
      Target(*dataset, request.schema_id());
  if (!target.ok()) return target.status();
  std::vector<IncomingRecord> records;
  records.reserve(request.records_size());
  for (int i = 0; i < request.records_size(); ++i) {
    const v1::Record& r = request.records(i);
    if (!r.has_binary() && !r.has_json()) {
      return absl::InvalidArgumentError(
          absl::StrCat("record ", i, ": has neither binary nor json"));
    }
    records.push_back(
        {r.has_binary() ? IncomingRecord::Format::kBinary : IncomingRecord::Format::kJson,
         r.has_binary() ? r.binary() : r.json(), r.ce_id()});
  }
  const std::string seed = request.idempotency_key().empty()
                               ? ""
                               : absl::StrCat(identity, "\n", request.idempotency_key());
  absl::StatusOr<std::vector<kafka::ProducerRecord>> out =
      validator_.Validate(**target, records, absl::Now(), seed, &ticket->newest_event);
  if (!out.ok()) return out.status();
  ticket->response.set_schema_id((*target)->schema_id);
  ticket->response.set_topic((*target)->topic);
  for (const kafka::ProducerRecord& r : *out) ticket->response.add_ce_ids(r.headers[1].value);
  PublishBatch batch;
  batch.identity = identity;
  batch.idempotency_key = request.idempotency_key();
  batch.content_hash = ContentHash(request, (*target)->schema_id);
  batch.dataset_id = dataset->id;
  batch.schema_id = (*target)->schema_id;
  batch.records = std::move(*out);
  ticket->ticket = submit_(std::move(batch));
  return absl::OkStatus();
}

}  // namespace node
}  // namespace polder
