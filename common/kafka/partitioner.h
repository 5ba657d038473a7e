// Kafka's default partitioner for keyed records, as the Java client (and librdkafka's
// murmur2_random) computes it: a key's partition among `partitions` — used where Polder must
// agree with Kafka's own placement (the fake, the keys topic's partitions, a role's partition).
#ifndef POLDER_COMMON_KAFKA_PARTITIONER_H_
#define POLDER_COMMON_KAFKA_PARTITIONER_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace polder {
namespace kafka {

// org.apache.kafka.common.utils.Utils.murmur2(key), then toPositive(h) % partitions.
int32_t JavaPartition(absl::string_view key, int32_t partitions);

}  // namespace kafka
}  // namespace polder

#endif  // POLDER_COMMON_KAFKA_PARTITIONER_H_
