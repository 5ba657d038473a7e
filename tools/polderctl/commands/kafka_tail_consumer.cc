#include "tools/polderctl/commands/kafka_tail_consumer.h"

#include <librdkafka/rdkafka.h>

#include "absl/strings/str_cat.h"
#include "common/kafka/errors.h"
#include "common/kafka/rdkafka_admin.h"
#include "common/kafka/rdkafka_consumer.h"
#include "common/kafka/rdkafka_errors.h"
#include "common/status/status_macros.h"

namespace polder {
namespace polderctl {

absl::StatusOr<std::unique_ptr<KafkaTailConsumer>> KafkaTailConsumer::Create(
    kafka::ConsumerOptions options) {
  options.read_committed = true;
  ASSIGN_OR_RETURN(std::unique_ptr<kafka::KafkaConsumer> consumer,
                   kafka::KafkaConsumer::Create(options));
  // A producer-type handle only ever asks for metadata (as kafka::KafkaAdmin does); it produces
  // nothing and needs no more ACLs than Describe on the topic.
  ASSIGN_OR_RETURN(auto props, kafka::CommonProperties(options.client));
  ASSIGN_OR_RETURN(kafka::ConfPtr conf, kafka::BuildConf(props));
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err);
  if (rk == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("creating a Kafka metadata client: ", err));
  conf.release();
  return std::unique_ptr<KafkaTailConsumer>(
      new KafkaTailConsumer(std::move(consumer), kafka::HandlePtr(rk)));
}

absl::StatusOr<std::vector<int32_t>> KafkaTailConsumer::Partitions(const std::string& topic,
                                                                   absl::Duration timeout) {
  const std::string what = absl::StrCat("reading the metadata of topic '", topic, "'");
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(metadata_.get(), topic.c_str(), nullptr);
  if (rkt == nullptr) return absl::InvalidArgumentError(absl::StrCat(what, ": invalid name"));
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t e = rd_kafka_metadata(metadata_.get(), 0, rkt, &md,
                                            static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  rd_kafka_topic_destroy(rkt);
  RETURN_IF_ERROR(kafka::KafkaStatus(e, what));
  std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> guard(
      md, &rd_kafka_metadata_destroy);
  if (md->topic_cnt != 1) return absl::InternalError(absl::StrCat(what, ": no metadata"));
  const rd_kafka_metadata_topic_t& t = md->topics[0];
  RETURN_IF_ERROR(kafka::KafkaStatus(t.err, what));
  std::vector<int32_t> out;
  for (int i = 0; i < t.partition_cnt; ++i) out.push_back(t.partitions[i].id);
  return out;
}

}  // namespace polderctl
}  // namespace polder
