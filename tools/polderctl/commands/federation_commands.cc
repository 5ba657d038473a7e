#include "tools/polderctl/commands/federation_commands.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status/status_macros.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "proto/polder/datasets/standard_sources.h"
#include "tools/polderctl/commands/federation_bootstrap.h"
#include "tools/polderctl/commands/registry_client.h"
#include "tools/polderctl/commands/service_channel.h"

namespace polder {
namespace polderctl {
namespace {

using cli::Args;

// The channel to the registry: mutual TLS, or with --development plaintext to a registry on
// loopback.
absl::StatusOr<std::shared_ptr<grpc::Channel>> RegistryChannel(const Args& a) {
  if (!a.Has("development")) {
    for (const char* required : {"cert", "key", "bundle", "directory", "operator-key"}) {
      if (!a.Has(required)) {
        return absl::InvalidArgumentError(absl::StrCat("--", required,
                                                       " is required (or --development for a "
                                                       "development-mode registry on loopback)"));
      }
    }
    return ServiceChannel(a);
  }
  const std::string address = a.Get("address");
  const std::string host = address.substr(0, address.rfind(':'));
  if (host != "127.0.0.1" && host != "localhost" && host != "[::1]") {
    return absl::InvalidArgumentError(
        "--development talks plaintext and only to a registry on loopback");
  }
  return grpc::CreateChannel(address,
                             grpc::InsecureChannelCredentials());  // loopback development mode only
}

absl::Status FederationBootstrap(const Args& a, Output* out) {
  BootstrapOptions options;
  ASSIGN_OR_RETURN(options.compatibility, ParseCompatibilityLevel(a.Get("compatibility")),
                   _.Prepend("--compatibility: "));
  options.dry_run = a.Has("dry-run");
  ASSIGN_OR_RETURN(std::vector<datasets::StandardSchema> schemas, datasets::StandardSchemas());
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, RegistryChannel(a));
  RegistryClient registry(channel, absl::Seconds(60));
  ASSIGN_OR_RETURN(BootstrapReport report, BootstrapSchemas(schemas, options, registry));
  out->lines = BootstrapLines(report);
  out->result = BootstrapJson(report);
  return absl::OkStatus();
}

}  // namespace

std::vector<Command> FederationCommands() {
  return {
      {"federation",
       "bootstrap",
       "register the standard datasets of this build (idempotent: a second run changes nothing)",
       {{"address", "the registry's gRPC address host:port", true},
        {"cert", "your TLS certificate (federation operator)"},
        {"key", "your TLS key"},
        {"bundle", "the federation trust bundle"},
        {"directory", "the signed directory file"},
        {"operator-key", "pinned operator public key (.pub)", false, true},
        {"crl-dir", "folder of CRLs"},
        {"server-peer", "the registry's peer id in the directory", false, false, false, "registry"},
        {"development", "plaintext, to a development-mode registry on loopback", false, false,
         true},
        {"compatibility", "per-subject compatibility of the standard datasets (ADR 0007)", false,
         false, false, "FULL_TRANSITIVE"},
        {"dry-run", "report what would change, write nothing", false, false, true}},
       FederationBootstrap},
  };
}

}  // namespace polderctl
}  // namespace polder
