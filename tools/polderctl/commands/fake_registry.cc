#include "tools/polderctl/commands/fake_registry.h"

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/server_context.h"

namespace polder {
namespace polderctl {
namespace {

std::string Key(const std::string& schema, const std::vector<std::string>& references) {
  return absl::StrCat(schema, "\n--\n", absl::StrJoin(references, ","));
}

template <typename Request>
std::vector<std::string> References(const Request& req) {
  std::vector<std::string> refs;
  for (const registry::v1::SchemaReference& r : req.references()) {
    refs.push_back(absl::StrCat(r.name(), "=", r.subject(), "@", r.version()));
  }
  return refs;
}

}  // namespace

FakeRegistry::FakeRegistry() = default;

int32_t FakeRegistry::AddVersion(const std::string& subject, const std::string& schema) {
  absl::MutexLock lock(&mu_);
  return Register(subject, schema, {});
}

void FakeRegistry::SetSubjectLevel(const std::string& subject, const std::string& level) {
  absl::MutexLock lock(&mu_);
  levels_[subject] = level;
}

std::optional<std::string> FakeRegistry::SubjectLevel(const std::string& subject) const {
  absl::MutexLock lock(&mu_);
  auto it = levels_.find(subject);
  if (it == levels_.end()) return std::nullopt;
  return it->second;
}

std::vector<FakeRegistry::Version> FakeRegistry::Versions(const std::string& subject) const {
  absl::MutexLock lock(&mu_);
  auto it = subjects_.find(subject);
  return it == subjects_.end() ? std::vector<Version>{} : it->second;
}

void FakeRegistry::Refuse(const std::string& subject, std::vector<std::string> messages) {
  absl::MutexLock lock(&mu_);
  refused_[subject] = std::move(messages);
}

void FakeRegistry::FailOn(const std::string& method, const std::string& subject,
                          grpc::Status status) {
  absl::MutexLock lock(&mu_);
  faults_[absl::StrCat(method, " ", subject)] = std::move(status);
}

std::vector<std::string> FakeRegistry::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

int FakeRegistry::writes() const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const std::string& c : calls_) {
    n += absl::StartsWith(c, "SetConfig ") || absl::StartsWith(c, "RegisterSchema ");
  }
  return n;
}

absl::Duration FakeRegistry::last_deadline() const {
  absl::MutexLock lock(&mu_);
  return last_deadline_;
}

std::string FakeRegistry::primary() const {
  absl::MutexLock lock(&mu_);
  return primary_;
}

std::optional<grpc::Status> FakeRegistry::Enter(grpc::ServerContext* ctx, const std::string& method,
                                                const std::string& subject) {
  calls_.push_back(absl::StrCat(method, " ", subject));
  const std::chrono::system_clock::time_point deadline = ctx->deadline();
  last_deadline_ = deadline == std::chrono::system_clock::time_point::max()
                       ? absl::InfiniteDuration()
                       : absl::FromChrono(deadline) - absl::Now();
  for (const std::string& key : {absl::StrCat(method, " ", subject), absl::StrCat(method, " ")}) {
    auto it = faults_.find(key);
    if (it == faults_.end()) continue;
    grpc::Status s = it->second;
    faults_.erase(it);
    return s;
  }
  return std::nullopt;
}

int32_t FakeRegistry::Register(const std::string& subject, const std::string& schema,
                               const std::vector<std::string>& references) {
  std::vector<Version>& versions = subjects_[subject];
  for (size_t i = 0; i < versions.size(); ++i) {
    if (versions[i].schema == schema && versions[i].references == references)
      return static_cast<int32_t>(i + 1);
  }
  const std::string key = Key(schema, references);
  auto id = ids_.find(key);
  if (id == ids_.end()) id = ids_.emplace(key, 100 + static_cast<int32_t>(ids_.size())).first;
  versions.push_back({schema, references, id->second});
  return static_cast<int32_t>(versions.size());
}

