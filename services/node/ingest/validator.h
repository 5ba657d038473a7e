// Validation of an ingest batch against a registered schema, and the Kafka records it becomes
// (ARCHITECTURE §5): all or nothing — one bad record refuses the batch, naming the record's index
// and the field path.
//
//   BatchValidator v(limits);
//   ASSIGN_OR_RETURN(std::vector<kafka::ProducerRecord> out,
//                    v.Validate(target, records, absl::Now(), idempotency_seed));
//
// Checks per record: the payload decodes as the dataset message (binary: well-formed wire data,
// no unknown fields, no unknown enum numbers, valid UTF-8 in strings; JSON: proto3 JSON mapping,
// unknown fields refused), the entity id is present, the event time is present and inside the
// window [now - max_event_age, now + max_event_lead], the Kafka record (key, headers, value) is
// within max_record_bytes; per batch: at least one record, at most max_batch_records and
// max_batch_bytes.
#ifndef POLDER_SERVICES_NODE_INGEST_VALIDATOR_H_
#define POLDER_SERVICES_NODE_INGEST_VALIDATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka/record.h"
#include "common/schema/record_layout.h"
#include "common/schema/schema.h"

namespace polder {
namespace node {

struct IngestLimits {
  int64_t max_record_bytes = 64 << 10;  // key + headers + value of one Kafka record
  int64_t max_batch_bytes = 1 << 20;    // the sum over a batch
  int32_t max_batch_records = 10000;
  absl::Duration max_event_age = absl::Hours(24 * 30);
  absl::Duration max_event_lead = absl::Minutes(5);
};

// What a batch is validated against and published to.
struct IngestTarget {
  std::string peer_id;     // the owning city
  std::string federation;  // names the schema in ce_dataschema (ADR 0012)
  std::string dataset_id;  // e.g. mobility.bike-counts
  std::string topic;       // <peer>.<dataset>
  int32_t schema_id = 0;
  std::shared_ptr<const schema::ParsedSchema> schema;
  schema::RecordLayout layout;           // of the dataset message
  std::vector<int32_t> message_indexes;  // the dataset message's index path in the schema
};

struct IncomingRecord {
  enum class Format { kBinary, kJson };
  Format format = Format::kJson;
  std::string data;
  std::string ce_id;  // empty: generated
};

class BatchValidator {
 public:
  explicit BatchValidator(IngestLimits limits) : limits_(limits) {}

  // The batch as Kafka records, or INVALID_ARGUMENT naming the first bad record ("record 3:
  // location.lat: ..."). `ce_id_seed` non-empty (identity and idempotency key): generated ce_ids
  // are derived from it and the record's index, so a retried batch carries the same ids;
  // otherwise they are random.
  // `newest_event_time`, if given, receives the latest event time in the batch.
  absl::StatusOr<std::vector<kafka::ProducerRecord>> Validate(
      const IngestTarget& target, const std::vector<IncomingRecord>& records, absl::Time now,
      const std::string& ce_id_seed, absl::Time* newest_event_time = nullptr) const;

  const IngestLimits& limits() const { return limits_; }

 private:
  IngestLimits limits_;
};

// Problems of binary Protobuf `data` as a `type` message, with the field path of the first:
// malformed wire data, a wire type that does not match the field, invalid UTF-8 in a string
// field, unknown fields, unknown enum numbers. OK if none.
absl::Status CheckBinary(const google::protobuf::Descriptor* type, absl::string_view data);

// The size Kafka counts for a record: key, value, and header keys and values.
int64_t RecordBytes(const kafka::ProducerRecord& r);

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_INGEST_VALIDATOR_H_
