#include "services/node/federation/subscriber.h"

#include <algorithm>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/grpc_status.h"
#include "proto/polder/federation/v1/federation.grpc.pb.h"

namespace polder {
namespace node {

namespace fv1 = ::polder::federation::v1;

namespace {

constexpr absl::string_view kNotDialled = "not dialled";

// The provider over gRPC: one Subscribe call and any number of ExchangeReceipts calls.
class GrpcProviderConnection final : public ProviderConnection {
 public:
  explicit GrpcProviderConnection(const std::shared_ptr<grpc::Channel>& channel)
      : stub_(fv1::FederationService::NewStub(channel)) {}

  void Subscribe(const fv1::SubscribeRequest& request) override {
    reader_ = stub_->Subscribe(&stream_, request);
  }
  bool Read(fv1::SubscribeResponse* message) override {
    return reader_ != nullptr && reader_->Read(message);
  }
  // Before Subscribe too: the call then ends as soon as it starts.
  void CancelStream() override { stream_.TryCancel(); }
  absl::Status FinishStream() override {
    if (reader_ == nullptr) return absl::CancelledError("no stream was started");
    return FromGrpcStatus(reader_->Finish());
  }
  absl::StatusOr<fv1::ExchangeReceiptsResponse> ExchangeReceipts(
      const fv1::ExchangeReceiptsRequest& request, CancelSlot* cancel) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    if (cancel != nullptr && !cancel->Arm([&ctx] { ctx.TryCancel(); })) {
      return absl::CancelledError("receipt exchange cancelled");
    }
    absl::Cleanup disarm = [cancel] {
      if (cancel != nullptr) cancel->Disarm();
    };
    fv1::ExchangeReceiptsResponse response;
    grpc::Status s = stub_->ExchangeReceipts(&ctx, request, &response);
    if (!s.ok()) return FromGrpcStatus(s);
    return response;
  }

 private:
  const std::unique_ptr<fv1::FederationService::Stub> stub_;
  grpc::ClientContext stream_;
  std::unique_ptr<grpc::ClientReader<fv1::SubscribeResponse>> reader_;
};

}  // namespace

void Subscriber::Start() {
  if (thread_.joinable()) thread_.join();  // a run that ended (fenced) or was stopped
  stop_ = false;
  state_.Set(SubscriptionStatus::kStarting);
  thread_ = std::thread([this] { Run(); });
}

void Subscriber::Stop(SubscriptionStatus final_status) {
  stop_ = true;
  {
    absl::MutexLock lock(&mu_);
    if (active_ != nullptr) active_->CancelStream();
  }
  if (thread_.joinable()) thread_.join();
  state_.Set(final_status);
}

void Subscriber::Pause(absl::Duration wait) {
  for (absl::Time until = absl::Now() + wait; !stop_ && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(50));
  }
}

absl::Status Subscriber::StreamOnce(MirrorWriter& writer) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = options_.channel();
  if (!channel.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        kNotDialled,
        ": this node's federation credentials cannot be used: ", channel.status().message()));
  }
  GrpcProviderConnection connection(*channel);
  {
    absl::MutexLock lock(&mu_);
    active_ = &connection;
  }
  absl::Cleanup clear = [this] {
    absl::MutexLock lock(&mu_);
    active_ = nullptr;
  };
  if (stop_) return absl::CancelledError("the subscription is stopping");
  return session_.StreamOnce(writer, connection);
}

void Subscriber::Run() {
  const MirrorSession::Options& so = options_.session;
  absl::Duration backoff = options_.min_backoff;
  std::unique_ptr<MirrorWriter> writer;
  while (!stop_) {
    if (writer == nullptr) {
      absl::StatusOr<std::unique_ptr<MirrorWriter>> w =
          MirrorWriter::Start(options_.writer, kafka_);
      if (!w.ok()) {
        state_.Set(SubscriptionStatus::kReconnecting, w.status().message());
        Pause(backoff);
        backoff = std::min(2 * backoff, options_.max_backoff);
        continue;
      }
      writer = *std::move(w);
    }
    const int64_t mirrored_before = state_.snapshot().records;
    const absl::Status s = StreamOnce(*writer);
    if (stop_) break;
    // A stream that mirrored something was a success: the next failure starts the backoff
    // again from its minimum (after a broker fail-over, not 30 s later).
    if (state_.snapshot().records > mirrored_before) backoff = options_.min_backoff;
    if (writer->fenced()) {
      state_.Set(SubscriptionStatus::kFenced, s.message());
      log::Error("subscription fenced: another replica holds it; this run stops here",
                 {{"dataset", so.dataset}, {"provider", so.provider}});
      if (options_.fenced) options_.fenced();
      return;
    }
    if (s.code() == absl::StatusCode::kPermissionDenied && options_.purge && options_.revoked &&
        !state_.snapshot().purged && options_.revoked()) {
      absl::Status purged = options_.purge();
      if (purged.ok()) state_.Purged();
      log::Write(purged.ok() ? log::Severity::kWarning : log::Severity::kError,
                 purged.ok() ? "contract revoked: mirror purged"
                             : "contract revoked: purging the mirror failed",
                 {{"dataset", so.dataset},
                  {"provider", so.provider},
                  {"error", std::string(purged.message())}});
    }
    if (s.code() == absl::StatusCode::kUnauthenticated &&
        absl::StartsWith(s.message(), kNotDialled)) {
      state_.Set(SubscriptionStatus::kNoCredentials, s.message());
      log::Error("subscription not dialled: no usable credentials",
                 {{"dataset", so.dataset},
                  {"provider", so.provider},
                  {"error", std::string(s.message())}});
      Pause(backoff);
      backoff = std::min(2 * backoff, options_.max_backoff);
      continue;
    }
    const bool gap =
        s.code() == absl::StatusCode::kOutOfRange || s.code() == absl::StatusCode::kDataLoss;
    const bool refused = gap || s.code() == absl::StatusCode::kPermissionDenied ||
                         s.code() == absl::StatusCode::kFailedPrecondition;
    state_.Set(refused ? SubscriptionStatus::kRefused : SubscriptionStatus::kReconnecting,
               s.message());
    if (gap) session_.RecordGap(s);
    log::Warning("subscription stream ended", {{"dataset", so.dataset},
                                               {"provider", so.provider},
                                               {"code", static_cast<int>(s.code())},
                                               {"error", std::string(s.message())}});
    state_.Reconnecting();
    Pause(refused ? options_.max_backoff : backoff);
    backoff = std::min(2 * backoff, s.code() == absl::StatusCode::kUnavailable
                                        ? options_.unavailable_max_backoff
                                        : options_.max_backoff);
  }
  state_.Set(SubscriptionStatus::kStopped);
}

}  // namespace node
}  // namespace polder