grpc::Status FakeRegistry::RegisterSchema(grpc::ServerContext* ctx,
                                          const registry::v1::RegisterSchemaRequest* req,
                                          registry::v1::RegisterSchemaResponse* resp) {
  absl::MutexLock lock(&mu_);
  if (auto fault = Enter(ctx, "RegisterSchema", req->subject())) return *fault;
  if (req->schema_type() != "PROTOBUF") {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "schema type must be PROTOBUF");
  }
  for (const registry::v1::SchemaReference& r : req->references()) {
    auto it = subjects_.find(r.subject());
    if (r.version() < 1 || it == subjects_.end() ||
        static_cast<size_t>(r.version()) > it->second.size()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("reference ", r.name(), " to ", r.subject(), " version ",
                                       r.version(), " does not resolve"));
    }
  }
  const size_t before = subjects_[req->subject()].size();
  const int32_t version = Register(req->subject(), req->schema(), References(*req));
  resp->set_version(version);
  resp->set_id(subjects_[req->subject()][version - 1].id);
  resp->set_created(subjects_[req->subject()].size() > before);
  return grpc::Status::OK;
}

grpc::Status FakeRegistry::LookupSchema(grpc::ServerContext* ctx,
                                        const registry::v1::LookupSchemaRequest* req,
                                        registry::v1::Schema* resp) {
  absl::MutexLock lock(&mu_);
  if (auto fault = Enter(ctx, "LookupSchema", req->subject())) return *fault;
  auto it = subjects_.find(req->subject());
  if (it == subjects_.end() || it->second.empty()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("Subject '", req->subject(), "' not found."));
  }
  const std::vector<std::string> refs = References(*req);
  for (size_t i = 0; i < it->second.size(); ++i) {
    const Version& v = it->second[i];
    if (v.schema != req->schema() || v.references != refs) continue;
    resp->set_subject(req->subject());
    resp->set_version(static_cast<int32_t>(i + 1));
    resp->set_id(v.id);
    resp->set_schema_type("PROTOBUF");
    resp->set_schema(v.schema);
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::NOT_FOUND, "Schema not found");
}

grpc::Status FakeRegistry::CheckCompatibility(grpc::ServerContext* ctx,
                                              const registry::v1::CheckCompatibilityRequest* req,
                                              registry::v1::CheckCompatibilityResponse* resp) {
  absl::MutexLock lock(&mu_);
  if (auto fault = Enter(ctx, "CheckCompatibility", req->subject())) return *fault;
  auto it = subjects_.find(req->subject());
  if (it == subjects_.end() || it->second.empty()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("Subject '", req->subject(), "' not found."));
  }
  auto refused = refused_.find(req->subject());
  resp->set_is_compatible(refused == refused_.end());
  if (refused != refused_.end()) {
    for (const std::string& m : refused->second) resp->add_messages(m);
  }
  return grpc::Status::OK;
}

grpc::Status FakeRegistry::GetConfig(grpc::ServerContext* ctx,
                                     const registry::v1::GetConfigRequest* req,
                                     registry::v1::ConfigResponse* resp) {
  absl::MutexLock lock(&mu_);
  if (auto fault = Enter(ctx, "GetConfig", req->subject())) return *fault;
  auto it = levels_.find(req->subject());
  if (it != levels_.end()) {
    resp->set_compatibility(it->second);
  } else if (req->default_to_global()) {
    resp->set_compatibility("BACKWARD");
  } else {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("Subject '", req->subject(), "' has no compatibility level"));
  }
  return grpc::Status::OK;
}

grpc::Status FakeRegistry::SetConfig(grpc::ServerContext* ctx,
                                     const registry::v1::SetConfigRequest* req,
                                     registry::v1::ConfigResponse* resp) {
  absl::MutexLock lock(&mu_);
  if (auto fault = Enter(ctx, "SetConfig", req->subject())) return *fault;
  if (req->compatibility().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no compatibility level");
  }
  levels_[req->subject()] = req->compatibility();
  resp->set_compatibility(req->compatibility());
  return grpc::Status::OK;
}

grpc::Status FakeRegistry::SetPrimary(grpc::ServerContext* ctx,
                                      const registry::v1::SetPrimaryRequest* req,
                                      registry::v1::SetPrimaryResponse* resp) {
  absl::MutexLock lock(&mu_);
  if (auto fault = Enter(ctx, "SetPrimary", req->replica())) return *fault;
  if (replicas_.count(req->replica()) == 0) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("'", req->replica(), "' is not a replica of this registry"));
  }
  primary_ = req->replica();
  resp->set_primary(primary_);
  return grpc::Status::OK;
}

}  // namespace polderctl
}  // namespace polder
