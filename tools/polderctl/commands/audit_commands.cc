#include "tools/polderctl/commands/audit_commands.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/audit/trail.h"
#include "common/status/status_macros.h"
#include "common/trust/directory.h"
#include "nlohmann/json.hpp"
#include "tools/polderctl/commands/audit_exchanges.h"
#include "tools/polderctl/commands/audit_topic.h"
#include "tools/polderctl/commands/flags.h"
#include "tools/polderctl/commands/peer_audit.h"
#include "tools/polderctl/commands/service_channel.h"

namespace polder {
namespace polderctl {
namespace {

using cli::Args;

// The trail in --topic of the Kafka at `bootstrap` (--kafka-property, --timeout).
absl::StatusOr<audit::Trail> ReadTrail(kafka::ClientFactory& kafka, const Args& a,
                                       const std::string& bootstrap) {
  ASSIGN_OR_RETURN(kafka::ConsumerOptions options,
                   AuditConsumerOptions(bootstrap, a.GetAll("kafka-property")));
  ASSIGN_OR_RETURN(absl::Duration timeout, DurationFlag(a, "timeout"));
  return ReadAuditTopic(kafka, options, a.Get("topic"), timeout);
}

// The provider's entries of the streams `mine` received from --peer, from its federation service
// at --peer-endpoint over mutual TLS as --cert/--key.
absl::StatusOr<audit::Trail> FetchOffered(const Args& a, const audit::Trail& mine) {
  PeerAuditOptions options;
  options.peer = a.Get("peer");
  options.endpoint = a.Get("peer-endpoint");
  ASSIGN_OR_RETURN(options.timeout, DurationFlag(a, "timeout"));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                   ServiceChannel(a, options.endpoint, options.peer));
  PeerAuditClient client(channel, options);
  return client.FetchOffered(mine);
}

absl::Status AuditVerify(kafka::ClientFactory& kafka, const Args& a, Output* out) {
  ASSIGN_OR_RETURN(trust::SignedDirectory d, ReadVerifiedDirectory(a, a.Get("directory")));
  const trust::Directory directory = d.directory;
  audit::KeyLookup keys = [&directory](const std::string& peer, const std::string& kid) {
    return directory.SigningKey(peer, kid, absl::Now(), absl::Minutes(5));
  };
  ASSIGN_OR_RETURN(audit::Trail mine, ReadTrail(kafka, a, a.Get("bootstrap")));
  std::vector<audit::Finding> findings = audit::VerifyTrail(mine, keys);
  if (a.Has("peer-bootstrap") && a.Has("peer-endpoint")) {
    return absl::InvalidArgumentError(
        "--peer-bootstrap and --peer-endpoint: give one (the peer's Kafka, or its "
        "federation service)");
  }
  PeerComparison compared;
  if (a.Has("peer-bootstrap")) {
    if (!a.Has("self") || !a.Has("peer")) {
      return absl::InvalidArgumentError(
          "--peer-bootstrap needs --self and --peer (whose trails these are)");
    }
    ASSIGN_OR_RETURN(audit::Trail theirs, ReadTrail(kafka, a, a.Get("peer-bootstrap")));
    compared = CompareWithPeerTrail(mine, theirs, a.Get("self"), a.Get("peer"), keys);
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
    compared = CompareWithPeerEntries(mine, theirs, a.Get("peer"), keys);
  }
  for (audit::Finding& f : compared.findings) findings.push_back(std::move(f));
  const int64_t links = CountLinks(mine);
  nlohmann::json list = nlohmann::json::array();
  for (const audit::Finding& f : findings) {
    list.push_back(
        {{"stream", f.stream}, {"kind", f.kind}, {"link", f.link}, {"detail", f.detail}});
  }
  out->result = {{"streams", mine.chains.size()},
                 {"links", links},
                 {"receipts", mine.receipts.size()},
                 {"findings", list}};
  RETURN_IF_ERROR(FindingsStatus(findings));
  out->Line(absl::StrCat("audit trail verified: ", mine.chains.size(), " streams, ", links,
                         " links, ", mine.receipts.size(), " receipts kept", compared.summary));
  return absl::OkStatus();
}

absl::Status AuditQuery(kafka::ClientFactory& kafka, const Args& a, Output* out) {
  ASSIGN_OR_RETURN(audit::Trail trail, ReadTrail(kafka, a, a.Get("bootstrap")));
  ExchangeFilter filter;
  if (a.Has("peer")) filter.peer = a.Get("peer");
  if (a.Has("dataset")) filter.dataset = a.Get("dataset");
  if (a.Has("since")) {
    ASSIGN_OR_RETURN(filter.since, TimeFlag(a, "since"));
  }
  if (a.Has("until")) {
    ASSIGN_OR_RETURN(filter.until, TimeFlag(a, "until"));
  }
  nlohmann::json list = nlohmann::json::array();
  for (const ExchangeSummary& e : SummarizeExchanges(trail, filter)) {
    list.push_back(ExchangeJson(e));
    out->Line(ExchangeLine(e));
  }
  out->result = {{"exchanges", list}};
  if (list.empty()) out->Line("no exchanges match");
  return absl::OkStatus();
}

}  // namespace

std::vector<Command> AuditCommands(kafka::ClientFactory& kafka) {
  return {
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
       [&kafka](const Args& a, Output* out) { return AuditVerify(kafka, a, out); }},
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
       [&kafka](const Args& a, Output* out) { return AuditQuery(kafka, a, out); }},
  };
}

}  // namespace polderctl
}  // namespace polder
