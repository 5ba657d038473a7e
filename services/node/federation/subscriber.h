// The subscriber side of a subscription: a thread that keeps its MirrorSession streaming from
// the provider's FederationService over mutual TLS, resuming from what was committed. A broken
// stream reconnects with exponential backoff; refusals that retrying will not cure (no valid
// contract, a gap, a partition mismatch) are reported in state() and retried slowly; a fenced
// writer (another replica holds the subscription now) ends the run and reports it (`fenced`):
// the subscriber never initialises its writer again until started anew. A gap (OUT_OF_RANGE /
// DATA_LOSS: the provider no longer has what the cursor points at) is recorded once in the audit
// log and the metrics, and the subscription stays refused until an operator resolves it — never
// skipped. What one stream does (group commit, receipts, flow control) is MirrorSession's
// (mirror_session.h); this class is its gRPC adapter and retry policy.
#ifndef POLDER_SERVICES_NODE_FEDERATION_SUBSCRIBER_H_
#define POLDER_SERVICES_NODE_FEDERATION_SUBSCRIBER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/client_factory.h"
#include "grpcpp/channel.h"
#include "services/node/federation/mirror_session.h"
#include "services/node/federation/mirror_writer.h"

namespace polder {
namespace node {

class Subscriber {
 public:
  struct Options {
    MirrorSession::Options session;
    // A channel to the provider over mutual TLS, made afresh for every stream. An error (the
    // certificate, key or bundle cannot be read) leaves the subscription undialled in state
    // "no-credentials" with the reason, retried with backoff, so repaired files are picked up.
    // Never a plaintext channel: there is no fallback.
    std::function<absl::StatusOr<std::shared_ptr<grpc::Channel>>()> channel;
    MirrorWriter::Options writer;
    absl::Duration min_backoff = absl::Milliseconds(500);
    absl::Duration max_backoff = absl::Seconds(30);
    // After UNAVAILABLE (the provider, or the replica counting this peer's streams, is out of
    // reach: a restart or a replica failover) the backoff grows to this at most, so the stream
    // resumes within it once the provider serves again (ADR 0021 §7: failover ≤ 15 s).
    absl::Duration unavailable_max_backoff = absl::Seconds(2);
    // Revocation: when the provider ends the stream with PERMISSION_DENIED and `revoked()` says
    // the contract was revoked, `purge()` (if set: the subscription's purge_on_revocation)
    // deletes the mirror's records, once.
    std::function<bool()> revoked;
    std::function<absl::Status()> purge;
    // Called (on the subscriber's thread) when its writer was fenced and the run ended.
    std::function<void()> fenced;
  };
  using State = SubscriptionCounters;

  // The mirror writer's clients come from `kafka`, which must outlive the subscriber.
  Subscriber(Options options, kafka::ClientFactory& kafka)
      : options_(std::move(options)), kafka_(kafka), session_(options_.session, &state_, &stop_) {}
  ~Subscriber() { Stop(); }

  // Starts a run: the writer is initialised (fencing any other holder) and streaming begins.
  // A stopped subscriber can be started again (a replica given the subscription back).
  void Start();
  // Commits what is queued, ends the stream and joins the run; the status becomes `final_status`
  // (kStopped when the node stops, kElsewhere when another replica takes the subscription).
  void Stop(SubscriptionStatus final_status = SubscriptionStatus::kStopped);
  // Marks a subscriber that is not running here because another replica holds it.
  void Standby() { state_.Set(SubscriptionStatus::kElsewhere); }
  State state() const { return state_.snapshot(); }

 private:
  void Run();
  // One stream: returns why it ended.
  absl::Status StreamOnce(MirrorWriter& writer);
  // Waits `wait`, or less if the subscriber stops.
  void Pause(absl::Duration wait);

  const Options options_;
  kafka::ClientFactory& kafka_;
  std::atomic<bool> stop_{false};
  SubscriptionState state_;
  MirrorSession session_;  // the stream thread's
  std::thread thread_;
  absl::Mutex mu_;
  // The connection of the stream in progress, cancelled by Stop().
  ProviderConnection* active_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_SUBSCRIBER_H_
