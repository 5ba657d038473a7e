// How a provider reads its sources for many Subscribe streams at once (ADR 0020 §4).
//
// Per source topic, one tail: a read_committed consumer that follows the topic from the live
// edge into a bounded ring of recent records (`tail_bytes`). A stream whose position lies within
// the ring for every partition is *live*: its batches are cut from the ring (to its own limits)
// and it costs no consumer and no prefetch of its own. A stream behind the ring's start — a
// subscriber catching up, or a live stream that fell off the ring's end — reads on its own with a
// SourceReader from a bounded pool (`max_catchup_readers`, over all datasets), admitted oldest
// first; while it waits for a reader it gets nothing (its heartbeats go on), and once its position
// lies within the ring again it returns the reader and is live. The ring never waits for a
// stream: at its bound it drops its oldest records, and a stream left behind catches up on its
// own. What a stream sends is unchanged: the same records, in the same per-partition order, with
// next offsets past transaction markers, as its own SourceReader would have cut.
//
// Memory is bounded whatever the number of streams: tails × (tail_bytes + prefetch_bytes) +
// max_catchup_readers × prefetch_bytes, plus the batches in flight.
//
// Nothing a stream waits for is shared with other streams' broker calls: a stream's start is
// looked up with a consumer of its own (fresh metadata: after a leader moved, librdkafka 2.0.2's
// watermark query can retry a stale leader for over a minute), heartbeats take the watermarks
// the tail's (or the catch-up reader's) consumer last fetched, without asking a broker, and a
// stream whose tail does not follow the topic within kafka_timeout catches up on its own.
//
//   FanOut fan_out(options, kafka);
//   ASSIGN_OR_RETURN(std::unique_ptr<StreamSource> source, fan_out.Open(topic, start, limits));
//   ASSIGN_OR_RETURN(std::optional<SourceBatch> batch, source->Next(absl::Milliseconds(200)));
//
// Thread-safe; each StreamSource is used by one thread and must not outlive the FanOut.
#ifndef POLDER_SERVICES_NODE_FEDERATION_FAN_OUT_H_
#define POLDER_SERVICES_NODE_FEDERATION_FAN_OUT_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/kafka/client_factory.h"
#include "common/kafka/consumer.h"
#include "services/node/federation/source_reader.h"

namespace polder {
namespace node {

class FanOut {
 public:
  struct Options {
    // The source consumers' client and fetch sizes (read_committed is forced); each reading
    // consumer's queue (queued.max.messages.kbytes) is set from prefetch_bytes.
    kafka::ConsumerOptions consumer;
    // What each reading consumer — a tail, a catch-up reader — may queue ahead (librdkafka
    // 2.0.2 stops fetching for up to a second when its queue is full, so this is about a second
    // of reading).
    int64_t prefetch_bytes = 8 << 20;
    // Recent records each topic's tail holds, counted as the heap they take (HeldBytes).
    int64_t tail_bytes = 32 << 20;
    // Streams reading on their own at once, over all datasets; more wait, oldest first.
    int max_catchup_readers = 16;
    absl::Duration kafka_timeout = absl::Seconds(10);
    // One poll of a tail: also how late a tail that is no longer used notices it.
    absl::Duration tail_poll = absl::Milliseconds(100);
    // After a tail's consumer failed, how long until it follows the topic again (its streams
    // catch up on their own meanwhile).
    absl::Duration tail_retry = absl::Seconds(1);
  };

  // The heap a record kept in a ring takes: the record with its shared pointer's control block
  // (one allocation), the buffers of its strings, its header array — as glibc's malloc
  // allocates them (8-byte chunk headers, 16-byte rounding), so that the bound holds for the
  // heap, not only for the payload bytes (small records take several times their payload).
  static int64_t HeldBytes(const kafka::ConsumedRecord& r);

  struct Stats {
    int64_t tails = 0;          // topics followed now (tails started, their consumer not failed)
    int64_t tail_bytes = 0;     // held in their rings now
    int64_t live = 0;           // streams served from a ring now
    int64_t catching_up = 0;    // streams reading on their own now
    int64_t waiting = 0;        // streams waiting for a catch-up reader now
    int64_t fell_behind = 0;    // times a live stream fell off its ring, since start
    int64_t waited = 0;         // times a stream queued: every catch-up reader taken, since start
    int64_t tail_failures = 0;  // times a tail's consumer failed, since start
  };

  // Consumers come from `kafka`, which must outlive the FanOut.
  FanOut(Options options, kafka::ClientFactory& kafka);
  ~FanOut();
  FanOut(const FanOut&) = delete;
  FanOut& operator=(const FanOut&) = delete;

  // Resolves where a stream of `source` starts (ResolveStart, and a cursor outside what the
  // topic holds is OUT_OF_RANGE) and returns its source: live on the topic's tail if the start
  // lies within it, otherwise catching up.
  absl::StatusOr<std::unique_ptr<StreamSource>> Open(const SourceTopic& source,
                                                     const StreamStart& start, BatchLimits limits);

  Stats stats() const;
  const Options& options() const { return options_; }

 private:
  class Tail;
  class TailSource;

  // The tail of `source`, started if no stream uses one.
  std::shared_ptr<Tail> TailOf(const SourceTopic& source);
  // The catch-up pool: a ticket orders the waiting streams; Acquire waits up to `wait` for a
  // reader (true: the caller holds one and its ticket is spent).
  uint64_t Enqueue();
  bool Acquire(uint64_t ticket, absl::Duration wait);
  void Forget(uint64_t ticket);
  void Release();
  kafka::ConsumerOptions ReadingConsumer() const;

  const Options options_;
  kafka::ClientFactory& kafka_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::weak_ptr<Tail>> tails_ ABSL_GUARDED_BY(mu_);
  int readers_in_use_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<uint64_t> waiting_ ABSL_GUARDED_BY(mu_);

  std::atomic<int64_t> live_{0};
  std::atomic<int64_t> catching_up_{0};
  std::atomic<int64_t> fell_behind_{0};
  int64_t waited_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int64_t> tail_failures_{0};
};

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_FAN_OUT_H_
