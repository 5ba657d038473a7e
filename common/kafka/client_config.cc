#include "common/kafka/client_config.h"


#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace polder {
namespace kafka {
namespace {

log::Severity SeverityOf(int level) {
  if (level <= 3) return log::Severity::kError;
  if (level == 4) return log::Severity::kWarning;
  if (level <= 6) return log::Severity::kInfo;
  return log::Severity::kDebug;
}

void LogCallback(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  log::Write(SeverityOf(level), buf != nullptr ? buf : "",
             {{"source", "librdkafka"}, {"client", rd_kafka_name(rk)}, {"facility", fac}});
}

}  // namespace

std::string Millis(absl::Duration d) { return std::to_string(absl::ToInt64Milliseconds(d)); }

absl::StatusOr<ConfPtr> BuildConf(const std::map<std::string, std::string>& props) {
  ConfPtr conf(rd_kafka_conf_new());
  char err[512];
  for (const auto& [key, value] : props) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), err, sizeof err) !=
        RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("Kafka client property '", key, "' = '", value, "': ", err));
    }
  }
  InstallJsonLogger(conf.get());
  return conf;
}

void InstallJsonLogger(rd_kafka_conf_t* conf) { rd_kafka_conf_set_log_cb(conf, &LogCallback); }

absl::StatusOr<std::map<std::string, std::string>> CommonProperties(const ClientOptions& options) {
  if (options.bootstrap_servers.empty()) {
    return absl::InvalidArgumentError("Kafka bootstrap_servers is empty");
  }
  if (options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("Kafka request_timeout must be positive, got ",
                                                   absl::FormatDuration(options.request_timeout)));
  }
  std::map<std::string, std::string> props = options.properties;
  props["bootstrap.servers"] = options.bootstrap_servers;
  props["client.id"] = options.client_id;
  // Never let a metadata request create a topic (producer-type handles default to allowing it
  // when the broker does): a misspelt topic must be NOT_FOUND, and topics are created
  // explicitly with their configuration.
  props["allow.auto.create.topics"] = "false";
  // Keep re-connect attempts brisk so a restarted broker is found again quickly.
  props.emplace("reconnect.backoff.ms", "100");
  props.emplace("reconnect.backoff.max.ms", "2000");
  return props;
}

}  // namespace kafka
}  // namespace polder
