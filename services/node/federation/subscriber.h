// The subscriber side of a subscription: connects to the provider's FederationService over
// mutual TLS, subscribes from the mirror's committed cursor, writes every batch through the
// MirrorWriter (records + cursor + audit entry in one transaction), and on a broken stream
// reconnects with exponential backoff, resuming from what was committed. Refusals that retrying
// will not cure (no valid contract, a gap, a partition mismatch) are reported in state() and
// retried slowly; a fenced writer ends the subscription.
#ifndef POLDER_SERVICES_NODE_FEDERATION_SUBSCRIBER_H_
#define POLDER_SERVICES_NODE_FEDERATION_SUBSCRIBER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/polder/federation/v1/federation.grpc.pb.h"
#include "services/node/federation/mirror_writer.h"

namespace polder {
namespace node {

class Subscriber {
 public:
  struct Options {
    std::string self;         // this (consuming) peer
    std::string provider;     // the providing peer
    std::string dataset;
    std::string contract_id;
    std::string contract_hash;
    std::string purpose;
    int32_t mirror_partitions = 0;  // the mirror topic's partition count (must equal the source's)
    std::function<std::shared_ptr<grpc::Channel>()> channel;  // to the provider, mTLS
    MirrorWriter::Options writer;
    // Called once per schema id seen in mirrored records (the node caches the schema, so its
    // schema endpoint decodes mirrors too).
    std::function<void(int32_t schema_id)> on_schema;
    absl::Duration min_backoff = absl::Milliseconds(500);
    absl::Duration max_backoff = absl::Seconds(30);
  };

  struct State {
    std::string status = "starting";  // streaming, reconnecting, refused, fenced, stopped
    std::string last_error;
    int64_t records = 0;               // mirrored by this process
    int64_t batches = 0;
    int64_t reconnects = 0;
    std::map<int32_t, int64_t> lag;    // provider high watermark − cursor, per partition
  };

  explicit Subscriber(Options options) : options_(std::move(options)) {}
  ~Subscriber() { Stop(); }

  void Start();
  void Stop();
  State state() const;

 private:
  void Run();
  // One stream: returns why it ended.
  grpc::Status StreamOnce(MirrorWriter& writer);
  void Set(const std::string& status, const std::string& error = "");

  const Options options_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::set<int32_t> schemas_seen_;  // stream thread only
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_SUBSCRIBER_H_
