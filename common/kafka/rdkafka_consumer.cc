#include "common/kafka/rdkafka_consumer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_errors.h"
#include "common/status/status_macros.h"

namespace polder {
namespace kafka {
namespace {

struct TopicPartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};

ConsumedRecord ToRecord(const rd_kafka_message_t* m) {
  ConsumedRecord r;
  r.topic = rd_kafka_topic_name(m->rkt);
  r.partition = m->partition;
  r.offset = m->offset;
  if (m->key != nullptr) r.key = std::string(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
  r.tombstone = m->payload == nullptr;
  rd_kafka_timestamp_type_t type;
  r.timestamp_ms = rd_kafka_message_timestamp(m, &type);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      r.headers.push_back({name, value == nullptr
                                     ? std::string()
                                     : std::string(static_cast<const char*>(value), size)});
    }
  }
  return r;
}

// Errors that the consumer recovers from by itself; Poll keeps going.
bool IsTransient(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR__PARTITION_EOF || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
         err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__RESOLVE ||
         err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
         err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
         err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT;
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ConsumerProperties(
    const ConsumerOptions& options) {
  ASSIGN_OR_RETURN(auto props, CommonProperties(options.client));
  if (options.max_partition_fetch_bytes < 1 ||
      options.max_fetch_bytes < options.max_partition_fetch_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Kafka consumer max_fetch_bytes (", options.max_fetch_bytes,
        ") must be at least max_partition_fetch_bytes (", options.max_partition_fetch_bytes, ")"));
  }
  // librdkafka 2.0.2's high-level consumer requires a group.id even when partitions are only
  // assigned; Polder never subscribes or commits, so no JoinGroup is ever sent.
  props["group.id"] = "polder-assign-only";
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  props["enable.partition.eof"] = "false";
  // Surface a gap (requested offset no longer in the log) instead of silently jumping.
  props["auto.offset.reset"] = "error";
  props["isolation.level"] = options.read_committed ? "read_committed" : "read_uncommitted";
  props["max.partition.fetch.bytes"] = std::to_string(options.max_partition_fetch_bytes);
  props["fetch.max.bytes"] = std::to_string(options.max_fetch_bytes);
  props["receive.message.max.bytes"] = std::to_string(options.max_fetch_bytes + 1000000);
  props["socket.timeout.ms"] = Millis(options.client.request_timeout);
  return props;
}

absl::StatusOr<std::unique_ptr<KafkaConsumer>> KafkaConsumer::Create(ConsumerOptions options) {
  ASSIGN_OR_RETURN(auto props, ConsumerProperties(options));
  ASSIGN_OR_RETURN(ConfPtr conf, BuildConf(props));
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof err);
  if (rk == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("creating Kafka consumer: ", err));
  conf.release();
  rd_kafka_poll_set_consumer(rk);
  return std::unique_ptr<KafkaConsumer>(new KafkaConsumer(HandlePtr(rk)));
}

KafkaConsumer::~KafkaConsumer() {
  // No group membership to leave and nothing to commit.
  rd_kafka_assign(rk_.get(), nullptr);
  rd_kafka_consumer_close(rk_.get());
}

absl::Status KafkaConsumer::Assign(const std::vector<TopicPartitionOffset>& partitions) {
  std::unique_ptr<rd_kafka_topic_partition_list_t, TopicPartitionListDeleter> list(
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& tp : partitions) {
    if (tp.offset < kOffsetBeginning) {
      return absl::InvalidArgumentError(absl::StrCat("invalid start offset ", tp.offset, " for ",
                                                     tp.topic, "[", tp.partition, "]"));
    }
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset =
        tp.offset == kOffsetBeginning ? RD_KAFKA_OFFSET_BEGINNING
        : tp.offset == kOffsetEnd     ? RD_KAFKA_OFFSET_END
                                      : tp.offset;
  }
  return KafkaStatus(rd_kafka_assign(rk_.get(), list.get()), "assigning partitions");
}

absl::StatusOr<std::vector<ConsumedRecord>> KafkaConsumer::Poll(absl::Duration timeout,
                                                                int max_records) {
  // An error seen after records were collected is kept for the next call, so no record the
  // consumer has moved past is ever dropped.
  if (!deferred_error_.ok()) {
    absl::Status e = std::move(deferred_error_);
    deferred_error_ = absl::OkStatus();
    return e;
  }
  std::vector<ConsumedRecord> out;
  absl::Time deadline = absl::Now() + timeout;
  while (static_cast<int>(out.size()) < max_records) {
    // Wait for the first record until the deadline; after that take only what is ready.
    int wait_ms = out.empty() ? static_cast<int>(std::max<int64_t>(
                                    0, absl::ToInt64Milliseconds(deadline - absl::Now())))
                              : 0;
    std::unique_ptr<rd_kafka_message_t, MessageDeleter> m(
        rd_kafka_consumer_poll(rk_.get(), wait_ms));
    if (m == nullptr) {
      if (!out.empty() || absl::Now() >= deadline) break;
      continue;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (IsTransient(m->err)) continue;
      std::string where = m->rkt != nullptr ? absl::StrCat(rd_kafka_topic_name(m->rkt), "[",
                                                           m->partition, "] at offset ", m->offset)
                                            : std::string("consumer");
      const char* detail = rd_kafka_message_errstr(m.get());
      absl::Status error = KafkaStatus(
          m->err, absl::StrCat("reading ", where,
                               detail != nullptr ? absl::StrCat(" (", detail, ")") : ""));
      if (out.empty()) return error;
      deferred_error_ = std::move(error);
      break;
    }
    out.push_back(ToRecord(m.get()));
  }
  return out;
}

