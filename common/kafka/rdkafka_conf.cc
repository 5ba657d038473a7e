#include "common/kafka/rdkafka_conf.h"

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

}  // namespace kafka
}  // namespace polder
