// A two-city federation in memory for the federation's unit tests: Groningen provides
// mobility.bike-counts (3 partitions) under a signed raw contract to Amersfoort; each city has
// its own fake Kafka (common/kafka/testing), audit log and receipt signer, and both share one
// directory of their signing keys. InProcessProvider connects a MirrorSession to a
// ProviderStream without gRPC: what the provider sends is what the session reads, and receipts
// are signed, checked and acknowledged as FederationService does.
#ifndef POLDER_SERVICES_NODE_FEDERATION_FEDERATION_TESTING_H_
#define POLDER_SERVICES_NODE_FEDERATION_FEDERATION_TESTING_H_

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/kafka/testing/fake_kafka.h"
#include "services/node/federation/audit_log.h"
#include "services/node/federation/contracts.h"
#include "services/node/federation/mirror_session.h"
#include "services/node/federation/mirror_writer.h"
#include "services/node/federation/provider_stream.h"
#include "services/node/federation/receipts.h"

namespace polder {
namespace node {
namespace testing {

inline constexpr char kProvider[] = "groningen";
inline constexpr char kConsumer[] = "amersfoort";
inline constexpr char kDataset[] = "mobility.bike-counts";
inline constexpr char kSourceTopic[] = "groningen.mobility.bike-counts";
inline constexpr char kMirrorTopic[] = "groningen.mobility.bike-counts";
inline constexpr char kContractId[] = "bikes-1";
inline constexpr int kPartitions = 3;
inline constexpr int32_t kSchemaId = 7;

class FederationWorld {
 public:
  // `dir`: a fresh directory for contract files.
  explicit FederationWorld(const std::string& dir);

  // Writes a raw contract of the dataset signed by both parties, valid around now; `start` is
  // its start position (earliest, latest or RFC 3339).
  void WriteContract(const std::string& id, const std::string& start = "earliest",
                     std::vector<int64_t> schema_versions = {1, 2});
  // Appends `n` Polder records (schema kSchemaId) with keys "k<i>" to the source, committed in
  // one transaction; returns their values in order.
  std::vector<std::string> Publish(int n, const std::string& tag = "r");
  // Appends raw bytes that are not a Polder record.
  void PublishGarbage(int32_t partition);

  ProviderStream::Options StreamOptions() const;
  static FanOut::Options FanOutOptions();
  absl::StatusOr<std::shared_ptr<ProviderStream>> OpenStream(
      const federation::v1::SubscribeRequest& request, const std::string& stream_id = "stream-1");
  federation::v1::SubscribeRequest Request() const;

  MirrorWriter::Options WriterOptions() const;
  MirrorSession::Options SessionOptions() const;

  // Every value in the mirror as a read_committed reader sees it, per partition.
  std::map<int32_t, std::vector<std::string>> MirrorValues();
  std::map<int32_t, std::vector<std::string>> SourceValues();

  kafka::testing::FakeKafka provider_kafka;
  kafka::testing::FakeKafka consumer_kafka;
  kafka::testing::FakeClientFactory provider_clients{&provider_kafka};
  kafka::testing::FakeClientFactory consumer_clients{&consumer_kafka};
  // The provider's streams read through it.
  FanOut fan_out{FanOutOptions(), provider_clients};
  std::shared_ptr<const trust::Directory> directory;
  std::map<std::string, trust::PrivateKey> keys;
  std::unique_ptr<ContractBook> contracts;
  std::unique_ptr<AuditLog> provider_audit;
  std::unique_ptr<AuditLog> consumer_audit;
  std::unique_ptr<ReceiptSigner> provider_signer;
  std::unique_ptr<ReceiptSigner> consumer_signer;
  std::function<absl::StatusOr<int64_t>(const std::string&, int32_t)> schema_version;

 private:
  std::string dir_;
  int published_ = 0;
};

// A ProviderStream run on its own thread, read by a MirrorSession: Subscribe opens the stream
// (a refusal ends it at once with that status), ExchangeReceipts verifies the subscriber's
// receipt, acknowledges its cursor and answers with the provider's signed head.
class InProcessProvider : public ProviderConnection {
 public:
  explicit InProcessProvider(FederationWorld* world) : world_(world) {}
  ~InProcessProvider() override;

  void Subscribe(const federation::v1::SubscribeRequest& request) override;
  bool Read(federation::v1::SubscribeResponse* message) override;
  void CancelStream() override;
  absl::Status FinishStream() override;
  absl::StatusOr<federation::v1::ExchangeReceiptsResponse> ExchangeReceipts(
      const federation::v1::ExchangeReceiptsRequest& request, CancelSlot* cancel) override;

  // Test controls: messages to inject before the provider's own (after the opening message),
  // and whether the provider's sends fail (the subscriber "went away").
  void Inject(federation::v1::SubscribeResponse message);
  int exchanges() const;
  std::shared_ptr<ProviderStream> stream() const;

 private:
  class Queue;
  FederationWorld* const world_;
  mutable absl::Mutex mu_;
  std::deque<federation::v1::SubscribeResponse> messages_ ABSL_GUARDED_BY(mu_);
  std::deque<federation::v1::SubscribeResponse> injected_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_ ABSL_GUARDED_BY(mu_);
  int exchanges_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<ProviderStream> stream_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace testing
}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_FEDERATION_FEDERATION_TESTING_H_
