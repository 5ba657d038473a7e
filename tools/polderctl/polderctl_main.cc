// polderctl: the operator's command-line tool for Polder's trust layer.
//
//   polderctl pki init --dir pki --federation nl-smartcity
//   polderctl pki issue --dir pki --peer groningen --out groningen/tls --dns localhost
//   polderctl pki revoke --dir pki --cert groningen/tls/cert.pem
//   polderctl keys new --out groningen/signing.key
//   polderctl directory create --federation nl-smartcity --serial 1 --out directory.json
//   polderctl directory add-peer --file directory.json --peer groningen --endpoint h:8443
//       --tls-cert groningen/tls/cert.pem --signing-key groningen/signing.key.pub
//   polderctl directory sign --file directory.json --key operator.key
//   polderctl directory verify --file directory.json --operator-key operator.key.pub
//   polderctl contract propose ... --out contract.json
//   polderctl contract sign --file contract.json --peer groningen --key groningen/signing.key
//   polderctl contract verify --file contract.json --directory directory.json --operator-key ...
//   polderctl contract revoke --file contract.json --peer amersfoort --key ... --out rev.json
//   polderctl registry set-primary --address reg-b:9443 --replica reg-b --cert ...
//   polderctl federation bootstrap --address registry:9443 --cert operator/tls/cert.pem ...
//   polderctl tail --bootstrap kafka:9092 --topic groningen.mobility.bike-counts --schema-url
//   https://node:8082 ... polderctl publish --endpoint node:7444 --dataset mobility.bike-counts
//   --file counts.csv --ca-file ...
//
// Every command takes --help, and -o json for machine-readable output. Errors go to stderr with
// exit status 1 (2 for usage errors). Private keys are written with mode 0600 and never printed.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/audit/trail.h"
#include "common/json/bounded.h"
#include "common/kafka/consumer.h"
#include "common/kafka/rdkafka_client_factory.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "common/tls/grpc_tls.h"
#include "common/tls/identity.h"
#include "common/tls/pki.h"
#include "common/trust/contract.h"
#include "common/trust/directory.h"
#include "common/trust/document.h"
#include "common/trust/keys.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "proto/polder/datasets/standard_sources.h"
#include "proto/polder/federation/v1/federation.grpc.pb.h"
#include "proto/polder/registry/v1/registry.grpc.pb.h"
#include "tools/polderctl/cli.h"
#include "tools/polderctl/commands/publish_command.h"
#include "tools/polderctl/commands/tail_command.h"

namespace polder {
namespace {

namespace fs = std::filesystem;
using cli::Args;
using cli::FlagSpec;
using nlohmann::ordered_json;

struct Output {
  bool json = false;
  ordered_json result = ordered_json::object();
  std::vector<std::string> lines;
  void Line(std::string s) { lines.push_back(std::move(s)); }
};

using Handler = std::function<absl::Status(const Args&, Output*)>;

struct Command {
  std::string group;
  std::string name;
  std::string summary;
  std::vector<FlagSpec> flags;
  Handler run;
};

absl::StatusOr<absl::Duration> DurationFlag(const Args& a, const std::string& name) {
  absl::Duration d;
  std::string v = a.Get(name);
  if (!absl::ParseDuration(v, &d) || d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": '", v, "' is not a positive duration such as 90s, 30m, 720h"));
  }
  return d;
}

absl::StatusOr<absl::Time> TimeFlag(const Args& a, const std::string& name) {
  if (!a.Has(name)) return absl::Now();
  ASSIGN_OR_RETURN(absl::Time t, trust::ParseRfc3339(a.Get(name)),
                   _.Prepend(absl::StrCat("--", name, ": ")));
  return t;
}

absl::Status WritePublic(const std::string& path, const std::string& text) {
  return trust::WriteFileAtomically(path, text, 0644);
}

absl::Status WriteSecret(const std::string& path, const std::string& text) {
  if (fs::exists(path)) {
    return absl::AlreadyExistsError(
        absl::StrCat("'", path, "' exists; refusing to overwrite a key"));
  }
  return trust::WriteFileAtomically(path, text, 0600);
}

absl::StatusOr<tls::KeyAndCert> ReadCa(const std::string& dir) {
  tls::KeyAndCert ca;
  ASSIGN_OR_RETURN(ca.key_pem, trust::ReadFileToString(dir + "/ca.key"));
  ASSIGN_OR_RETURN(ca.cert_pem, trust::ReadFileToString(dir + "/ca.pem"));
  return ca;
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, trust::ReadFileToString(path));
  nlohmann::json j = json_input::ParseOrDiscarded(text);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  return j;
}

// ---- pki -------------------------------------------------------------------------------------

absl::Status WriteCrl(const std::string& dir, const nlohmann::json& state) {
  ASSIGN_OR_RETURN(tls::KeyAndCert issuing, ReadCa(dir + "/issuing"));
  std::vector<std::string> revoked = state["revoked"].get<std::vector<std::string>>();
  ASSIGN_OR_RETURN(std::string crl,
                   tls::CreateCrl(issuing, revoked, state["crl_number"].get<int64_t>(), absl::Now(),
                                  absl::Hours(24 * 7)));
  fs::create_directories(dir + "/crl");
  RETURN_IF_ERROR(WritePublic(dir + "/crl/issuing.crl.pem", crl));
  return WritePublic(dir + "/pki.json", state.dump(2) + "\n");
}

absl::Status PkiInit(const Args& a, Output* out) {
  const std::string dir = a.Get("dir");
  if (fs::exists(dir + "/root/ca.key")) {
    return absl::AlreadyExistsError(absl::StrCat("'", dir, "' already holds a PKI"));
  }
  std::string federation = a.Get("federation");
  if (!trust::IsValidPeerId(federation)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--federation: '", federation, "' is not a valid name"));
  }
  ASSIGN_OR_RETURN(absl::Duration root_validity, DurationFlag(a, "root-validity"));
  ASSIGN_OR_RETURN(absl::Duration issuing_validity, DurationFlag(a, "issuing-validity"));
  tls::CaOptions root_opts;
  root_opts.common_name = absl::StrCat(federation, " root CA");
  root_opts.organization = a.Get("organization");
  root_opts.validity = root_validity;
  ASSIGN_OR_RETURN(tls::KeyAndCert root, tls::CreateRootCa(root_opts));
  tls::CaOptions issuing_opts = root_opts;
  issuing_opts.common_name = absl::StrCat(federation, " issuing CA");
  issuing_opts.validity = issuing_validity;
  ASSIGN_OR_RETURN(tls::KeyAndCert issuing, tls::CreateIssuingCa(root, issuing_opts));
  fs::create_directories(dir + "/root");
  fs::create_directories(dir + "/issuing");
  chmod((dir + "/root").c_str(), 0700);
  chmod((dir + "/issuing").c_str(), 0700);
  RETURN_IF_ERROR(WriteSecret(dir + "/root/ca.key", root.key_pem));
  RETURN_IF_ERROR(WritePublic(dir + "/root/ca.pem", root.cert_pem));
  RETURN_IF_ERROR(WriteSecret(dir + "/issuing/ca.key", issuing.key_pem));
  RETURN_IF_ERROR(WritePublic(dir + "/issuing/ca.pem", issuing.cert_pem));
  RETURN_IF_ERROR(WritePublic(dir + "/bundle.pem", root.cert_pem));
  nlohmann::json state = {
      {"federation", federation}, {"crl_number", 1}, {"revoked", nlohmann::json::array()}};
  RETURN_IF_ERROR(WriteCrl(dir, state));
  ASSIGN_OR_RETURN(tls::CertificateInfo ri, tls::ParseCertificate(root.cert_pem));
  out->result = {{"federation", federation},
                 {"trust_bundle", dir + "/bundle.pem"},
                 {"root_subject", ri.subject},
                 {"root_not_after", trust::FormatRfc3339(ri.not_after)},
                 {"crl", dir + "/crl/issuing.crl.pem"}};
  out->Line(absl::StrCat("created the PKI of federation '", federation, "' in ", dir));
  out->Line(absl::StrCat("  trust bundle (give to every peer): ", dir, "/bundle.pem"));
  out->Line(absl::StrCat("  CRL folder (publish to every peer): ", dir, "/crl/"));
  out->Line(absl::StrCat("  keep offline: ", dir, "/root/ca.key"));
  return absl::OkStatus();
}

