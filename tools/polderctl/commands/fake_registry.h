// Test helper: an in-memory SchemaRegistryService with the registry's answers that polderctl
// relies on — subjects holding versions of schemas with references (resolved when registered),
// global ids, per-subject compatibility levels (NOT_FOUND for a subject without one), a
// compatibility check (NOT_FOUND for a subject without versions) and the primary role among
// replicas. Faults are injected per method and subject; every call is logged.
//
//   FakeRegistry registry;
//   LoopbackServer server(&registry);
//   registry.FailOn("RegisterSchema", "mobility.v1.BikeCount", grpc::Status(UNAVAILABLE, "down"));
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_FAKE_REGISTRY_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_FAKE_REGISTRY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/polder/registry/v1/registry.grpc.pb.h"

namespace polder {
namespace polderctl {

class FakeRegistry : public registry::v1::SchemaRegistryService::Service {
 public:
  // One version of a subject: the schema and its references as "name=subject@version".
  struct Version {
    std::string schema;
    std::vector<std::string> references;
    int32_t id = 0;
  };

  FakeRegistry();

  // ---- set-up and inspection --------------------------------------------------------------
  // Registers a version as RegisterSchema does (without references); returns it.
  int32_t AddVersion(const std::string& subject, const std::string& schema);
  void SetSubjectLevel(const std::string& subject, const std::string& level);
  std::optional<std::string> SubjectLevel(const std::string& subject) const;
  std::vector<Version> Versions(const std::string& subject) const;
  // CheckCompatibility of `subject` answers incompatible with these messages.
  void Refuse(const std::string& subject, std::vector<std::string> messages);
  // The next call of `method` ("GetConfig", "RegisterSchema", ...) for `subject` ("" for any)
  // fails with `status`.
  void FailOn(const std::string& method, const std::string& subject, grpc::Status status);
  // Calls so far, as "<method> <subject>" ("SetPrimary <replica>").
  std::vector<std::string> calls() const;
  // Calls of SetConfig and RegisterSchema so far.
  int writes() const;
  // The time left until the deadline of the last call (InfiniteDuration without a deadline).
  absl::Duration last_deadline() const;
  std::string primary() const;

  // ---- the service ------------------------------------------------------------------------
  grpc::Status RegisterSchema(grpc::ServerContext* ctx,
                              const registry::v1::RegisterSchemaRequest* req,
                              registry::v1::RegisterSchemaResponse* resp) override;
  grpc::Status LookupSchema(grpc::ServerContext* ctx, const registry::v1::LookupSchemaRequest* req,
                            registry::v1::Schema* resp) override;
  grpc::Status CheckCompatibility(grpc::ServerContext* ctx,
                                  const registry::v1::CheckCompatibilityRequest* req,
                                  registry::v1::CheckCompatibilityResponse* resp) override;
  grpc::Status GetConfig(grpc::ServerContext* ctx, const registry::v1::GetConfigRequest* req,
                         registry::v1::ConfigResponse* resp) override;
  grpc::Status SetConfig(grpc::ServerContext* ctx, const registry::v1::SetConfigRequest* req,
                         registry::v1::ConfigResponse* resp) override;
  grpc::Status SetPrimary(grpc::ServerContext* ctx, const registry::v1::SetPrimaryRequest* req,
                          registry::v1::SetPrimaryResponse* resp) override;

 private:
  // Logs the call; returns the injected fault for it, if any.
  std::optional<grpc::Status> Enter(grpc::ServerContext* ctx, const std::string& method,
                                    const std::string& subject) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int32_t Register(const std::string& subject, const std::string& schema,
                   const std::vector<std::string>& references) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<Version>> subjects_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int32_t> ids_ ABSL_GUARDED_BY(mu_);  // schema + references → id
  std::map<std::string, std::string> levels_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::string>> refused_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, grpc::Status> faults_ ABSL_GUARDED_BY(mu_);  // "<method> <subject>"
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  absl::Duration last_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteDuration();
  std::set<std::string> replicas_ ABSL_GUARDED_BY(mu_) = {"registry-a", "registry-b"};
  std::string primary_ ABSL_GUARDED_BY(mu_) = "registry-a";
};

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_FAKE_REGISTRY_H_
