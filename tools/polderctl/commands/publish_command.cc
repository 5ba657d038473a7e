#include "tools/polderctl/commands/publish_command.h"

#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status/status_macros.h"
#include "tools/polderctl/commands/grpc_sender.h"
#include "tools/polderctl/commands/publish.h"
#include "tools/polderctl/commands/publish_input.h"

namespace polder {
namespace polderctl {

std::vector<cli::FlagSpec> PublishFlags() {
  return {
      {"endpoint", "the node's gRPC ingest host:port", true},
      {"dataset", "dataset id, e.g. mobility.bike-counts", true},
      {"file", "an NDJSON (.ndjson/.jsonl/.json) or CSV (.csv) file", true, true},
      {"format", "csv, ndjson or auto (by extension)", false, false, false, "auto"},
      {"ca-file", "CA bundle verifying the node's TLS certificate"},
      {"cert", "gateway client certificate"},
      {"key", "the gateway certificate's key"},
      {"token-file", "file holding a gateway bearer token (instead of --cert/--key)"},
      {"server-name", "the name in the node's certificate, if not the endpoint's host"},
      {"plaintext", "no TLS: a development-mode node on loopback", false, false, true},
      {"batch-records", "records per batch (part of each batch's idempotency key)", false, false,
       false, "500"},
      {"schema-id",
       "validate against this registered schema id (default: the subject's latest, then kept)"},
      {"state-file",
       "resume state (default <file>.polder-publish.json; only with a single --file)"},
      {"timeout", "how long one batch may take", false, false, false, "60s"},
  };
}

absl::Status RunPublishCommand(const cli::Args& args, std::ostream& err,
                               nlohmann::ordered_json* result) {
  PublishOptions options;
  options.dataset = args.Get("dataset");
  if (!absl::SimpleAtoi(args.Get("batch-records"), &options.batch_records) ||
      options.batch_records < 1 || options.batch_records > 100000) {
    return absl::InvalidArgumentError(absl::StrCat("--batch-records '", args.Get("batch-records"),
                                                   "' is not a number from 1 to 100000"));
  }
  if (args.Has("schema-id") &&
      (!absl::SimpleAtoi(args.Get("schema-id"), &options.schema_id) || options.schema_id < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--schema-id '", args.Get("schema-id"), "' is not a schema id"));
  }
  const std::vector<std::string> files = args.GetAll("file");
  if (args.Has("state-file") && files.size() > 1) {
    return absl::InvalidArgumentError(
        "--state-file names the state of one file; give one --file with it");
  }
  options.state_file = args.Get("state-file");
  GrpcSenderOptions grpc;
  grpc.endpoint = args.Get("endpoint");
  grpc.ca_file = args.Get("ca-file");
  grpc.cert_file = args.Get("cert");
  grpc.key_file = args.Get("key");
  grpc.token_file = args.Get("token-file");
  grpc.server_name = args.Get("server-name");
  grpc.plaintext = args.Bool("plaintext");
  if (!absl::ParseDuration(args.Get("timeout"), &grpc.timeout) ||
      grpc.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout '", args.Get("timeout"), "' is not a positive duration"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<BatchSender> sender, NewGrpcSender(grpc));
  std::ostream* progress = isatty(STDERR_FILENO) ? &err : nullptr;
  (*result)["files"] = nlohmann::ordered_json::array();
  for (const std::string& path : files) {
    ASSIGN_OR_RETURN(InputFormat format, FormatFor(path, args.Get("format")));
    ASSIGN_OR_RETURN(InputFile input, ReadInputFile(path, format));
    PublishSummary summary;
    absl::Status s = RunPublish(input, sender.get(), options, &summary, progress);
    // The summary line comes always, also when the run stopped (polderctl then prints the error).
    err << "polderctl publish: " << SummaryLine(summary, s.ok()) << "\n";
    (*result)["files"].push_back({{"file", summary.file},
                                  {"dataset", summary.dataset},
                                  {"topic", summary.topic},
                                  {"schema_id", summary.schema_id},
                                  {"records", summary.records_total},
                                  {"batches", summary.batches_total},
                                  {"batches_resumed", summary.batches_resumed},
                                  {"batches_sent", summary.batches_sent},
                                  {"records_written", summary.records_written},
                                  {"duplicate_batches", summary.duplicate_batches},
                                  {"duplicate_records", summary.duplicate_records},
                                  {"complete", s.ok()}});
    RETURN_IF_ERROR(s);
  }
  return absl::OkStatus();
}

}  // namespace polderctl
}  // namespace polder