absl::Status PkiIssue(const Args& a, Output* out) {
  const std::string dir = a.Get("dir");
  ASSIGN_OR_RETURN(nlohmann::json state, ReadJsonFile(dir + "/pki.json"));
  ASSIGN_OR_RETURN(tls::KeyAndCert issuing, ReadCa(dir + "/issuing"));
  tls::PeerCertOptions o;
  o.federation = state["federation"].get<std::string>();
  o.peer_id = a.Get("peer");
  o.dns_names = a.GetAll("dns");
  o.ip_addresses = a.GetAll("ip");
  o.subject_serial_number = a.Get("subject-serial-number");
  ASSIGN_OR_RETURN(o.validity, DurationFlag(a, "validity"));
  absl::Duration skew;
  if (!absl::ParseDuration(a.Get("skew"), &skew) || skew < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--skew: '", a.Get("skew"), "' is not a duration"));
  }
  o.backdate = skew;
  if (a.Has("key")) {
    ASSIGN_OR_RETURN(o.key_pem, trust::ReadFileToString(a.Get("key")));
  }
  ASSIGN_OR_RETURN(tls::KeyAndCert kc, tls::IssuePeerCertificate(issuing, o));
  const std::string outdir = a.Get("out");
  fs::create_directories(outdir);
  if (!a.Has("key")) RETURN_IF_ERROR(WriteSecret(outdir + "/key.pem", kc.key_pem));
  RETURN_IF_ERROR(WritePublic(outdir + "/cert.pem", kc.cert_pem + issuing.cert_pem));
  RETURN_IF_ERROR(
      WritePublic(outdir + "/bundle.pem", *trust::ReadFileToString(dir + "/bundle.pem")));
  ASSIGN_OR_RETURN(tls::CertificateInfo info, tls::ParseCertificate(kc.cert_pem));
  out->result = {{"peer", o.peer_id},
                 {"serial", info.serial_hex},
                 {"tls_key_thumbprint", info.key_thumbprint},
                 {"not_before", trust::FormatRfc3339(info.not_before)},
                 {"not_after", trust::FormatRfc3339(info.not_after)},
                 {"uris", info.uris},
                 {"cert", outdir + "/cert.pem"},
                 {"key", a.Has("key") ? a.Get("key") : outdir + "/key.pem"}};
  out->Line(absl::StrCat("issued a TLS certificate for peer '", o.peer_id, "' (serial ",
                         info.serial_hex, ")"));
  out->Line(absl::StrCat("  ", outdir, "/cert.pem, key ",
                         a.Has("key") ? a.Get("key") : outdir + "/key.pem"));
  out->Line(absl::StrCat("  valid ", trust::FormatRfc3339(info.not_before), " .. ",
                         trust::FormatRfc3339(info.not_after)));
  out->Line(absl::StrCat("  TLS key thumbprint (for the directory): ", info.key_thumbprint));
  return absl::OkStatus();
}

absl::Status PkiRevoke(const Args& a, Output* out) {
  const std::string dir = a.Get("dir");
  ASSIGN_OR_RETURN(nlohmann::json state, ReadJsonFile(dir + "/pki.json"));
  std::string serial = a.Get("serial");
  if (a.Has("cert")) {
    ASSIGN_OR_RETURN(std::string pem, trust::ReadFileToString(a.Get("cert")));
    ASSIGN_OR_RETURN(tls::CertificateInfo info, tls::ParseCertificate(pem));
    serial = info.serial_hex;
  }
  if (serial.empty()) return absl::InvalidArgumentError("give --serial or --cert");
  std::vector<std::string> revoked = state["revoked"].get<std::vector<std::string>>();
  bool already = std::find(revoked.begin(), revoked.end(), serial) != revoked.end();
  if (!already) revoked.push_back(serial);
  state["revoked"] = revoked;
  state["crl_number"] = state["crl_number"].get<int64_t>() + 1;
  RETURN_IF_ERROR(WriteCrl(dir, state));
  out->result = {{"revoked", serial},
                 {"crl", dir + "/crl/issuing.crl.pem"},
                 {"crl_number", state["crl_number"]},
                 {"already_revoked", already}};
  out->Line(absl::StrCat(already ? "already revoked: " : "revoked certificate serial ", serial));
  out->Line(absl::StrCat("  publish ", dir, "/crl/issuing.crl.pem to every peer's CRL folder"));
  return absl::OkStatus();
}

// ---- keys ------------------------------------------------------------------------------------

