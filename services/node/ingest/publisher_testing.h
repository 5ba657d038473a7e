// Test batches for the publisher's tests (publisher_test against a broker, publisher_unit_test
// against the fake Kafka).
#ifndef POLDER_SERVICES_NODE_INGEST_PUBLISHER_TESTING_H_
#define POLDER_SERVICES_NODE_INGEST_PUBLISHER_TESTING_H_

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/node/ingest/publisher.h"

namespace polder {
namespace node {

// `n` bike-count records for `topic` under idempotency key `key`; `tag` changes the content (and
// the ce_ids) without changing the key. Each record's ce_id is "<key>-<tag>-<i>".
inline PublishBatch TestBatch(const std::string& topic, const std::string& key, int n,
                              const std::string& tag = "a") {
  PublishBatch b;
  b.identity = "gateway-1";
  b.idempotency_key = key;
  b.content_hash = absl::StrCat(key, "/", tag, "/", n);
  b.dataset_id = "mobility.bike-counts";
  b.schema_id = 7;
  for (int i = 0; i < n; ++i) {
    kafka::ProducerRecord r;
    r.topic = topic;
    r.key = absl::StrCat("counter-", i % 5);
    r.value = absl::StrCat("value-", key, "-", i);
    r.headers = {{"ce_id", absl::StrCat(key, "-", tag, "-", i)}};
    b.records.push_back(std::move(r));
  }
  return b;
}

}  // namespace node
}  // namespace polder

#endif  // POLDER_SERVICES_NODE_INGEST_PUBLISHER_TESTING_H_
