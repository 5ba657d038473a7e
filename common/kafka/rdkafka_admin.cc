#include "common/kafka/rdkafka_admin.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/kafka/rdkafka_errors.h"
#include "common/status/status_macros.h"

namespace polder {
namespace kafka {
namespace {

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
};
struct OptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};
struct ConfigResourceDeleter {
  void operator()(rd_kafka_ConfigResource_t* r) const { rd_kafka_ConfigResource_destroy(r); }
};

int Ms(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

// Waits for the result event of an admin request on `queue`.
absl::StatusOr<std::unique_ptr<rd_kafka_event_t, EventDeleter>> AwaitResult(
    rd_kafka_queue_t* queue, absl::Duration timeout, const std::string& what) {
  // The request itself carries the timeout (AdminOptions); wait a little longer for the event.
  std::unique_ptr<rd_kafka_event_t, EventDeleter> ev(
      rd_kafka_queue_poll(queue, Ms(timeout + absl::Seconds(5))));
  if (ev == nullptr) {
    return KafkaStatus(RD_KAFKA_RESP_ERR__TIMED_OUT,
                       absl::StrCat(what, ": no answer within ", absl::FormatDuration(timeout)));
  }
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::Status(KafkaErrorToCode(rd_kafka_event_error(ev.get())),
                        absl::StrCat(what, ": ", rd_kafka_event_error_string(ev.get()), " (",
                                     rd_kafka_err2name(rd_kafka_event_error(ev.get())), ")"));
  }
  return ev;
}

absl::StatusOr<std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter>> MakeOptions(
    rd_kafka_t* rk, rd_kafka_admin_op_t op, absl::Duration timeout) {
  std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter> opts(rd_kafka_AdminOptions_new(rk, op));
  char err[512];
  if (rd_kafka_AdminOptions_set_request_timeout(opts.get(), Ms(timeout), err, sizeof err) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("admin request timeout: ", err));
  }
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS &&
      rd_kafka_AdminOptions_set_operation_timeout(opts.get(), Ms(timeout), err, sizeof err) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("admin operation timeout: ", err));
  }
  return opts;
}

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaAdmin>> KafkaAdmin::Create(ClientOptions options) {
  ASSIGN_OR_RETURN(auto props, CommonProperties(options));
  ASSIGN_OR_RETURN(ConfPtr conf, BuildConf(props));
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err);
  if (rk == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("creating Kafka admin client: ", err));
  conf.release();
  return std::unique_ptr<KafkaAdmin>(new KafkaAdmin(HandlePtr(rk)));
}

absl::Status KafkaAdmin::CreateTopic(const TopicSpec& spec, absl::Duration timeout) {
  const std::string what = absl::StrCat("creating topic '", spec.name, "'");
  char err[512];
  std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter> nt(rd_kafka_NewTopic_new(
      spec.name.c_str(), spec.partitions, spec.replication_factor, err, sizeof err));
  if (nt == nullptr) return absl::InvalidArgumentError(absl::StrCat(what, ": ", err));
  for (const auto& [k, v] : spec.configs) {
    rd_kafka_resp_err_t e = rd_kafka_NewTopic_set_config(nt.get(), k.c_str(), v.c_str());
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaStatus(e, absl::StrCat(what, ": config '", k, "' = '", v, "'"));
    }
  }
  ASSIGN_OR_RETURN(auto opts, MakeOptions(rk_.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout));
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(rk_.get()));
  rd_kafka_NewTopic_t* topics[] = {nt.get()};
  rd_kafka_CreateTopics(rk_.get(), topics, 1, opts.get(), queue.get());
  ASSIGN_OR_RETURN(auto ev, AwaitResult(queue.get(), timeout, what));
  const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev.get());
  if (res == nullptr) return absl::InternalError(absl::StrCat(what, ": unexpected admin event"));
  size_t n = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
  for (size_t i = 0; i < n; ++i) {
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* msg = rd_kafka_topic_result_error_string(results[i]);
      return KafkaStatus(e, absl::StrCat(what, msg != nullptr ? absl::StrCat(": ", msg) : ""));
    }
  }
  return absl::OkStatus();
}

