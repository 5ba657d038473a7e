#include "tools/polderctl/commands/pki_commands.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status/status_macros.h"
#include "common/tls/ca.h"
#include "common/tls/certificate.h"
#include "common/trust/document.h"
#include "common/trust/keys.h"
#include "tools/polderctl/commands/flags.h"
#include "tools/polderctl/commands/pki_state.h"

namespace polder {
namespace polderctl {
namespace {

namespace fs = std::filesystem;
using cli::Args;

absl::StatusOr<tls::KeyAndCert> ReadCa(const std::string& dir) {
  tls::KeyAndCert ca;
  ASSIGN_OR_RETURN(ca.key_pem, trust::ReadFileToString(dir + "/ca.key"));
  ASSIGN_OR_RETURN(ca.cert_pem, trust::ReadFileToString(dir + "/ca.pem"));
  return ca;
}

absl::StatusOr<PkiState> ReadState(const std::string& dir) {
  const std::string path = dir + "/pki.json";
  ASSIGN_OR_RETURN(nlohmann::json doc, ReadJsonFile(path));
  ASSIGN_OR_RETURN(PkiState state, ParsePkiState(doc), _.Prepend(absl::StrCat(path, ": ")));
  return state;
}

// Publishes the CRL of `state` (valid a week) and saves the state.
absl::Status WriteCrl(const std::string& dir, const PkiState& state) {
  ASSIGN_OR_RETURN(tls::KeyAndCert issuing, ReadCa(dir + "/issuing"));
  ASSIGN_OR_RETURN(std::string crl, tls::CreateCrl(issuing, state.revoked, state.crl_number,
                                                   absl::Now(), absl::Hours(24 * 7)));
  fs::create_directories(dir + "/crl");
  RETURN_IF_ERROR(WritePublic(dir + "/crl/issuing.crl.pem", crl));
  return WritePublic(dir + "/pki.json", PkiStateText(state));
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
  PkiState state;
  state.federation = federation;
  state.crl_number = 1;
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
  ASSIGN_OR_RETURN(PkiState state, ReadState(dir));
  ASSIGN_OR_RETURN(tls::KeyAndCert issuing, ReadCa(dir + "/issuing"));
  tls::PeerCertOptions o;
  o.federation = state.federation;
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
  const std::string key_path = a.Has("key") ? a.Get("key") : outdir + "/key.pem";
  fs::create_directories(outdir);
  if (!a.Has("key")) RETURN_IF_ERROR(WriteSecret(outdir + "/key.pem", kc.key_pem));
  RETURN_IF_ERROR(WritePublic(outdir + "/cert.pem", kc.cert_pem + issuing.cert_pem));
  ASSIGN_OR_RETURN(std::string bundle, trust::ReadFileToString(dir + "/bundle.pem"));
  RETURN_IF_ERROR(WritePublic(outdir + "/bundle.pem", bundle));
  ASSIGN_OR_RETURN(tls::CertificateInfo info, tls::ParseCertificate(kc.cert_pem));
  out->result = {{"peer", o.peer_id},
                 {"serial", info.serial_hex},
                 {"tls_key_thumbprint", info.key_thumbprint},
                 {"not_before", trust::FormatRfc3339(info.not_before)},
                 {"not_after", trust::FormatRfc3339(info.not_after)},
                 {"uris", info.uris},
                 {"cert", outdir + "/cert.pem"},
                 {"key", key_path}};
  out->Line(absl::StrCat("issued a TLS certificate for peer '", o.peer_id, "' (serial ",
                         info.serial_hex, ")"));
  out->Line(absl::StrCat("  ", outdir, "/cert.pem, key ", key_path));
  out->Line(absl::StrCat("  valid ", trust::FormatRfc3339(info.not_before), " .. ",
                         trust::FormatRfc3339(info.not_after)));
  out->Line(absl::StrCat("  TLS key thumbprint (for the directory): ", info.key_thumbprint));
  return absl::OkStatus();
}

absl::Status PkiRevoke(const Args& a, Output* out) {
  const std::string dir = a.Get("dir");
  ASSIGN_OR_RETURN(PkiState state, ReadState(dir));
  std::string serial = a.Get("serial");
  if (a.Has("cert")) {
    ASSIGN_OR_RETURN(std::string pem, trust::ReadFileToString(a.Get("cert")));
    ASSIGN_OR_RETURN(tls::CertificateInfo info, tls::ParseCertificate(pem));
    serial = info.serial_hex;
  }
  if (serial.empty()) return absl::InvalidArgumentError("give --serial or --cert");
  const bool already =
      std::find(state.revoked.begin(), state.revoked.end(), serial) != state.revoked.end();
  if (!already) state.revoked.push_back(serial);
  if (state.crl_number == INT64_MAX) {
    return absl::OutOfRangeError(absl::StrCat(dir, "/pki.json: \"crl_number\" is out of range"));
  }
  ++state.crl_number;
  RETURN_IF_ERROR(WriteCrl(dir, state));
  out->result = {{"revoked", serial},
                 {"crl", dir + "/crl/issuing.crl.pem"},
                 {"crl_number", state.crl_number},
                 {"already_revoked", already}};
  out->Line(absl::StrCat(already ? "already revoked: " : "revoked certificate serial ", serial));
  out->Line(absl::StrCat("  publish ", dir, "/crl/issuing.crl.pem to every peer's CRL folder"));
  return absl::OkStatus();
}

}  // namespace

std::vector<Command> PkiCommands() {
  const cli::FlagSpec dir{"dir", "the PKI folder made by pki init", true};
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
  };
}

}  // namespace polderctl
}  // namespace polder
