// The registry's REST registration body (ParseRegisterBody) and what the registry does with it:
// a city's registration in its namespace, then the operator's. Whatever the bytes, the body is
// parsed or refused with a reason, and a parsed one is registered or refused, without crashing;
// an accepted city schema always lies in the city's namespace.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "services/registry/registry.h"
#include "services/registry/rest_api.h"

namespace {

// Committed in memory (the registry applies what it committed itself).
class MemoryLog : public polder::registry::RecordLog {
 public:
  absl::StatusOr<int64_t> Commit(
      const std::vector<polder::registry::StoreRecord>& records) override {
    next += static_cast<int64_t>(records.size());
    return next - 1;
  }
  absl::Status Sync() override { return absl::OkStatus(); }
  int64_t next = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const std::string subject = "polder.cities.fuzz.v1.Thing";
  absl::StatusOr<polder::registry::RegisterRequest> req =
      polder::registry::ParseRegisterBody(body, subject);
  if (!req.ok()) return 0;
  if (req->subject != subject) std::abort();
  MemoryLog log;
  polder::registry::Registry registry(&log, polder::registry::RegistryOptions{});
  req->id.reset();
  req->version.reset();
  req->writer_namespace = "polder.cities.fuzz";
  absl::StatusOr<polder::registry::RegisterResult> city = registry.Register(*req);
  if (city.ok()) {
    auto view = registry.GetVersion(subject, city->version, false,
                                    polder::registry::SchemaFormat::kDefault);
    if (!view.ok()) std::abort();
  }
  req->writer_namespace.clear();
  req->subject = "operator.fuzz.Thing";
  (void)registry.Register(*req);
  return 0;
}