absl::Status KeysNew(const Args& a, Output* out) {
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

// ---- directory -------------------------------------------------------------------------------

// Reads a directory file that may be unsigned, or signed (signatures are dropped on change).
absl::StatusOr<trust::SignedDirectory> ReadDirectory(const std::string& path) {
  return trust::SignedDirectory::ReadFile(path);
}

absl::Status DirectoryCreate(const Args& a, Output* out) {
  trust::SignedDirectory d;
  d.directory.federation = a.Get("federation");
  int64_t serial = 0;
  if (!absl::SimpleAtoi(a.Get("serial"), &serial) || serial < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--serial: '", a.Get("serial"), "' must be a number >= 1"));
  }
  d.directory.serial = serial;
  ASSIGN_OR_RETURN(absl::Duration valid_for, DurationFlag(a, "valid-for"));
  ASSIGN_OR_RETURN(absl::Time from, TimeFlag(a, "valid-from"));
  d.directory.issued_at = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  d.directory.valid_from = absl::FromUnixSeconds(absl::ToUnixSeconds(from));
  d.directory.valid_until = d.directory.valid_from + valid_for;
  // Round trip through the strict parser so a bad federation name is caught now.
  RETURN_IF_ERROR(trust::Directory::FromJson(d.directory.ToJson()).status());
  if (fs::exists(a.Get("out")) && !a.Bool("force")) {
    return absl::AlreadyExistsError(absl::StrCat("'", a.Get("out"), "' exists (use --force)"));
  }
  RETURN_IF_ERROR(WritePublic(a.Get("out"), d.ToFileText()));
  out->result = {{"file", a.Get("out")},
                 {"serial", serial},
                 {"valid_until", trust::FormatRfc3339(d.directory.valid_until)}};
  out->Line(absl::StrCat("created directory serial ", serial, " (unsigned) in ", a.Get("out")));
  return absl::OkStatus();
}

absl::Status DirectoryAddPeer(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedDirectory d, ReadDirectory(a.Get("file")));
  trust::PeerEntry p;
  p.id = a.Get("peer");
  p.endpoint = a.Get("endpoint");
  p.tls_key_thumbprints = a.GetAll("tls-thumbprint");
  for (const std::string& cert : a.GetAll("tls-cert")) {
    ASSIGN_OR_RETURN(std::string pem, trust::ReadFileToString(cert));
    ASSIGN_OR_RETURN(std::string t, tls::KeyThumbprint(pem), _.Prepend(absl::StrCat(cert, ": ")));
    p.tls_key_thumbprints.push_back(t);
  }
  if (p.tls_key_thumbprints.empty()) {
    return absl::InvalidArgumentError(
        "give the peer's TLS keys with --tls-cert or --tls-thumbprint");
  }
  ASSIGN_OR_RETURN(absl::Duration key_valid_for, DurationFlag(a, "key-valid-for"));
  absl::Time from = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now())) - absl::Minutes(5);
  for (const std::string& pub : a.GetAll("signing-key")) {
    ASSIGN_OR_RETURN(trust::PublicKey key, trust::PublicKey::ReadFile(pub));
    p.signing_keys.push_back({key.kid(), key.RawBase64Url(), from, from + key_valid_for});
  }
  if (p.signing_keys.empty())
    return absl::InvalidArgumentError("give at least one --signing-key (a .pub file)");
  bool replaced = false;
  for (auto& existing : d.directory.peers) {
    if (existing.id == p.id) {
      existing = p;
      replaced = true;
    }
  }
  if (!replaced) d.directory.peers.push_back(p);
  // Validate the result as a node would, before writing.
  RETURN_IF_ERROR(trust::Directory::FromJson(d.directory.ToJson()).status());
  size_t dropped = d.signatures.size();
  d.signatures.clear();  // The content changed: old signatures no longer apply.
  RETURN_IF_ERROR(WritePublic(a.Get("file"), d.ToFileText()));
  out->result = {{"peer", p.id},
                 {"replaced", replaced},
                 {"tls_key_thumbprints", p.tls_key_thumbprints},
                 {"signatures_dropped", dropped}};
  out->Line(absl::StrCat(replaced ? "replaced" : "added", " peer '", p.id, "' (",
                         p.tls_key_thumbprints.size(), " TLS key(s), ", p.signing_keys.size(),
                         " signing key(s))",
                         dropped > 0 ? "; the directory must be signed again" : ""));
  return absl::OkStatus();
}

absl::Status DirectorySign(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedDirectory d, ReadDirectory(a.Get("file")));
  ASSIGN_OR_RETURN(trust::PrivateKey key, trust::PrivateKey::ReadFile(a.Get("key")));
  RETURN_IF_ERROR(trust::SignDirectory(&d, key, absl::Now()));
  RETURN_IF_ERROR(WritePublic(a.Get("file"), d.ToFileText()));
  out->result = {{"file", a.Get("file")},
                 {"serial", d.directory.serial},
                 {"signed_by", key.public_key().kid()},
                 {"signatures", d.signatures.size()}};
  out->Line(absl::StrCat("signed directory serial ", d.directory.serial, " with operator key ",
                         key.public_key().kid()));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<trust::PinnedKey>> Pins(const Args& a) {
  std::vector<trust::PinnedKey> pins;
  for (const std::string& path : a.GetAll("operator-key")) {
    ASSIGN_OR_RETURN(trust::PublicKey k, trust::PublicKey::ReadFile(path));
    pins.push_back({k});
  }
  if (pins.empty())
    return absl::InvalidArgumentError("give the pinned --operator-key (a .pub file)");
  return pins;
}

absl::Status DirectoryVerify(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedDirectory d, ReadDirectory(a.Get("file")));
  ASSIGN_OR_RETURN(std::vector<trust::PinnedKey> pins, Pins(a));
  ASSIGN_OR_RETURN(absl::Time at, TimeFlag(a, "at"));
  RETURN_IF_ERROR(trust::VerifyDirectory(d, pins, at, absl::Minutes(5)));
  std::vector<std::string> peers;
  for (const auto& p : d.directory.peers) peers.push_back(p.id);
  out->result = {{"valid", true},
                 {"federation", d.directory.federation},
                 {"serial", d.directory.serial},
                 {"valid_until", trust::FormatRfc3339(d.directory.valid_until)},
                 {"peers", peers}};
  out->Line(absl::StrCat("directory serial ", d.directory.serial, " of '", d.directory.federation,
                         "' is valid until ", trust::FormatRfc3339(d.directory.valid_until),
                         "; peers: ", absl::StrJoin(peers, ", ")));
  // Nodes warn a week ahead; so does the operator's tool.
  const absl::Duration left = d.directory.valid_until - at;
  out->result["expires_soon"] = left < absl::Hours(24 * 7);
  if (left < absl::Hours(24 * 7)) {
    out->Line(absl::StrCat("warning: the directory expires in ",
                           absl::FormatDuration(absl::Trunc(left, absl::Minutes(1))),
                           "; issue serial ", d.directory.serial + 1, " soon"));
  }
  return absl::OkStatus();
}

// ---- contract --------------------------------------------------------------------------------

absl::Status ContractPropose(const Args& a, Output* out) {
  trust::SignedContract c;
  trust::Contract& k = c.contract;
  k.id = a.Get("id");
  k.federation = a.Get("federation");
  k.provider = a.Get("provider");
  k.consumer = a.Get("consumer");
  k.dataset = a.Get("dataset");
  for (absl::string_view v : absl::StrSplit(a.Get("schema-versions"), ',', absl::SkipEmpty())) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(v, &n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--schema-versions: '", v, "' is not a number"));
    }
    k.schema_versions.push_back(n);
  }
  k.purpose = a.Get("purpose");
  std::string access = a.Get("access");
  if (access == "raw") {
    k.access = trust::Access::kRaw;
  } else if (access == "aggregate-only") {
    k.access = trust::Access::kAggregateOnly;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--access: expected raw or aggregate-only, got '", access, "'"));
  }
  k.start_position = a.Get("start");
  ASSIGN_OR_RETURN(k.mirror_retention, DurationFlag(a, "retention"));
  k.reshare = a.Bool("reshare");
  ASSIGN_OR_RETURN(absl::Duration valid_for, DurationFlag(a, "valid-for"));
  ASSIGN_OR_RETURN(absl::Time from, TimeFlag(a, "valid-from"));
  k.valid_from = absl::FromUnixSeconds(absl::ToUnixSeconds(from));
  k.valid_until = k.valid_from + valid_for;
  RETURN_IF_ERROR(trust::Contract::FromJson(k.ToJson()).status());
  if (fs::exists(a.Get("out")) && !a.Bool("force")) {
    return absl::AlreadyExistsError(absl::StrCat("'", a.Get("out"), "' exists (use --force)"));
  }
  RETURN_IF_ERROR(WritePublic(a.Get("out"), c.ToFileText()));
  ASSIGN_OR_RETURN(std::string hash, k.Hash());
  out->result = {{"file", a.Get("out")}, {"id", k.id}, {"hash", hash}};
  out->Line(absl::StrCat("proposed contract ", k.id, ": ", k.provider, " shares ", k.dataset,
                         " with ", k.consumer, " (", access, ") until ",
                         trust::FormatRfc3339(k.valid_until)));
  out->Line("  both parties sign it with: polderctl contract sign --file ... --peer ... --key ...");
  return absl::OkStatus();
}

