// A federation load client for fan-out tests and benchmarks (tests/node/fanout_e2e_test.cc,
// bench/fanout_bench.cc): many peer identities, each with its own mTLS channel (through a proxy
// of its own, so the provider sees a distinct source address per peer), each subscribing to the
// same dataset and acknowledging as a subscriber does — a signed receipt with its committed
// cursor every few batches or every interval. Per stream it records what was delivered
// (partition → (source offset, value hash) in order), latencies and how the stream ended.
#ifndef POLDER_TESTS_NODE_FANOUT_LOAD_H_
#define POLDER_TESTS_NODE_FANOUT_LOAD_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/audit/audit_chain.h"
#include "common/tls/grpc_tls.h"
#include "common/trust/keys.h"
#include "grpcpp/grpcpp.h"
#include "proto/polder/federation/v1/federation.grpc.pb.h"
#include "services/node/federation/receipts.h"

namespace polder {
namespace node_testing {

class FanOutLoad {
 public:
  struct Peer {
    std::string id;
    tls::TlsFiles files;
    std::string contract;
    int port = 0;  // where this peer connects (its proxy)
  };
  struct Options {
    std::string provider = "groningen";
    std::string dataset;
    std::string start_position = "earliest";
    int ack_every_batches = 8;
    absl::Duration ack_interval = absl::Seconds(1);
    bool keep_records = true;       // the (offset, hash) sequences; off for long benchmark runs
    int32_t max_batch_records = 0;  // 0: the provider's
  };
  struct Stream {
    std::string peer;
    std::string stream_id;
    std::map<int32_t, std::vector<std::pair<int64_t, size_t>>> records;
    std::map<int32_t, int64_t> cursor;
    std::vector<double> latency_ms;  // arrival − source timestamp, per record
    int64_t count = 0, batches = 0, receipts = 0, receipt_failures = 0;
    int64_t reconnects = 0;  // streams ended by the provider and resumed from the cursor
    std::string ended;  // how the stream ended for good ("" while it runs or when Stop ended it)
  };

  FanOutLoad(std::vector<Peer> peers, Options options, const trust::PrivateKey& key,
             std::shared_ptr<const tls::IdentityChecker> checker)
      : peers_(std::move(peers)),
        options_(std::move(options)),
        key_(key),
        checker_(std::move(checker)),
        streams_(peers_.size()),
        contexts_(peers_.size()) {}
  ~FanOutLoad() { Stop(); }

  void Start() {
    for (size_t i = 0; i < peers_.size(); ++i) {
      streams_[i].peer = peers_[i].id;
      threads_.emplace_back([this, i] { Run(i); });
    }
  }

