#ifndef KAFKA_SIDECAR_SIDECAR_SERVER_CONSUMER_FACTORY_H_
#define KAFKA_SIDECAR_SIDECAR_SERVER_CONSUMER_FACTORY_H_

#include <string>

#include "broker/kafka_config.h"
#include "sidecar/consume/subscription_registry.h"
#include "sidecar/server/config.h"

namespace kafka_sidecar::sidecar {

// The group members of a running sidecar: librdkafka consumers of `bootstrap` with the
// assignment strategy, static membership and prefetch bound of `config`, then `settings`
// (which win; the caller puts --kafka_config last).
ConsumerFactory RdKafkaConsumerFactory(const SidecarConfig& config, std::string bootstrap,
                                       broker::KafkaSettings settings);

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_SERVER_CONSUMER_FACTORY_H_
