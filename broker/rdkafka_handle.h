#ifndef KAFKA_SIDECAR_BROKER_RDKAFKA_HANDLE_H_
#define KAFKA_SIDECAR_BROKER_RDKAFKA_HANDLE_H_

#include <librdkafka/rdkafka.h>

#include <memory>

#include "absl/status/statusor.h"
#include "broker/kafka_config.h"

namespace kafka_sidecar::broker {

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
  void operator()(rd_kafka_queue_t* queue) const { rd_kafka_queue_destroy(queue); }
};
using RdKafkaPtr = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;
using RdKafkaConfPtr = std::unique_ptr<rd_kafka_conf_t, RdKafkaDeleter>;
using RdKafkaQueuePtr = std::unique_ptr<rd_kafka_queue_t, RdKafkaDeleter>;

// Builds a librdkafka configuration from `settings`, applied in order, with librdkafka's log
// routed to glog. Returns INVALID_ARGUMENT naming the setting librdkafka refused (the value of
// a secret setting is never part of the message).
absl::StatusOr<RdKafkaConfPtr> NewRdKafkaConf(const KafkaSettings& settings);

// Creates a client of `type` from `conf` (taken over). INVALID_ARGUMENT when librdkafka
// refuses the configuration as a whole.
absl::StatusOr<RdKafkaPtr> NewRdKafka(rd_kafka_type_t type, RdKafkaConfPtr conf);

// Asks a broker for cluster metadata through `rk`, waiting up to `timeout`: OK when Kafka
// answers.
absl::Status CheckReachable(rd_kafka_t* rk, absl::Duration timeout);

}  // namespace kafka_sidecar::broker

#endif  // KAFKA_SIDECAR_BROKER_RDKAFKA_HANDLE_H_