absl::Status ContractSign(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedContract c, trust::SignedContract::ReadFile(a.Get("file")));
  ASSIGN_OR_RETURN(trust::PrivateKey key, trust::PrivateKey::ReadFile(a.Get("key")));
  RETURN_IF_ERROR(trust::SignContract(&c, a.Get("peer"), key, absl::Now()));
  RETURN_IF_ERROR(WritePublic(a.Get("file"), c.ToFileText()));
  std::vector<std::string> by;
  for (const auto& s : c.signatures) by.push_back(s.peer);
  out->result = {{"id", c.contract.id}, {"signed_by", by}};
  out->Line(absl::StrCat("'", a.Get("peer"), "' signed contract ", c.contract.id,
                         " (signatures: ", absl::StrJoin(by, ", "), ")"));
  return absl::OkStatus();
}

absl::Status ContractVerify(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedContract c, trust::SignedContract::ReadFile(a.Get("file")));
  ASSIGN_OR_RETURN(trust::SignedDirectory d, ReadDirectory(a.Get("directory")));
  ASSIGN_OR_RETURN(std::vector<trust::PinnedKey> pins, Pins(a));
  ASSIGN_OR_RETURN(absl::Time at, TimeFlag(a, "at"));
  RETURN_IF_ERROR(trust::VerifyDirectory(d, pins, at, absl::Minutes(5)));
  RETURN_IF_ERROR(trust::VerifyContract(c, d.directory, at, absl::Minutes(5)));
  for (const std::string& path : a.GetAll("revocation")) {
    ASSIGN_OR_RETURN(trust::SignedRevocation r, trust::SignedRevocation::ReadFile(path));
    absl::Status rs = trust::VerifyRevocation(r, c.contract, d.directory, absl::Minutes(5));
    if (rs.ok()) {
      return absl::PermissionDeniedError(
          absl::StrCat("contract ", c.contract.id, " was revoked by '", r.revocation.revoked_by,
                       "' at ", trust::FormatRfc3339(r.revocation.revoked_at),
                       r.revocation.reason.empty() ? "" : absl::StrCat(": ", r.revocation.reason)));
    }
    return Prepend(rs, absl::StrCat(path, ": "));
  }
  ASSIGN_OR_RETURN(std::string hash, c.contract.Hash());
  out->result = {{"valid", true},
                 {"id", c.contract.id},
                 {"hash", hash},
                 {"valid_until", trust::FormatRfc3339(c.contract.valid_until)}};
  out->Line(absl::StrCat("contract ", c.contract.id, " is valid: signed by ", c.contract.provider,
                         " and ", c.contract.consumer, ", until ",
                         trust::FormatRfc3339(c.contract.valid_until)));
  return absl::OkStatus();
}

absl::Status ContractRevoke(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedContract c, trust::SignedContract::ReadFile(a.Get("file")));
  ASSIGN_OR_RETURN(trust::PrivateKey key, trust::PrivateKey::ReadFile(a.Get("key")));
  ASSIGN_OR_RETURN(trust::SignedRevocation r, trust::RevokeContract(c.contract, a.Get("peer"), key,
                                                                    a.Get("reason"), absl::Now()));
  RETURN_IF_ERROR(WritePublic(a.Get("out"), r.ToFileText()));
  out->result = {
      {"id", c.contract.id}, {"revocation", a.Get("out")}, {"revoked_by", a.Get("peer")}};
  out->Line(absl::StrCat("'", a.Get("peer"), "' revoked contract ", c.contract.id, "; send ",
                         a.Get("out"), " to the other party"));
  return absl::OkStatus();
}

// ---- registry ------------------------------------------------------------------------------

