#include "tools/polderctl/commands/service_channel.h"

#include <utility>

#include "common/status/status_macros.h"
#include "common/tls/grpc_tls.h"
#include "common/tls/identity.h"
#include "common/trust/directory.h"
#include "grpcpp/create_channel.h"
#include "tools/polderctl/commands/flags.h"

namespace polder {
namespace polderctl {

absl::StatusOr<std::shared_ptr<grpc::Channel>> ServiceChannel(const cli::Args& args,
                                                              const std::string& address,
                                                              const std::string& server_peer) {
  ASSIGN_OR_RETURN(trust::SignedDirectory d, ReadVerifiedDirectory(args, args.Get("directory")));
  auto directory = std::make_shared<const trust::Directory>(d.directory);
  tls::IdentityChecker::Options o;
  o.federation = d.directory.federation;
  o.trust_bundle_path = args.Get("bundle");
  o.crl_dir = args.Get("crl-dir");
  o.directory = [directory] { return directory; };
  ASSIGN_OR_RETURN(auto checker, tls::IdentityChecker::Create(o));
  tls::TlsFiles files{args.Get("cert"), args.Get("key"), args.Get("bundle"), absl::Seconds(60)};
  ASSIGN_OR_RETURN(auto creds, tls::MakeChannelCredentials(files, std::move(checker), server_peer));
  return grpc::CreateChannel(address, creds);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ServiceChannel(const cli::Args& args) {
  return ServiceChannel(args, args.Get("address"), args.Get("server-peer"));
}

grpc::ClientContext* WithDeadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

}  // namespace polderctl
}  // namespace polder