absl::Status KafkaAdmin::DeleteRecords(const std::string& topic,
                                       const std::map<int32_t, int64_t>& before,
                                       absl::Duration timeout) {
  const std::string what = absl::StrCat("deleting records of '", topic, "'");
  std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t*)>
      offsets(rd_kafka_topic_partition_list_new(static_cast<int>(before.size())),
              &rd_kafka_topic_partition_list_destroy);
  for (const auto& [p, o] : before)
    rd_kafka_topic_partition_list_add(offsets.get(), topic.c_str(), p)->offset = o;
  std::unique_ptr<rd_kafka_DeleteRecords_t, void (*)(rd_kafka_DeleteRecords_t*)> del(
      rd_kafka_DeleteRecords_new(offsets.get()), &rd_kafka_DeleteRecords_destroy);
  ASSIGN_OR_RETURN(auto opts, MakeOptions(rk_.get(), RD_KAFKA_ADMIN_OP_DELETERECORDS, timeout));
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(rk_.get()));
  rd_kafka_DeleteRecords_t* dels[] = {del.get()};
  rd_kafka_DeleteRecords(rk_.get(), dels, 1, opts.get(), queue.get());
  ASSIGN_OR_RETURN(auto ev, AwaitResult(queue.get(), timeout, what));
  const rd_kafka_DeleteRecords_result_t* res = rd_kafka_event_DeleteRecords_result(ev.get());
  if (res == nullptr) return absl::InternalError(absl::StrCat(what, ": unexpected admin event"));
  const rd_kafka_topic_partition_list_t* done = rd_kafka_DeleteRecords_result_offsets(res);
  for (int i = 0; done != nullptr && i < done->cnt; ++i) {
    if (done->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaStatus(done->elems[i].err,
                         absl::StrCat(what, " partition ", done->elems[i].partition));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TopicDescription> KafkaAdmin::DescribeTopic(const std::string& name,
                                                           absl::Duration timeout) {
  const std::string what = absl::StrCat("describing topic '", name, "'");
  TopicDescription out;
  out.name = name;
  {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), name.c_str(), nullptr);
    if (rkt == nullptr) return absl::InvalidArgumentError(absl::StrCat(what, ": invalid name"));
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk_.get(), 0, rkt, &md, Ms(timeout));
    rd_kafka_topic_destroy(rkt);
    RETURN_IF_ERROR(KafkaStatus(e, what));
    std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> guard(
        md, &rd_kafka_metadata_destroy);
    if (md->topic_cnt != 1) return absl::InternalError(absl::StrCat(what, ": no metadata"));
    const rd_kafka_metadata_topic_t& t = md->topics[0];
    RETURN_IF_ERROR(KafkaStatus(t.err, what));
    out.partitions = t.partition_cnt;
    out.replication_factor = t.partition_cnt > 0 ? t.partitions[0].replica_cnt : 0;
  }
  ASSIGN_OR_RETURN(auto opts, MakeOptions(rk_.get(), RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout));
  std::unique_ptr<rd_kafka_ConfigResource_t, ConfigResourceDeleter> res(
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name.c_str()));
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(rk_.get()));
  rd_kafka_ConfigResource_t* resources[] = {res.get()};
  rd_kafka_DescribeConfigs(rk_.get(), resources, 1, opts.get(), queue.get());
  ASSIGN_OR_RETURN(auto ev, AwaitResult(queue.get(), timeout, what));
  const rd_kafka_DescribeConfigs_result_t* result = rd_kafka_event_DescribeConfigs_result(ev.get());
  if (result == nullptr) return absl::InternalError(absl::StrCat(what, ": unexpected admin event"));
  size_t n = 0;
  const rd_kafka_ConfigResource_t** rs = rd_kafka_DescribeConfigs_result_resources(result, &n);
  for (size_t i = 0; i < n; ++i) {
    rd_kafka_resp_err_t e = rd_kafka_ConfigResource_error(rs[i]);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* msg = rd_kafka_ConfigResource_error_string(rs[i]);
      return KafkaStatus(e, absl::StrCat(what, msg != nullptr ? absl::StrCat(": ", msg) : ""));
    }
    size_t cnt = 0;
    const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(rs[i], &cnt);
    for (size_t j = 0; j < cnt; ++j) {
      TopicConfigEntry entry;
      const char* v = rd_kafka_ConfigEntry_value(entries[j]);
      entry.value = v != nullptr ? v : "";
      entry.is_default = rd_kafka_ConfigEntry_is_default(entries[j]) != 0;
      entry.is_sensitive = rd_kafka_ConfigEntry_is_sensitive(entries[j]) != 0;
      entry.source = rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(entries[j]));
      out.configs[rd_kafka_ConfigEntry_name(entries[j])] = std::move(entry);
    }
  }
  return out;
}

}  // namespace kafka
}  // namespace polder