// A mutual-TLS channel to the Polder service of `server_peer` at `address`, verifying it against
// the signed directory (--directory, --operator-key, --cert, --key, --bundle, --crl-dir).
absl::StatusOr<std::shared_ptr<grpc::Channel>> ServiceChannel(const Args& a,
                                                              const std::string& address,
                                                              const std::string& server_peer) {
  ASSIGN_OR_RETURN(trust::SignedDirectory d, ReadDirectory(a.Get("directory")));
  ASSIGN_OR_RETURN(std::vector<trust::PinnedKey> pins, Pins(a));
  RETURN_IF_ERROR(trust::VerifyDirectory(d, pins, absl::Now(), absl::Minutes(5)));
  auto directory = std::make_shared<const trust::Directory>(d.directory);
  tls::IdentityChecker::Options o;
  o.federation = d.directory.federation;
  o.trust_bundle_path = a.Get("bundle");
  o.crl_dir = a.Get("crl-dir");
  o.directory = [directory] { return directory; };
  ASSIGN_OR_RETURN(auto checker, tls::IdentityChecker::Create(o));
  tls::TlsFiles files{a.Get("cert"), a.Get("key"), a.Get("bundle"), absl::Seconds(60)};
  ASSIGN_OR_RETURN(auto creds, tls::MakeChannelCredentials(files, std::move(checker), server_peer));
  return grpc::CreateChannel(address, creds);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ServiceChannel(const Args& a) {
  return ServiceChannel(a, a.Get("address"), a.Get("server-peer"));
}

absl::Status RegistrySetPrimary(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(auto channel, ServiceChannel(a));
  auto stub = registry::v1::SchemaRegistryService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
  registry::v1::SetPrimaryRequest req;
  req.set_replica(a.Get("replica"));
  registry::v1::SetPrimaryResponse resp;
  grpc::Status s = stub->SetPrimary(&ctx, req, &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  out->result = {{"primary", resp.primary()}};
  out->Line(absl::StrCat("the registry primary is now '", resp.primary(), "'"));
  return absl::OkStatus();
}

// ---- federation ----------------------------------------------------------------------------

constexpr const char* kLevels[] = {"NONE",           "BACKWARD",           "BACKWARD_TRANSITIVE",
                                   "FORWARD",        "FORWARD_TRANSITIVE", "FULL",
                                   "FULL_TRANSITIVE"};

grpc::ClientContext* WithDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return ctx;
}

// Registers the standard datasets (and the files they import) compiled into this build, in
// dependency order, each under its subject with the given compatibility. Idempotent: a schema
// already registered under its subject and a compatibility already set are left alone, so a
// second run writes nothing.
absl::Status FederationBootstrap(const Args& a, Output* out) {
  std::string level = absl::AsciiStrToUpper(a.Get("compatibility"));
  if (std::find(std::begin(kLevels), std::end(kLevels), level) == std::end(kLevels)) {
    return absl::InvalidArgumentError(absl::StrCat("--compatibility: '", a.Get("compatibility"),
                                                   "' is not one of ",
                                                   absl::StrJoin(kLevels, ", ")));
  }
  const bool dry_run = a.Has("dry-run");
  ASSIGN_OR_RETURN(std::vector<datasets::StandardSchema> schemas, datasets::StandardSchemas());
  std::shared_ptr<grpc::Channel> channel;
  if (a.Has("development")) {
    // A development-mode registry: plaintext, loopback only.
    const std::string host = a.Get("address").substr(0, a.Get("address").rfind(':'));
    if (host != "127.0.0.1" && host != "localhost" && host != "[::1]") {
      return absl::InvalidArgumentError(
          "--development talks plaintext and only to a registry on loopback");
    }
    channel = grpc::CreateChannel(
        a.Get("address"), grpc::InsecureChannelCredentials());  // loopback development mode only
  } else {
    for (const char* required : {"cert", "key", "bundle", "directory", "operator-key"}) {
      if (!a.Has(required)) {
        return absl::InvalidArgumentError(absl::StrCat("--", required,
                                                       " is required (or --development for a "
                                                       "development-mode registry on loopback)"));
      }
    }
    ASSIGN_OR_RETURN(channel, ServiceChannel(a));
  }
  auto stub = registry::v1::SchemaRegistryService::NewStub(channel);
  std::map<std::string, int32_t> versions;  // subject → the version this build's schema has
  ordered_json results = ordered_json::array();
  int changes = 0;
  for (const datasets::StandardSchema& s : schemas) {
    auto failed = [&](const grpc::Status& st, absl::string_view what) {
      return Prepend(FromGrpcStatus(st), absl::StrCat(s.subject, ": ", what, ": "));
    };
    // 1. Compatibility: set only when the subject's own level differs.
    std::string current_level;
    {
      grpc::ClientContext ctx;
      registry::v1::GetConfigRequest req;
      req.set_subject(s.subject);
      req.set_default_to_global(false);
      registry::v1::ConfigResponse resp;
      grpc::Status st = stub->GetConfig(WithDeadline(&ctx), req, &resp);
      if (st.ok()) {
        current_level = resp.compatibility();
      } else if (st.error_code() != grpc::StatusCode::NOT_FOUND) {
        return failed(st, "reading its compatibility");
      }
    }
    const bool set_level = current_level != level;
    if (set_level && !dry_run) {
      grpc::ClientContext ctx;
      registry::v1::SetConfigRequest req;
      req.set_subject(s.subject);
      req.set_compatibility(level);
      registry::v1::ConfigResponse resp;
      grpc::Status st = stub->SetConfig(WithDeadline(&ctx), req, &resp);
      if (!st.ok()) return failed(st, "setting its compatibility");
    }
    // 2. The schema: look it up under the subject (any version); register it if absent.
    std::vector<registry::v1::SchemaReference> refs;
    bool imports_registered = true;  // false only in a dry run, for imports it would register
    for (const std::string& import : s.imports) {
      registry::v1::SchemaReference r;
      r.set_name(import);
      r.set_subject(import);
      r.set_version(versions[import]);
      imports_registered &= r.version() > 0;
      refs.push_back(r);
    }
    int32_t version = 0, id = 0;
    bool registered = false;
    if (imports_registered) {
      grpc::ClientContext ctx;
      registry::v1::LookupSchemaRequest req;
      req.set_subject(s.subject);
      req.set_schema(s.source);
      for (const auto& r : refs) *req.add_references() = r;
      registry::v1::Schema resp;
      grpc::Status st = stub->LookupSchema(WithDeadline(&ctx), req, &resp);
      if (st.ok()) {
        version = resp.version();
        id = resp.id();
      } else if (st.error_code() != grpc::StatusCode::NOT_FOUND) {
        return failed(st, "looking it up");
      }
    }
    if (version == 0 && dry_run && imports_registered) {
      grpc::ClientContext ctx;
      registry::v1::CheckCompatibilityRequest req;
      req.set_subject(s.subject);
      req.set_schema(s.source);
      for (const auto& r : refs) *req.add_references() = r;
      registry::v1::CheckCompatibilityResponse resp;
      grpc::Status st = stub->CheckCompatibility(WithDeadline(&ctx), req, &resp);
      if (st.ok() && !resp.is_compatible()) {
        return absl::FailedPreconditionError(
            absl::StrCat(s.subject, ": would be refused: ", absl::StrJoin(resp.messages(), "; ")));
      }
      if (!st.ok() && st.error_code() != grpc::StatusCode::NOT_FOUND)
        return failed(st, "checking it");
    } else if (version == 0 && !dry_run) {
      grpc::ClientContext ctx;
      registry::v1::RegisterSchemaRequest req;
      req.set_subject(s.subject);
      req.set_schema(s.source);
      req.set_schema_type("PROTOBUF");
      for (const auto& r : refs) *req.add_references() = r;
      registry::v1::RegisterSchemaResponse resp;
      grpc::Status st = stub->RegisterSchema(WithDeadline(&ctx), req, &resp);
      if (!st.ok()) return failed(st, "registering it");
      version = resp.version();
      id = resp.id();
      registered = true;
    }
    versions[s.subject] = version;
    changes += (set_level ? 1 : 0) + (version == 0 || registered ? 1 : 0);
    const std::string verb = dry_run ? "would be " : "";
    std::string line = absl::StrCat(
        s.subject, ": ",
        version == 0 ? absl::StrCat(verb, "registered")
                     : absl::StrCat(registered ? "registered" : "unchanged", " as version ",
                                    version, " (schema id ", id, ")"),
        "; compatibility ", level,
        set_level ? absl::StrCat(" ", verb, "set (was ",
                                 current_level.empty() ? "the global default" : current_level, ")")
                  : " already set");
    out->Line(line);
    results.push_back({{"subject", s.subject},
                       {"dataset", s.dataset_id},
                       {"version", version},
                       {"id", id},
                       {"registered", registered || (dry_run && version == 0)},
                       {"compatibility", level},
                       {"compatibility_set", set_level}});
  }
  out->Line(absl::StrCat(
      changes == 0 ? "nothing to change"
                   : absl::StrCat(changes, dry_run ? " change(s) to make" : " change(s) made"),
      ": ", schemas.size(), " standard schemas"));
  out->result = {{"dry_run", dry_run}, {"changes", changes}, {"schemas", results}};
  return absl::OkStatus();
}

// ---- dispatch --------------------------------------------------------------------------------

// ---- audit ---------------------------------------------------------------------------------

absl::StatusOr<audit::Trail> ReadAuditTopic(const Args& a, const std::string& bootstrap) {
  kafka::ConsumerOptions o;
  o.client.bootstrap_servers = bootstrap;
  o.client.client_id = "polderctl-audit";
  for (const std::string& kv : a.GetAll("kafka-property")) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat("--kafka-property '", kv, "': use k=v"));
    o.client.properties[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  o.client.properties["log_level"] = "3";
  std::vector<std::pair<std::string, std::string>> records;
  ASSIGN_OR_RETURN(absl::Duration timeout, DurationFlag(a, "timeout"));
  kafka::RdKafkaClientFactory clients;
  absl::Status s = kafka::ReadToEnd(clients, o, a.Get("topic"), 0, 0, timeout,
                                    [&](const kafka::ConsumedRecord& r) -> absl::Status {
                                      records.push_back({r.key.value_or(""), r.value});
                                      return absl::OkStatus();
                                    })
                       .status();
  if (!s.ok())
    return Prepend(s, absl::StrCat("reading ", a.Get("topic"), " from ", bootstrap, ": "));
  return audit::ReadTrail(records);
}

// The peer's (provider's) entries of the streams `mine` received from it, fetched from its
// federation service over mutual TLS with GetAuditEntries — which answers only a stream's
// destination, so --cert/--key are this node's identity. A stream the provider has no entries
// of is left out (CompareStreams reports it dropped).
absl::StatusOr<audit::Trail> FetchOffered(const Args& a, const audit::Trail& mine) {
  ASSIGN_OR_RETURN(absl::Duration timeout, DurationFlag(a, "timeout"));
  ASSIGN_OR_RETURN(auto channel, ServiceChannel(a, a.Get("peer-endpoint"), a.Get("peer")));
  auto stub = federation::v1::FederationService::NewStub(channel);
  audit::Trail theirs;
  for (const auto& [stream, head] : mine.entries_head) {
    if (head.direction != "received" || head.source != a.Get("peer")) continue;
    std::vector<audit::AuditLink> links;
    uint64_t highest = 0;  // pages go by sequence (the provider answers up to 1,000 entries a call)
    while (true) {
      federation::v1::GetAuditEntriesRequest req;
      req.set_stream_id(stream);
      req.set_from_sequence(highest + 1);
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
      federation::v1::GetAuditEntriesResponse resp;
      grpc::Status s = stub->GetAuditEntries(&ctx, req, &resp);
      if (s.error_code() == grpc::StatusCode::NOT_FOUND) break;  // no (more) entries
      if (!s.ok()) {
        return Prepend(FromGrpcStatus(s),
                       absl::StrCat("GetAuditEntries of stream ", stream, " from ", a.Get("peer"),
                                    " at ", a.Get("peer-endpoint"), ": "));
      }
      const uint64_t before = highest;
      for (const federation::v1::AuditEntryView& v : resp.entries()) {
        links.push_back({v.sequence(), v.hash(), v.canonical_json()});
        highest = std::max<uint64_t>(highest, v.sequence());
      }
      if (highest == before) break;
    }
    if (links.empty()) continue;
    absl::StatusOr<audit::AuditEntry> first = audit::ParseEntry(links.front().canonical_json);
    if (!first.ok()) {
      theirs.unreadable.push_back(
          absl::StrCat(stream, " link 1 from ", a.Get("peer"), ": ", first.status().message()));
      continue;
    }
    theirs.entries_head[stream] = *first;
    theirs.chains[stream] = std::move(links);
  }
  return theirs;
}

absl::Status AuditVerify(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedDirectory d, ReadDirectory(a.Get("directory")));
  ASSIGN_OR_RETURN(std::vector<trust::PinnedKey> pins, Pins(a));
  RETURN_IF_ERROR(trust::VerifyDirectory(d, pins, absl::Now(), absl::Minutes(5)));
  const trust::Directory directory = d.directory;
  audit::KeyLookup keys = [&directory](const std::string& peer, const std::string& kid) {
    return directory.SigningKey(peer, kid, absl::Now(), absl::Minutes(5));
  };
  ASSIGN_OR_RETURN(audit::Trail mine, ReadAuditTopic(a, a.Get("bootstrap")));
  std::vector<audit::Finding> findings = audit::VerifyTrail(mine, keys);
  int64_t links = 0;
  for (const auto& [stream, l] : mine.chains) links += static_cast<int64_t>(l.size());
  std::string compared;
  if (a.Has("peer-bootstrap") && a.Has("peer-endpoint")) {
    return absl::InvalidArgumentError(
        "--peer-bootstrap and --peer-endpoint: give one (the peer's Kafka, or its "
        "federation service)");
  }
  if (a.Has("peer-bootstrap")) {
    if (!a.Has("self") || !a.Has("peer")) {
      return absl::InvalidArgumentError(
          "--peer-bootstrap needs --self and --peer (whose trails these are)");
    }
    ASSIGN_OR_RETURN(audit::Trail theirs, ReadAuditTopic(a, a.Get("peer-bootstrap")));
    for (audit::Finding& f : audit::VerifyTrail(theirs, keys)) {
      f.detail = absl::StrCat("(", a.Get("peer"), "'s trail) ", f.detail);
      findings.push_back(std::move(f));
    }
    // What each side receipted of the other's chains, and the streams entry by entry (each side
    // may be the provider of some streams and the subscriber of others).
    for (audit::Finding& f : audit::CheckReceiptsHeldBy(theirs, mine, a.Get("self"), keys))
      findings.push_back(f);
    for (audit::Finding& f : audit::CheckReceiptsHeldBy(mine, theirs, a.Get("peer"), keys))
      findings.push_back(f);
    // Only the streams between the two: each trail also holds streams with third parties.
    for (audit::Finding& f : audit::CompareStreams(mine, theirs, a.Get("peer")))
      findings.push_back(f);
    for (audit::Finding& f : audit::CompareStreams(theirs, mine, a.Get("self")))
      findings.push_back(f);
    compared = absl::StrCat("; compared with ", a.Get("peer"), "'s trail (", theirs.chains.size(),
                            " streams, ", theirs.receipts.size(), " receipts)");
  } else if (a.Has("peer-endpoint")) {
    for (const char* required : {"self", "peer", "cert", "key", "bundle"}) {
      if (!a.Has(required)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--peer-endpoint needs --", required,
                         " (--self/--peer: whose trails; --cert/--key/--bundle: this "
                         "node's mutual-TLS identity)"));
      }
    }
    ASSIGN_OR_RETURN(audit::Trail theirs, FetchOffered(a, mine));
    for (audit::Finding& f : audit::VerifyTrail(theirs, keys)) {
      f.detail = absl::StrCat("(", a.Get("peer"), "'s entries) ", f.detail);
      findings.push_back(std::move(f));
    }
    for (audit::Finding& f : audit::CheckAgainstProvider(mine, theirs, a.Get("peer"), keys))
      findings.push_back(f);
    int64_t fetched = 0;
    for (const auto& [stream, l] : theirs.chains) fetched += static_cast<int64_t>(l.size());
    compared = absl::StrCat("; compared with ", a.Get("peer"),
                            "'s entries of the streams received from it (", theirs.chains.size(),
                            " streams, ", fetched, " links, via GetAuditEntries)");
  }
  nlohmann::json list = nlohmann::json::array();
  for (const audit::Finding& f : findings) {
    list.push_back(
        {{"stream", f.stream}, {"kind", f.kind}, {"link", f.link}, {"detail", f.detail}});
  }
  out->result = {{"streams", mine.chains.size()},
                 {"links", links},
                 {"receipts", mine.receipts.size()},
                 {"findings", list}};
  if (!findings.empty()) {
    std::vector<std::string> lines;
    for (const audit::Finding& f : findings) lines.push_back(f.ToString());
    return absl::DataLossError(absl::StrCat(findings.size(), " finding(s) in the audit trail:\n  ",
                                            absl::StrJoin(lines, "\n  ")));
  }
  out->Line(absl::StrCat("audit trail verified: ", mine.chains.size(), " streams, ", links,
                         " links, ", mine.receipts.size(), " receipts kept", compared));
  return absl::OkStatus();
}

