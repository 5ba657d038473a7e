// Record validation (services/node/ingest:validator) against the standard BikeCount schema: the
// first byte picks JSON or binary Protobuf, the rest is the record. Whatever the bytes, the
// validator answers (accepts or refuses with a reason) without crashing; an accepted record is
// one Kafka record whose value is a Confluent frame of this schema.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/schema/record_layout.h"
#include "common/wire/confluent_frame.h"
#include "proto/polder/datasets/standard_parsed.h"
#include "services/node/ingest/validator.h"

namespace {

constexpr char kSubject[] = "polder.datasets.mobility.v1.BikeCount";

const polder::node::IngestTarget& Target() {
  static const polder::node::IngestTarget* target = [] {
    auto parsed = polder::datasets::ParseStandardSchemas();
    if (!parsed.ok()) std::abort();
    auto* t = new polder::node::IngestTarget;
    t->peer_id = "groningen";
    t->dataset_id = "mobility.bike-counts";
    t->topic = "groningen.mobility.bike-counts";
    t->schema_id = 42;
    t->schema = (*parsed)[kSubject];
    const auto* d = t->schema->file()->pool()->FindMessageTypeByName(kSubject);
    if (d == nullptr) std::abort();
    auto layout = polder::schema::RecordLayoutOf(d);
    auto indexes = t->schema->IndexesOf(kSubject);
    if (!layout.ok() || !indexes.ok()) std::abort();
    t->layout = *layout;
    t->message_indexes = *indexes;
    return t;
  }();
  return *target;
}

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
