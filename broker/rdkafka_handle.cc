#include "broker/rdkafka_handle.h"

#include <glog/logging.h>

#include <algorithm>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "broker/rdkafka_status.h"

namespace kafka_sidecar::broker {
namespace {

// librdkafka's syslog levels mapped onto glog. Debug output (level 7) comes only when the
// operator asked for it with the `debug` setting, and goes to INFO.
// A line of librdkafka's may quote what a client sent (a group id): control characters in it
// are escaped, so that no client can forge a log line.
std::string OneLine(absl::string_view message) {
  const bool has_control = std::any_of(message.begin(), message.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  return has_control ? absl::CHexEscape(message) : std::string(message);
}

void LogToGlog(const rd_kafka_t* rk, int level, const char* facility, const char* raw) {
  const char* name = rk != nullptr ? rd_kafka_name(rk) : "rdkafka";
  const std::string message = OneLine(raw);
  if (level <= 3) {
    LOG(ERROR) << "[" << name << "] " << facility << ": " << message;
  } else if (level <= 5) {
    LOG(WARNING) << "[" << name << "] " << facility << ": " << message;
  } else {
    LOG(INFO) << "[" << name << "] " << facility << ": " << message;
  }
}

}  // namespace

absl::StatusOr<RdKafkaConfPtr> NewRdKafkaConf(const KafkaSettings& settings) {
  RdKafkaConfPtr conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), &LogToGlog);
  char error[512];
  for (const auto& [name, value] : settings) {
    const rd_kafka_conf_res_t result =
        rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), error, sizeof(error));
    if (result == RD_KAFKA_CONF_OK) continue;
    // Values are never quoted; names only when librdkafka knows them or they look like one
    // (an unknown "name" may be a piece of a secret value that held a comma).
    if (result == RD_KAFKA_CONF_UNKNOWN) {
      return absl::InvalidArgumentError(
          LooksLikePropertyName(name)
              ? absl::StrCat("kafka setting '", name, "' is not a librdkafka property")
              : "a kafka setting's name is not a librdkafka property (not shown: it may be a "
                "piece of a value that held a comma; such values belong in an @file)");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "kafka setting '", name, "': ", IsSecretSetting(name) ? "invalid value" : error));
  }
  return conf;
}

absl::StatusOr<RdKafkaPtr> NewRdKafka(rd_kafka_type_t type, RdKafkaConfPtr conf) {
  char error[512];
  // rd_kafka_new takes the configuration over only when it succeeds.
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), error, sizeof(error));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka client configuration: ", error));
  }
  conf.release();
  return RdKafkaPtr(rk);
}

absl::Status CheckReachable(rd_kafka_t* rk, absl::Duration timeout) {
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(
      rk, 0, nullptr, &metadata, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (metadata != nullptr) rd_kafka_metadata_destroy(metadata);
  return RdKafkaStatus(err, "asking Kafka for metadata");
}

}  // namespace kafka_sidecar::broker