absl::Status AuditQuery(const Args& a, Output* out) {
  ASSIGN_OR_RETURN(audit::Trail trail, ReadAuditTopic(a, a.Get("bootstrap")));
  std::optional<absl::Time> since, until;
  if (a.Has("since")) {
    ASSIGN_OR_RETURN(absl::Time t, TimeFlag(a, "since"));
    since = t;
  }
  if (a.Has("until")) {
    ASSIGN_OR_RETURN(absl::Time t, TimeFlag(a, "until"));
    until = t;
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [stream, links] : trail.chains) {
    const audit::AuditEntry& head = trail.entries_head.at(stream);
    if (a.Has("peer") && head.source != a.Get("peer") && head.destination != a.Get("peer"))
      continue;
    if (a.Has("dataset") && head.dataset != a.Get("dataset")) continue;
    int64_t records = 0, bytes = 0;
    absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
    for (const audit::AuditLink& l : links) {
      absl::StatusOr<audit::AuditEntry> e = audit::ParseEntry(l.canonical_json);
      if (!e.ok()) continue;
      records += e->records;
      bytes += e->bytes;
      first = std::min(first, e->at);
      last = std::max(last, e->at);
    }
    if (since && last < *since) continue;
    if (until && first > *until) continue;
    list.push_back({{"stream", stream},
                    {"direction", head.direction},
                    {"source", head.source},
                    {"destination", head.destination},
                    {"dataset", head.dataset},
                    {"batches", links.size()},
                    {"records", records},
                    {"bytes", bytes},
                    {"first", trust::FormatRfc3339(first)},
                    {"last", trust::FormatRfc3339(last)},
                    {"contract_hash", head.contract_hash},
                    {"purpose", head.purpose}});
    out->Line(absl::StrCat(stream, "  ", head.direction, "  ", head.source, " -> ",
                           head.destination, "  ", head.dataset, "  ", links.size(), " batches, ",
                           records, " records, ", bytes, " bytes, ", trust::FormatRfc3339(first),
                           " .. ", trust::FormatRfc3339(last),
                           head.direction == "gap" ? absl::StrCat("  ", head.detail) : ""));
  }
  out->result = {{"exchanges", list}};
  if (list.empty()) out->Line("no exchanges match");
  return absl::OkStatus();
}