absl::StatusOr<int64_t> KafkaConsumer::Position(const std::string& topic, int32_t partition) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic.c_str(), partition);
  rd_kafka_resp_err_t err = rd_kafka_position(rk_.get(), list);
  int64_t offset = list->elems[0].offset;
  rd_kafka_resp_err_t perr = list->elems[0].err;
  rd_kafka_topic_partition_list_destroy(list);
  RETURN_IF_ERROR(KafkaStatus(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : perr,
                              absl::StrCat("position of ", topic, "[", partition, "]")));
  return offset;
}

absl::StatusOr<std::pair<int64_t, int64_t>> KafkaConsumer::CachedWatermarks(
    const std::string& topic, int32_t partition) {
  int64_t low = RD_KAFKA_OFFSET_INVALID, high = RD_KAFKA_OFFSET_INVALID;
  RETURN_IF_ERROR(
      KafkaStatus(rd_kafka_get_watermark_offsets(rk_.get(), topic.c_str(), partition, &low, &high),
                  absl::StrCat("watermarks of ", topic, "[", partition, "]")));
  if (high < 0) {
    return absl::UnavailableError(
        absl::StrCat("no fetch of ", topic, "[", partition, "] has told its watermarks yet"));
  }
  return std::make_pair(low, high);
}

absl::StatusOr<std::pair<int64_t, int64_t>> KafkaConsumer::QueryWatermarks(const std::string& topic,
                                                                           int32_t partition,
                                                                           absl::Duration timeout) {
  // ListOffsets for the log start (-2) and the end (-1; with read_committed the last stable
  // offset), through rd_kafka_offsets_for_times, which keeps its timeout:
  // rd_kafka_query_watermark_offsets (librdkafka 2.0.2) sends the same requests but waits for
  // their replies without a deadline, and after a partition leader was killed it kept retrying
  // the old leader for over a minute (tests/node/broker_failures_test).
  const std::string what = absl::StrCat("querying watermarks of ", topic, "[", partition, "]");
  auto list_offset = [&](int64_t which) -> absl::StatusOr<int64_t> {
    std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t*)>
        list(rd_kafka_topic_partition_list_new(1), &rd_kafka_topic_partition_list_destroy);
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = which;
    RETURN_IF_ERROR(KafkaStatus(
        rd_kafka_offsets_for_times(rk_.get(), list.get(),
                                   static_cast<int>(absl::ToInt64Milliseconds(timeout))),
        what));
    RETURN_IF_ERROR(KafkaStatus(list->elems[0].err, what));
    return list->elems[0].offset;
  };
  ASSIGN_OR_RETURN(int64_t low, list_offset(RD_KAFKA_OFFSET_BEGINNING));
  ASSIGN_OR_RETURN(int64_t high, list_offset(RD_KAFKA_OFFSET_END));
  return std::make_pair(low, high);
}

absl::StatusOr<int64_t> KafkaConsumer::OffsetForTime(const std::string& topic, int32_t partition,
                                                     absl::Time at, absl::Duration timeout) {
  std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t*)> list(
      rd_kafka_topic_partition_list_new(1), &rd_kafka_topic_partition_list_destroy);
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset =
      absl::ToUnixMillis(at);
  const std::string what = absl::StrCat("looking up the offset of ", topic, "[", partition, "] at ",
                                        absl::FormatTime(at, absl::UTCTimeZone()));
  RETURN_IF_ERROR(
      KafkaStatus(rd_kafka_offsets_for_times(rk_.get(), list.get(),
                                             static_cast<int>(absl::ToInt64Milliseconds(timeout))),
                  what));
  RETURN_IF_ERROR(KafkaStatus(list->elems[0].err, what));
  if (list->elems[0].offset >= 0) return list->elems[0].offset;
  absl::StatusOr<std::pair<int64_t, int64_t>> marks = QueryWatermarks(topic, partition, timeout);
  if (!marks.ok()) return marks.status();
  return marks->second;
}

}  // namespace kafka
}  // namespace polder
