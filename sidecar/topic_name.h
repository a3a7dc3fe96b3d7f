#ifndef KAFKA_SIDECAR_SIDECAR_TOPIC_NAME_H_
#define KAFKA_SIDECAR_SIDECAR_TOPIC_NAME_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kafka_sidecar::sidecar {

// Kafka's rule for topic names: 1 to 249 of [a-zA-Z0-9._-]. INVALID_ARGUMENT naming `field`
// (for example "topic" or "subscribe.topics[2]") otherwise.
absl::Status ValidateTopicName(absl::string_view topic, absl::string_view field);

}  // namespace kafka_sidecar::sidecar

#endif  // KAFKA_SIDECAR_SIDECAR_TOPIC_NAME_H_