std::vector<Command> Commands() {
  FlagSpec dir{"dir", "the PKI folder made by pki init", true};
  return {
      {"pki",
       "init",
       "create the federation root CA and an issuing CA (with an empty CRL)",
       {dir,
        {"federation", "federation name, the SPIFFE trust domain (e.g. nl-smartcity)", true},
        {"organization", "O= of the CA certificates", false, false, false, "Polder federation"},
        {"root-validity", "validity of the root CA", false, false, false, "87600h"},
        {"issuing-validity", "validity of the issuing CA", false, false, false, "26280h"}},
       PkiInit},
      {"pki",
       "issue",
       "issue a peer's TLS certificate (SAN URI spiffe://<federation>/peer/<id>)",
       {dir,
        {"peer", "peer id ([a-z][a-z0-9-]{1,62})", true},
        {"out", "folder for cert.pem (with the issuing CA), key.pem (0600) and bundle.pem", true},
        {"dns", "SAN DNS name", false, true},
        {"ip", "SAN IP address", false, true},
        {"subject-serial-number", "subject serialNumber (e.g. the organisation's OIN)"},
        {"validity", "certificate validity, down to seconds (e.g. 30s)", false, false, false,
         "2160h"},
        {"skew", "notBefore is backdated by this clock skew", false, false, false, "5m"},
        {"key", "certify this existing private key (PEM) instead of a new one"}},
       PkiIssue},
      {"pki",
       "revoke",
       "revoke a certificate and publish a new CRL",
       {dir, {"serial", "certificate serial (hex)"}, {"cert", "the certificate file to revoke"}},
       PkiRevoke},
      {"keys",
       "new",
       "create an Ed25519 signing key (separate from TLS keys)",
       {{"out", "private key file (0600); the public key goes to <out>.pub", true}},
       KeysNew},
      {"directory",
       "create",
       "start a new, unsigned peer directory",
       {{"federation", "federation name", true},
        {"serial", "serial number; must exceed the one peers hold", true},
        {"out", "directory file", true},
        {"valid-for", "validity", false, false, false, "720h"},
        {"valid-from", "RFC 3339 start (default now)"},
        {"force", "overwrite an existing file", false, false, true}},
       DirectoryCreate},
      {"directory",
       "add-peer",
       "add or replace a peer (drops signatures: sign again)",
       {{"file", "directory file", true},
        {"peer", "peer id", true},
        {"endpoint", "federation endpoint host:port", true},
        {"tls-cert", "a TLS certificate of the peer (its key thumbprint is listed)", false, true},
        {"tls-thumbprint", "a TLS key thumbprint sha256:...", false, true},
        {"signing-key", "a signing public key file (.pub)", false, true},
        {"key-valid-for", "validity of the listed signing keys", false, false, false, "8760h"}},
       DirectoryAddPeer},
      {"directory",
       "sign",
       "sign the directory with the operator's signing key",
       {{"file", "directory file", true}, {"key", "operator signing key (private)", true}},
       DirectorySign},
      {"directory",
       "verify",
       "verify the directory against pinned operator keys",
       {{"file", "directory file", true},
        {"operator-key", "pinned operator public key (.pub)", true, true},
        {"at", "RFC 3339 time to verify at (default now)"}},
       DirectoryVerify},
      {"contract",
       "propose",
       "write a sharing contract for both parties to sign",
       {{"id", "contract id", true},
        {"federation", "federation name", true},
        {"provider", "providing peer", true},
        {"consumer", "consuming peer", true},
        {"dataset", "dataset id <domain>.<name>", true},
        {"schema-versions", "allowed schema versions, comma separated", true},
        {"purpose", "purpose of the exchange", true},
        {"access", "raw or aggregate-only", false, false, false, "raw"},
        {"start", "earliest, latest or an RFC 3339 time", false, false, false, "earliest"},
        {"retention", "mirror retention", false, false, false, "720h"},
        {"reshare", "the consumer may share what it mirrors", false, false, true},
        {"valid-for", "validity", false, false, false, "2160h"},
        {"valid-from", "RFC 3339 start (default now)"},
        {"out", "contract file", true},
        {"force", "overwrite an existing file", false, false, true}},
       ContractPropose},
      {"contract",
       "sign",
       "sign a contract as one of its parties",
       {{"file", "contract file", true},
        {"peer", "the signing party", true},
        {"key", "the party's signing key (private)", true}},
       ContractSign},
      {"contract",
       "verify",
       "verify both signatures against a verified directory",
       {{"file", "contract file", true},
        {"directory", "signed directory file", true},
        {"operator-key", "pinned operator public key (.pub)", true, true},
        {"revocation", "a revocation to take into account", false, true},
        {"at", "RFC 3339 time to verify at (default now)"}},
       ContractVerify},
      {"registry",
       "set-primary",
       "move the registry's primary role: ask the primary to hand over, or a replica to take over",
       {{"address", "the registry replica's gRPC address host:port", true},
        {"replica", "the replica that should be primary", true},
        {"cert", "your TLS certificate (federation operator)", true},
        {"key", "your TLS key", true},
        {"bundle", "the federation trust bundle", true},
        {"directory", "the signed directory file", true},
        {"operator-key", "pinned operator public key (.pub)", true, true},
        {"crl-dir", "folder of CRLs"},
        {"server-peer", "the registry's peer id in the directory", false, false, false,
         "registry"}},
       RegistrySetPrimary},
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
      {"audit",
       "verify",
       "verify a node's audit trail (hash chains, receipts) and, given the peer's, the two against "
       "each other",
       {{"bootstrap", "the node's Kafka bootstrap servers", true},
        {"topic", "the audit topic", false, false, false, "_polder.audit"},
        {"directory", "the signed peer directory (signing keys of receipts)", true},
        {"operator-key", "pinned operator public key (.pub)", true, true},
        {"peer-bootstrap",
         "the peer's Kafka (its audit topic of the same name), to compare both sides"},
        {"peer-endpoint",
         "or the peer's federation service host:port: fetch its entries of the streams received "
         "from it (GetAuditEntries, mutual TLS as --cert/--key)"},
        {"self", "whose trail --bootstrap holds (with --peer-bootstrap or --peer-endpoint)"},
        {"peer",
         "the other side: whose trail --peer-bootstrap holds, or who serves --peer-endpoint"},
        {"cert", "with --peer-endpoint: this node's TLS certificate"},
        {"key", "with --peer-endpoint: this node's TLS key"},
        {"bundle", "with --peer-endpoint: the federation trust bundle"},
        {"crl-dir", "with --peer-endpoint: folder of CRLs"},
        {"kafka-property", "librdkafka property k=v (paths only, e.g. ssl.ca.location)", false,
         true},
        {"timeout", "how long reading may take", false, false, false, "60s"}},
       AuditVerify},
      {"audit",
       "query",
       "list a node's exchanges (streams) by peer, dataset and time",
       {{"bootstrap", "the node's Kafka bootstrap servers", true},
        {"topic", "the audit topic", false, false, false, "_polder.audit"},
        {"peer", "only exchanges with this peer"},
        {"dataset", "only this dataset"},
        {"since", "RFC 3339: exchanges active at or after"},
        {"until", "RFC 3339: exchanges active at or before"},
        {"kafka-property", "librdkafka property k=v", false, true},
        {"timeout", "how long reading may take", false, false, false, "60s"}},
       AuditQuery},
      {"contract",
       "revoke",
       "revoke a contract as one of its parties",
       {{"file", "contract file", true},
        {"peer", "the revoking party", true},
        {"key", "the party's signing key (private)", true},
        {"reason", "why", false},
        {"out", "revocation file", true}},
       ContractRevoke},
      // Commands without a group (`polderctl tail`, `polderctl publish`): name "".
      {"tail", "", polderctl::kTailSummary, polderctl::TailFlags(),
       [](const Args& a, Output* out) -> absl::Status {
         if (out->json)
           return absl::InvalidArgumentError("tail prints JSON lines already: drop -o json");
         return polderctl::RunTailCommand(a, std::cout, std::cerr);
       }},
      {"publish", "", polderctl::kPublishSummary, polderctl::PublishFlags(),
       [](const Args& a, Output* out) {
         return polderctl::RunPublishCommand(a, std::cerr, &out->result);
       }},
  };
}

