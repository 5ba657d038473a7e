#include "tools/polderctl/commands/keys_commands.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/trust/keys.h"
#include "tools/polderctl/commands/flags.h"

namespace polder {
namespace polderctl {
namespace {

absl::Status KeysNew(const cli::Args& a, Output* out) {
  const std::string path = a.Get("out");
  ASSIGN_OR_RETURN(trust::PrivateKey key, trust::PrivateKey::Generate());
  RETURN_IF_ERROR(key.WriteFile(path));
  RETURN_IF_ERROR(WritePublic(path + ".pub", key.public_key().Pem()));
  out->result = {{"kid", key.public_key().kid()},
                 {"x", key.public_key().RawBase64Url()},
                 {"private_key", path},
                 {"public_key", path + ".pub"}};
  out->Line(absl::StrCat("created signing key ", key.public_key().kid()));
  out->Line(absl::StrCat("  private: ", path, " (mode 0600; never share)"));
  out->Line(absl::StrCat("  public:  ", path, ".pub"));
  return absl::OkStatus();
}

}  // namespace

std::vector<Command> KeysCommands() {
  return {
      {"keys",
       "new",
       "create an Ed25519 signing key (separate from TLS keys)",
       {{"out", "private key file (0600); the public key goes to <out>.pub", true}},
       KeysNew},
  };
}

}  // namespace polderctl
}  // namespace polder