  void Stop() {
    stopping_ = true;
    {
      absl::MutexLock lock(&mu_);
      for (auto& c : contexts_) {
        if (c != nullptr) c->TryCancel();
      }
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  // Records delivered over all streams, and the fewest any stream has.
  int64_t Total() const {
    absl::MutexLock lock(&mu_);
    int64_t n = 0;
    for (const Stream& s : streams_) n += s.count;
    return n;
  }
  int64_t Fewest() const {
    absl::MutexLock lock(&mu_);
    int64_t n = -1;
    for (const Stream& s : streams_) n = n < 0 ? s.count : std::min(n, s.count);
    return n;
  }
  // Latencies are recorded only for records whose source timestamp is at or after `t`.
  void MeasureLatencyFrom(absl::Time t) { latency_from_ms_ = absl::ToUnixMillis(t); }
  // When the last record arrived, over all streams.
  absl::Time LastArrival() const { return absl::FromUnixMicros(last_arrival_us_.load()); }
  std::vector<double> Latencies() const {
    absl::MutexLock lock(&mu_);
    std::vector<double> all;
    for (const Stream& s : streams_)
      all.insert(all.end(), s.latency_ms.begin(), s.latency_ms.end());
    return all;
  }

  // Waits until every stream has at least `n` records; false if `timeout` passed first.
  bool WaitEach(int64_t n, absl::Duration timeout) const {
    const absl::Time until = absl::Now() + timeout;
    while (Fewest() < n) {
      if (absl::Now() > until) return false;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return true;
  }
  std::vector<Stream> Streams() const {
    absl::MutexLock lock(&mu_);
    return streams_;
  }

 private:
  void Run(size_t i) {
    const Peer& peer = peers_[i];
    auto fail = [&](const std::string& why) {
      absl::MutexLock lock(&mu_);
      streams_[i].ended = why;
    };
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
        tls::MakeChannelCredentials(peer.files, checker_, options_.provider);
    if (!creds.ok()) return fail(std::string(creds.status().message()));
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(8 << 20);
    auto channel = grpc::CreateCustomChannel(absl::StrCat("localhost:", peer.port), *creds, args);
    auto stub = federation::v1::FederationService::NewStub(channel);
    federation::v1::SubscribeRequest request;
    request.set_protocol_version(federation::v1::PROTOCOL_VERSION_1);
    request.set_dataset_id(options_.dataset);
    request.set_contract_id(peer.contract);
    request.set_start_position(options_.start_position);
    if (options_.max_batch_records > 0) request.set_max_batch_records(options_.max_batch_records);
    std::string stream_id, epoch;
    std::map<int32_t, int64_t> cursor;
    while (!stopping_) {
      auto context = std::make_unique<grpc::ClientContext>();
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        contexts_[i] = context.get();
      }
      // Resuming as a subscriber does: from the committed cursor, in the dataset's epoch.
      if (!cursor.empty()) {
        request.mutable_cursor()->set_epoch(epoch);
        for (const auto& [p, o] : cursor)
          (*request.mutable_cursor()->mutable_next_offsets())[p] = o;
      }
      auto reader = stub->Subscribe(context.get(), request);
      federation::v1::SubscribeResponse message;
      uint64_t sequence = 0;
      std::string hash;
      int since_ack = 0;
      absl::Time last_ack = absl::Now();
      while (reader->Read(&message)) {
        if (message.has_opened()) {
          stream_id = message.opened().stream_id();
          epoch = message.opened().epoch();
          absl::MutexLock lock(&mu_);
          streams_[i].stream_id = stream_id;
          continue;
        }
        if (!message.has_batch()) continue;
        const federation::v1::RecordBatch& b = message.batch();
        const double now_ms = absl::ToDoubleMilliseconds(absl::Now() - absl::UnixEpoch());
        {
          absl::MutexLock lock(&mu_);
          Stream& s = streams_[i];
          for (const federation::v1::Record& r : b.records()) {
            if (options_.keep_records) {
              s.records[b.partition()].push_back(
                  {r.source_offset(), std::hash<std::string>()(r.value())});
            }
            if (r.timestamp_ms() >= latency_from_ms_) {
              s.latency_ms.push_back(now_ms - static_cast<double>(r.timestamp_ms()));
            }
          }
          s.count += b.records_size();
          last_arrival_us_ = std::max(last_arrival_us_.load(), static_cast<int64_t>(now_ms * 1000));
          ++s.batches;
          s.cursor[b.partition()] = b.next_offset();
        }
        cursor[b.partition()] = b.next_offset();
        sequence = b.provider_audit().sequence();
        hash = b.provider_audit().hash();
        if (++since_ack >= options_.ack_every_batches ||
            absl::Now() - last_ack >= options_.ack_interval) {
          Acknowledge(i, *stub, stream_id, epoch, sequence, hash, cursor);
          since_ack = 0;
          last_ack = absl::Now();
        }
      }
      const grpc::Status end = reader->Finish();
      absl::MutexLock lock(&mu_);
      contexts_[i] = nullptr;
      if (stopping_) return;
      // A refusal is final; anything else (the provider busy, a broker failing over) is
      // retried after a pause, as the subscriber node retries.
      switch (end.error_code()) {
        case grpc::StatusCode::UNAVAILABLE:
        case grpc::StatusCode::DEADLINE_EXCEEDED:
        case grpc::StatusCode::RESOURCE_EXHAUSTED:
        case grpc::StatusCode::CANCELLED:
        case grpc::StatusCode::ABORTED:
        case grpc::StatusCode::INTERNAL:
        case grpc::StatusCode::UNKNOWN:
          ++streams_[i].reconnects;
          break;
        default:
          streams_[i].ended = absl::StrCat(end.error_code(), ": ", end.error_message());
          return;
      }
      mu_.Unlock();
      absl::SleepFor(absl::Milliseconds(500));
      mu_.Lock();
    }
  }

  // A receipt of what arrived (signed with the peer's key) and the cursor as committed.
  void Acknowledge(size_t i, federation::v1::FederationService::Stub& stub,
                   const std::string& stream_id, const std::string& epoch, uint64_t sequence,
                   const std::string& hash, const std::map<int32_t, int64_t>& cursor) {
    absl::StatusOr<audit::Receipt> receipt =
        audit::MakeReceipt(stream_id, peers_[i].id, sequence, hash, key_, absl::Now());
    bool ok = receipt.ok();
    if (ok) {
      federation::v1::ExchangeReceiptsRequest req;
      *req.mutable_receipt() = node::ToProto(*receipt);
      req.mutable_committed()->set_epoch(epoch);
      for (const auto& [p, o] : cursor) (*req.mutable_committed()->mutable_next_offsets())[p] = o;
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
      federation::v1::ExchangeReceiptsResponse resp;
      ok = stub.ExchangeReceipts(&ctx, req, &resp).ok();
    }
    absl::MutexLock lock(&mu_);
    ++(ok ? streams_[i].receipts : streams_[i].receipt_failures);
  }

  const std::vector<Peer> peers_;
  const Options options_;
  const trust::PrivateKey& key_;
  const std::shared_ptr<const tls::IdentityChecker> checker_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> latency_from_ms_{0};
  std::atomic<int64_t> last_arrival_us_{0};
  mutable absl::Mutex mu_;
  std::vector<Stream> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<grpc::ClientContext*> contexts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace node_testing
}  // namespace polder

#endif  // POLDER_TESTS_NODE_FANOUT_LOAD_H_
