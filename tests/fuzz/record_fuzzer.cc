// Record validation (services/node/ingest:validator) against the standard BikeCount schema: the
// first byte picks JSON or binary Protobuf, the rest is the record. Whatever the bytes, the
// validator answers (accepts or refuses with a reason) without crashing; an accepted record is
// one Kafka record whose value is a Confluent frame of this schema.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/wire/confluent_frame.h"
#include "services/node/ingest/validator.h"
#include "tests/fuzz/bike_target.h"

namespace {

const polder::node::IngestTarget& Target() { return polder::fuzzing::BikeCountTarget(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  polder::node::IncomingRecord r;
  r.format = data[0] % 2 == 0 ? polder::node::IncomingRecord::Format::kJson
                              : polder::node::IncomingRecord::Format::kBinary;
  r.data.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  r.ce_id = "fuzz-1";
  const polder::node::BatchValidator validator(polder::node::IngestLimits{});
  auto out = validator.Validate(Target(), {r}, absl::FromUnixSeconds(1795000000), "seed");
  if (out.ok()) {
    if (out->size() != 1) std::abort();
    auto frame = polder::wire::Decode((*out)[0].value);
    if (!frame.ok() || frame->schema_id != 42) std::abort();
  }
  (void)polder::node::CheckBinary(Target().layout.message, r.data);
  return 0;
}
