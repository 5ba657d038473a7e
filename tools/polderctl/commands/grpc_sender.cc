#include "tools/polderctl/commands/grpc_sender.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "common/trust/keys.h"
#include "grpcpp/grpcpp.h"
#include "proto/polder/node/v1/ingest.grpc.pb.h"

namespace polder {
namespace polderctl {

namespace {

namespace nv1 = ::polder::node::v1;

class GrpcSender : public BatchSender {
 public:
  GrpcSender(std::unique_ptr<nv1::IngestService::Stub> stub, std::string token,
             absl::Duration timeout)
      : stub_(std::move(stub)), token_(std::move(token)), timeout_(timeout) {}

  absl::StatusOr<SendResult> Send(const std::string& dataset, int32_t schema_id,
                                  const std::string& idempotency_key,
                                  const std::vector<const InputRecord*>& records) override {
    nv1::PublishRequest request;
    request.set_dataset(dataset);
    request.set_schema_id(schema_id);
    request.set_idempotency_key(idempotency_key);
    for (const InputRecord* r : records) request.add_records()->set_json(r->json);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    if (!token_.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token_));
    nv1::PublishResponse response;
    RETURN_IF_ERROR(FromGrpcStatus(stub_->Publish(&ctx, request, &response)));
    SendResult out;
    out.schema_id = response.schema_id();
    out.records = response.records();
    out.duplicate = response.duplicate();
    out.topic = response.topic();
    return out;
  }

 private:
  std::unique_ptr<nv1::IngestService::Stub> stub_;
  std::string token_;
  absl::Duration timeout_;
};

}  // namespace

bool IsLoopbackEndpoint(const std::string& endpoint) {
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon + 1 == endpoint.size()) return false;
  const std::string host = endpoint.substr(0, colon);
  return host == "localhost" || host == "[::1]" || absl::StartsWith(host, "127.");
}

absl::StatusOr<std::unique_ptr<BatchSender>> NewGrpcSender(const GrpcSenderOptions& options) {
  if (options.endpoint.empty())
    return absl::InvalidArgumentError("--endpoint host:port is required");
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError("--cert and --key go together");
  }
  if (!options.cert_file.empty() && !options.token_file.empty()) {
    return absl::InvalidArgumentError(
        "give a client certificate (--cert/--key) or a token (--token-file), not both");
  }
  std::string token;
  if (!options.token_file.empty()) {
    ASSIGN_OR_RETURN(std::string text, trust::ReadFileToString(options.token_file));
    token = std::string(absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
    if (token.empty())
      return absl::InvalidArgumentError(absl::StrCat("no token in ", options.token_file));
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  grpc::ChannelArguments args;
  if (options.plaintext) {
    if (!options.cert_file.empty() || !options.ca_file.empty() || !options.token_file.empty()) {
      return absl::InvalidArgumentError(
          "--plaintext takes no --ca-file, --cert, --key or --token-file (a token would travel in "
          "clear)");
    }
    if (!IsLoopbackEndpoint(options.endpoint)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--plaintext only reaches a development-mode node on loopback (localhost, 127.0.0.1, "
          "[::1]); '",
          options.endpoint, "' is not: give --ca-file and a certificate or token"));
    }
    creds = grpc::InsecureChannelCredentials();  // loopback development mode only
  } else {
    if (options.ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--ca-file is required (the CA of the node's TLS certificate), "
          "or --plaintext for a development-mode node");
    }
    grpc::SslCredentialsOptions ssl;
    ASSIGN_OR_RETURN(ssl.pem_root_certs, trust::ReadFileToString(options.ca_file));
    if (!options.cert_file.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_cert_chain, trust::ReadFileToString(options.cert_file));
      ASSIGN_OR_RETURN(ssl.pem_private_key, trust::ReadFileToString(options.key_file));
    }
    creds = grpc::SslCredentials(ssl);
    if (!options.server_name.empty()) args.SetSslTargetNameOverride(options.server_name);
  }
  // Batches of 500 records can exceed gRPC's 4 MiB default; the node sets its own limit.
  args.SetMaxSendMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(options.endpoint, creds, args);
  return std::unique_ptr<BatchSender>(
      new GrpcSender(nv1::IngestService::NewStub(channel), std::move(token), options.timeout));
}

}  // namespace polderctl
}  // namespace polder