void Usage(std::ostream& os, const std::vector<Command>& commands) {
  os << "usage: polderctl <group> <command> [flags] [-o json]\n\n"
        "Operator tool for Polder: PKI, signing keys, the peer directory, sharing contracts,\n"
        "the registry primary, the standard datasets, audit trails, and dataset records (tail, "
        "publish).\n"
        "`polderctl <group> <command> --help` (or `polderctl tail --help`) "
        "lists a command's flags.\n\n";
  for (const Command& c : commands) {
    std::string left =
        c.name.empty() ? absl::StrCat("  ", c.group) : absl::StrCat("  ", c.group, " ", c.name);
    if (left.size() < 24) left.resize(24, ' ');
    os << left << c.summary << "\n";
  }
}

int Run(int argc, char** argv) {
  std::vector<Command> commands = Commands();
  std::vector<std::string> rest(argv + 1, argv + argc);
  bool json = false;
  for (size_t i = 0; i < rest.size(); ++i) {
    if ((rest[i] == "-o" || rest[i] == "--output") && i + 1 < rest.size()) {
      if (rest[i + 1] != "json" && rest[i + 1] != "text") {
        std::cerr << "polderctl: -o takes json or text\n";
        return 2;
      }
      json = rest[i + 1] == "json";
      rest.erase(rest.begin() + i, rest.begin() + i + 2);
      --i;
    } else if (rest[i] == "-o=json" || rest[i] == "--output=json") {
      json = true;
      rest.erase(rest.begin() + i);
      --i;
    }
  }
  if (rest.empty() || rest[0] == "--help" || rest[0] == "-h" || rest[0] == "help") {
    Usage(rest.empty() ? std::cerr : std::cout, commands);
    return rest.empty() ? 2 : 0;
  }
  const bool single = std::any_of(commands.begin(), commands.end(), [&](const Command& c) {
    return c.group == rest[0] && c.name.empty();
  });
  if (rest.size() < 2 && !single) {
    std::cerr << "polderctl: '" << rest[0] << "' needs a command\n";
    Usage(std::cerr, commands);
    return 2;
  }
  for (const Command& c : commands) {
    if (c.group != rest[0] || (single ? !c.name.empty() : c.name != rest[1])) continue;
    const std::string title = single ? c.group : absl::StrCat(c.group, " ", c.name);
    std::vector<std::string> flags(rest.begin() + (single ? 1 : 2), rest.end());
    for (const std::string& f : flags) {
      if (f == "--help" || f == "-h") {
        std::cout << "usage: polderctl " << title << " [flags] [-o json]\n\n"
                  << c.summary << "\n\n"
                  << cli::FlagHelp(c.flags);
        return 0;
      }
    }
    absl::StatusOr<Args> args = Args::Parse(flags, c.flags);
    if (!args.ok()) {
      std::cerr << "polderctl " << title << ": " << args.status().message() << "\n";
      return 2;
    }
    Output out;
    out.json = json;
    absl::Status s = c.run(*args, &out);
    if (!s.ok()) {
      if (json) {
        std::cout << ordered_json{{"ok", false},
                                  {"code", absl::StatusCodeToString(s.code())},
                                  {"error", std::string(s.message())}}
                         .dump(2)
                  << "\n";
      }
      std::cerr << "polderctl " << title << ": error: " << s.message() << "\n";
      return 1;
    }
    if (json) {
      ordered_json j = {{"ok", true}};
      for (auto it = out.result.begin(); it != out.result.end(); ++it) j[it.key()] = it.value();
      std::cout << j.dump(2) << "\n";
    } else {
      for (const std::string& l : out.lines) std::cout << l << "\n";
    }
    return 0;
  }
  std::cerr << "polderctl: unknown command '" << rest[0] << " " << rest[1] << "'\n";
  Usage(std::cerr, commands);
  return 2;
}

}  // namespace
}  // namespace polder

int main(int argc, char** argv) { return polder::Run(argc, argv); }
