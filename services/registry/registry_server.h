// polder-registry assembled from a validated RegistryConfig: trust (directory and identity
// checker), the Kafka-backed store, the registry, the gRPC and REST listeners (mutual TLS, or
// plaintext in the loopback development mode) and the ops listener with the registry's
// readiness, status and metrics. The binary's main only parses flags, loads the config, starts
// a RegistryServer and waits for a termination signal.
//
// Ready means this replica gives correct answers: it reads its Kafka topic and its certificate
// is valid. Being a replica rather than the primary is not unreadiness (replicas serve reads
// and name the primary).
#ifndef POLDER_SERVICES_REGISTRY_REGISTRY_SERVER_H_
#define POLDER_SERVICES_REGISTRY_REGISTRY_SERVER_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/http/https_server.h"
#include "common/kafka/client_factory.h"
#include "common/server/certificate_expiry.h"
#include "common/server/ops_server.h"
#include "common/server/periodic.h"
#include "common/trust/trust_config.h"
#include "grpcpp/server.h"
#include "nlohmann/json.hpp"
#include "services/registry/access.h"
#include "services/registry/grpc_service.h"
#include "services/registry/kafka_store.h"
#include "services/registry/registry.h"
#include "services/registry/registry_config.h"
#include "services/registry/registry_metrics.h"

namespace polder {
namespace registry {

class RegistryServer {
 public:
  struct Ports {
    int grpc = 0, http = 0, ops = 0;
    nlohmann::json ToJson() const;  // the ready file's content
  };

  // `kafka` must outlive the server.
  static absl::StatusOr<std::unique_ptr<RegistryServer>> Start(RegistryConfig config,
                                                               kafka::ClientFactory& kafka);
  ~RegistryServer();

  Ports ports() const;
  // Health NOT_SERVING, then the listeners stop (gRPC calls get 5 s to finish) and the store
  // closes. Idempotent.
  void Stop();

 private:
  explicit RegistryServer(RegistryConfig config) : config_(std::move(config)) {}
  absl::Status Build(kafka::ClientFactory& kafka);
  absl::Status StartOps();
  KafkaSchemaStore::Status StoreStatus();
  nlohmann::json StatusPage();
  std::string MetricsText();

  RegistryConfig config_;
  std::unique_ptr<trust::DirectoryStore> directory_;  // null in the development mode
  std::shared_ptr<tls::IdentityChecker> checker_;
  RegistryMetrics metrics_;
  server::Readiness readiness_;
  std::unique_ptr<server::CertificateExpiry> certificate_;  // outside the development mode
  // The registry before the store: the store's threads use the registry, so the store is
  // destroyed (stopped) first.
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<KafkaSchemaStore> store_;
  AccessPolicy policy_;
  std::unique_ptr<RegistryGrpcService> service_;
  std::unique_ptr<grpc::Server> grpc_;
  int grpc_port_ = 0;
  std::unique_ptr<http::HttpsServer> http_;
  std::unique_ptr<server::OpsServer> ops_;
  server::Periodic upkeep_;
  bool stopped_ = false;

  // The store's status, queried at most once a second (a watermark round trip to Kafka).
  absl::Mutex store_status_mu_;
  KafkaSchemaStore::Status store_status_ ABSL_GUARDED_BY(store_status_mu_);
  absl::Time store_status_at_ ABSL_GUARDED_BY(store_status_mu_);
};

}  // namespace registry
}  // namespace polder

#endif  // POLDER_SERVICES_REGISTRY_REGISTRY_SERVER_H_
