#include "services/node/federation/wire_records.h"

namespace polder {
namespace node {

void ToWireRecord(const kafka::ConsumedRecord& source, federation::v1::Record* out) {
  if (source.key) out->set_key(*source.key);
  out->set_value(source.value);
  for (const kafka::Header& h : source.headers) {
    federation::v1::Header* header = out->add_headers();
    header->set_key(h.key);
    header->set_value(h.value);
  }
  out->set_timestamp_ms(source.timestamp_ms);
  out->set_source_offset(source.offset);
}

kafka::ProducerRecord ToMirrorRecord(const federation::v1::Record& record, const std::string& topic,
                                     int32_t partition) {
  kafka::ProducerRecord out;
  out.topic = topic;
  out.partition = partition;
  out.key = record.key();
  out.value = record.value();
  out.headers.reserve(record.headers_size());
  for (const federation::v1::Header& h : record.headers())
    out.headers.push_back({h.key(), h.value()});
  out.timestamp_ms = record.timestamp_ms();
  return out;
}

int64_t WireRecordBytes(const federation::v1::Record& record) {
  int64_t n = static_cast<int64_t>(record.key().size() + record.value().size());
  for (const federation::v1::Header& h : record.headers()) {
    n += static_cast<int64_t>(h.key().size() + h.value().size());
  }
  return n;
}

}  // namespace node
}  // namespace polder
