// The node's ingest operation, independent of transport (the gRPC service and the HTTP route
// both call it): authenticate, find the dataset, bound the bytes in flight, pick the schema,
// validate all records, commit them with the idempotency key, answer.
#ifndef POLDER_SERVICES_NODE_INGEST_INGEST_H_
#define POLDER_SERVICES_NODE_INGEST_INGEST_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/polder/node/v1/ingest.pb.h"
#include "services/node/feed_quality.h"
#include "services/node/ingest/auth.h"
#include "services/node/ingest/publisher.h"
#include "services/node/ingest/validator.h"
#include "services/node/node_config.h"
#include "services/node/node_metrics.h"
#include "services/node/schema_cache/schema_cache.h"

namespace polder {
namespace node {

// Who is calling, as the transport saw it.
struct Caller {
  std::string certificate_peer_id;  // from a verified client certificate; empty if none
  std::string authorization;        // Authorization header / metadata
};

// A batch on its way: refused at once, or submitted to the publisher (its in-flight bytes stay
// reserved until the ticket is gone).
struct IngestTicket {
  absl::Status refused;
  Publisher::Ticket ticket;
  v1::PublishResponse response;
  std::string dataset_label;
  int64_t records = 0;
  int64_t bytes = 0;
  absl::Time start;
  absl::Time newest_event = absl::InfinitePast();  // of the validated batch
  std::string dataset;                             // the configured dataset, once found
  std::shared_ptr<void> reservation;
};

class Ingest {
 public:
  // Validated batches go to `submit` (KeyedPublisher::Submit in the node).
  using Submitter = std::function<Publisher::Ticket(PublishBatch batch)>;
  Ingest(const NodeConfig& config, SchemaCache* schemas, Submitter submit,
         IngestAuthenticator* auth, NodeMetrics* metrics);
  // Into one publisher (tests).
  Ingest(const NodeConfig& config, SchemaCache* schemas, Publisher* publisher,
         IngestAuthenticator* auth, NodeMetrics* metrics)
      : Ingest(
            config, schemas,
            [publisher](PublishBatch batch) { return publisher->Submit(std::move(batch)); }, auth,
            metrics) {}

  // Where accepted and refused batches are counted for feed quality (ADR 0018 §6); optional,
  // set before the first request.
  void set_feed_quality(FeedQualityTracker* feed_quality) { feed_quality_ = feed_quality; }

  // All records of `request` committed, or nothing and why (status codes: ARCHITECTURE §7).
  absl::StatusOr<v1::PublishResponse> Publish(const Caller& caller,
                                              const v1::PublishRequest& request);

  // Whether `caller` may publish `dataset` at all, decided before a request body is read (the
  // HTTP transport's gate): authentication, then the identity's grant. A refusal is counted
  // like a refused Publish.
  absl::Status Admit(const Caller& caller, const std::string& dataset);
  // The ingest identity of `caller` (UNAUTHENTICATED / PERMISSION_DENIED as Publish would say).
  absl::StatusOr<std::string> Identify(const Caller& caller);

  // Publish in two steps, so a stream can have several batches in the same transaction:
  // Submit authenticates, validates and queues; Complete waits for the commit and answers.
  IngestTicket Submit(const Caller& caller, const v1::PublishRequest& request);
  absl::StatusOr<v1::PublishResponse> Complete(IngestTicket& ticket);

  int64_t inflight_bytes() const { return inflight_bytes_.load(); }

 private:
  absl::Status SubmitAuthenticated(const std::string& identity, const v1::PublishRequest& request,
                                   IngestTicket* ticket);
  absl::StatusOr<std::shared_ptr<const IngestTarget>> Target(const DatasetConfig& dataset,
                                                             int32_t schema_id);

  const NodeConfig& config_;
  SchemaCache* schemas_;
  Submitter submit_;
  IngestAuthenticator* auth_;
  NodeMetrics* metrics_;
  FeedQualityTracker* feed_quality_ = nullptr;
  BatchValidator validator_;
  std::atomic<int64_t> inflight_bytes_{0};
  absl::Mutex mu_;
  std::map<std::pair<std::string, int32_t>, std::shared_ptr<const IngestTarget>> targets_
      ABSL_GUARDED_BY(mu_);
};

// The request's size as the in-flight bound counts it: the records' payloads and ce_ids.
int64_t RequestBytes(const v1::PublishRequest& request);

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_INGEST_INGEST_H_
