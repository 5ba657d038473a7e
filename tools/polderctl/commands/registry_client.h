// polderctl's client of the registry's SchemaRegistryService. Every call has a deadline of the
// client's timeout; gRPC errors come back as absl::Status with code and message kept. A read
// that the registry answers with NOT_FOUND (no such subject, schema or level) returns nullopt.
//
//   RegistryClient registry(channel, absl::Seconds(60));
//   ASSIGN_OR_RETURN(std::optional<RegisteredSchema> found, registry.LookupSchema(schema));
//   if (!found) ASSIGN_OR_RETURN(found, registry.RegisterSchema(schema));
#ifndef POLDER_TOOLS_POLDERCTL_COMMANDS_REGISTRY_CLIENT_H_
#define POLDER_TOOLS_POLDERCTL_COMMANDS_REGISTRY_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "proto/polder/registry/v1/registry.grpc.pb.h"

namespace polder {
namespace polderctl {

// A schema's import of another registered schema.
struct SchemaReference {
  std::string name;     // the import path
  std::string subject;  // the subject the imported schema is registered under
  int32_t version = 0;  // its version there
};

// A Protobuf schema (.proto text) under a subject.
struct SubjectSchema {
  std::string subject;
  std::string schema;
  std::vector<SchemaReference> references;
};

struct RegisteredSchema {
  int32_t version = 0;  // in the subject
  int32_t id = 0;       // global
};

struct CompatibilityVerdict {
  bool compatible = false;
  std::vector<std::string> messages;  // why not
};

class RegistryClient {
 public:
  RegistryClient(std::shared_ptr<grpc::ChannelInterface> channel, absl::Duration timeout);

  // Asks the replica at the other end to make `replica` primary (handing over, or taking over);
  // returns the primary after the call, as that replica sees it.
  absl::StatusOr<std::string> SetPrimary(const std::string& replica);

  // The compatibility level set on `subject` itself; nullopt if it has none (the global default
  // applies).
  absl::StatusOr<std::optional<std::string>> SubjectCompatibility(const std::string& subject);
  absl::Status SetSubjectCompatibility(const std::string& subject, const std::string& level);

  // The version of the subject holding exactly this schema and references; nullopt if none does.
  absl::StatusOr<std::optional<RegisteredSchema>> LookupSchema(const SubjectSchema& schema);

  // Whether the subject's compatibility level would accept the schema; nullopt if the subject
  // has nothing to check against.
  absl::StatusOr<std::optional<CompatibilityVerdict>> CheckCompatibility(
      const SubjectSchema& schema);

  // Registers the schema (type PROTOBUF) under its subject; the registry returns the existing
  // version if the subject already holds it.
  absl::StatusOr<RegisteredSchema> RegisterSchema(const SubjectSchema& schema);

 private:
  std::unique_ptr<registry::v1::SchemaRegistryService::Stub> stub_;
  const absl::Duration timeout_;
};

}  // namespace polderctl
}  // namespace polder

#endif  // POLDER_TOOLS_POLDERCTL_COMMANDS_REGISTRY_CLIENT_H_
