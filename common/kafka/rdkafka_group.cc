#include "common/kafka/rdkafka_group.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/kafka/rdkafka_errors.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"

namespace polder {
namespace kafka {
namespace {

using PartitionList =
    std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t*)>;

std::vector<TopicPartition> ToVector(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  if (list == nullptr) return out;
  for (int i = 0; i < list->cnt; ++i)
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  return out;
}

std::string Describe(const std::vector<TopicPartition>& partitions) {
  return absl::StrJoin(partitions, ",", [](std::string* out, const TopicPartition& tp) {
    absl::StrAppend(out, tp.topic, "[", tp.partition, "]");
  });
}

// Logs and frees an rd_kafka_error_t; true if there was none.
bool Check(rd_kafka_error_t* error, absl::string_view what, const std::string& group) {
  if (error == nullptr) return true;
  log::Error(
      "consumer group call failed",
      {{"group", group}, {"call", std::string(what)}, {"error", rd_kafka_error_string(error)}});
  rd_kafka_error_destroy(error);
  return false;
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> GroupProperties(const GroupOptions& options) {
  ASSIGN_OR_RETURN(auto props, CommonProperties(options.client));
  if (options.group_id.empty())
    return absl::InvalidArgumentError("a group member needs a group id");
  if (options.topics.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("group ", options.group_id, ": no roles topic to subscribe to"));
  }
  if (options.heartbeat_interval <= absl::ZeroDuration() ||
      options.heartbeat_interval * 3 > options.session_timeout) {
    return absl::InvalidArgumentError(
        absl::StrCat("group ", options.group_id, ": heartbeat_interval (",
                     absl::FormatDuration(options.heartbeat_interval),
                     ") must be positive and at most a third of session_timeout (",
                     absl::FormatDuration(options.session_timeout), ")"));
  }
  if (options.max_poll_interval < options.session_timeout) {
    return absl::InvalidArgumentError(absl::StrCat("group ", options.group_id,
                                                   ": max_poll_interval must be at least "
                                                   "session_timeout"));
  }
  props["group.id"] = options.group_id;
  props["partition.assignment.strategy"] = "cooperative-sticky";
  if (!options.instance_id.empty()) props["group.instance.id"] = options.instance_id;
  props["session.timeout.ms"] = Millis(options.session_timeout);
  props["heartbeat.interval.ms"] = Millis(options.heartbeat_interval);
  props["max.poll.interval.ms"] = Millis(options.max_poll_interval);
  // Roles, not records: nothing is committed and the paused partitions are never read.
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  props["auto.offset.reset"] = "latest";
  props["enable.partition.eof"] = "false";
  props["socket.timeout.ms"] = Millis(options.client.request_timeout);
  return props;
}

absl::StatusOr<std::unique_ptr<KafkaGroupMember>> KafkaGroupMember::Create(
    const GroupOptions& options, GroupListener* listener) {
  if (listener == nullptr) return absl::InvalidArgumentError("a group member needs a listener");
  ASSIGN_OR_RETURN(auto props, GroupProperties(options));
  ASSIGN_OR_RETURN(ConfPtr conf, BuildConf(props));
  std::unique_ptr<KafkaGroupMember> m(new KafkaGroupMember(options.group_id, listener));
  rd_kafka_conf_set_opaque(conf.get(), m.get());
  rd_kafka_conf_set_rebalance_cb(conf.get(), &KafkaGroupMember::RebalanceCallback);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof err);
  if (rk == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("creating the member of group ", options.group_id, ": ", err));
  }
  conf.release();
  m->rk_.reset(rk);
  rd_kafka_poll_set_consumer(rk);
  PartitionList topics(rd_kafka_topic_partition_list_new(static_cast<int>(options.topics.size())),
                       &rd_kafka_topic_partition_list_destroy);
  for (const std::string& t : options.topics) {
    rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  RETURN_IF_ERROR(KafkaStatus(rd_kafka_subscribe(rk, topics.get()),
                              absl::StrCat("joining group ", options.group_id)));
  m->thread_ = std::thread([raw = m.get()] { raw->Loop(); });
  return m;
}

KafkaGroupMember::~KafkaGroupMember() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (rk_ != nullptr) {
    // Revokes the assignment through the rebalance callback (on this thread), then leaves the
    // group so the others take over without waiting for the session timeout.
    rd_kafka_consumer_close(rk_.get());
  }
}

void KafkaGroupMember::Loop() {
  while (!stop_) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), 100);
    if (m == nullptr) continue;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      log::Warning("consumer group member",
                   {{"group", group_id_}, {"error", rd_kafka_message_errstr(m)}});
    }
    rd_kafka_message_destroy(m);
  }
}

void KafkaGroupMember::RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                         rd_kafka_topic_partition_list_t* partitions,
                                         void* opaque) {
  (void)rk;
  static_cast<KafkaGroupMember*>(opaque)->OnRebalance(err, partitions);
}

void KafkaGroupMember::OnRebalance(rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t* partitions) {
  rd_kafka_t* rk = rk_.get();
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  std::vector<TopicPartition> list = ToVector(partitions);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (cooperative) {
      Check(rd_kafka_incremental_assign(rk, partitions), "incremental_assign", group_id_);
    } else {
      rd_kafka_assign(rk, partitions);  // not configured (cooperative-sticky), kept correct
    }
    if (partitions != nullptr && partitions->cnt > 0) rd_kafka_pause_partitions(rk, partitions);
    char* id = rd_kafka_memberid(rk);
    {
      absl::MutexLock lock(&mu_);
      assignment_.insert(list.begin(), list.end());
      joined_ = true;
      ++rebalances_;
      member_id_ = id != nullptr ? id : "";
    }
    if (id != nullptr) rd_kafka_mem_free(rk, id);
    log::Info("group assignment",
              {{"group", group_id_}, {"added", Describe(list)}, {"member", member_id()}});
    listener_->Assigned(list);
    return;
  }
  // Revoked, or a rebalance error: everything in `partitions` (all of the assignment for an
  // error) stops being used before the assignment is given up.
  const bool lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk);
  if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    log::Warning("group rebalance failed",
                 {{"group", group_id_}, {"error", rd_kafka_err2str(err)}});
    absl::MutexLock lock(&mu_);
    list.assign(assignment_.begin(), assignment_.end());
  }
  {
    absl::MutexLock lock(&mu_);
    for (const TopicPartition& tp : list) assignment_.erase(tp);
    if (lost) joined_ = false;
  }
  log::Info("group revocation",
            {{"group", group_id_}, {"removed", Describe(list)}, {"lost", lost}});
  listener_->Revoked(list, lost);
  if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    rd_kafka_assign(rk, nullptr);
  } else if (cooperative) {
    Check(rd_kafka_incremental_unassign(rk, partitions), "incremental_unassign", group_id_);
  } else {
    rd_kafka_assign(rk, nullptr);
  }
}

std::vector<TopicPartition> KafkaGroupMember::Assignment() const {
  absl::MutexLock lock(&mu_);
  return {assignment_.begin(), assignment_.end()};
}

std::string KafkaGroupMember::member_id() const {
  absl::MutexLock lock(&mu_);
  return member_id_;
}

bool KafkaGroupMember::joined() const {
  absl::MutexLock lock(&mu_);
  return joined_;
}

int64_t KafkaGroupMember::rebalances() const {
  absl::MutexLock lock(&mu_);
  return rebalances_;
}

}  // namespace kafka
}  // namespace polder
